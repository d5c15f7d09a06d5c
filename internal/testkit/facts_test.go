package testkit

import (
	"slices"
	"strings"
	"testing"

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

func TestSweepSummary(t *testing.T) {
	const body = `{"root_tenant_id":"r","desired":"enabled","dry_run":false,"tenants_seen":3,"compliant":1,"changed":1,` +
		`"would_change":0,"skipped_inherited":1,"skipped_disabled":0,"skipped_excluded":0,"not_allowed":0,"failed":0,` +
		`"fanned_out":0,"users_without_totp":4,"duration_ms":7}`
	emf := EMF{Metrics: map[string]float64{"TenantsChecked": 3, "TenantsChanged": 1, "UsersWithoutTotp": 4, "SweepDurationMs": 7}}
	audit := `{"audit":true,"action":"enable","users_without_totp":4}`
	inv := Invocation{Body: []byte(body), EMF: emf, Lines: []string{audit}}
	if s, err := inv.sweepSummary(); err != nil || s.Counts["changed"] != 1 || s.RootTenantID != "r" || s.DryRun {
		t.Fatalf("sweepSummary = %+v, %v", s, err)
	}
	for name, bad := range map[string]Invocation{
		"a bucket too many":     {Body: []byte(strings.Replace(body, `"compliant":1`, `"compliant":2`, 1)), EMF: emf, Lines: inv.Lines},
		"a field missing":       {Body: []byte(strings.Replace(body, `"fanned_out":0,`, "", 1)), EMF: emf, Lines: inv.Lines},
		"a count not a number":  {Body: []byte(strings.Replace(body, `"failed":0`, `"failed":"0"`, 1)), EMF: emf, Lines: inv.Lines},
		"audit lines disagree":  {Body: inv.Body, EMF: emf},
		"EMF document disagree": {Body: inv.Body, Lines: inv.Lines, EMF: EMF{Metrics: map[string]float64{"TenantsChecked": 3}}},
	} {
		if _, err := bad.sweepSummary(); err == nil {
			t.Errorf("%s: sweepSummary accepted it", name)
		}
	}
}
