package enforce_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"acronismfa/internal/acronis"
	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/enforce"
	"acronismfa/internal/policy"
	"acronismfa/internal/telemetry"
	"acronismfa/internal/tenant"
	"acronismfa/internal/testkit"
)

// report audits and counts res as a trigger does, with the client's traffic,
// and returns the audit lines and the metrics document.
func report(t *testing.T, acr *testkit.Acronis, res enforce.Result, dryRun bool) ([]map[string]any, testkit.EMF) {
	t.Helper()
	out := testkit.NewOutput(nil)
	src := telemetry.Worker
	enforce.Audit(t.Context(), telemetry.NewLogger(out, src.Function, src.Trigger, slog.LevelInfo), res, "sweep-1", dryRun)
	m := telemetry.NewMetrics("AcronisMFA/Test", src)
	enforce.Count(m, res)
	enforce.CountRequests(m, acr.Client.Stats())
	if err := m.Write(out, testkit.Epoch); err != nil {
		t.Fatal(err)
	}
	emf := out.InvocationEMF(t, 0, "AcronisMFA/Test", src.Function, src.Trigger)
	audits := out.Audits(0)
	for _, a := range audits {
		if a["tenant_id"] != res.Tenant.ID || a["sweep_id"] != "sweep-1" {
			t.Errorf("audit line %v is not about tenant %s in sweep-1", a, res.Tenant.ID)
		}
	}
	return audits, emf
}

// outcomeMetric is the metric that counts a result by its audit action.
var outcomeMetric = map[string]string{
	"enable": telemetry.MetricTenantsChanged, "disable": telemetry.MetricTenantsChanged,
	"would_enable": telemetry.MetricTenantsWouldChange, "would_disable": telemetry.MetricTenantsWouldChange,
	"unchanged": telemetry.MetricTenantsCompliant, "skipped": telemetry.MetricTenantsSkipped, "failed": telemetry.MetricTenantsFailed,
}

// counted checks that the document counts one tenant, under the metric of its
// audit action.
func counted(t *testing.T, e testkit.EMF, action string, users int) {
	t.Helper()
	for _, name := range []string{telemetry.MetricTenantsChanged, telemetry.MetricTenantsWouldChange,
		telemetry.MetricTenantsCompliant, telemetry.MetricTenantsSkipped, telemetry.MetricTenantsFailed} {
		if want := map[bool]float64{true: 1}[name == outcomeMetric[action]]; e.Metrics[name] != want {
			t.Errorf("EMF %s = %v, want %v", name, e.Metrics[name], want)
		}
	}
	if e.Metrics[telemetry.MetricTenantsChecked] != 1 || e.Metrics[telemetry.MetricUsersWithoutTotp] != float64(users) {
		t.Errorf("EMF TenantsChecked %v, UsersWithoutTotp %v; want 1 and %d",
			e.Metrics[telemetry.MetricTenantsChecked], e.Metrics[telemetry.MetricUsersWithoutTotp], users)
	}
}

