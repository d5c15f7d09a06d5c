//go:build integration

package e2e

import (
	"maps"
	"slices"
	"testing"
	"time"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/tenant"
	"acronismfa/internal/testkit"
)

// call sends a webhook request signed now with key (nil: unsigned) and checks
// what every answer shares: a JSON body, Content-Type application/json, EMF.
func call(t *testing.T, fn *testkit.Function, key []byte, method, tenantID, body string) (testkit.Invocation, testkit.HTTPAnswer) {
	t.Helper()
	inv, a, err := fn.Webhook(t.Context(), testkit.WebhookRequest(key, time.Now(), method, tenantID, body))
	if err != nil {
		t.Fatal(err)
	}
	if ct := a.Headers["Content-Type"]; ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json (headers %v)", ct, a.Headers)
	}
	checkEMF(t, inv.EMF, "webhook", "http")
	return inv, a
}

func TestWebhook(t *testing.T) {
	t.Parallel()
	w := newWorld(t, sim.TreeSpec{Seed: 11, Size: 300})
	all := w.sim.All()
	drift := testkit.DriftOf(all).Fixable
	i := slices.IndexFunc(drift, func(d sim.Tenant) bool { return d.Kind == "customer" && d.MFAStatus == "disabled" })
	if i < 0 {
		t.Fatal("the generated tree has no drifting customer")
	}
	target := drift[i]
	users, totp := testkit.UserTotals(all, target)
	fn := w.start(t, "webhook", nil)

	t.Run("signed GET returns the status object", func(t *testing.T) {
		_, a := call(t, fn, signingKey, "GET", target.ID, "")
		want := map[string]any{"tenant_id": target.ID, "mfa_status": "disabled",
			"users_count": float64(users), "users_with_totp_enabled_count": float64(totp), "update_allowed": true}
		if a.StatusCode != 200 || !maps.Equal(a.JSON, want) {
			t.Errorf("GET: HTTP %d %v, want 200 %v", a.StatusCode, a.JSON, want)
		}
		if w.sim.Count("PUT", "/mfa/status") != 0 {
			t.Error("a GET wrote to Acronis")
		}
	})

	t.Run("signed PUT enables MFA", func(t *testing.T) {
		inv, a := call(t, fn, signingKey, "PUT", target.ID, `{"enabled": true}`)
		if a.StatusCode != 200 || a.JSON["changed"] != true || a.JSON["dry_run"] != false || a.JSON["tenant_id"] != target.ID ||
			!tenant.MFAOn(str(a.JSON["mfa_status"])) {
			t.Errorf("PUT: HTTP %d %v, want 200 with changed true, dry_run false and MFA on for %s", a.StatusCode, a.JSON, target.ID)
		}
		if now, _ := w.sim.Get(target.ID); !tenant.MFAOn(now.MFAStatus) {
			t.Errorf("after the PUT the simulator has %s at %q, want MFA on", target.ID, now.MFAStatus)
		}
		if got := inv.EMF.Metrics; got["TenantsChanged"] != 1 || got["UsersWithoutTotp"] != float64(users-totp) {
			t.Errorf("EMF TenantsChanged %v UsersWithoutTotp %v, want 1 and %d", got["TenantsChanged"], got["UsersWithoutTotp"], users-totp)
		}
		audits := inv.Audits()
		if len(audits) != 1 {
			t.Fatalf("%d audit lines for the PUT, want 1: %v", len(audits), audits)
		}
		if line := audits[0]; line["tenant_id"] != target.ID || line["action"] != "enable" || line["previous"] != "disabled" ||
			!tenant.MFAOn(str(line["current"])) || str(line["reason"]) == "" {
			t.Errorf("audit line %v, want tenant_id %s, action enable, previous disabled, current on and a reason", line, target.ID)
		}
		ids, access := map[string]bool{}, 0
		for _, l := range inv.Lines {
			if m, ok := testkit.JSONObject(l); ok && m["_aws"] == nil {
				ids[str(m["requestId"])] = true
				if m["message"] == "webhook request" && m["method"] == "PUT" && m["status"] == float64(200) {
					access++
				}
			}
		}
		if len(ids) != 1 || ids[""] || access != 1 {
			t.Errorf("the PUT's log lines carry requestIds %v and %d access lines, want one of each", slices.Collect(maps.Keys(ids)), access)
		}
	})

	t.Run("PUT of the state in force changes nothing", func(t *testing.T) {
		puts := w.sim.Count("PUT", "/mfa/status")
		if _, a := call(t, fn, signingKey, "PUT", target.ID, `{"enabled": true}`); a.StatusCode != 200 || a.JSON["changed"] != false {
			t.Errorf("second PUT: HTTP %d %v, want 200 changed false", a.StatusCode, a.JSON)
		}
		if got := w.sim.Count("PUT", "/mfa/status"); got != puts {
			t.Errorf("second PUT wrote to Acronis (%d PUTs, was %d)", got, puts)
		}
	})

	// Two instances share the replay records in the state table: a retry of a
	// request gets the first answer from either, and the captured request on
	// another tenant's route, which its signature does not cover, gets 401.
	t.Run("replay records across instances", func(t *testing.T) {
		j := slices.IndexFunc(drift, func(d sim.Tenant) bool { return d.Kind == "customer" && d.ID != target.ID })
		if j < 0 {
			t.Fatal("the generated tree has one drifting customer only")
		}
		other := w.start(t, "webhook", nil)
		req := testkit.WebhookRequest(signingKey, time.Now(), "PUT", drift[j].ID, `{"enabled": true}`)
		_, first, err := fn.Webhook(t.Context(), req)
		if err != nil || first.StatusCode != 200 || first.JSON["changed"] != true {
			t.Fatalf("first PUT: %v %s (%v), want 200 changed true", first.StatusCode, first.Body, err)
		}
		sent := len(w.sim.Requests())
		_, retry, err := other.Webhook(t.Context(), req)
		if err != nil || retry.StatusCode != first.StatusCode || retry.Body != first.Body || len(w.sim.Requests()) != sent {
			t.Errorf("retry on the other instance: HTTP %d %s (%v) after %d Acronis requests; want the first answer again and none",
				retry.StatusCode, retry.Body, err, len(w.sim.Requests())-sent)
		}
		_, replay, err := other.Webhook(t.Context(), testkit.Reroute(req, target.ID))
		if e, _ := replay.JSON["error"].(map[string]any); err != nil || replay.StatusCode != 401 || e["code"] != "unauthorized" || len(w.sim.Requests()) != sent {
			t.Errorf("replay on %s's route: HTTP %d %s (%v), want 401 unauthorized and no Acronis request", target.ID, replay.StatusCode, replay.Body, err)
		}
		checkLogs(t, other, "webhook", "http", true)
	})

	t.Run("refusals", func(t *testing.T) {
		for _, tc := range []struct {
			name, method, tenant, body string
			key                        []byte
			status                     int
			code                       string
		}{
			{"unknown tenant", "GET", "00000000-0000-4000-8000-000000000000", "", signingKey, 404, "tenant_not_found"},
			{"id that is no UUID", "GET", "not-a-uuid", "", signingKey, 400, "invalid_tenant_id"},
			{"body without enabled", "PUT", target.ID, `{"enable": true}`, signingKey, 400, "invalid_request"},
			{"disable while MFA_ALLOW_DISABLE is unset", "PUT", target.ID, `{"enabled": false}`, signingKey, 403, "disable_not_allowed"},
			{"unsigned", "PUT", target.ID, `{"enabled": false}`, nil, 401, "unauthorized"},
			{"signed with an unknown key", "PUT", target.ID, `{"enabled": false}`, []byte("not-the-configured-key"), 401, "unauthorized"},
		} {
			before := len(w.sim.Requests())
			_, a := call(t, fn, tc.key, tc.method, tc.tenant, tc.body)
			e, _ := a.JSON["error"].(map[string]any)
			if a.StatusCode != tc.status || len(a.JSON) != 1 || len(e) != 2 || e["code"] != tc.code || str(e["message"]) == "" {
				t.Errorf("%s: HTTP %d %s, want %d {\"error\": {\"code\": %q, \"message\": ...}}", tc.name, a.StatusCode, a.Body, tc.status, tc.code)
			}
			if got := len(w.sim.Requests()); tc.status == 401 && got != before {
				t.Errorf("%s: a request that failed the signature check reached Acronis (%d requests)", tc.name, got-before)
			}
		}
		if now, _ := w.sim.Get(target.ID); !tenant.MFAOn(now.MFAStatus) {
			t.Errorf("a refused disable request turned MFA off: %q", now.MFAStatus)
		}
	})

	checkLogs(t, fn, "webhook", "http", true)
}
