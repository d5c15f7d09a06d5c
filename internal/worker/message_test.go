package worker_test

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"acronismfa/internal/tenant"
	"acronismfa/internal/testkit"
	"acronismfa/internal/worker"
)

const (
	tenantID    = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
	tenantUpper = "3FA85F64-5717-4562-B3FC-2C963F66AFA6"
)

func ptr(b bool) *bool { return &b }

// event is an EventBridge event of detailType as a rule with the queue as
// target delivers it.
func event(detailType, detail string) string {
	return strings.Replace(testkit.TenantCreated(detail), `"detail-type":"Tenant Created"`, `"detail-type":`+strconv.Quote(detailType), 1)
}

func TestParseMessage(t *testing.T) {
	const eventID = "(the event's own)" // a new id in every event built
	tests := []struct {
		name    string
		body    string
		want    worker.Message
		wantErr string // "" means accepted
	}{
		{name: "set enabled", body: `{"tenant_id": "` + tenantID + `", "enabled": true}`,
			want: worker.Message{TenantID: tenantID, Enabled: ptr(true), Kind: worker.KindSet}},
		{name: "set disabled", body: `{"enabled": false, "tenant_id": "` + tenantID + `"}`,
			want: worker.Message{TenantID: tenantID, Enabled: ptr(false), Kind: worker.KindSet}},
		{name: "enforce", body: `{"tenant_id": "` + tenantID + `"}`,
			want: worker.Message{TenantID: tenantID, Kind: worker.KindEnforce}},
		{name: "upper-case id is lowercased", body: `{"tenant_id": "` + tenantUpper + `"}`,
			want: worker.Message{TenantID: tenantID, Kind: worker.KindEnforce}},
		{name: "sweep fan-out", body: `{"tenant_id": "` + tenantID + `", "sweep_id": "0b9f8c1e-1b1d-4c1a-9d51-7f3e2b1a0c9d"}`,
			want: worker.Message{TenantID: tenantID, Kind: worker.KindEnforce, SweepID: "0b9f8c1e-1b1d-4c1a-9d51-7f3e2b1a0c9d"}},
		{name: "by name", body: `{"tenant_name": "ACME Corp ", "enabled": true}`,
			want: worker.Message{TenantName: "ACME Corp ", Enabled: ptr(true), Kind: worker.KindSet}},
		{name: "name of 255 characters", body: `{"tenant_name": "` + strings.Repeat("é", 255) + `"}`,
			want: worker.Message{TenantName: strings.Repeat("é", 255), Kind: worker.KindEnforce}},
		{name: "tenant created", body: event("Tenant Created", `{"tenant_id": "`+tenantUpper+`"}`),
			want: worker.Message{TenantID: tenantID, Kind: worker.KindEvent, EventID: eventID, DetailType: "Tenant Created"}},
		{name: "event with enabled and extra detail", body: event("Tenant Created", `{"tenant_name": "ACME", "enabled": false, "kind": "customer", "tenant_idx": 1}`),
			want: worker.Message{TenantName: "ACME", Enabled: ptr(false), Kind: worker.KindEvent, EventID: eventID, DetailType: "Tenant Created"}},
		{name: "event of another detail-type", body: event("Customer Onboarded", `{"tenant_id": "`+tenantID+`"}`),
			want: worker.Message{TenantID: tenantID, Kind: worker.KindEvent, EventID: eventID, DetailType: "Customer Onboarded"}},
		{name: "event without id", body: `{"detail-type": "Tenant Created", "detail": {"tenant_id": "` + tenantID + `"}}`,
			want: worker.Message{TenantID: tenantID, Kind: worker.KindEvent, DetailType: "Tenant Created"}},
		{name: "event with replay-name", body: `{"id": "x", "replay-name": "r1", "detail-type": "Tenant Created", "detail": {"tenant_id": "` + tenantID + `"}}`,
			want: worker.Message{TenantID: tenantID, Kind: worker.KindEvent, EventID: "x", DetailType: "Tenant Created"}},

		{name: "empty", body: ``, wantErr: "empty body"},
		{name: "whitespace", body: " \n", wantErr: "empty body"},
		{name: "not JSON", body: `tenant_id=` + tenantID, wantErr: "not valid JSON"},
		{name: "truncated", body: `{"tenant_id": "` + tenantID + `"`, wantErr: "not valid JSON"},
		{name: "array", body: `[{"tenant_id": "` + tenantID + `"}]`, wantErr: "must be a JSON object, not an array"},
		{name: "null", body: `null`, wantErr: "must be a JSON object, not null"},
		{name: "string", body: `"` + tenantID + `"`, wantErr: "must be a JSON object, not a string"},
		{name: "trailing data", body: `{"tenant_id": "` + tenantID + `"} {}`, wantErr: "data after the JSON object"},
		{name: "neither id nor name", body: `{"enabled": true}`, wantErr: "tenant_id or tenant_name is required"},
		{name: "empty object", body: `{}`, wantErr: "tenant_id or tenant_name is required"},
		{name: "both id and name: the id decides, the name is checked", body: `{"tenant_id": "` + tenantID + `", "tenant_name": "ACME"}`,
			want: worker.Message{TenantID: tenantID, TenantName: "ACME", Kind: worker.KindEnforce}},
		{name: "id not a UUID", body: `{"tenant_id": "acme"}`, wantErr: `tenant_id "acme" is not a UUID`},
		{name: "id empty", body: `{"tenant_id": ""}`, wantErr: `tenant_id "" is not a UUID`},
		{name: "id null", body: `{"tenant_id": null}`, wantErr: "tenant_id must be a string, not null"},
		{name: "id number", body: `{"tenant_id": 42}`, wantErr: "tenant_id must be a string, not a number"},
		{name: "id in braces", body: `{"tenant_id": "{` + tenantID + `}"}`, wantErr: "is not a UUID"},
		{name: "long bad id is cut", body: `{"tenant_id": "` + strings.Repeat("x", 5000) + `"}`, wantErr: `"xxxxxxxxxxxxxxxx`},
		{name: "enabled string", body: `{"tenant_id": "` + tenantID + `", "enabled": "true"}`, wantErr: "enabled must be a boolean, not a string"},
		{name: "enabled number", body: `{"tenant_id": "` + tenantID + `", "enabled": 1}`, wantErr: "enabled must be a boolean, not a number"},
		{name: "enabled null", body: `{"tenant_id": "` + tenantID + `", "enabled": null}`, wantErr: "enabled must be a boolean, not null"},
		{name: "duplicate tenant_id", body: `{"tenant_id": "` + tenantID + `", "tenant_id": "` + tenantUpper + `"}`, wantErr: `key "tenant_id" more than once`},
		{name: "duplicate enabled", body: `{"tenant_id": "` + tenantID + `", "enabled": true, "enabled": false}`, wantErr: `key "enabled" more than once`},
		{name: "unknown field", body: `{"tenant_id": "` + tenantID + `", "enable": false}`, wantErr: `unknown field "enable"`},
		{name: "key case matters", body: `{"Tenant_ID": "` + tenantID + `"}`, wantErr: `unknown field "Tenant_ID"`},
		{name: "reason not accepted", body: `{"tenant_id": "` + tenantID + `", "reason": "ticket 42"}`, wantErr: `unknown field "reason"`},
		{name: "source without detail-type", body: `{"tenant_id": "` + tenantID + `", "source": "ops"}`, wantErr: `unknown field "source"`},
		{name: "name empty", body: `{"tenant_name": ""}`, wantErr: "tenant_name is empty"},
		{name: "name blank", body: `{"tenant_name": " \t "}`, wantErr: "tenant_name is empty"},
		{name: "name too long", body: `{"tenant_name": "` + strings.Repeat("é", 256) + `"}`, wantErr: "256 characters long, over 255"},
		{name: "name not a string", body: `{"tenant_name": ["ACME"]}`, wantErr: "tenant_name must be a string, not an array"},
		{name: "sweep_id empty", body: `{"tenant_id": "` + tenantID + `", "sweep_id": ""}`, wantErr: "sweep_id must be 1 to 128 bytes"},
		{name: "sweep_id too long", body: `{"tenant_id": "` + tenantID + `", "sweep_id": "` + strings.Repeat("s", 129) + `"}`, wantErr: "sweep_id must be 1 to 128 bytes"},
		{name: "sweep_id number", body: `{"tenant_id": "` + tenantID + `", "sweep_id": 7}`, wantErr: "sweep_id must be a string, not a number"},

		{name: "detail without detail-type", body: `{"detail": {"tenant_id": "` + tenantID + `"}}`, wantErr: `needs both "detail" and "detail-type"`},
		{name: "detail-type without detail", body: `{"detail-type": "Tenant Created", "tenant_id": "` + tenantID + `"}`, wantErr: `needs both "detail" and "detail-type"`},
		{name: "event detail empty", body: event("Tenant Created", `{}`), wantErr: "detail.tenant_id or detail.tenant_name is required"},
		{name: "event detail null", body: event("Tenant Created", `null`), wantErr: "detail must be a JSON object, not null"},
		{name: "event detail string", body: event("Tenant Created", `"{\"tenant_id\": \"`+tenantID+`\"}"`), wantErr: "detail must be a JSON object, not a string"},
		{name: "event detail bad id", body: event("Tenant Created", `{"tenant_id": "nope"}`), wantErr: `detail.tenant_id "nope" is not a UUID`},
		{name: "event detail both", body: event("Tenant Created", `{"tenant_id": "`+tenantID+`", "tenant_name": "ACME"}`),
			want: worker.Message{TenantID: tenantID, TenantName: "ACME", Kind: worker.KindEvent, EventID: eventID, DetailType: "Tenant Created"}},
		{name: "event detail both, bad name", body: event("Tenant Created", `{"tenant_id": "`+tenantID+`", "tenant_name": " "}`), wantErr: "detail.tenant_name is empty"},
		{name: "event detail enabled string", body: event("Tenant Created", `{"tenant_id": "`+tenantID+`", "enabled": "false"}`), wantErr: "detail.enabled must be a boolean, not a string"},
		{name: "event detail duplicate key", body: event("Tenant Created", `{"tenant_id": "`+tenantID+`", "tenant_id": "`+tenantID+`"}`), wantErr: `detail has the key "tenant_id" more than once`},
		{name: "event detail-type empty", body: event("", `{"tenant_id": "`+tenantID+`"}`), wantErr: "detail-type is empty"},
		{name: "event detail-type not a string", body: `{"detail-type": 1, "detail": {"tenant_id": "` + tenantID + `"}}`, wantErr: "detail-type must be a string, not a number"},
		{name: "event id not a string", body: `{"id": 1, "detail-type": "Tenant Created", "detail": {"tenant_id": "` + tenantID + `"}}`, wantErr: "id must be a string, not a number"},
		{name: "event duplicate detail", body: `{"detail-type": "Tenant Created", "detail": {"tenant_id": "` + tenantID + `"}, "detail": {"tenant_name": "x"}}`, wantErr: `key "detail" more than once`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := worker.ParseMessage(tt.body)
			if tt.wantErr != "" {
				if !errors.Is(err, worker.ErrInvalidMessage) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseMessage error = %v, want %q", err, tt.wantErr)
				}
				if len(err.Error()) > 300 {
					t.Errorf("error is %d bytes long", len(err.Error()))
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseMessage: %v", err)
			}
			if tt.want.EventID == eventID && strings.Contains(tt.body, `"id":"`+got.EventID+`"`) {
				got.EventID = eventID
			}
			if !equal(got, tt.want) {
				t.Errorf("ParseMessage = %s, want %s", show(got), show(tt.want))
			}
		})
	}
}