func TestEnforceID(t *testing.T) {
	exclude := func(ids ...string) policy.Rules { return policy.Rules{Excluded: policy.NewExclusions(ids)} }
	tests := []struct {
		name    string
		rules   policy.Rules
		tenant  string
		enable  bool
		origin  policy.Origin
		outcome policy.Outcome
		puts    int
		on      bool   // the tenant's MFA in Acronis afterwards
		users   int    // users locked out until they set up TOTP
		action  string // of the one audit line
	}{
		{"drifting customer enabled", policy.Rules{}, testkit.OffCustomer, true, policy.ByPolicy, policy.Change, 1, true, 3, "enable"},
		{"dry run writes nothing", policy.Rules{DryRun: true}, testkit.OffCustomer, true, policy.ByPolicy, policy.WouldChange, 0, false, 3, "would_enable"},
		{"dry run disable", policy.Rules{DryRun: true, AllowDisable: true}, testkit.OnCustomer, false, policy.ByCaller, policy.WouldChange, 0, true, 0, "would_disable"},
		{"compliant customer untouched", policy.Rules{}, testkit.OnCustomer, true, policy.ByCaller, policy.Compliant, 0, true, 0, "unchanged"},
		{"unit inherits", policy.Rules{}, testkit.Unit, true, policy.ByCaller, policy.SkippedInherited, 0, false, 0, "skipped"},
		{"excluded parent", exclude(testkit.PartnerA), testkit.OffCustomer, true, policy.ByCaller, policy.SkippedExcluded, 0, false, 0, "skipped"},
		{"excluded grandparent above a folder", exclude(strings.ToUpper(testkit.PartnerB)), testkit.Foldered, true, policy.ByPolicy, policy.SkippedExcluded, 0, false, 0, "skipped"},
		{"exclusion elsewhere does not apply", exclude(testkit.OnCustomer), testkit.OffCustomer, true, policy.ByCaller, policy.Change, 1, true, 3, "enable"},
		{"update_allowed false", policy.Rules{}, testkit.Locked, true, policy.ByCaller, policy.NotAllowed, 0, false, 0, "skipped"},
		{"suspended tenant left alone by policy", policy.Rules{}, testkit.Suspended, true, policy.ByPolicy, policy.SkippedDisabled, 0, false, 0, "skipped"},
		{"suspended tenant enabled when asked", policy.Rules{}, testkit.Suspended, true, policy.ByCaller, policy.Change, 1, true, 1, "enable"},
		{"disable refused without allow", policy.Rules{}, testkit.OnCustomer, false, policy.ByCaller, policy.NotAllowed, 0, true, 0, "skipped"},
		{"disable allowed", policy.Rules{AllowDisable: true}, testkit.OnCustomer, false, policy.ByCaller, policy.Change, 1, false, 0, "disable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acr := testkit.NewFixture(t, testkit.AcronisOptions{})
			e := enforce.Enforcer{API: acr.Client, Rules: tt.rules}
			res := e.EnforceID(t.Context(), enforce.IDRequest{ID: tt.tenant, Intent: policy.Intent{Enable: tt.enable, Origin: tt.origin}})
			if res.Err != nil || res.Decision.Outcome != tt.outcome || res.Decision.Reason == "" {
				t.Fatalf("outcome %s (%s), %v; want %s", res.Decision.Outcome, res.Decision.Reason, res.Err, tt.outcome)
			}
			if n := acr.Sim.Count("PUT", "/mfa/status"); n != tt.puts || res.Wrote != (n > 0) {
				t.Errorf("%d PUTs (Wrote %v), want %d", n, res.Wrote, tt.puts)
			}
			if on := acr.MFAOn(t, tt.tenant); on != tt.on {
				t.Errorf("MFA on = %v afterwards, want %v", on, tt.on)
			}
			if res.Changed() != (tt.outcome == policy.Change) || res.UsersWithoutTOTP() != tt.users {
				t.Errorf("Changed() = %v, UsersWithoutTOTP() = %d; want %d users", res.Changed(), res.UsersWithoutTOTP(), tt.users)
			}
			if refused := !tt.enable && !tt.rules.AllowDisable; refused && len(acr.Sim.Requests()) != 0 {
				t.Errorf("a refused disable cost %d requests", len(acr.Sim.Requests()))
			}
			audits, emf := report(t, acr, res, tt.rules.DryRun)
			if len(audits) != 1 || audits[0]["action"] != tt.action || audits[0]["reason"] != res.Decision.Reason ||
				(audits[0]["dry_run"] == true) != tt.rules.DryRun {
				t.Errorf("audit lines %v, want one %s saying %q", audits, tt.action, res.Decision.Reason)
			}
			counted(t, emf, tt.action, tt.users)
			if got := emf.Metrics[telemetry.MetricAcronisRequests]; got != float64(len(acr.Sim.Requests())) {
				t.Errorf("EMF AcronisRequests %v, but %d reached the simulator", got, len(acr.Sim.Requests()))
			}
		})
	}
}

// A caller who names a compliant tenant gets its user counts back, and an
// audit line: its question was answered by Acronis, not by a listing.
func TestEnforceIDCompliantReportsUserCounts(t *testing.T) {
	acr := testkit.NewFixture(t, testkit.AcronisOptions{})
	res := (&enforce.Enforcer{API: acr.Client}).EnforceID(t.Context(), enforce.IDRequest{ID: testkit.OnCustomer, Intent: policy.Intent{Enable: true, Origin: policy.ByCaller}})
	if res.Status.UsersCount != 3 || res.Status.UsersWithTOTPEnabledCount != 3 || !res.Status.UpdateAllowed {
		t.Fatalf("status %+v, want the tenant's user counts", res.Status)
	}
	if res.Quiet() || !res.Requested || res.Tenant.Name != "On Customer" || res.Tenant.Kind != tenant.KindCustomer {
		t.Fatalf("result %+v: an explicitly requested tenant must be audited, by name and kind", res)
	}
}

