package sweep_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"acronismfa/internal/acronis"
	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/policy"
	"acronismfa/internal/statestore"
	"acronismfa/internal/testkit"
)

// quietFleet is a generated fleet and the fixture, all a day old, on a clock
// that the simulator, its client and the sweep share.
func quietFleet(t *testing.T, size int) (*testkit.Acronis, *testkit.Clock) {
	t.Helper()
	clock := testkit.NewClock()
	acr := testkit.NewFixture(t, testkit.AcronisOptions{Sim: sim.Options{Now: clock.Now}, Client: acronis.Options{Now: clock.Now},
		Tree: &sim.TreeSpec{Seed: 11, Size: size}})
	clock.Advance(24 * time.Hour)
	return acr, clock
}

func TestWatchRunOnAQuietFleetIsOneRequest(t *testing.T) {
	acr, clock := quietFleet(t, 2000)
	r := newRunnerOn(t, acr, clock, policy.Rules{})
	withReport(t, r, &memReport{}) // as the function has: a full sweep would write one
	sum, emf, err := r.sweepOnce(t, `{"updated_within_minutes": 5}`)
	if err != nil || sum.TenantsSeen != 0 || sum.UpdatedSince != "2026-01-01T23:55:00Z" {
		t.Fatalf("%+v, %v", sum, err)
	}
	if n := emf.Metrics["AcronisRequests"]; n != 2 || listings(acr) != 1 {
		t.Errorf("%v Acronis requests (%d listings), want the token and one listing", n, listings(acr))
	}
	clock.Advance(time.Minute)
	if _, emf, _ := r.sweepOnce(t, `{"updated_within_minutes": 5}`); emf.Metrics["AcronisRequests"] != 1 {
		t.Errorf("the next watch run made %v Acronis requests, want 1", emf.Metrics["AcronisRequests"])
	}
	if sum.CompliancePercent != nil || sum.Report != nil {
		t.Errorf("a watch run with compliance %v and report %v", sum.CompliancePercent, sum.Report)
	}
	if _, ok := emf.Metrics["CompliancePercent"]; ok {
		t.Error("a watch run emitted CompliancePercent")
	}
}

// A tenant created "in the console", without any event, is enforced by the
// next watch run, under the same policy as a full sweep; one created under an
// excluded partner that is not in the window stays excluded.
func TestWatchRunEnforcesNewTenants(t *testing.T) {
	for _, excluded := range []bool{false, true} {
		acr, clock := quietFleet(t, 200)
		rules := policy.Rules{}
		if excluded {
			rules.Excluded = policy.NewExclusions([]string{testkit.ExcludedPartner})
		}
		r := newRunnerOn(t, acr, clock, rules)
		create := func(tn sim.Tenant) string {
			created, err := acr.Sim.Create(tn)
			if err != nil {
				t.Fatal(err)
			}
			return created.ID
		}
		off := create(sim.Tenant{Name: "New Customer", Kind: "customer", ParentID: testkit.PartnerA, Enabled: true, UpdateAllowed: true, UsersCount: 3})
		create(sim.Tenant{Name: "New Unit", Kind: "unit", ParentID: off, Enabled: true})
		create(sim.Tenant{Name: "New Compliant", Kind: "customer", ParentID: testkit.PartnerA, Enabled: true, UpdateAllowed: true, MFAStatus: "enabled"})
		under := create(sim.Tenant{Name: "New Under Excluded", Kind: "customer", ParentID: testkit.ExcludedPartner, Enabled: true, UpdateAllowed: true})
		clock.Advance(time.Minute)

		sum, emf, err := r.sweepOnce(t, `{"updated_within_minutes": 5}`)
		if err != nil || sum.TenantsSeen != 4 || sum.SkippedInherited != 1 || sum.Compliant != 1 {
			t.Fatalf("excluded %v: %+v, %v", excluded, sum, err)
		}
		if !acr.MFAOn(t, off) || acr.MFAOn(t, under) == excluded {
			t.Errorf("excluded %v: new customer on %v, customer under the excluded partner on %v", excluded, acr.MFAOn(t, off), acr.MFAOn(t, under))
		}
		// The token, one listing, and a read and a write per drifting tenant;
		// with exclusions, the root's ancestry (the root and the hidden data
		// center root) and the new tenants' parent, each once.
		want := 2 + 2*(sum.Changed)
		if excluded {
			want += 3
			if sum.SkippedExcluded != 1 || sum.Changed != 1 {
				t.Errorf("%+v", sum)
			}
		}
		if n := emf.Metrics["AcronisRequests"]; n != float64(want) {
			t.Errorf("excluded %v: %v Acronis requests, want %d", excluded, n, want)
		}
		accountedFor(t, sum)
	}
}

