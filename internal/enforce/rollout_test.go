package enforce_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/enforce"
	"acronismfa/internal/notify"
	"acronismfa/internal/policy"
	"acronismfa/internal/statestore"
	"acronismfa/internal/tenant"
	"acronismfa/internal/testkit"
)

const week = 7 * 24 * time.Hour

// rollout is an enforcer with a grace, its state in memory and its notices
// recorded, over the fixture tree.
type rollout struct {
	acr   *testkit.Acronis
	clock *testkit.Clock
	state *testkit.MemoryState
	pub   *testkit.Publisher
	e     *enforce.Enforcer
}

func newRollout(t *testing.T, rules policy.Rules) *rollout {
	t.Helper()
	r := &rollout{acr: testkit.NewFixture(t, testkit.AcronisOptions{}), clock: testkit.NewClock(), pub: &testkit.Publisher{}}
	r.state = testkit.NewMemoryState(r.clock.Now)
	if rules.Grace == 0 {
		rules.Grace = week
	}
	r.e = &enforce.Enforcer{API: r.acr.Client, Rules: rules, Leases: r.state,
		Rollout: &enforce.Rollout{Notices: r.state, Notifier: r.pub, Directory: r.acr.Client, Now: r.clock.Now}}
	return r
}

// enforce asks for MFA on tenant id by policy, as a tenant event does.
func (r *rollout) enforce(t *testing.T, id string) enforce.Result {
	t.Helper()
	return r.e.EnforceID(t.Context(), enforce.IDRequest{ID: id, Intent: policy.Intent{Enable: true, Origin: policy.ByPolicy}, SweepID: "sweep-1"})
}

func (r *rollout) writes() int { return r.acr.Sim.Count(http.MethodPut, "/mfa/status") }

func TestRolloutNoticeGraceEnforcement(t *testing.T) {
	r := newRollout(t, policy.Rules{})
	start := r.clock.Now()

	res := r.enforce(t, testkit.OffCustomer)
	if res.Err != nil || res.Decision.Outcome != policy.Notify || !res.Notified || !res.Decision.Deadline.Equal(start.Add(week)) {
		t.Fatalf("first run: %+v", res)
	}
	if r.writes() != 0 || r.acr.MFAOn(t, testkit.OffCustomer) {
		t.Fatal("MFA was enabled before the notice's grace passed")
	}
	audits, emf := report(t, r.acr, res, false)
	if len(audits) != 1 || audits[0]["action"] != "notify" || audits[0]["deadline"] != "2026-01-08T00:00:00Z" ||
		audits[0]["users_without_totp"] != float64(3) || emf.Metrics["TenantsInGrace"] != 1 || emf.Metrics["TenantsNotified"] != 1 {
		t.Errorf("notice audited as %v, EMF %v", audits, emf.Metrics)
	}
	published := r.pub.Published()
	doc, ok := published[0].(notify.GraceStarted)
	if len(published) != 1 || !ok || doc.UsersWithoutTOTP != 3 || len(doc.Users) != 3 || doc.UsersTruncated ||
		doc.UsersCount != 5 || !doc.Deadline.Equal(start.Add(week)) || doc.SweepID != "sweep-1" {
		t.Fatalf("published %#v", published)
	}
	for _, u := range doc.Users {
		if u.Login == "" || u.ID == "" {
			t.Errorf("a user without login or id in the notice: %+v", u)
		}
	}

	r.clock.Advance(week - time.Second)
	r.acr.Sim.ResetRequests()
	res = r.enforce(t, testkit.OffCustomer)
	if res.Decision.Outcome != policy.InGrace || res.Notified || len(r.pub.Published()) != 1 {
		t.Fatalf("before the deadline: %+v", res)
	}
	if n := r.acr.Sim.Count(http.MethodGet, "/mfa/status") + r.writes(); n != 0 {
		t.Errorf("a tenant in grace cost %d mfa/status requests", n)
	}
	audits, _ = report(t, r.acr, res, false)
	if len(audits) != 1 || audits[0]["action"] != "skipped" || audits[0]["deadline"] != "2026-01-08T00:00:00Z" {
		t.Errorf("a request by policy about a tenant in grace is audited as %v", audits)
	}

	r.clock.Advance(time.Second)
	res = r.enforce(t, testkit.OffCustomer)
	if res.Err != nil || !res.Changed() || !r.acr.MFAOn(t, testkit.OffCustomer) || r.writes() != 1 {
		t.Fatalf("at the deadline: %+v", res)
	}
	if len(r.state.Snapshot()) != 0 {
		t.Error("the notice of an enforced tenant stays")
	}
	if done, ok := r.pub.Published()[1].(notify.Enforced); !ok || !done.NotifiedAt.Equal(start) || done.UsersWithoutTOTP != 3 {
		t.Errorf("enforced notice %#v", r.pub.Published())
	}
}