// The sweep's fan-out marshals its messages itself; this is the shape it sends.
func TestParseMessageFanoutShape(t *testing.T) {
	body, err := json.Marshal(struct {
		TenantID string `json:"tenant_id"`
		SweepID  string `json:"sweep_id"`
	}{tenantID, "sw-1"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := worker.ParseMessage(string(body))
	if err != nil || !equal(got, worker.Message{TenantID: tenantID, Kind: worker.KindEnforce, SweepID: "sw-1"}) {
		t.Fatalf("ParseMessage(%s) = %s, %v", body, show(got), err)
	}
}

func equal(a, b worker.Message) bool {
	if (a.Enabled == nil) != (b.Enabled == nil) || a.Enabled != nil && *a.Enabled != *b.Enabled {
		return false
	}
	a.Enabled, b.Enabled = nil, nil
	return a == b
}

func show(m worker.Message) string {
	enabled := "nil"
	if m.Enabled != nil {
		enabled = map[bool]string{true: "true", false: "false"}[*m.Enabled]
	}
	m.Enabled = nil
	b, _ := json.Marshal(m)
	return string(b) + " enabled=" + enabled
}

// FuzzParseMessage checks that ParseMessage never panics, fails only with
// ErrInvalidMessage, and that whatever it accepts names exactly one tenant by a
// canonical UUID or a sensible name, with a kind that matches the rest.
func FuzzParseMessage(f *testing.F) {
	f.Add(`{"tenant_id": "` + tenantID + `", "enabled": true}`)
	f.Add(testkit.TenantCreated(`{"tenant_name": "ACME"}`))
	f.Fuzz(func(t *testing.T, body string) {
		m, err := worker.ParseMessage(body)
		if err != nil {
			if !errors.Is(err, worker.ErrInvalidMessage) {
				t.Fatalf("ParseMessage error %v does not wrap ErrInvalidMessage", err)
			}
			return
		}
		if !json.Valid([]byte(body)) {
			t.Fatalf("ParseMessage accepted invalid JSON %q", body)
		}
		switch {
		case m.TenantID == "" && m.TenantName == "":
			t.Fatalf("ParseMessage(%q) = %s: want an id or a name", body, show(m))
		case m.TenantID != "" && (!tenant.ValidID(m.TenantID) || m.TenantID != strings.ToLower(m.TenantID)):
			t.Fatalf("ParseMessage(%q) tenant id %q", body, m.TenantID)
		case m.TenantName != "" && (strings.TrimSpace(m.TenantName) == "" || utf8.RuneCountInString(m.TenantName) > 255):
			t.Fatalf("ParseMessage(%q) tenant name %q", body, m.TenantName)
		}
		switch m.Kind {
		case worker.KindSet:
			if m.Enabled == nil || m.DetailType != "" {
				t.Fatalf("ParseMessage(%q) = %s", body, show(m))
			}
		case worker.KindEnforce:
			if m.Enabled != nil || m.DetailType != "" {
				t.Fatalf("ParseMessage(%q) = %s", body, show(m))
			}
		case worker.KindEvent:
			if m.DetailType == "" || m.SweepID != "" {
				t.Fatalf("ParseMessage(%q) = %s", body, show(m))
			}
		default:
			t.Fatalf("ParseMessage(%q) kind %q", body, m.Kind)
		}
	})
}
