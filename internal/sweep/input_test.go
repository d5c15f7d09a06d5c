package sweep_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"acronismfa/internal/sweep"
	"acronismfa/internal/tenant"
)

const (
	root      = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
	rootUpper = "3FA85F64-5717-4562-B3FC-2C963F66AFA6"
)

// scheduled is the event a classic EventBridge schedule rule sends.
func scheduled(detailType, detail string) string {
	return `{"version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "` + detailType + `",
		"source": "aws.events", "account": "123456789012", "time": "2026-01-02T03:00:00Z", "region": "eu-central-1",
		"resources": ["arn:aws:events:eu-central-1:123456789012:rule/acronis-mfa-sweep"], "detail": ` + detail + `}`
}

func TestParseInput(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		name    string
		in      string
		want    sweep.Overrides
		wantErr string // "" means accepted
	}{
		{name: "empty", in: ``},
		{name: "whitespace", in: " \n\t"},
		{name: "null", in: `null`},
		{name: "null in whitespace", in: " null\n"},
		{name: "empty object", in: `{}`},
		{name: "scheduler dry run", in: `{"dry_run": true}`, want: sweep.Overrides{DryRun: &yes}},
		{name: "scheduler real run", in: `{"dry_run": false}`, want: sweep.Overrides{DryRun: &no}},
		{name: "scheduler root", in: `{"root_tenant_id": "` + rootUpper + `"}`, want: sweep.Overrides{RootTenantID: root}},
		{name: "scheduler both", in: `{"root_tenant_id": "` + root + `", "dry_run": true}`, want: sweep.Overrides{DryRun: &yes, RootTenantID: root}},
		{name: "scheduled event", in: scheduled("Scheduled Event", `{}`)},
		{name: "scheduled event with overrides", in: scheduled("Scheduled Event", `{"dry_run": true, "root_tenant_id": "`+rootUpper+`"}`),
			want: sweep.Overrides{DryRun: &yes, RootTenantID: root}},
		{name: "minimal event", in: `{"detail-type": "Scheduled Event", "detail": {}}`},

		{name: "typo dryrun", in: `{"dryrun": true}`,
			wantErr: `unknown override "dryrun": accepted are dry_run, root_tenant_id and updated_within_minutes`},
		{name: "typo in detail", in: scheduled("Scheduled Event", `{"dryRun": true}`), wantErr: `unknown override "detail.dryRun"`},
		{name: "key case matters", in: `{"DRY_RUN": true}`, wantErr: `unknown override "DRY_RUN"`},
		{name: "dry_run string", in: `{"dry_run": "true"}`, wantErr: "dry_run must be a boolean, not a string"},
		{name: "dry_run number", in: `{"dry_run": 1}`, wantErr: "dry_run must be a boolean, not a number"},
		{name: "dry_run null", in: `{"dry_run": null}`, wantErr: "dry_run must be a boolean, not null"},
		{name: "detail dry_run string", in: scheduled("Scheduled Event", `{"dry_run": "yes"}`), wantErr: "detail.dry_run must be a boolean, not a string"},
		{name: "root not a UUID", in: `{"root_tenant_id": "root"}`, wantErr: `root_tenant_id "root" is not a UUID`},
		{name: "root empty", in: `{"root_tenant_id": ""}`, wantErr: `root_tenant_id "" is not a UUID`},
		{name: "root null", in: `{"root_tenant_id": null}`, wantErr: "root_tenant_id must be a string, not null"},
		{name: "root in braces", in: `{"root_tenant_id": "{` + root + `}"}`, wantErr: "is not a UUID"},
		{name: "detail root bad", in: scheduled("Scheduled Event", `{"root_tenant_id": "x"}`), wantErr: `detail.root_tenant_id "x" is not a UUID`},
		{name: "duplicate dry_run", in: `{"dry_run": true, "dry_run": false}`, wantErr: `key "dry_run" more than once`},
		{name: "duplicate in detail", in: scheduled("Scheduled Event", `{"dry_run": false, "dry_run": true}`), wantErr: `detail has the key "dry_run" more than once`},
		{name: "other detail-type", in: scheduled("Tenant Created", `{"tenant_id": "`+root+`"}`), wantErr: `detail-type "Tenant Created" is not "Scheduled Event"`},
		{name: "detail-type case", in: scheduled("scheduled event", `{}`), wantErr: `is not "Scheduled Event"`},
		{name: "detail-type not a string", in: `{"detail-type": null, "detail": {}}`, wantErr: "detail-type must be a string, not null"},
		{name: "detail null", in: scheduled("Scheduled Event", `null`), wantErr: "detail must be a JSON object, not null"},
		{name: "detail array", in: scheduled("Scheduled Event", `[]`), wantErr: "detail must be a JSON object, not an array"},
		{name: "detail without detail-type", in: `{"detail": {"dry_run": true}}`, wantErr: `needs both "detail" and "detail-type"`},
		{name: "detail-type without detail", in: `{"detail-type": "Scheduled Event", "dry_run": true}`, wantErr: `needs both "detail" and "detail-type"`},
		{name: "array", in: `[{"dry_run": true}]`, wantErr: "input must be a JSON object, not an array"},
		{name: "string", in: `"dry_run"`, wantErr: "input must be a JSON object, not a string"},
		{name: "boolean", in: `true`, wantErr: "input must be a JSON object, not a boolean"},
		{name: "not JSON", in: `dry_run=true`, wantErr: "not valid JSON"},
		{name: "truncated", in: `{"dry_run": true`, wantErr: "not valid JSON"},
		{name: "trailing data", in: `{} {"dry_run": false}`, wantErr: "data after the JSON object"},
		{name: "null then data", in: `null {}`, wantErr: "must be a JSON object, not null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sweep.ParseInput([]byte(tt.in))
			if tt.wantErr != "" {
				if !errors.Is(err, sweep.ErrInvalidInput) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseInput error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseInput: %v", err)
			}
			if g, w := show(got), show(tt.want); g != w {
				t.Errorf("ParseInput = %s, want %s", g, w)
			}
		})
	}
}

// show renders overrides with the value of DryRun, not its address.
func show(o sweep.Overrides) string {
	b, _ := json.Marshal(o)
	return string(b)
}

// FuzzParseInput checks that ParseInput never panics, fails only with
// ErrInvalidInput, and that a root tenant it accepts is a canonical UUID.
func FuzzParseInput(f *testing.F) {
	f.Add([]byte(`{"dry_run": true, "root_tenant_id": "` + rootUpper + `"}`))
	f.Add([]byte(scheduled("Scheduled Event", `{"dry_run": false}`)))
	f.Fuzz(func(t *testing.T, in []byte) {
		o, err := sweep.ParseInput(in)
		if err != nil {
			if !errors.Is(err, sweep.ErrInvalidInput) {
				t.Fatalf("ParseInput error %v does not wrap ErrInvalidInput", err)
			}
			return
		}
		if o.RootTenantID != "" && (!tenant.ValidID(o.RootTenantID) || o.RootTenantID != strings.ToLower(o.RootTenantID)) {
			t.Fatalf("ParseInput(%q) root tenant %q", in, o.RootTenantID)
		}
		if s := strings.Trim(string(in), " \t\r\n"); s != "" && !json.Valid(in) {
			t.Fatalf("ParseInput accepted invalid JSON %q", in)
		}
	})
}
