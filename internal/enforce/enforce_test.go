package enforce_test

import (
	"errors"
	"testing"

	"acronismfa/internal/acronis"
	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/enforce"
	"acronismfa/internal/policy"
	"acronismfa/internal/tenant"
	"acronismfa/internal/testkit"
)

// Fixed ids of the fixture tree below the client's own tenant:
//
//	own ── partner ─┬─ offCustomer ── unit
//	                ├─ onCustomer
//	                ├─ lockedCustomer (update_allowed false)
//	                └─ suspended (enabled false, MFA off)
const (
	partner        = "10000000-0000-4000-8000-000000000001"
	offCustomer    = "10000000-0000-4000-8000-000000000002"
	unit           = "10000000-0000-4000-8000-000000000003"
	onCustomer     = "10000000-0000-4000-8000-000000000004"
	lockedCustomer = "10000000-0000-4000-8000-000000000005"
	suspended      = "10000000-0000-4000-8000-000000000006"
	unknown        = "10000000-0000-4000-8000-0000000000ff"
)

func fixture(t *testing.T) *testkit.Acronis {
	t.Helper()
	env := testkit.NewAcronis(t, testkit.AcronisOptions{})
	own := env.Sim.RootID()
	for _, tn := range []sim.Tenant{
		{ID: partner, Name: "Partner", Kind: "partner", ParentID: own, Enabled: true, MFAStatus: "enabled", UpdateAllowed: true},
		{ID: offCustomer, Name: "Off", Kind: "customer", ParentID: partner, Enabled: true, MFAStatus: "disabled", UsersCount: 5, UsersWithTOTP: 2, UpdateAllowed: true},
		{ID: unit, Name: "Unit", Kind: "unit", ParentID: offCustomer, Enabled: true, UpdateAllowed: true},
		{ID: onCustomer, Name: "On", Kind: "customer", ParentID: partner, Enabled: true, MFAStatus: "enabled", UsersCount: 3, UsersWithTOTP: 3, UpdateAllowed: true},
		{ID: lockedCustomer, Name: "Locked", Kind: "customer", ParentID: partner, Enabled: true, MFAStatus: "disabled", UpdateAllowed: false},
		{ID: suspended, Name: "Suspended", Kind: "customer", ParentID: partner, Enabled: false, MFAStatus: "disabled", UpdateAllowed: true},
	} {
		if err := env.Sim.Add(tn); err != nil {
			t.Fatal(err)
		}
	}
	return env
}

func TestApply(t *testing.T) {
	tests := []struct {
		name    string
		rules   policy.Rules
		tenant  string
		want    bool
		origin  policy.Origin
		outcome policy.Outcome
		puts    int
		after   string // the tenant's MFA state in Acronis afterwards
		users   int    // users locked out until they set up TOTP
	}{
		{"drifting customer enabled", policy.Rules{}, offCustomer, true, policy.ByPolicy, policy.Change, 1, "enabled", 3},
		{"dry run writes nothing", policy.Rules{DryRun: true}, offCustomer, true, policy.ByPolicy, policy.WouldChange, 0, "disabled", 3},
		{"compliant customer untouched", policy.Rules{}, onCustomer, true, policy.ByCaller, policy.Compliant, 0, "enabled", 0},
		{"unit inherits", policy.Rules{}, unit, true, policy.ByCaller, policy.SkippedInherited, 0, "disabled", 0},
		{"excluded ancestor", policy.Rules{Excluded: policy.NewExclusions([]string{partner})}, offCustomer, true, policy.ByCaller, policy.SkippedExcluded, 0, "disabled", 0},
		{"exclusion elsewhere does not apply", policy.Rules{Excluded: policy.NewExclusions([]string{onCustomer})}, offCustomer, true, policy.ByCaller, policy.Change, 1, "enabled", 3},
		{"update_allowed false", policy.Rules{}, lockedCustomer, true, policy.ByCaller, policy.NotAllowed, 0, "disabled", 0},
		{"suspended tenant left alone by policy", policy.Rules{}, suspended, true, policy.ByPolicy, policy.SkippedDisabled, 0, "disabled", 0},
		{"suspended tenant enabled when asked", policy.Rules{}, suspended, true, policy.ByCaller, policy.Change, 1, "enabled", 0},
		{"disable refused without allow", policy.Rules{}, onCustomer, false, policy.ByCaller, policy.NotAllowed, 0, "enabled", 0},
		{"disable allowed", policy.Rules{AllowDisable: true}, onCustomer, false, policy.ByCaller, policy.Change, 1, "disabled", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := fixture(t)
			e := enforce.Enforcer{API: env.Client, Rules: tt.rules}
			res := e.EnforceID(t.Context(), tt.tenant, policy.Intent{Enable: tt.want, Origin: tt.origin})
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			if res.Decision.Outcome != tt.outcome {
				t.Fatalf("outcome %s (%s), want %s", res.Decision.Outcome, res.Decision.Reason, tt.outcome)
			}
			if n := env.Sim.Count("PUT", "/mfa/status"); n != tt.puts {
				t.Errorf("%d PUTs, want %d", n, tt.puts)
			}
			if got, _ := env.Sim.Get(tt.tenant); tenant.MFAOn(got.MFAStatus) != (tt.after == "enabled") {
				t.Errorf("MFA is %q afterwards, want %s", got.MFAStatus, tt.after)
			}
			if res.Changed() != (tt.outcome == policy.Change) {
				t.Errorf("Changed() = %v", res.Changed())
			}
			if got := res.UsersWithoutTOTP(); got != tt.users {
				t.Errorf("%d users without TOTP, want %d", got, tt.users)
			}
		})
	}
}

