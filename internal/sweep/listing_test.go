package sweep_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/policy"
	"acronismfa/internal/sweep"
	"acronismfa/internal/tenant"
	"acronismfa/internal/testkit"
)

// newRunner is a rig whose ROOT_TENANT_ID is the client's own tenant, so that
// finding the root costs no request in the counts.
func newRunner(t *testing.T, acr *testkit.Acronis, rules policy.Rules) *rig {
	t.Helper()
	return newRunnerOn(t, acr, testkit.NewClock(), rules)
}

func newRunnerOn(t *testing.T, acr *testkit.Acronis, clock *testkit.Clock, rules policy.Rules) *rig {
	t.Helper()
	r := newRigOn(acr, clock, rules)
	r.h.RootTenantID = acr.Sim.RootID()
	return r
}

// sweepOnce is one invocation with input, checked as rig.run checks it.
func (r *rig) sweepOnce(t *testing.T, input string) (sweep.Summary, testkit.EMF, error) {
	t.Helper()
	inv := r.run(t, t.Context(), input)
	return inv.sum, inv.emf, inv.err
}

// accountedFor checks that every tenant seen is in exactly one bucket.
func accountedFor(t *testing.T, s sweep.Summary) {
	t.Helper()
	if n := accounted(s); n != s.TenantsSeen {
		t.Errorf("buckets add up to %d, tenants_seen %d: %+v", n, s.TenantsSeen, s)
	}
}

// listedDrifting: the listing alone shows the tenant needs a change, which its
// mfa/status confirms or refuses.
func listedDrifting(tn sim.Tenant) bool {
	return !tenant.Kind(tn.Kind).InheritsMFA() && tn.Enabled && !tenant.MFAOn(tn.MFAStatus)
}

// listings counts the subtree listing requests.
func listings(acr *testkit.Acronis) int { return acr.Sim.Count(http.MethodGet, "/api/2/tenants") }

// Paging cursors that cycle end the sweep as incomplete, with a reason that
// says so, after a handful of requests rather than at the deadline.
func TestSweepStopsAtLoopingCursors(t *testing.T) {
	acr := testkit.NewAcronis(t, testkit.AcronisOptions{Tree: &sim.TreeSpec{Seed: 3, Size: 120}})
	acr.Sim.SetFaults(sim.Faults{LoopCursors: 2})
	r := newRunner(t, acr, policy.Rules{})
	r.h.Sweeper.PageSize = 20
	sum, _, err := r.sweepOnce(t, `{}`)
	if !errors.Is(err, sweep.ErrIncomplete) || !strings.Contains(err.Error(), "paging cursors loop") {
		t.Fatalf("error %v", err)
	}
	if n := listings(acr); n != 3 || sum.TenantsSeen != 60 {
		t.Errorf("%d listing requests, tenants_seen %d; want 3 and 60", n, sum.TenantsSeen)
	}
	accountedFor(t, sum)
}

// A tenant listed twice (pages that overlap) counts once, is decided once and
// written at most once.
func TestSweepCountsARepeatedTenantOnce(t *testing.T) {
	acr := testkit.NewAcronis(t, testkit.AcronisOptions{Tree: &sim.TreeSpec{Seed: 3, Size: 120}})
	all, want := acr.Sim.All(), len(testkit.DriftOf(acr.Sim.All()).Fixable)
	acr.Sim.SetFaults(sim.Faults{OverlapPages: true})
	r := newRunner(t, acr, policy.Rules{})
	r.h.Sweeper.PageSize = 20
	sum, _, err := r.sweepOnce(t, `{}`)
	if err != nil || sum.TenantsSeen != len(all) || sum.Changed != want {
		t.Fatalf("tenants_seen %d changed %d (%v); want %d and %d", sum.TenantsSeen, sum.Changed, err, len(all), want)
	}
	if puts := acr.Sim.Count(http.MethodPut, "/mfa/status"); puts != want {
		t.Errorf("%d PUTs for %d drifting tenants", puts, want)
	}
	accountedFor(t, sum)
}

// A child listed before its parent under an exclusion is checked through its
// ancestry before anything is written: the exclusion never fails open.
func TestSweepExclusionHoldsForAChildListedEarly(t *testing.T) {
	acr := testkit.NewFixture(t, testkit.AcronisOptions{})
	acr.Sim.SetFaults(sim.Faults{ListEarly: []string{testkit.Foldered}})
	r := newRunner(t, acr, policy.Rules{Excluded: policy.NewExclusions([]string{testkit.PartnerB})})
	sum, _, err := r.sweepOnce(t, `{}`)
	if err != nil || acr.MFAOn(t, testkit.Foldered) || sum.SkippedExcluded != 5 {
		t.Fatalf("%+v, %v; Foldered on: %v", sum, err, acr.MFAOn(t, testkit.Foldered))
	}
	// The walk up from Foldered read its parent, once.
	if n := acr.Sim.Count(http.MethodGet, "/tenants/"+testkit.Folder); n != 1 {
		t.Errorf("the folder was read %d times, want 1", n)
	}
	accountedFor(t, sum)
}

// A write answered 204, or 200 without a body, is a success: sent once, then
// the state read once to report it.
func TestSweepTakesAnEmptyAnswerToAWriteAsSuccess(t *testing.T) {
	for _, status := range []int{http.StatusOK, http.StatusNoContent} {
		acr := testkit.NewFixture(t, testkit.AcronisOptions{})
		want := len(testkit.DriftOf(acr.Sim.All()).Fixable)
		acr.Sim.SetFaults(sim.Faults{EmptyWriteStatus: status})
		sum, emf, err := newRunner(t, acr, policy.Rules{}).sweepOnce(t, `{}`)
		puts := acr.Sim.Count(http.MethodPut, "/mfa/status")
		if err != nil || sum.Changed != want || sum.Failed != 0 || puts != want {
			t.Fatalf("%d: changed %d failed %d, %d PUTs (%v); want %d changes, one PUT each", status, sum.Changed, sum.Failed, puts, err, want)
		}
		// The token and one listing; per change a confirming read, the write
		// and the read that reports it; the locked tenant's confirming read.
		if n := emf.Metrics["AcronisRequests"]; n != float64(2+3*want+1) {
			t.Errorf("%d: %v Acronis requests, want %d", status, n, 2+3*want+1)
		}
	}
}
