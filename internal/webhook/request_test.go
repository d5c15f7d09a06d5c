package webhook_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"acronismfa/internal/webhook"
)

const (
	tenantID    = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
	tenantUpper = "3FA85F64-5717-4562-B3FC-2C963F66AFA6"
)

func TestParseRoute(t *testing.T) {
	tests := []struct {
		method, path string
		want         webhook.Route
		wantErr      error
	}{
		{"GET", "/tenants/" + tenantID + "/mfa", webhook.Route{TenantID: tenantID}, nil},
		{"PUT", "/tenants/" + tenantID + "/mfa", webhook.Route{TenantID: tenantID, Set: true}, nil},
		{"GET", "/tenants/" + tenantUpper + "/mfa", webhook.Route{TenantID: tenantID}, nil},
		{"PUT", "/prod/tenants/" + tenantID + "/mfa", webhook.Route{TenantID: tenantID, Set: true}, nil},
		{"GET", "/My_Stage-2/tenants/" + tenantID + "/mfa", webhook.Route{TenantID: tenantID}, nil},
		{"GET", "/tenants/tenants/" + tenantID + "/mfa", webhook.Route{TenantID: tenantID}, nil}, // a stage may be called tenants

		{"GET", "/tenants/not-a-uuid/mfa", webhook.Route{}, webhook.ErrInvalidTenantID},
		{"PUT", "/tenants//mfa", webhook.Route{}, webhook.ErrInvalidTenantID},
		{"GET", "/tenants/{" + tenantID + "}/mfa", webhook.Route{}, webhook.ErrInvalidTenantID},
		{"GET", "/tenants/" + strings.ReplaceAll(tenantID, "-", "") + "/mfa", webhook.Route{}, webhook.ErrInvalidTenantID},
		{"GET", "/tenants/..%2F" + tenantID + "/mfa", webhook.Route{}, webhook.ErrInvalidTenantID},
		{"GET", "/tenants/%2e%2e/mfa", webhook.Route{}, webhook.ErrInvalidTenantID},
		{"GET", "/tenants/../mfa", webhook.Route{}, webhook.ErrInvalidTenantID},
		{"GET", "/prod/tenants/x/mfa", webhook.Route{}, webhook.ErrInvalidTenantID},
		{"PUT", "/tenants/" + tenantID + "0/mfa", webhook.Route{}, webhook.ErrInvalidTenantID},
		{"PUT", "/tenants/" + strings.ReplaceAll(tenantID, "-", "%2D") + "/mfa", webhook.Route{}, webhook.ErrInvalidTenantID},

		{"POST", "/tenants/" + tenantID + "/mfa", webhook.Route{}, webhook.ErrInvalidRequest},
		{"DELETE", "/tenants/" + tenantID + "/mfa", webhook.Route{}, webhook.ErrInvalidRequest},
		{"get", "/tenants/" + tenantID + "/mfa", webhook.Route{}, webhook.ErrInvalidRequest},
		{"HEAD", "/tenants/" + tenantID + "/mfa", webhook.Route{}, webhook.ErrInvalidRequest},
		{"PATCH", "/tenants/" + tenantID + "/mfa", webhook.Route{}, webhook.ErrInvalidRequest},
		{"", "/tenants/" + tenantID + "/mfa", webhook.Route{}, webhook.ErrInvalidRequest},
		{"GET", "/tenants/" + tenantID + "/mfa/", webhook.Route{}, webhook.ErrInvalidRequest},
		{"GET", "tenants/" + tenantID + "/mfa", webhook.Route{}, webhook.ErrInvalidRequest},
		{"GET", "//tenants/" + tenantID + "/mfa", webhook.Route{}, webhook.ErrInvalidRequest},
		{"GET", "/tenants//" + tenantID + "/mfa", webhook.Route{}, webhook.ErrInvalidRequest},
		{"GET", "/tenants/" + tenantID + "//mfa", webhook.Route{}, webhook.ErrInvalidRequest},
		{"GET", "/tenants/" + tenantID + "/mfa/status", webhook.Route{}, webhook.ErrInvalidRequest},
		{"GET", "/tenants/" + tenantID, webhook.Route{}, webhook.ErrInvalidRequest},
		{"GET", "/Tenants/" + tenantID + "/MFA", webhook.Route{}, webhook.ErrInvalidRequest},
		{"GET", "/tenants%2F" + tenantID + "%2Fmfa", webhook.Route{}, webhook.ErrInvalidRequest},
		{"GET", "/a/b/tenants/" + tenantID + "/mfa", webhook.Route{}, webhook.ErrInvalidRequest},
		{"GET", "/../tenants/" + tenantID + "/mfa", webhook.Route{}, webhook.ErrInvalidRequest},
		{"GET", "/./tenants/" + tenantID + "/mfa", webhook.Route{}, webhook.ErrInvalidRequest},
		{"GET", "/%2e%2e/tenants/" + tenantID + "/mfa", webhook.Route{}, webhook.ErrInvalidRequest},
		{"GET", "/" + strings.Repeat("s", 129) + "/tenants/" + tenantID + "/mfa", webhook.Route{}, webhook.ErrInvalidRequest},
		{"GET", "/tenants/" + tenantID + "/mfa?x=1", webhook.Route{}, webhook.ErrInvalidRequest},
		{"GET", "/", webhook.Route{}, webhook.ErrInvalidRequest},
		{"GET", "", webhook.Route{}, webhook.ErrInvalidRequest},
		{"GET", strings.Repeat("/", 100000), webhook.Route{}, webhook.ErrInvalidRequest},
	}
	for _, tt := range tests {
		got, err := webhook.ParseRoute(tt.method, tt.path)
		name := tt.method + " " + tt.path
		if len(name) > 100 {
			name = name[:100]
		}
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("ParseRoute(%s) error = %v, want %v", name, err, tt.wantErr)
			}
			// The two classes map to different error codes: one must not pass for the other.
			if errors.Is(err, webhook.ErrInvalidRequest) && errors.Is(err, webhook.ErrInvalidTenantID) {
				t.Errorf("ParseRoute(%s) error %v is in both classes", name, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseRoute(%s) = %+v, %v, want %+v", name, got, err, tt.want)
		}
	}
}

