package testkit

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"acronismfa/internal/acronis/sim"
)

// The fixture tree has every kind of tenant with MFA off: drifting, locked,
// suspended, under an excluded partner.
func TestDriftOf(t *testing.T) {
	all := FixtureTenants()
	d := DriftOf(all, ExcludedPartner)
	want := []string{OffCustomer, Contoso, ContosoHoldings, Twin1, Twin2, Broken, PartnerB, Foldered, Outsider}
	slices.Sort(want)
	if !slices.Equal(d.IDs(), want) || d.Locked != 1 || d.Suspended != 1 {
		t.Errorf("DriftOf = %v, %d locked, %d suspended; want %v, 1, 1", d.IDs(), d.Locked, d.Suspended, want)
	}
	if got := len(DriftOf(all).Fixable); got != len(want)+2 {
		t.Errorf("without exclusions %d fixable, want the excluded partner and its child too (%d)", got, len(want)+2)
	}
}

func TestUserTotalsCountInheritingChildren(t *testing.T) {
	all := append(FixtureTenants(), sim.Tenant{ID: "unit-2", Kind: "unit", ParentID: OffCustomer, UsersCount: 4, UsersWithTOTP: 1})
	off := all[slices.IndexFunc(all, func(x sim.Tenant) bool { return x.ID == OffCustomer })]
	if users, totp := UserTotals(all, off); users != 9 || totp != 3 {
		t.Errorf("UserTotals = %d, %d; want 5+4 users, 2+1 with TOTP", users, totp)
	}
}

func TestChanged(t *testing.T) {
	before := map[string]string{"a": "disabled", "b": "enabled", "c": "disabled"}
	after := map[string]string{"a": "enabled", "b": "enabled", "c": "setup_required"}
	if got := Changed(before, after); !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("Changed = %v", got)
	}
}

func TestRoutes(t *testing.T) {
	got := Routes([]sim.Request{{Method: "GET", Path: "/api/2/tenants"}, {Method: "POST", Path: "/api/2/idp/token"},
		{Method: "GET", Path: "/api/2/tenants/" + Contoso + "/mfa/status"}, {Method: "GET", Path: "/api/2/tenants/" + Twin1 + "/mfa/status"}})
	want := map[string]int{"GET /tenants": 1, "POST /idp/token": 1, "GET /tenants/{id}/mfa/status": 2}
	if !maps.Equal(got, want) {
		t.Errorf("Routes = %v, want %v", got, want)
	}
}

func TestTOTPDebt(t *testing.T) {
	total, tenants := TOTPDebt(AuditLines([]string{
		`{"audit":true,"action":"enable","tenant_name":"Small","users_without_totp":2}`,
		`{"audit":true,"action":"skipped","tenant_name":"Skipped","users_without_totp":50}`,
		`{"audit":true,"action":"would_enable","tenant_id":"id-big","users_without_totp":9}`,
	}))
	if total != 11 || len(tenants) != 2 || tenants[0].String() != "id-big (9)" || tenants[1].String() != "Small (2)" {
		t.Errorf("TOTPDebt = %d, %v; want 11 from the enabled tenants, most first", total, tenants)
	}
}

func TestFailureReason(t *testing.T) {
	lines := []string{
		`{"level":"INFO","message":"mfa audit","message_id":"m1"}`,
		`{"level":"ERROR","message":"message failed","message_id":"m1","reason":"not allowed"}`,
		`{"level":"ERROR","message":"unparseable message","message_id":"m2","error":"bad JSON"}`,
	}
	for id, want := range map[string]string{"m1": "not allowed", "m2": "unparseable message: bad JSON", "m3": ""} {
		if got := FailureReason(lines, id); got != want {
			t.Errorf("FailureReason(%s) = %q, want %q", id, got, want)
		}
	}
}

func TestDriftGrace(t *testing.T) {
	all := FixtureTenants()
	atOnce, notice := DriftOf(all, ExcludedPartner).Grace(all)
	wantAtOnce := []string{ContosoHoldings, Twin1, Twin2, PartnerB, Outsider}
	wantNotice := []string{OffCustomer, Contoso, Broken, Foldered}
	slices.Sort(wantAtOnce)
	slices.Sort(wantNotice)
	if !slices.Equal(IDs(atOnce), wantAtOnce) || !slices.Equal(IDs(notice), wantNotice) {
		t.Errorf("Grace = %v at once, %v notice; want %v, %v", IDs(atOnce), IDs(notice), wantAtOnce, wantNotice)
	}
}

