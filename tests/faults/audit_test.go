package faults_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"acronismfa/internal/acronis"
	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/config"
	"acronismfa/internal/tenant"
	"acronismfa/internal/webhook"
)

// checkAuditAgainstWrites compares a trigger's audit lines with the MFA writes
// the simulator accepted and with every tenant's state before and after:
//   - a tenant Acronis accepted a write for has exactly one enable line;
//   - an enable line has a write behind it and a tenant that went from off to on;
//   - a tenant that went from off to on has an enable line;
//   - a tenant with a failed or skipped line kept its state, unless another
//     line of it is the enable.
func checkAuditAgainstWrites(t *testing.T, lines []auditLine, reqs []sim.Request, before, after []sim.Tenant) {
	t.Helper()
	writes := acceptedWrites(reqs)
	was, now := byID(before), byID(after)
	tenants := byTenant(lines)
	for id, ls := range tenants {
		enables := 0
		for _, l := range ls {
			switch l.Action {
			case "enable":
				enables++
				if writes[id] == 0 {
					t.Errorf("tenant %s: enable line without an accepted write: %+v", id, l)
				}
				if tenant.MFAOn(*l.Previous) || !tenant.MFAOn(*l.Current) {
					t.Errorf("tenant %s: enable line from %q to %q", id, *l.Previous, *l.Current)
				}
			case "disable", "would_enable", "would_disable":
				t.Errorf("tenant %s: unexpected action %q", id, l.Action)
			case "unchanged", "skipped", "failed":
			default:
				t.Errorf("tenant %s: unknown action %q", id, l.Action)
			}
		}
		if enables > 1 {
			t.Errorf("tenant %s: %d enable lines", id, enables)
		}
		if b, ok := was[id]; ok && ownSetting(b) && enables == 0 && now[id].MFAStatus != b.MFAStatus {
			t.Errorf("tenant %s went from %q to %q but its lines say %+v", id, b.MFAStatus, now[id].MFAStatus, ls)
		}
	}
	for id, n := range writes {
		if enables := countAction(tenants[id], "enable"); enables != 1 {
			t.Errorf("tenant %s: Acronis accepted %d writes, the audit has %d enable lines: %+v", id, n, enables, tenants[id])
		}
	}
	for _, b := range before {
		if ownSetting(b) && !tenant.MFAOn(b.MFAStatus) && tenant.MFAOn(now[b.ID].MFAStatus) && countAction(tenants[b.ID], "enable") != 1 {
			t.Errorf("tenant %s was enabled without an enable line: %+v", b.ID, tenants[b.ID])
		}
	}
}

func countAction(lines []auditLine, action string) int {
	n := 0
	for _, l := range lines {
		if l.Action == action {
			n++
		}
	}
	return n
}