func TestDecodeBody(t *testing.T) {
	limit := strings.Repeat("a", webhook.MaxBodyBytes)
	tests := []struct {
		name     string
		body     string
		isBase64 bool
		want     string
		wantErr  string
	}{
		{name: "plain", body: `{"enabled":true}`, want: `{"enabled":true}`},
		{name: "empty", body: "", want: ""},
		{name: "empty base64", body: "", isBase64: true, want: ""},
		{name: "base64", body: base64.StdEncoding.EncodeToString([]byte("\x00{\"enabled\":true}\xff")), isBase64: true, want: "\x00{\"enabled\":true}\xff"},
		{name: "plain at the limit", body: limit, want: limit},
		{name: "base64 at the limit", body: base64.StdEncoding.EncodeToString([]byte(limit)), isBase64: true, want: limit},
		{name: "plain over the limit", body: limit + "a", wantErr: "body over 64 KiB"},
		{name: "base64 over the limit", body: base64.StdEncoding.EncodeToString([]byte(limit + "a")), isBase64: true, wantErr: "body over 64 KiB"},
		{name: "base64 two over the limit", body: base64.StdEncoding.EncodeToString([]byte(limit + "aa")), isBase64: true, wantErr: "body over 64 KiB"},
		{name: "huge base64", body: strings.Repeat("QUFB", 1<<20), isBase64: true, wantErr: "body over 64 KiB"},
		{name: "bad base64", body: "not base64!", isBase64: true, wantErr: "not valid base64"},
		{name: "unpadded base64", body: "YQ", isBase64: true, wantErr: "not valid base64"},
		{name: "base64 text read as plain", body: "eyJlbmFibGVkIjp0cnVlfQ==", want: "eyJlbmFibGVkIjp0cnVlfQ=="},
	}
	for _, tt := range tests {
		got, err := webhook.DecodeBody(tt.body, tt.isBase64)
		if tt.wantErr != "" {
			if !errors.Is(err, webhook.ErrInvalidRequest) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: DecodeBody error = %v, want %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("%s: DecodeBody = %.40q, %v, want %.40q", tt.name, got, err, tt.want)
		}
	}
}