func TestApplyRefusedDisableAsksAcronisNothing(t *testing.T) {
	env := fixture(t)
	e := enforce.Enforcer{API: env.Client}
	res := e.EnforceID(t.Context(), onCustomer, policy.Intent{Enable: false, Origin: policy.ByCaller})
	if res.Decision.Outcome != policy.NotAllowed {
		t.Fatalf("outcome %s", res.Decision.Outcome)
	}
	if n := len(env.Sim.Requests()); n != 0 {
		t.Fatalf("%d requests reached Acronis", n)
	}
}

func TestApplyExplicitCompliantReportsUserCounts(t *testing.T) {
	env := fixture(t)
	e := enforce.Enforcer{API: env.Client}
	res := e.EnforceID(t.Context(), onCustomer, policy.Intent{Enable: true, Origin: policy.ByCaller})
	if res.Status.UsersCount != 3 || res.Status.UsersWithTOTPEnabledCount != 3 || !res.Status.UpdateAllowed {
		t.Fatalf("status %+v, want the tenant's user counts", res.Status)
	}
	if res.Quiet() {
		t.Fatal("an explicitly requested tenant must be audited")
	}
}

func TestApplyFailures(t *testing.T) {
	tests := []struct {
		name   string
		faults sim.Faults
		tenant string
		class  error
	}{
		{"unknown tenant", sim.Faults{}, unknown, acronis.ErrNotFound},
		{"Acronis fails for this tenant", sim.Faults{FailTenants: map[string]int{offCustomer: 500}}, offCustomer, acronis.ErrUpstream},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := fixture(t)
			env.Sim.SetFaults(tt.faults)
			e := enforce.Enforcer{API: env.Client}
			res := e.EnforceID(t.Context(), tt.tenant, policy.Intent{Enable: true, Origin: policy.ByCaller})
			if !errors.Is(res.Err, tt.class) {
				t.Fatalf("error %v, want class %v", res.Err, tt.class)
			}
			if res.Quiet() || res.Changed() {
				t.Fatal("a failure must be audited and not counted as a change")
			}
		})
	}
}

func TestApplyListed(t *testing.T) {
	env := fixture(t)
	e := enforce.Enforcer{API: env.Client}

	on, _ := env.Sim.Get(onCustomer)
	res := e.Enforce(t.Context(), enforce.Request{Tenant: listed(on), Intent: policy.Intent{Enable: true}})
	if !res.Quiet() || len(env.Sim.Requests()) != 0 {
		t.Fatalf("a tenant listed as compliant cost %d requests (quiet %v)", len(env.Sim.Requests()), res.Quiet())
	}

	// The listing said off, but it is on by now: confirmed, not written.
	off, _ := env.Sim.Get(offCustomer)
	env.Sim.SetMFA(offCustomer, "enabled")
	res = e.Enforce(t.Context(), enforce.Request{Tenant: listed(off), Intent: policy.Intent{Enable: true}})
	if res.Decision.Outcome != policy.Compliant || !res.Requested || res.Quiet() {
		t.Fatalf("stale listing: outcome %s requested %v", res.Decision.Outcome, res.Requested)
	}
	if n := env.Sim.Count("PUT", "/mfa/status"); n != 0 {
		t.Fatalf("%d PUTs for a tenant already compliant", n)
	}
}

func listed(t sim.Tenant) tenant.Tenant {
	return tenant.Tenant{ID: t.ID, Name: t.Name, Kind: tenant.Kind(t.Kind), ParentID: t.ParentID, Enabled: t.Enabled, MFAStatus: t.MFAStatus}
}
