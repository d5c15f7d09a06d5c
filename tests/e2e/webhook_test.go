package e2e

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/tenant"
	"acronismfa/internal/testkit"
)

// httpResponse is the API Gateway payload 2.0 response the webhook returns.
type httpResponse struct {
	StatusCode int               `json:"statusCode"`
	Headers    map[string]string `json:"headers"`
	Body       string            `json:"body"`
}

func decodeHTTP(t *testing.T, inv invocation) (httpResponse, map[string]any) {
	t.Helper()
	var r httpResponse
	if err := json.Unmarshal(inv.body, &r); err != nil {
		t.Fatalf("webhook answer %s: %v", inv.body, err)
	}
	if ct := r.Headers["Content-Type"]; ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json (headers %v)", ct, r.Headers)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
		t.Fatalf("webhook body %q is not a JSON object: %v", r.Body, err)
	}
	return r, body
}

func TestWebhook(t *testing.T) {
	t.Parallel()
	st := newStack(t, sim.TreeSpec{Seed: 11, Size: 300})
	all := st.sim.All()
	var target sim.Tenant
	for _, d := range drifting(all) {
		if d.Kind == "customer" && d.MFAStatus == "disabled" {
			target = d
			break
		}
	}
	if target.ID == "" {
		t.Fatal("the generated tree has no drifting customer")
	}
	users, totp := userTotals(all, target)
	fn := start(t, "webhook", st.env(nil))

	t.Run("signed GET returns the status object", func(t *testing.T) {
		inv := invoke(t, fn, webhookEvent(t, "GET", target.ID, "", signingKey))
		resp, body := decodeHTTP(t, inv)
		if resp.StatusCode != 200 {
			t.Fatalf("GET: HTTP %d %s", resp.StatusCode, resp.Body)
		}
		wantKeys := []string{"tenant_id", "mfa_status", "users_count", "users_with_totp_enabled_count", "update_allowed"}
		if got := slices.Sorted(maps.Keys(body)); !slices.Equal(got, slices.Sorted(slices.Values(wantKeys))) {
			t.Errorf("GET status object keys %v, want %v", got, wantKeys)
		}
		want := map[string]any{"tenant_id": target.ID, "mfa_status": "disabled",
			"users_count": float64(users), "users_with_totp_enabled_count": float64(totp), "update_allowed": true}
		if !maps.Equal(body, want) {
			t.Errorf("GET status object %v, want %v", body, want)
		}
		checkEMF(t, inv.emf, "webhook", "http", false)
		if st.sim.Count("PUT", "/mfa/status") != 0 {
			t.Error("a GET wrote to Acronis")
		}
	})

	t.Run("signed PUT enables MFA", func(t *testing.T) {
		inv := invoke(t, fn, webhookEvent(t, "PUT", target.ID, `{"enabled": true}`, signingKey))
		resp, body := decodeHTTP(t, inv)
		if resp.StatusCode != 200 {
			t.Fatalf("PUT: HTTP %d %s", resp.StatusCode, resp.Body)
		}
		if body["changed"] != true || body["dry_run"] != false || body["tenant_id"] != target.ID {
			t.Errorf("PUT answer %v, want changed true, dry_run false for %s", body, target.ID)
		}
		if s, _ := body["mfa_status"].(string); !tenant.MFAOn(s) {
			t.Errorf("PUT answer mfa_status %q, want MFA on", s)
		}
		if now := mustGet(t, st.sim, target.ID); !tenant.MFAOn(now.MFAStatus) {
			t.Errorf("after the PUT the simulator has %s at %q, want MFA on", target.ID, now.MFAStatus)
		}
		checkEMF(t, inv.emf, "webhook", "http", false)
		if got := inv.emf.Metrics["TenantsChanged"]; got != 1 {
			t.Errorf("EMF TenantsChanged %v, want 1", got)
		}
		if got := inv.emf.Metrics["UsersWithoutTotp"]; got != float64(users-totp) {
			t.Errorf("EMF UsersWithoutTotp %v, want %d", got, users-totp)
		}
		audits := testkit.AuditLines(inv.lines)
		if len(audits) != 1 {
			t.Fatalf("%d audit lines for the PUT, want 1: %v", len(audits), audits)
		}
		a := audits[0]
		if a["tenant_id"] != target.ID || a["action"] != "enable" || a["previous"] != "disabled" || !tenant.MFAOn(str(a["current"])) {
			t.Errorf("audit line %v, want tenant_id %s, action enable, previous disabled, current on", a, target.ID)
		}
		if r, _ := a["reason"].(string); r == "" {
			t.Errorf("audit line without a reason: %v", a)
		}
		if ids := requestIDs(inv.lines); len(ids) != 1 || ids[0] == "" {
			t.Errorf("the PUT's log lines carry requestIds %q, want one", ids)
		}
	})

	t.Run("PUT of the state in force changes nothing", func(t *testing.T) {
		puts := st.sim.Count("PUT", "/mfa/status")
		inv := invoke(t, fn, webhookEvent(t, "PUT", target.ID, `{"enabled": true}`, signingKey))
		resp, body := decodeHTTP(t, inv)
		if resp.StatusCode != 200 || body["changed"] != false {
			t.Errorf("second PUT: HTTP %d %v, want 200 changed false", resp.StatusCode, body)
		}
		if got := st.sim.Count("PUT", "/mfa/status"); got != puts {
			t.Errorf("second PUT wrote to Acronis (%d PUTs, was %d)", got, puts)
		}
	})

	t.Run("contract errors", func(t *testing.T) {
		for _, tc := range []struct {
			name, method, tenant, body string
			status                     int
			code                       string
		}{
			{"unknown tenant", "GET", "00000000-0000-4000-8000-000000000000", "", 404, "tenant_not_found"},
			{"id that is no UUID", "GET", "not-a-uuid", "", 400, "invalid_tenant_id"},
			{"body without enabled", "PUT", target.ID, `{"enable": true}`, 400, "invalid_request"},
			{"disable while MFA_ALLOW_DISABLE is unset", "PUT", target.ID, `{"enabled": false}`, 403, "disable_not_allowed"},
		} {
			inv := invoke(t, fn, webhookEvent(t, tc.method, tc.tenant, tc.body, signingKey))
			resp, body := decodeHTTP(t, inv)
			e, _ := body["error"].(map[string]any)
			if resp.StatusCode != tc.status || e["code"] != tc.code || str(e["message"]) == "" {
				t.Errorf("%s: HTTP %d %s, want %d with code %s and a message", tc.name, resp.StatusCode, resp.Body, tc.status, tc.code)
			}
		}
		if now := mustGet(t, st.sim, target.ID); !tenant.MFAOn(now.MFAStatus) {
			t.Errorf("a refused disable request turned MFA off: %q", now.MFAStatus)
		}
	})

	for name, key := range map[string][]byte{"unsigned": nil, "signed with an unknown key": []byte("not-the-configured-key")} {
		t.Run(name+" request is refused", func(t *testing.T) {
			before := len(st.sim.Requests())
			inv := invoke(t, fn, webhookEvent(t, "PUT", target.ID, `{"enabled": false}`, key))
			resp, body := decodeHTTP(t, inv)
			if resp.StatusCode != 401 {
				t.Errorf("HTTP %d, want 401", resp.StatusCode)
			}
			e, _ := body["error"].(map[string]any)
			if len(body) != 1 || e["code"] != "unauthorized" || str(e["message"]) == "" {
				t.Errorf("error body %v, want {\"error\": {\"code\": \"unauthorized\", \"message\": ...}}", body)
			}
			if got := len(st.sim.Requests()); got != before {
				t.Errorf("a request that failed the signature check reached Acronis (%d requests)", got-before)
			}
			checkEMF(t, inv.emf, "webhook", "http", false)
		})
	}

	fn.Stop()
	checkLogs(t, fn.Output().Lines(), "webhook", "http", true)
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