func TestParseSetBody(t *testing.T) {
	tests := []struct {
		body    string
		want    bool
		wantErr string // "" means accepted
	}{
		{body: `{"enabled": true}`, want: true},
		{body: `{"enabled": false}`, want: false},
		{body: `{"enabled":true}`, want: true},
		{body: " \r\n\t{ \"enabled\" \n:\n false \t} \n", want: false},
		{body: `{"en\u0061bled": true}`, want: true}, // the same key, escaped

		{body: ``, wantErr: "body required"},
		{body: " \n\t ", wantErr: "body required"},
		{body: `{}`, wantErr: `"enabled" is required`},
		{body: `{"enabled": null}`, wantErr: "must be a boolean, not null"},
		{body: `{"enabled": "true"}`, wantErr: "must be a boolean, not a string"},
		{body: `{"enabled": 1}`, wantErr: "must be a boolean, not a number"},
		{body: `{"enabled": 1e999}`, wantErr: "must be a boolean, not a number"},
		{body: `{"enabled": -0}`, wantErr: "must be a boolean, not a number"},
		{body: `{"enabled": [true]}`, wantErr: "must be a boolean, not an array"},
		{body: `{"enabled": {"value": true}}`, wantErr: "must be a boolean, not an object"},
		{body: `{"enabled": true, "enabled": false}`, wantErr: `key "enabled" more than once`},
		{body: `{"enabled": false, "en\u0061bled": true}`, wantErr: `key "enabled" more than once`},
		{body: `{"Enabled": true}`, wantErr: `unknown field "Enabled"`},
		{body: `{"enabled": true, "tenant_id": "x"}`, wantErr: `unknown field "tenant_id"`},
		{body: `{"enable": true}`, wantErr: `unknown field "enable"`},
		{body: `{"enabled": true}{"enabled": false}`, wantErr: "data after the JSON object"},
		{body: `{"enabled": true} x`, wantErr: "data after the JSON object"},
		{body: `{"enabled": true}]`, wantErr: "data after the JSON object"},
		{body: `{"enabled": true`, wantErr: "not valid JSON"},
		{body: `{"enabled": tru}`, wantErr: "not valid JSON"},
		{body: `{"enabled" true}`, wantErr: "not valid JSON"},
		{body: `{"enabled": true,}`, wantErr: "not valid JSON"},
		{body: `{"enabled": true "x": 1}`, wantErr: "not valid JSON"},
		{body: `{enabled: true}`, wantErr: "not valid JSON"},
		{body: `{'enabled': true}`, wantErr: "not valid JSON"},
		{body: `{"enabled": True}`, wantErr: "not valid JSON"},
		{body: "{\"enabled\": true}\x00", wantErr: "data after the JSON object"},
		{body: "\xef\xbb\xbf{\"enabled\": true}", wantErr: "not valid JSON"}, // a byte order mark
		{body: `[{"enabled": true}]`, wantErr: "must be a JSON object, not an array"},
		{body: `true`, wantErr: "must be a JSON object, not a boolean"},
		{body: `null`, wantErr: "must be a JSON object, not null"},
		{body: `"{\"enabled\": true}"`, wantErr: "must be a JSON object, not a string"},
		{body: `1e999`, wantErr: "must be a JSON object, not a number"},
		{body: `{"` + strings.Repeat("k", 1000) + `": 1}`, wantErr: `unknown field "kkkk`},
	}
	for _, tt := range tests {
		got, err := webhook.ParseSetBody([]byte(tt.body))
		if tt.wantErr != "" {
			if !errors.Is(err, webhook.ErrInvalidRequest) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseSetBody(%.60q) error = %v, want %q", tt.body, err, tt.wantErr)
			}
			if err != nil && len(err.Error()) > 200 {
				t.Errorf("ParseSetBody(%.60q) error is %d bytes long", tt.body, len(err.Error()))
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSetBody(%q) = %v, %v, want %v", tt.body, got, err, tt.want)
		}
	}
}
