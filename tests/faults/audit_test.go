//go:build integration

package faults_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/config"
	"acronismfa/internal/tenant"
	"acronismfa/internal/testkit"
)

// checkAuditAgainstWrites compares a trigger's audit lines with the MFA writes
// the simulator accepted (the lost tenants' with their answers lost) and with
// every tenant's state before and after:
//   - a tenant Acronis accepted a write for has exactly one enable line;
//   - an enable line has a write behind it and a tenant that went from off to on;
//   - a tenant that went from off to on has an enable line;
//   - a tenant with a failed or skipped line kept its state, unless another
//     line of it is the enable.
func checkAuditAgainstWrites(t *testing.T, lines []audit, w *world, before []sim.Tenant, lost ...string) {
	t.Helper()
	reqs := w.Sim.Requests()
	for _, id := range lost {
		if !slices.ContainsFunc(reqs, func(r sim.Request) bool {
			return r.Method == http.MethodPut && r.Status == http.StatusBadGateway && strings.Contains(r.Path, id)
		}) {
			t.Errorf("tenant %s: no write answer was lost", id)
		}
	}
	writes := acceptedWrites(reqs, lost...)
	was, now := byID(before), byID(w.Sim.All())
	tenants := byTenant(lines)
	for id, ls := range tenants {
		for _, l := range ls {
			switch l.get("action") {
			case "enable":
				if writes[id] == 0 {
					t.Errorf("tenant %s: enable line without an accepted write: %v", id, l)
				}
				if tenant.MFAOn(l.get("previous")) || !tenant.MFAOn(l.get("current")) {
					t.Errorf("tenant %s: enable line from %q to %q", id, l.get("previous"), l.get("current"))
				}
			case "unchanged", "skipped", "failed":
			default:
				t.Errorf("tenant %s: unexpected action %q", id, l.get("action"))
			}
		}
		if b, ok := was[id]; ok && ownSetting(b) && countAction(ls, "enable") == 0 && now[id].MFAStatus != b.MFAStatus {
			t.Errorf("tenant %s went from %q to %q but its lines say %v", id, b.MFAStatus, now[id].MFAStatus, ls)
		}
	}
	for id, n := range writes {
		if enables := countAction(tenants[id], "enable"); enables != 1 {
			t.Errorf("tenant %s: Acronis accepted %d writes, the audit has %d enable lines: %v", id, n, enables, tenants[id])
		}
	}
	for _, b := range before {
		if ownSetting(b) && !tenant.MFAOn(b.MFAStatus) && tenant.MFAOn(now[b.ID].MFAStatus) && countAction(tenants[b.ID], "enable") != 1 {
			t.Errorf("tenant %s was enabled without an enable line: %v", b.ID, tenants[b.ID])
		}
	}
}

// expectLines checks one line per decision about each tenant, in order, and
// none about a tenant nobody asked about.
func expectLines(t *testing.T, lines []audit, want map[string][]string) {
	t.Helper()
	got := byTenant(lines)
	for id, actions := range want {
		var have []string
		for _, l := range got[id] {
			have = append(have, l.get("action"))
		}
		if len(have) != len(actions) {
			t.Errorf("tenant %s: lines %v, want actions %v", id, got[id], actions)
			continue
		}
		for i := range actions {
			if have[i] != actions[i] {
				t.Errorf("tenant %s: line %d is %q, want %q", id, i, have[i], actions[i])
			}
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("a line about tenant %s, which nobody asked about: %v", id, got[id])
		}
	}
}