func TestRolloutWaitsOnlyWhereUsersWouldBeLockedOut(t *testing.T) {
	allow := policy.Rules{AllowDisable: true}
	for _, tt := range []struct {
		name   string
		rules  policy.Rules
		id     string
		intent policy.Intent
		want   policy.Outcome
	}{
		{"nobody lacks TOTP: enforced at once", policy.Rules{}, testkit.Twin1, policy.Intent{Enable: true}, policy.Change},
		{"a request by name never waits", policy.Rules{}, testkit.OffCustomer, policy.Intent{Enable: true, Origin: policy.ByCaller}, policy.Change},
		{"disabling never waits", allow, testkit.OnCustomer, policy.Intent{Origin: policy.ByCaller}, policy.Change},
		{"a dry run notifies on paper", policy.Rules{DryRun: true}, testkit.OffCustomer, policy.Intent{Enable: true}, policy.Notify},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRollout(t, tt.rules)
			res := r.e.EnforceID(t.Context(), enforce.IDRequest{ID: tt.id, Intent: tt.intent})
			if res.Err != nil || res.Decision.Outcome != tt.want {
				t.Fatalf("%+v", res)
			}
			if tt.rules.DryRun {
				audits, _ := report(t, r.acr, res, true)
				if len(r.state.Snapshot()) != 0 || len(r.pub.Published()) != 0 || res.Notified || audits[0]["action"] != "would_notify" {
					t.Errorf("a dry run wrote state %v, published %v, audited %v", r.state.Snapshot(), r.pub.Published(), audits)
				}
			}
		})
	}
}

func TestRolloutGraceFollowsTheCurrentSetting(t *testing.T) {
	r := newRollout(t, policy.Rules{})
	if res := r.enforce(t, testkit.OffCustomer); !res.Notified {
		t.Fatalf("%+v", res)
	}
	r.clock.Advance(2 * 24 * time.Hour)
	r.e.Rules.Grace = 24 * time.Hour // the operator shortened the grace
	if res := r.enforce(t, testkit.OffCustomer); !res.Changed() {
		t.Fatalf("a grace shortened below the time passed still waits: %+v", res)
	}
}

// One notice per tenant: a run that finds another's claim (fresh, or a given
// notice) waits with it, and a claim left by a dead invocation is taken over.
func TestRolloutOneNoticePerTenant(t *testing.T) {
	r := newRollout(t, policy.Rules{})
	r.state.Put(statestore.Notice{TenantID: testkit.OffCustomer, ClaimedAt: r.clock.Now()})
	if res := r.enforce(t, testkit.OffCustomer); res.Decision.Outcome != policy.InGrace || res.Notified || len(r.pub.Published()) != 0 {
		t.Fatalf("while another run gives the notice: %+v", res)
	}
	r.clock.Advance(time.Hour)
	if res := r.enforce(t, testkit.OffCustomer); !res.Notified || len(r.pub.Published()) != 1 {
		t.Fatalf("a claim an hour old was not taken over: %+v", res)
	}
}

// Nothing is enabled without its notice, nothing is lost: a notice that cannot
// be published or recorded fails the tenant, untouched, for the next run.
func TestRolloutFailuresLeaveTheTenantUntouched(t *testing.T) {
	down := errors.New("connection refused")
	for _, tt := range []struct {
		name   string
		break_ func(*rollout)
		reason string
	}{
		{"topic down", func(r *rollout) { r.pub.Fail = down }, "rollout: notice not published"},
		{"state table down", func(r *rollout) { r.state.Down(down) }, "state table unavailable"},
		{"users listing failing", func(r *rollout) { r.acr.Sim.SetFaults(sim.Faults{UsersStatus: http.StatusInternalServerError}) },
			"acronis: upstream failure: Internal Server Error"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRollout(t, policy.Rules{})
			tt.break_(r)
			res := r.enforce(t, testkit.OffCustomer)
			audits, emf := report(t, r.acr, res, false)
			if res.Err == nil || res.Notified || r.writes() != 0 || len(r.state.Snapshot()) != 0 {
				t.Fatalf("%+v; state %v", res, r.state.Snapshot())
			}
			if audits[0]["action"] != "failed" || audits[0]["reason"] != tt.reason || emf.Metrics["TenantsFailed"] != 1 {
				t.Errorf("audited %v, EMF %v", audits, emf.Metrics)
			}
			r.state.Down(nil)
			r.pub.Fail = nil
			r.acr.Sim.SetFaults(sim.Faults{})
			if res := r.enforce(t, testkit.OffCustomer); !res.Notified {
				t.Errorf("the next run gives no notice: %+v", res)
			}
		})
	}
}