func TestEnforceIDFailures(t *testing.T) {
	tests := []struct {
		name     string
		faults   sim.Faults
		tenant   string
		rules    policy.Rules
		setup    func(*testkit.Acronis)
		class    error
		reason   string // in the audit reason
		canceled bool
	}{
		{name: "unknown tenant", tenant: testkit.Unknown, class: acronis.ErrNotFound, reason: "acronis: not found: "},
		{name: "tenant the client may not see", tenant: testkit.Outsider, class: acronis.ErrNotAllowed, reason: "acronis: not allowed"},
		{name: "Acronis fails for this tenant", faults: sim.Faults{FailTenants: map[string]int{testkit.Broken: 500}}, tenant: testkit.Broken,
			class: acronis.ErrUpstream, reason: "acronis: upstream"},
		{name: "throttled", faults: sim.Faults{ThrottleEvery: 1}, tenant: testkit.OffCustomer, class: acronis.ErrThrottled, reason: "acronis: throttled"},
		{name: "credentials rejected", setup: func(a *testkit.Acronis) { a.Sim.SetClientSecret("rotated-elsewhere") }, tenant: testkit.OffCustomer,
			class: acronis.ErrUnauthorized, reason: "acronis: credentials rejected: "},
		{name: "deadline", canceled: true, tenant: testkit.OffCustomer, class: acronis.ErrDeadline, reason: "acronis: deadline"},
		// The tenant is read (request 1), its parent is not (2): the exclusions
		// cannot be checked, and nothing is decided without them.
		{name: "exclusions not checked", faults: sim.Faults{ThrottleEvery: 2}, tenant: testkit.OffCustomer,
			rules: policy.Rules{Excluded: policy.NewExclusions([]string{testkit.PartnerB})}, class: acronis.ErrThrottled, reason: "acronis: throttled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acr := testkit.NewFixture(t, testkit.AcronisOptions{Client: acronis.Options{MaxAttempts: 1}})
			acr.Sim.SetFaults(tt.faults)
			if tt.setup != nil {
				tt.setup(acr)
			}
			ctx, cancel := context.WithCancel(t.Context())
			if tt.canceled {
				cancel()
			}
			defer cancel()
			res := (&enforce.Enforcer{API: acr.Client, Rules: tt.rules}).EnforceID(ctx, enforce.IDRequest{ID: tt.tenant, Intent: policy.Intent{Enable: true, Origin: policy.ByCaller}})
			if !errors.Is(res.Err, tt.class) || res.Quiet() || res.Changed() || res.Wrote || acr.Sim.Count("PUT", "/mfa/status") != 0 {
				t.Fatalf("result %+v, want a failure of class %v, audited, nothing written", res, tt.class)
			}
			audits, emf := report(t, acr, res, false)
			if len(audits) != 1 || audits[0]["action"] != "failed" || !strings.HasPrefix(audits[0]["reason"].(string), tt.reason) ||
				audits[0]["error"] != res.Err.Error() || audits[0]["level"] != "ERROR" {
				t.Errorf("audit lines %v, want one ERROR failure whose reason starts %q", audits, tt.reason)
			}
			counted(t, emf, "failed", 0)
		})
	}
}

// A failed PUT may have landed all the same: the switch is read once more, so
// that a change that happened is reported as one, and one that did not stays
// a failure.
func TestEnforceRereadsAfterAFailedPUT(t *testing.T) {
	for _, landed := range []bool{false, true} {
		t.Run(map[bool]string{false: "not landed", true: "landed"}[landed], func(t *testing.T) {
			acr := testkit.NewFixture(t, testkit.AcronisOptions{})
			// Requests 1 and 2 read the tenant and its switch; 3, the PUT,
			// answers 503 without applying it.
			faults := sim.Faults{UnavailableEvery: 3, RetryAfter: 1}
			if landed {
				// Acronis applies the PUT, and a gateway loses its answer.
				faults = sim.Faults{LoseWriteAnswers: []string{testkit.OffCustomer}}
			}
			acr.Sim.SetFaults(faults)
			e := enforce.Enforcer{API: acr.NewClient(acronis.Options{MaxAttempts: 1})}
			res := e.EnforceID(t.Context(), enforce.IDRequest{ID: testkit.OffCustomer, Intent: policy.Intent{Enable: true, Origin: policy.ByCaller}})
			if n := acr.Sim.Count("GET", "/mfa/status"); n != 2 || !res.Wrote {
				t.Fatalf("%d reads of the switch (Wrote %v), want the read before the PUT and one after", n, res.Wrote)
			}
			if landed && (res.Err != nil || !res.Changed() || !tenant.MFAOn(res.Current)) {
				t.Errorf("result %+v: a PUT that landed is a change", res)
			}
			if !landed && (!acronis.Retryable(res.Err) || res.Changed() || res.Current != tenant.MFADisabled) {
				t.Errorf("result %+v: a PUT that did not land is a retryable failure", res)
			}
		})
	}
}