func TestWatchRunInputAndRefusals(t *testing.T) {
	acr, clock := quietFleet(t, 10)
	r := newRunnerOn(t, acr, clock, policy.Rules{})
	for _, input := range []string{
		`{"updated_within_minutes": 0}`, `{"updated_within_minutes": 14400}`, `{"updated_within_minutes": 1441}`, `{"updated_within_minutes": 5.5}`,
		`{"updated_within_minutes": "5"}`, `{"updated_within_minutes": -1}`, `{"updated_within_minutes": 1e2}`,
		`{"detail-type": "Scheduled Event", "detail": {"updated_within_minutes": null}}`,
	} {
		if _, _, err := r.sweepOnce(t, input); err == nil || !strings.Contains(err.Error(), "updated_within_minutes must be a whole number of minutes from 1 to 1440") {
			t.Errorf("%s: %v", input, err)
		}
	}
	for _, input := range []string{`{"updated_within_minutes": 1440}`, `{"detail-type": "Scheduled Event", "detail": {"updated_within_minutes": 1, "dry_run": true}}`} {
		if sum, _, err := r.sweepOnce(t, input); err != nil || sum.UpdatedSince == "" {
			t.Errorf("%s: %+v, %v", input, sum, err)
		}
	}
	acr.Sim.SetFaults(sim.Faults{FailNth: []sim.NthFailure{{Method: http.MethodGet, Path: "/api/2/tenants", Nth: []int{1}, Status: http.StatusBadRequest}}})
	if _, _, err := r.sweepOnce(t, `{"updated_within_minutes": 5}`); err == nil || !strings.Contains(err.Error(), "updated_since 2026-01-01T23:55:00Z") {
		t.Errorf("a refused listing of recent changes: %v", err)
	}
	acr.Sim.SetFaults(sim.Faults{SubtreeStatus: http.StatusForbidden})
	if _, _, err := r.sweepOnce(t, `{"updated_within_minutes": 5}`); err == nil || acr.Sim.Count(http.MethodGet, "/children") != 0 {
		t.Errorf("a watch run walked the tree's children: %v", err)
	}
}

// A watch run in a rollout reads the notices of its drifting tenants in
// batches of 100: a tenant in grace costs no Acronis request; with the state
// unreadable, the drifting tenants fail rather than go without notice.
func TestWatchRunInARollout(t *testing.T) {
	acr, clock := quietFleet(t, 10)
	r := newRunnerOn(t, acr, clock, policy.Rules{Grace: week})
	var ids []string
	for i := range 150 {
		tn, err := acr.Sim.Create(sim.Tenant{Kind: "customer", ParentID: testkit.PartnerA, Enabled: true, UpdateAllowed: true, UsersCount: 2})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tn.ID)
		if i < 100 {
			r.state.Put(statestore.Notice{TenantID: tn.ID, ClaimedAt: clock.Now(), NoticedAt: clock.Now()})
		}
	}
	clock.Advance(time.Minute)
	sum, emf, err := r.sweepOnce(t, `{"updated_within_minutes": 5}`)
	if err != nil || sum.InGrace != 150 || sum.Notified != 50 || r.state.Reads() != 2 {
		t.Fatalf("%+v, %v; %d state reads, want 2", sum, err, r.state.Reads())
	}
	// The token, the listing, and for each of the 50 new notices its
	// confirming read and its users listing.
	if n := emf.Metrics["AcronisRequests"]; n != 2+2*50 {
		t.Errorf("%v Acronis requests, want %d", n, 2+2*50)
	}
	r.state.Down(errors.New("throttled"))
	clock.Advance(time.Minute)
	if sum, _, err := r.sweepOnce(t, `{"updated_within_minutes": 5}`); err != nil || sum.Failed != len(ids) || sum.InGrace != 0 {
		t.Fatalf("state down: %+v, %v", sum, err)
	}
	if n := acr.Sim.Count(http.MethodPut, "/mfa/status"); n != 0 {
		t.Errorf("%d PUTs on tenants in a rollout", n)
	}
}

// A tenant whose ancestry cannot be read is left alone: an exclusion never
// fails open.
func TestWatchRunLeavesATenantOfUnknownAncestryAlone(t *testing.T) {
	acr, clock := quietFleet(t, 10)
	r := newRunnerOn(t, acr, clock, policy.Rules{Excluded: policy.NewExclusions([]string{testkit.ExcludedPartner})})
	tn, err := acr.Sim.Create(sim.Tenant{Kind: "customer", ParentID: testkit.Folder, Enabled: true, UpdateAllowed: true})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	acr.Sim.SetFaults(sim.Faults{FailNth: []sim.NthFailure{{Method: http.MethodGet, Path: "/api/2/tenants/" + testkit.Folder, Nth: []int{1, 2, 3, 4}, Status: http.StatusBadRequest}}})
	sum, _, err := r.sweepOnce(t, `{"updated_within_minutes": 5}`)
	if err != nil || sum.Failed != 1 || acr.MFAOn(t, tn.ID) {
		t.Fatalf("%+v, %v", sum, err)
	}
}