// TestAuditCompleteness: for every tenant a trigger touched there is the audit
// line the contract promises, one per decision, and the enable lines are
// exactly the writes Acronis accepted, under throttling, 500s, a revoked token
// and writes whose answers were lost after they landed.
func TestAuditCompleteness(t *testing.T) {
	t.Run("sweep", func(t *testing.T) {
		r := newRig(t, sim.Options{}, &sim.TreeSpec{Seed: 21, Size: 600})
		victim := addCustomers(t, r.sim, 1, "disabled")[0]
		lost := addCustomers(t, r.sim, 2, "disabled")
		for _, id := range lost {
			r.spy.LoseAnswers(id)
		}
		r.sim.SetFaults(sim.Faults{ThrottleEvery: 7, UnavailableEvery: 11, FailTenants: map[string]int{victim: http.StatusInternalServerError}})
		r.spy.Before(func(n int) {
			if n == 30 {
				r.sim.ExpireTokens()
			}
		})
		before := r.sim.All()
		f := r.direct(config.Sweep, nil, acronis.Options{})

		sum, err := f.sweep().Handle(t.Context(), json.RawMessage(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		if sum.Failed != 1 {
			t.Errorf("summary failed %d, want 1 (the 500 tenant): %+v", sum.Failed, sum)
		}
		lines := audits(t, f.out.String())
		reqs := r.sim.Requests()
		checkAuditAgainstWrites(t, lines, reqs, before, r.sim.All())

		// One line per tenant the sweep decided about: none for those the listing
		// showed plainly compliant, nor for units and folders, which have no
		// switch of their own.
		tenants := byTenant(lines)
		for _, b := range before {
			want := 1
			if !ownSetting(b) || b.Enabled && tenant.MFAOn(b.MFAStatus) {
				want = 0
			}
			if got := len(tenants[b.ID]); got != want {
				t.Errorf("%s %s (enabled %v, MFA %q): %d audit lines, want %d", b.Kind, b.ID, b.Enabled, b.MFAStatus, got, want)
			}
		}
		if len(lines) != sum.TenantsSeen-sum.Compliant-sum.SkippedInherited+countAction(lines, "unchanged") {
			t.Errorf("%d audit lines for %d tenants of which %d compliant", len(lines), sum.TenantsSeen, sum.Compliant)
		}
		if l := tenants[victim]; len(l) != 1 || l[0].Action != "failed" {
			t.Errorf("the 500 tenant's lines: %+v", l)
		}
		for _, id := range lost {
			if l := tenants[id]; len(l) != 1 || l[0].Action != "enable" {
				t.Errorf("a tenant whose write landed with its answer lost: lines %+v", l)
			}
		}
		if sum.Changed != countAction(lines, "enable") {
			t.Errorf("summary changed %d, %d enable lines", sum.Changed, countAction(lines, "enable"))
		}
	})

	// A worker batch and webhook PUTs about the same kinds of tenant.
	type fixture struct {
		r                                                     *rig
		drifting, lost                                        []string
		compliant, suspended, unit, locked, victim, unknownID string
		before                                                []sim.Tenant
	}
	newFixture := func(t *testing.T) *fixture {
		r := newRig(t, sim.Options{}, nil)
		fx := &fixture{r: r, drifting: addCustomers(t, r.sim, 4, "disabled"), lost: addCustomers(t, r.sim, 1, "disabled")}
		fx.compliant = addCustomers(t, r.sim, 1, "enabled")[0]
		fx.victim = addCustomers(t, r.sim, 1, "disabled")[0]
		fx.suspended = addTenant(t, r.sim, sim.Tenant{Kind: "customer", Enabled: false, UpdateAllowed: true, MFAStatus: "disabled"})
		fx.locked = addTenant(t, r.sim, sim.Tenant{Kind: "customer", Enabled: true, UpdateAllowed: false, MFAStatus: "disabled"})
		fx.unit = addTenant(t, r.sim, sim.Tenant{Kind: "unit", ParentID: fx.victim, Enabled: true, UpdateAllowed: true})
		fx.unknownID = newUUID()
		r.spy.LoseAnswers(fx.lost[0])
		r.spy.ThrottleFirst()
		r.sim.SetFaults(sim.Faults{FailTenants: map[string]int{fx.victim: http.StatusInternalServerError}})
		fx.before = r.sim.All()
		return fx
	}
	// expectLines checks one line per decision about each tenant.
	expectLines := func(t *testing.T, lines []auditLine, want map[string][]string) {
		t.Helper()
		got := byTenant(lines)
		for id, actions := range want {
			if len(got[id]) != len(actions) {
				t.Errorf("tenant %s: lines %+v, want actions %v", id, got[id], actions)
				continue
			}
			for i, a := range actions {
				if got[id][i].Action != a {
					t.Errorf("tenant %s: line %d is %q, want %q", id, i, got[id][i].Action, a)
				}
			}
		}
		for id := range got {
			if _, ok := want[id]; !ok {
				t.Errorf("a line about tenant %s, which nobody asked about: %+v", id, got[id])
			}
		}
	}

	t.Run("worker", func(t *testing.T) {
		fx := newFixture(t)
		d := fx.drifting
		name, _ := fx.r.sim.Get(d[3])
		f := fx.r.direct(config.Worker, nil, acronis.Options{})
		ev := batch(setMessage(d[0], true), enforceMessage(d[1]), eventMessage(d[2]), `{"tenant_name": "`+name.Name+`"}`,
			enforceMessage(fx.lost[0]), enforceMessage(fx.compliant), enforceMessage(fx.suspended), enforceMessage(fx.unit),
			enforceMessage(fx.locked), enforceMessage(fx.victim), enforceMessage(fx.unknownID), setMessage(d[0], true))
		if _, err := f.worker().Handle(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
		lines := audits(t, f.out.String())
		expectLines(t, lines, map[string][]string{
			d[0]: {"enable", "unchanged"}, d[1]: {"enable"}, d[2]: {"enable"}, d[3]: {"enable"},
			fx.lost[0]: {"enable"}, fx.compliant: {"unchanged"}, fx.suspended: {"skipped"}, fx.unit: {"skipped"},
			fx.locked: {"skipped"}, fx.victim: {"failed"}, fx.unknownID: {"failed"},
		})
		checkAuditAgainstWrites(t, lines, fx.r.sim.Requests(), fx.before, fx.r.sim.All())
	})

	t.Run("webhook", func(t *testing.T) {
		fx := newFixture(t)
		d := fx.drifting
		key := []byte("webhook-key-" + newUUID())
		f := fx.r.direct(config.Webhook, nil, acronis.Options{})
		h := &webhook.Handler{Keys: staticKeys(key), Acronis: f.deps.Acronis, Rules: f.deps.Config.Rules(),
			Logger: f.deps.Logger, Namespace: f.deps.Config.MetricsNamespace, Out: f.deps.Out, Now: time.Now}
		for _, c := range []struct {
			method, id, body string
			status           int
		}{
			{http.MethodPut, d[0], `{"enabled": true}`, http.StatusOK},
			{http.MethodPut, d[0], `{"enabled": true}`, http.StatusOK},
			{http.MethodPut, d[1], `{"enabled": true}`, http.StatusOK},
			{http.MethodPut, fx.lost[0], `{"enabled": true}`, http.StatusOK},
			{http.MethodPut, fx.compliant, `{"enabled": true}`, http.StatusOK},
			{http.MethodPut, fx.suspended, `{"enabled": true}`, http.StatusOK}, // asked by name: changed although suspended
			{http.MethodPut, fx.unit, `{"enabled": true}`, http.StatusConflict},
			{http.MethodPut, fx.locked, `{"enabled": true}`, http.StatusConflict},
			{http.MethodPut, d[2], `{"enabled": false}`, http.StatusForbidden},
			{http.MethodPut, fx.unknownID, `{"enabled": true}`, http.StatusNotFound},
			{http.MethodGet, d[3], ``, http.StatusOK},
		} {
			resp, err := h.Handle(t.Context(), signed(key, c.method, c.id, c.body))
			if err != nil || resp.StatusCode != c.status {
				t.Errorf("%s %s %s: %d %s, %v; want %d", c.method, c.id, c.body, resp.StatusCode, resp.Body, err, c.status)
			}
		}
		if resp, _ := h.Handle(t.Context(), signed(key, http.MethodPut, fx.victim, `{"enabled": true}`)); resp.StatusCode != http.StatusBadGateway {
			t.Errorf("PUT of the 500 tenant: %d %s", resp.StatusCode, resp.Body)
		}
		lines := audits(t, f.out.String())
		expectLines(t, lines, map[string][]string{
			d[0]: {"enable", "unchanged"}, d[1]: {"enable"}, d[2]: {"skipped"},
			fx.lost[0]: {"enable"}, fx.compliant: {"unchanged"}, fx.suspended: {"enable"}, fx.unit: {"skipped"},
			fx.locked: {"skipped"}, fx.victim: {"failed"}, fx.unknownID: {"failed"},
		})
		checkAuditAgainstWrites(t, lines, fx.r.sim.Requests(), fx.before, fx.r.sim.All())
	})
}