// TestAuditCompleteness: for every tenant a trigger touched there is the audit
// line the contract promises, one per decision, and the enable lines are
// exactly the writes Acronis accepted, under throttling, 500s, a revoked token
// and writes whose answers were lost after they landed.
func TestAuditCompleteness(t *testing.T) {
	t.Parallel()
	victim := testkit.Broken // answers 500

	t.Run("sweep", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, testkit.AcronisOptions{Tree: &sim.TreeSpec{Seed: 21, Size: 600}})
		lost := []string{testkit.Twin1, testkit.Twin2}
		w.Sim.SetFaults(sim.Faults{
			ThrottleEvery: 7, UnavailableEvery: 11,
			FailTenants:      map[string]int{victim: http.StatusInternalServerError},
			LoseWriteAnswers: lost,
			BeforeRequest: func(n int) {
				if n == 30 {
					w.Sim.ExpireTokens()
				}
			},
		})
		before := w.Sim.All()
		f := w.start(t, config.Sweep, nil)

		sum, err := f.sweep(t.Context(), scheduled)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Failed != 1 {
			t.Errorf("summary failed %d, want 1 (the 500 tenant): %+v", sum.Failed, sum)
		}
		lines := audits(t, f)
		checkAuditAgainstWrites(t, lines, w, before, lost...)

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
		if l := tenants[victim]; len(l) != 1 || l[0].get("action") != "failed" {
			t.Errorf("the 500 tenant's lines: %v", l)
		}
		for _, id := range lost {
			if l := tenants[id]; len(l) != 1 || l[0].get("action") != "enable" {
				t.Errorf("a tenant whose write landed with its answer lost: lines %v", l)
			}
		}
		if sum.Changed != countAction(lines, "enable") {
			t.Errorf("summary changed %d, %d enable lines", sum.Changed, countAction(lines, "enable"))
		}
	})

	// A worker batch and webhook requests about the same kinds of tenant, with
	// every request throttled once, one tenant answering 500 and one whose
	// write answers are lost.
	d := []string{testkit.OffCustomer, testkit.Contoso, testkit.ContosoHoldings, testkit.Foldered} // off, eligible
	lost, unknown := testkit.Twin1, testkit.Unknown
	newFixture := func(t *testing.T) (*world, []sim.Tenant) {
		w := newWorld(t, testkit.AcronisOptions{})
		w.Sim.SetFaults(sim.Faults{ThrottleFirst: true, LoseWriteAnswers: []string{lost},
			FailTenants: map[string]int{victim: http.StatusInternalServerError}})
		return w, w.Sim.All()
	}

	t.Run("worker", func(t *testing.T) {
		t.Parallel()
		w, before := newFixture(t)
		f := w.start(t, config.Worker, nil)
		ev := testkit.SQSBatch(enableMsg(d[0]), enforceMsg(d[1]), createdMsg(d[2]), nameMsg("Foldered"),
			enforceMsg(lost), enforceMsg(testkit.OnCustomer), enforceMsg(testkit.Suspended), enforceMsg(testkit.Unit),
			enforceMsg(testkit.Locked), enforceMsg(victim), enforceMsg(unknown), enableMsg(d[0]))
		if _, err := f.worker(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
		lines := audits(t, f)
		expectLines(t, lines, map[string][]string{
			d[0]: {"enable", "unchanged"}, d[1]: {"enable"}, d[2]: {"enable"}, d[3]: {"enable"},
			lost: {"enable"}, testkit.OnCustomer: {"unchanged"}, testkit.Suspended: {"skipped"}, testkit.Unit: {"skipped"},
			testkit.Locked: {"skipped"}, victim: {"failed"}, unknown: {"failed"},
		})
		checkAuditAgainstWrites(t, lines, w, before, lost)
	})

	t.Run("webhook", func(t *testing.T) {
		t.Parallel()
		w, before := newFixture(t)
		f := w.start(t, config.Webhook, nil)
		for _, c := range []struct {
			method, id, body string
			status           int
		}{
			{http.MethodPut, d[0], `{"enabled": true}`, http.StatusOK},
			{http.MethodPut, d[0], `{"enabled": true}`, http.StatusOK},
			{http.MethodPut, d[1], `{"enabled": true}`, http.StatusOK},
			{http.MethodPut, lost, `{"enabled": true}`, http.StatusOK},
			{http.MethodPut, testkit.OnCustomer, `{"enabled": true}`, http.StatusOK},
			{http.MethodPut, testkit.Suspended, `{"enabled": true}`, http.StatusOK}, // asked by name: changed although suspended
			{http.MethodPut, testkit.Unit, `{"enabled": true}`, http.StatusConflict},
			{http.MethodPut, testkit.Locked, `{"enabled": true}`, http.StatusConflict},
			{http.MethodPut, d[2], `{"enabled": false}`, http.StatusForbidden},
			{http.MethodPut, unknown, `{"enabled": true}`, http.StatusNotFound},
			{http.MethodGet, d[3], ``, http.StatusOK},
			{http.MethodPut, victim, `{"enabled": true}`, http.StatusBadGateway},
		} {
			resp, err := f.webhook(t.Context(), w.request(c.method, c.id, c.body))
			if err != nil || resp.StatusCode != c.status {
				t.Errorf("%s %s %s: %d %s, %v; want %d", c.method, c.id, c.body, resp.StatusCode, resp.Body, err, c.status)
			}
		}
		lines := audits(t, f)
		expectLines(t, lines, map[string][]string{
			d[0]: {"enable", "unchanged"}, d[1]: {"enable"}, d[2]: {"skipped"},
			lost: {"enable"}, testkit.OnCustomer: {"unchanged"}, testkit.Suspended: {"enable"}, testkit.Unit: {"skipped"},
			testkit.Locked: {"skipped"}, victim: {"failed"}, unknown: {"failed"},
		})
		checkAuditAgainstWrites(t, lines, w, before, lost)
	})
}
