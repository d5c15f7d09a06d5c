//go:build integration

package e2e

import (
	"testing"
	"time"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/tenant"
	"acronismfa/internal/testkit"
)

// With a grace, a sweep enables MFA at once where nobody would be locked out
// and gives the others notice through SNS, recorded in the state table;
// tenants in grace then cost no Acronis request; a tenant created in the
// console is enforced by the next watch run; a grace of 0 ends every grace.
func TestRollout(t *testing.T) {
	t.Parallel()
	w := newWorld(t, sim.TreeSpec{Seed: 2024, Size: 300, Drift: 0.15})
	all := w.sim.All()
	atOnce, notice := testkit.DriftOf(all).Grace(all)
	if len(atOnce) == 0 || len(notice) == 0 {
		t.Fatalf("the generated tree has %d tenants to enable at once and %d to notify, want some of each", len(atOnce), len(notice))
	}
	lacking := map[string]int{}
	for _, tn := range notice {
		users, totp := testkit.UserTotals(all, tn)
		lacking[tn.ID] = users - totp
	}
	const grace = 7 * 24 * time.Hour
	fn := w.start(t, "sweep", map[string]string{"ROLLOUT_GRACE_DAYS": "7"})

	start := time.Now().Truncate(time.Second)
	r := w.sweep(t, fn, []byte(`{}`), testkit.SweepExpect{Enable: testkit.IDs(atOnce), InGrace: len(notice), Notified: len(notice),
		Notices: map[string][]string{"grace_started": testkit.IDs(notice)}})
	for _, n := range r.Notices["grace_started"] {
		if id := n.TenantID; n.Deadline.Before(start.Add(grace)) || n.Deadline.After(time.Now().Add(grace)) || n.SweepID != r.Summary.SweepID ||
			n.UsersWithoutTOTP != lacking[id] || len(n.Users) != min(lacking[id], 50) || n.UsersTruncated != (lacking[id] > 50) {
			t.Errorf("grace_started %s: want a deadline 7 days on, sweep %s, %d users without TOTP, at most 50 of them named",
				n.Doc, r.Summary.SweepID, lacking[id])
		}
	}
	stored, err := w.stack.StoredNotices(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range r.Notices["grace_started"] {
		if !stored[n.TenantID].Truncate(time.Second).Add(grace).Equal(n.Deadline) {
			t.Errorf("the state table has %s noticed at %v, its notice a deadline of %v", n.TenantID, stored[n.TenantID], n.Deadline)
		}
	}
	if len(stored) != len(notice) {
		t.Errorf("%d notices in the state table, want %d", len(stored), len(notice))
	}

	// Tenants in grace cost no request: the sweep lists the tree, and that is all.
	r = w.sweep(t, fn, []byte(`{}`), testkit.SweepExpect{InGrace: len(notice), Notices: map[string][]string{}})
	for route, n := range r.Routes {
		if route != "GET /tenants" && route != "POST /idp/token" {
			t.Errorf("the sweep in grace asked Acronis %s (%d times)", route, n)
		}
	}

	// A tenant created in the console is enforced by the next watch run, with
	// one listing request, at once: nobody in it lacks TOTP yet.
	created, err := w.sim.Create(sim.Tenant{Name: "Created In The Console", Kind: "customer", ParentID: notice[0].ParentID,
		Enabled: true, UpdateAllowed: true, MFAStatus: tenant.MFADisabled})
	if err != nil {
		t.Fatal(err)
	}
	r = w.sweep(t, fn, readEvent(t, "sweep-watch.json"), testkit.SweepExpect{Seen: 1, Enable: []string{created.ID}})
	if len(r.Routes) != 3 || r.Summary.UpdatedSince == "" {
		t.Errorf("the watch run made requests %v, updated_since %q; want the listing, a read and a PUT, and a time", r.Routes, r.Summary.UpdatedSince)
	}
	checkLogs(t, fn, "sweep", "schedule", true)

	// Set to 0, the grace ends for every tenant in it at the next run.
	fn = w.start(t, "sweep", map[string]string{"ROLLOUT_GRACE_DAYS": "0"})
	r = w.sweep(t, fn, []byte(`{}`), testkit.SweepExpect{Enable: testkit.IDs(notice), Notices: map[string][]string{"enforced": testkit.IDs(notice)}})
	for _, n := range r.Notices["enforced"] {
		if !n.NotifiedAt.Equal(stored[n.TenantID].Truncate(time.Second)) || n.UsersWithoutTOTP != lacking[n.TenantID] || n.SweepID != r.Summary.SweepID {
			t.Errorf("enforced %s: want notified_at %v, %d users without TOTP, sweep %s", n.Doc, stored[n.TenantID], lacking[n.TenantID], r.Summary.SweepID)
		}
	}
	if stored, err := w.stack.StoredNotices(t.Context()); err != nil || len(stored) != 0 {
		t.Errorf("notices left in the state table: %v (%v)", stored, err)
	}
	if left := testkit.DriftOf(w.sim.All()); len(left.Fixable) != 0 {
		t.Errorf("%d tenants still drift once the grace is over", len(left.Fixable))
	}
	checkLogs(t, fn, "sweep", "schedule", true)
}