func TestSweepSummary(t *testing.T) {
	const body = `{"root_tenant_id":"r","desired":"enabled","dry_run":false,"tenants_seen":4,"compliant":1,"changed":1,` +
		`"would_change":0,"skipped_inherited":1,"skipped_disabled":0,"skipped_excluded":0,"not_allowed":0,"failed":0,` +
		`"fanned_out":0,"in_grace":1,"notified":1,"users_without_totp":4,"compliance_percent":66.7,"report":"s3://b/k.csv","duration_ms":7}`
	const watch = `{"root_tenant_id":"r","desired":"enabled","dry_run":false,"tenants_seen":1,"compliant":0,"changed":1,` +
		`"would_change":0,"skipped_inherited":0,"skipped_disabled":0,"skipped_excluded":0,"not_allowed":0,"failed":0,` +
		`"fanned_out":0,"in_grace":0,"notified":0,"users_without_totp":4,"compliance_percent":null,"report":null,"duration_ms":7,` +
		`"updated_since":"2026-01-01T00:00:00Z"}`
	metrics := map[string]float64{"TenantsChecked": 4, "TenantsChanged": 1, "TenantsInGrace": 1, "TenantsNotified": 1,
		"UsersWithoutTotp": 4, "SweepDurationMs": 7, "CompliancePercent": 66.7}
	emf := EMF{Metrics: metrics}
	watchEMF := EMF{Metrics: map[string]float64{"TenantsChecked": 1, "TenantsChanged": 1, "UsersWithoutTotp": 4, "SweepDurationMs": 7}}
	lines := []string{`{"message":"sweep started","sweep_id":"s1"}`, `{"audit":true,"action":"enable","users_without_totp":4}`}
	inv := Invocation{Body: []byte(body), EMF: emf, Lines: lines}
	s, err := inv.sweepSummary()
	if err != nil || s.Counts["in_grace"] != 1 || s.RootTenantID != "r" || s.DryRun || *s.CompliancePercent != 66.7 ||
		s.Report != "s3://b/k.csv" || s.SweepID != "s1" {
		t.Fatalf("sweepSummary = %+v, %v", s, err)
	}
	if s, err := (Invocation{Body: []byte(watch), EMF: watchEMF, Lines: lines}).sweepSummary(); err != nil ||
		s.CompliancePercent != nil || s.UpdatedSince == "" || s.Report != "" {
		t.Errorf("watch run: sweepSummary = %+v, %v", s, err)
	}
	withMetric := func(name string, v float64) EMF {
		m := maps.Clone(metrics)
		m[name] = v
		return EMF{Metrics: m}
	}
	for name, bad := range map[string]Invocation{
		"a bucket too many":       {Body: []byte(strings.Replace(body, `"compliant":1`, `"compliant":2`, 1)), EMF: emf, Lines: lines},
		"a field missing":         {Body: []byte(strings.Replace(body, `"fanned_out":0,`, "", 1)), EMF: emf, Lines: lines},
		"a count not a number":    {Body: []byte(strings.Replace(body, `"failed":0`, `"failed":"0"`, 1)), EMF: emf, Lines: lines},
		"compliance miscounted":   {Body: []byte(strings.Replace(body, `66.7`, `66.6`, 1)), EMF: withMetric("CompliancePercent", 66.6), Lines: lines},
		"audit lines disagree":    {Body: inv.Body, EMF: emf},
		"EMF document disagree":   {Body: inv.Body, Lines: lines, EMF: withMetric("TenantsInGrace", 0)},
		"watch run with a report": {Body: []byte(strings.Replace(watch, `"report":null`, `"report":"s3://b/k"`, 1)), EMF: watchEMF, Lines: lines},
	} {
		if _, err := bad.sweepSummary(); err == nil {
			t.Errorf("%s: sweepSummary accepted it", name)
		}
	}
}

func TestNotices(t *testing.T) {
	const grace = `{"event":"grace_started","tenant_id":"t","tenant_name":"T","deadline":"2026-12-06T04:00:00Z","users_count":3,` +
		`"users_without_totp":1,"users":[{"id":"u","login":"l","email":"e","name":"n"}],"users_truncated":false,"sweep_id":"s"}`
	ok := Published{Message: grace, Subject: "MFA on T from 2026-12-06: 1 users must set up TOTP", Event: "grace_started"}
	got, err := Notices([]Published{ok, {Message: `{"event":"sweep_completed","summary":{},"sweep_id":"s"}`, Subject: "done", Event: "sweep_completed"}})
	if err != nil || len(got["grace_started"]) != 1 || got["grace_started"][0].Users[0].Login != "l" || len(got["sweep_completed"]) != 1 {
		t.Fatalf("Notices = %v, %v", got, err)
	}
	for name, p := range map[string]Published{
		"a field missing":      {Message: strings.Replace(grace, `"users_truncated":false,`, "", 1), Subject: ok.Subject, Event: ok.Event},
		"an unknown event":     {Message: strings.Replace(grace, `grace_started`, `graced`, 1), Subject: ok.Subject, Event: "graced"},
		"attribute disagrees":  {Message: grace, Subject: ok.Subject, Event: "enforced"},
		"subject not ASCII":    {Message: grace, Subject: "MFA on Zürich", Event: ok.Event},
		"subject of 100 bytes": {Message: grace, Subject: strings.Repeat("x", 100), Event: ok.Event},
	} {
		if _, err := Notices([]Published{p}); err == nil {
			t.Errorf("%s: Notices accepted it", name)
		}
	}
}

// A rerouted request keeps its signature and leaves the captured one as it was.
func TestReroute(t *testing.T) {
	req := WebhookRequest([]byte("key"), time.Unix(1700000000, 0), "PUT", Contoso, `{"enabled": true}`)
	got := Reroute(req, Twin1)
	if got.RawPath != "/tenants/"+Twin1+"/mfa" || got.RequestContext.HTTP.Path != got.RawPath || got.PathParameters["tenant_id"] != Twin1 ||
		got.Headers["webhook-signature"] != req.Headers["webhook-signature"] || got.Body != req.Body {
		t.Errorf("Reroute = %+v", got)
	}
	if req.PathParameters["tenant_id"] != Contoso || req.RawPath != "/tenants/"+Contoso+"/mfa" {
		t.Errorf("Reroute changed the captured request: %+v", req)
	}
}