// A tenant from the subtree listing costs no request when the listing already
// shows what to do; a change is confirmed against the switch before writing.
func TestEnforceListed(t *testing.T) {
	tests := []struct {
		name      string
		tenant    string
		rules     policy.Rules
		origin    policy.Origin
		nowOn     bool // someone turned MFA on since the listing
		preview   policy.Outcome
		outcome   policy.Outcome
		requests  bool // Acronis is asked about the tenant
		audited   bool
		afterPUTs int
	}{
		{"compliant", testkit.OnCustomer, policy.Rules{}, policy.ByPolicy, false, policy.Compliant, policy.Compliant, false, false, 0},
		{"unit", testkit.Unit, policy.Rules{}, policy.ByPolicy, false, policy.SkippedInherited, policy.SkippedInherited, false, false, 0},
		{"suspended", testkit.Suspended, policy.Rules{}, policy.ByPolicy, false, policy.SkippedDisabled, policy.SkippedDisabled, false, true, 0},
		{"drifting", testkit.OffCustomer, policy.Rules{}, policy.ByPolicy, false, policy.Change, policy.Change, true, true, 1},
		{"drifting, dry run", testkit.OffCustomer, policy.Rules{DryRun: true}, policy.ByPolicy, false, policy.WouldChange, policy.WouldChange, true, true, 0},
		{"stale listing", testkit.OffCustomer, policy.Rules{}, policy.ByPolicy, true, policy.Change, policy.Compliant, true, true, 0},
		{"locked, found out from the switch", testkit.Locked, policy.Rules{}, policy.ByPolicy, false, policy.Change, policy.NotAllowed, true, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acr := testkit.NewFixture(t, testkit.AcronisOptions{})
			listed, err := acr.Client.Tenant(t.Context(), tt.tenant)
			if err != nil {
				t.Fatal(err)
			}
			if tt.nowOn {
				acr.Sim.SetMFA(tt.tenant, tenant.MFAEnabled)
			}
			acr.Sim.ResetRequests()
			e := enforce.Enforcer{API: acr.Client, Rules: tt.rules}
			req := enforce.Request{Tenant: listed, Intent: policy.Intent{Enable: true, Origin: tt.origin}}
			if d := e.Preview(req); d.Outcome != tt.preview || len(acr.Sim.Requests()) != 0 {
				t.Fatalf("Preview = %s after %d requests, want %s and none", d.Outcome, len(acr.Sim.Requests()), tt.preview)
			}
			res := e.Enforce(t.Context(), req)
			if res.Err != nil || res.Decision.Outcome != tt.outcome || res.Requested != tt.requests || res.Quiet() == tt.audited {
				t.Fatalf("result %+v, want %s (requested %v, audited %v)", res, tt.outcome, tt.requests, tt.audited)
			}
			if got := len(acr.Sim.Requests()) > 0; got != tt.requests {
				t.Errorf("%d requests reached Acronis", len(acr.Sim.Requests()))
			}
			if n := acr.Sim.Count("PUT", "/mfa/status"); n != tt.afterPUTs {
				t.Errorf("%d PUTs, want %d", n, tt.afterPUTs)
			}
			if audits, _ := report(t, acr, res, tt.rules.DryRun); len(audits) != map[bool]int{true: 1}[tt.audited] {
				t.Errorf("audit lines %v, want audited %v", audits, tt.audited)
			}
		})
	}
}

// A failure outside the client's classes is still audited as a failure.
func TestAuditUnexpectedError(t *testing.T) {
	acr := testkit.NewAcronis(t, testkit.AcronisOptions{})
	res := enforce.Result{Tenant: tenant.Tenant{ID: testkit.OffCustomer}, Intent: policy.Intent{Enable: true}, Err: errors.New("boom")}
	audits, emf := report(t, acr, res, false)
	if len(audits) != 1 || audits[0]["reason"] != "unexpected error" || audits[0]["error"] != "boom" {
		t.Errorf("audit lines %v", audits)
	}
	counted(t, emf, "failed", 0)
}
