package sweep_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/notify"
	"acronismfa/internal/policy"
	"acronismfa/internal/statestore"
	"acronismfa/internal/tenant"
	"acronismfa/internal/testkit"
)

const week = 7 * 24 * time.Hour

// graceSplit is the ids of the drifting tenants a sweep may change: those
// whose users all have TOTP (enforced at once) and those that lock users out
// (notified).
func graceSplit(all []sim.Tenant) (atOnce, notified []string) {
	once, notice := testkit.DriftOf(all).Grace(all)
	return testkit.IDs(once), testkit.IDs(notice)
}

func TestSweepRolloutNoticeGraceEnforcement(t *testing.T) {
	acr := testkit.NewFixture(t, testkit.AcronisOptions{})
	ids, notifiedIDs := graceSplit(acr.Sim.All())
	atOnce, toNotify := len(ids), len(notifiedIDs)
	r := newRunner(t, acr, policy.Rules{Grace: week})

	sum, emf, err := r.sweepOnce(t, `{}`)
	if err != nil || sum.Changed != atOnce || sum.InGrace != toNotify || sum.Notified != toNotify || toNotify == 0 {
		t.Fatalf("first sweep: %+v, %v; want %d changed, %d notified", sum, err, atOnce, toNotify)
	}
	if emf.Metrics["TenantsInGrace"] != float64(toNotify) || emf.Metrics["TenantsNotified"] != float64(toNotify) {
		t.Errorf("EMF %v", emf.Metrics)
	}
	published := r.pub.Published()
	if len(published) != toNotify+1 {
		t.Fatalf("%d notices published, want %d and the digest", len(published), toNotify)
	}
	if digest, ok := published[len(published)-1].(notify.SweepCompleted); !ok || len(digest.Summary) == 0 {
		t.Errorf("the last notice is %#v, not the sweep's digest", published[len(published)-1])
	}
	accountedFor(t, sum)

	// Before the deadline: no Acronis request beyond the listing (and the
	// locked tenant's confirming read, as in every sweep), no second notice,
	// no audit line, one read of the state.
	r.clock.Advance(time.Hour)
	reads, mark := r.state.Reads(), r.out.Mark()
	acr.Sim.ResetRequests()
	sum, _, err = r.sweepOnce(t, `{}`)
	if err != nil || sum.InGrace != toNotify || sum.Notified != 0 || sum.Changed != 0 || len(r.pub.Published()) != toNotify+2 {
		t.Fatalf("second sweep: %+v, %v", sum, err)
	}
	if n := len(acr.Sim.Requests()); n != 1+sum.NotAllowed || r.state.Reads()-reads != 1 {
		t.Errorf("second sweep: %d Acronis requests and %d state reads, want %d and 1 query", n, r.state.Reads()-reads, 1+sum.NotAllowed)
	}
	for _, a := range r.out.Audits(mark) {
		if a["action"] != "skipped" || a["reason"] == "" || strings.Contains(fmt.Sprint(a["reason"]), "grace") {
			t.Errorf("a tenant in grace audited by a sweep: %v", a)
		}
	}

	r.clock.Advance(week)
	sum, _, err = r.sweepOnce(t, `{}`)
	if err != nil || sum.Changed != toNotify || sum.InGrace != 0 || len(r.state.Snapshot()) != 0 {
		t.Fatalf("after the deadline: %+v, %v; notices left %v", sum, err, r.state.Snapshot())
	}
	if n := enforcedNotices(r.pub); n != toNotify {
		t.Errorf("%d enforced notices, want %d", n, toNotify)
	}
}

// An operator who sets the grace to 0 ends every grace at the next run: the
// tenants in grace are enforced, each with its enforced notice, and their
// notices leave the table.
func TestSweepGraceZeroEndsEveryGrace(t *testing.T) {
	acr := testkit.NewFixture(t, testkit.AcronisOptions{})
	_, notifiedIDs := graceSplit(acr.Sim.All())
	r := newRunner(t, acr, policy.Rules{Grace: week})
	if sum, _, err := r.sweepOnce(t, `{}`); err != nil || sum.Notified != len(notifiedIDs) {
		t.Fatalf("first sweep: %+v, %v", sum, err)
	}
	r.h.Sweeper.Enforcer.Rules.Grace = 0
	r.clock.Advance(time.Hour)
	reads := r.state.Reads()
	sum, _, err := r.sweepOnce(t, `{}`)
	if err != nil || sum.Changed != len(notifiedIDs) || sum.InGrace != 0 || len(r.state.Snapshot()) != 0 {
		t.Fatalf("grace 0: %+v, %v; notices left %v", sum, err, r.state.Snapshot())
	}
	if n := r.state.Reads() - reads; n != 1 {
		t.Errorf("%d reads of the state, want the full sweep's one query", n)
	}
	if n := enforcedNotices(r.pub); n != len(notifiedIDs) {
		t.Errorf("%d enforced notices, want %d", n, len(notifiedIDs))
	}
}

func enforcedNotices(pub *testkit.Publisher) int {
	n := 0
	for _, p := range pub.Published() {
		if _, ok := p.(notify.Enforced); ok {
			n++
		}
	}
	return n
}

func TestSweepRolloutDryRun(t *testing.T) {
	acr := testkit.NewFixture(t, testkit.AcronisOptions{})
	_, notifiedIDs := graceSplit(acr.Sim.All())
	toNotify := len(notifiedIDs)
	r := newRunner(t, acr, policy.Rules{Grace: week, DryRun: true})
	sum, _, err := r.sweepOnce(t, `{}`)
	if err != nil || sum.InGrace != toNotify || sum.Notified != 0 || len(r.state.Snapshot()) != 0 || len(r.pub.Published()) != 0 {
		t.Fatalf("%+v, %v; state %v, published %v", sum, err, r.state.Snapshot(), r.pub.Published())
	}
	would := 0
	for _, a := range r.out.Audits(0) {
		if a["action"] == "would_notify" {
			would++
		}
	}
	if would != toNotify || acr.Sim.Count(http.MethodPut, "/mfa/status") != 0 {
		t.Errorf("%d would_notify lines, want %d; %d PUTs", would, toNotify, acr.Sim.Count(http.MethodPut, "/mfa/status"))
	}
}