func TestRolloutWithoutTopicRecordsTheNotice(t *testing.T) {
	r := newRollout(t, policy.Rules{})
	r.e.Rollout.Notifier = nil
	if res := r.enforce(t, testkit.OffCustomer); !res.Notified || r.state.Snapshot()[testkit.OffCustomer].Pending() {
		t.Fatalf("%+v; state %v", res, r.state.Snapshot())
	}
}

// A tenant that reached the desired state by other means loses its notice
// silently once a run reads its state.
func TestRolloutForgetsTheNoticeOfACompliantTenant(t *testing.T) {
	r := newRollout(t, policy.Rules{})
	r.state.Put(statestore.Notice{TenantID: testkit.OnCustomer, ClaimedAt: r.clock.Now(), NoticedAt: r.clock.Now()})
	r.clock.Advance(week)
	res := r.e.Enforce(t.Context(), enforce.Request{Tenant: listedOff(t, r.acr, testkit.OnCustomer), Intent: policy.Intent{Enable: true}})
	if res.Decision.Outcome != policy.Compliant || len(r.state.Snapshot()) != 0 {
		t.Fatalf("%+v; state %v", res, r.state.Snapshot())
	}
}

// listedOff is a tenant as a stale listing shows it: MFA off.
func listedOff(t *testing.T, acr *testkit.Acronis, id string) tenant.Tenant {
	t.Helper()
	tn, err := acr.Client.Tenant(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	tn.MFAStatus = "disabled"
	return tn
}

// Overlapping runs write a tenant once: the one that finds the lease taken
// fails transiently, and its retry finds the tenant written. The lease covers
// the confirming read too: a switch read while another run writes it would
// be stale by the time of the PUT.
func TestWriteLease(t *testing.T) {
	r := newRollout(t, policy.Rules{})
	release := r.state.HoldLease(testkit.Twin1)
	res := r.enforce(t, testkit.Twin1)
	if !errors.Is(res.Err, enforce.ErrBusy) || !enforce.Retryable(res.Err) || r.writes() != 0 {
		t.Fatalf("while another run writes the tenant: %+v", res)
	}
	if n := r.acr.Sim.Count(http.MethodGet, "/mfa/status"); n != 0 {
		t.Errorf("the switch was read %d times under another run's lease", n)
	}
	if audits, _ := report(t, r.acr, res, false); audits[0]["reason"] != "busy: "+enforce.ErrBusy.Error() {
		t.Errorf("audited %v", audits)
	}
	release()
	if res := r.enforce(t, testkit.Twin1); !res.Changed() || r.writes() != 1 {
		t.Fatalf("after the other run: %+v", res)
	}
	r.state.Down(errors.New("throttled"))
	if res := r.enforce(t, testkit.Twin2); !errors.Is(res.Err, statestore.ErrUnavailable) || r.writes() != 1 {
		t.Fatalf("with the state table down: %+v", res)
	}
}

// What goes wrong after the notice is out, or after the tenant is enforced,
// is reported beside the outcome, never silently.
func TestRolloutBookkeepingFailures(t *testing.T) {
	down := errors.New("throttled")
	t.Run("notice published but not recorded", func(t *testing.T) {
		r := newRollout(t, policy.Rules{})
		r.pub.Then = func() { r.state.Down(down) }
		res := r.enforce(t, testkit.OffCustomer)
		if !errors.Is(res.Err, statestore.ErrUnavailable) || res.Notified || r.writes() != 0 {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("enforced notice not published", func(t *testing.T) {
		r := newRollout(t, policy.Rules{})
		r.state.Put(statestore.Notice{TenantID: testkit.OffCustomer, ClaimedAt: r.clock.Now(), NoticedAt: r.clock.Now()})
		r.clock.Advance(week)
		r.pub.Fail = down
		res := r.enforce(t, testkit.OffCustomer)
		audits, _ := report(t, r.acr, res, false)
		if !res.Changed() || res.NoticeErr == nil || audits[0]["action"] != "enable" || audits[0]["level"] != "ERROR" || audits[0]["error"] == nil {
			t.Fatalf("%+v; audited %v", res, audits)
		}
	})
	t.Run("notice of a compliant tenant not removed", func(t *testing.T) {
		r := newRollout(t, policy.Rules{})
		r.state.Put(statestore.Notice{TenantID: testkit.OnCustomer, ClaimedAt: r.clock.Now(), NoticedAt: r.clock.Now()})
		r.clock.Advance(week)
		notices, listed := r.state.Snapshot(), listedOff(t, r.acr, testkit.OnCustomer)
		// The table goes down once the change is leased, as Acronis is asked.
		r.acr.Sim.SetFaults(sim.Faults{BeforeRequest: func(int) { r.state.Down(down) }})
		res := r.e.Enforce(t.Context(), enforce.Request{Tenant: listed, Intent: policy.Intent{Enable: true}, Notices: notices})
		if res.Decision.Outcome != policy.Compliant || res.Err != nil || res.NoticeErr == nil || res.Quiet() {
			t.Fatalf("%+v", res)
		}
	})
}

// A notice names the tenant's own users who lack TOTP, its folders' and
// units' included and its customers' not, at most 50 of them.
func TestRolloutNoticeNamesTheTenantsOwnUsers(t *testing.T) {
	r := newRollout(t, policy.Rules{})
	add := func(tn sim.Tenant) {
		if err := r.acr.Sim.Add(tn); err != nil {
			t.Fatal(err)
		}
	}
	const partner, folder, unit, customer = "e0000000-0000-4000-8000-000000000001", "e0000000-0000-4000-8000-000000000002",
		"e0000000-0000-4000-8000-000000000003", "e0000000-0000-4000-8000-000000000004"
	add(sim.Tenant{ID: partner, Kind: "partner", Enabled: true, UpdateAllowed: true, MFAStatus: "disabled", UsersCount: 40, UsersWithTOTP: 10})
	add(sim.Tenant{ID: folder, Kind: "folder", ParentID: partner, Enabled: true, UsersCount: 30})
	add(sim.Tenant{ID: unit, Kind: "unit", ParentID: folder, Enabled: true, UsersCount: 5, UsersWithTOTP: 5})
	add(sim.Tenant{ID: customer, Kind: "customer", ParentID: folder, Enabled: true, UpdateAllowed: true, UsersCount: 20})
	res := r.enforce(t, partner)
	doc, ok := r.pub.Published()[0].(notify.GraceStarted)
	if !res.Notified || !ok || doc.UsersWithoutTOTP != 60 || len(doc.Users) != 50 || !doc.UsersTruncated {
		t.Fatalf("%+v; published %#v", res, r.pub.Published())
	}
	for _, u := range doc.Users {
		if u.ID == "" || u.Login == "" || u.Email == "" {
			t.Errorf("user %+v", u)
		}
	}

	// A customer's units are its own: their users are named with its own.
	const other, otherUnit = "e0000000-0000-4000-8000-000000000005", "e0000000-0000-4000-8000-000000000006"
	add(sim.Tenant{ID: other, Kind: "customer", ParentID: partner, Enabled: true, UpdateAllowed: true, UsersCount: 4})
	add(sim.Tenant{ID: otherUnit, Kind: "unit", ParentID: other, Enabled: true, UsersCount: 3})
	res = r.enforce(t, other)
	doc, ok = r.pub.Published()[1].(notify.GraceStarted)
	if !res.Notified || !ok || doc.UsersWithoutTOTP != 7 || len(doc.Users) != 7 || doc.UsersTruncated {
		t.Fatalf("customer with a unit: %+v; published %#v", res, r.pub.Published())
	}
}

func TestEnforceIDChecksANameGivenWithTheID(t *testing.T) {
	acr := testkit.NewFixture(t, testkit.AcronisOptions{})
	e := &enforce.Enforcer{API: acr.Client}
	in := policy.Intent{Enable: true}
	if res := e.EnforceID(t.Context(), enforce.IDRequest{ID: testkit.Contoso, Name: "Contoso Ltd", Intent: in}); !res.Changed() {
		t.Fatalf("matching name: %+v", res)
	}
	res := e.EnforceID(t.Context(), enforce.IDRequest{ID: testkit.Twin1, Name: "Contoso Ltd", Intent: in})
	audits, _ := report(t, acr, res, false)
	if res.Err == nil || acr.MFAOn(t, testkit.Twin1) || audits[0]["reason"] != `acronis: bad request: tenant_id `+testkit.Twin1+` is tenant "Twin Corp", not the tenant_name "Contoso Ltd" given with it` {
		t.Fatalf("mismatched name: %+v; audited %v", res, audits)
	}
}