// The state table down: drifting tenants fail rather than go without notice;
// the rest is counted as ever.
func TestSweepRolloutStateDown(t *testing.T) {
	acr := testkit.NewFixture(t, testkit.AcronisOptions{})
	listed := 0
	for _, tn := range acr.Sim.All() {
		if listedDrifting(tn) {
			listed++
		}
	}
	r := newRunner(t, acr, policy.Rules{Grace: week})
	r.state.Down(errors.New("throttled"))
	sum, _, err := r.sweepOnce(t, `{}`)
	if err != nil || sum.Failed != listed || sum.Changed != 0 || acr.Sim.Count(http.MethodPut, "/mfa/status") != 0 {
		t.Fatalf("%+v, %v", sum, err)
	}
	accountedFor(t, sum)
}

// A sweep of N tenants with K drifting of which G are in grace makes
// ceil(N/5000) + 2(K − G) Acronis requests and one read of the state; a watch
// run reads the notices of its drifting tenants in batches of 100.
func TestSweepRolloutRequestCount(t *testing.T) {
	acr := testkit.NewAcronis(t, testkit.AcronisOptions{Tree: &sim.TreeSpec{Seed: 5, Size: 3000, Drift: 0.2, Disabled: -1, Locked: -1}})
	r := newRunner(t, acr, policy.Rules{Grace: week})
	var drift []string
	for _, tn := range acr.Sim.All() {
		if !tenant.Kind(tn.Kind).InheritsMFA() && !tenant.MFAOn(tn.MFAStatus) {
			drift = append(drift, tn.ID)
		}
	}
	now := r.clock.Now()
	for i, id := range drift {
		noticed := now // in grace
		if i%2 == 1 {
			noticed = now.Add(-2 * week) // its grace is over
		}
		r.state.Put(statestore.Notice{TenantID: id, ClaimedAt: noticed, NoticedAt: noticed})
	}
	k, g := len(drift), (len(drift)+1)/2
	sum, emf, err := r.sweepOnce(t, `{}`)
	if err != nil || sum.InGrace != g || sum.Changed != k-g {
		t.Fatalf("%+v, %v; want %d in grace and %d changed", sum, err, g, k-g)
	}
	if n, want := emf.Metrics["AcronisRequests"], float64(1+1+2*(k-g)); n != want || r.state.Reads() != 1 {
		t.Errorf("%v Acronis requests (want %v: token, listing, 2 per change), %d state reads (want 1)", n, want, r.state.Reads())
	}
}

// A full sweep drops the notice of a tenant the listing shows compliant: it
// reached the desired state by other means. A digest that cannot be published
// is an ERROR line and changes nothing else.
func TestSweepRolloutForgetsCompliantAndDigestFailure(t *testing.T) {
	acr := testkit.NewFixture(t, testkit.AcronisOptions{})
	r := newRunner(t, acr, policy.Rules{Grace: week})
	r.state.Put(statestore.Notice{TenantID: testkit.OnCustomer, ClaimedAt: r.clock.Now(), NoticedAt: r.clock.Now()})
	r.pub.Fail = errors.New("topic gone")
	mark := r.out.Mark()
	if _, _, err := r.sweepOnce(t, `{}`); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.state.Snapshot()[testkit.OnCustomer]; ok {
		t.Error("the notice of a compliant tenant stays")
	}
	logged := false
	for _, l := range r.out.JSON(mark) {
		logged = logged || l["message"] == "sweep digest not published" && l["level"] == "ERROR"
	}
	if !logged {
		t.Error("no ERROR line for the digest not published")
	}
}

// keepNotices is a state table whose notices cannot be removed.
type keepNotices struct{ *testkit.MemoryState }

func (keepNotices) Forget(context.Context, string) error { return errors.New("table throttled") }

// A notice that cannot be removed stays, which only shortens a later grace:
// the tenant counts as compliant all the same, and its audit line says why.
func TestSweepRolloutNoticeNotForgotten(t *testing.T) {
	acr := testkit.NewFixture(t, testkit.AcronisOptions{})
	r := newRunner(t, acr, policy.Rules{Grace: week})
	r.state.Put(statestore.Notice{TenantID: testkit.OnCustomer, ClaimedAt: r.clock.Now(), NoticedAt: r.clock.Now()})
	r.h.Sweeper.Enforcer.Rollout.Notices = keepNotices{r.state}
	mark := r.out.Mark()
	sum, _, err := r.sweepOnce(t, `{}`)
	if err != nil || sum.Failed != 0 {
		t.Fatalf("%+v, %v", sum, err)
	}
	var lines []map[string]any
	for _, a := range r.out.Audits(mark) {
		if a["tenant_id"] == testkit.OnCustomer {
			lines = append(lines, a)
		}
	}
	if len(lines) != 1 || lines[0]["action"] != "unchanged" || !strings.Contains(fmt.Sprint(lines[0]["error"]), "remove the rollout notice: table throttled") {
		t.Errorf("audit lines of the tenant %v, want one unchanged line with why its notice stays", lines)
	}
	if _, ok := r.state.Snapshot()[testkit.OnCustomer]; !ok {
		t.Error("the notice went although it could not be removed")
	}
}
