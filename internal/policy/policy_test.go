package policy

import (
	"testing"

	"acronismfa/internal/tenant"
)

func TestDecide(t *testing.T) {
	customer := Facts{Kind: tenant.KindCustomer, Enabled: true, UpdateAllowed: true}
	with := func(mod func(*Facts)) Facts { f := customer; mod(&f); return f }

	tests := []struct {
		name     string
		rules    Rules
		facts    Facts
		want     bool
		explicit bool
		outcome  Outcome
	}{
		{"off customer is enabled", Rules{}, customer, true, false, Change},
		{"on customer is compliant", Rules{}, with(func(f *Facts) { f.MFAOn = true }), true, false, Compliant},
		{"dry run only reports", Rules{DryRun: true}, customer, true, false, WouldChange},
		{"dry run still sees compliance", Rules{DryRun: true}, with(func(f *Facts) { f.MFAOn = true }), true, false, Compliant},
		{"partner is enforced too", Rules{}, with(func(f *Facts) { f.Kind = tenant.KindPartner }), true, false, Change},
		{"unit inherits", Rules{}, with(func(f *Facts) { f.Kind = tenant.KindUnit }), true, false, SkippedInherited},
		{"folder inherits", Rules{}, with(func(f *Facts) { f.Kind = tenant.KindFolder }), true, true, SkippedInherited},
		{"suspended tenant left alone by policy", Rules{}, with(func(f *Facts) { f.Enabled = false }), true, false, SkippedDisabled},
		{"suspended tenant changed when asked", Rules{}, with(func(f *Facts) { f.Enabled = false }), true, true, Change},
		{"excluded wins over everything but the disable guard", Rules{}, with(func(f *Facts) { f.Excluded = true; f.Kind = tenant.KindUnit }), true, true, SkippedExcluded},
		{"update_allowed false refused", Rules{}, with(func(f *Facts) { f.UpdateAllowed = false }), true, false, NotAllowed},
		{"update_allowed false but compliant", Rules{}, with(func(f *Facts) { f.UpdateAllowed = false; f.MFAOn = true }), true, false, Compliant},
		{"disable refused without allow", Rules{}, with(func(f *Facts) { f.MFAOn = true }), false, true, NotAllowed},
		{"disable refused even when already off", Rules{}, customer, false, true, NotAllowed},
		{"disable refused even when excluded", Rules{}, with(func(f *Facts) { f.Excluded = true }), false, true, NotAllowed},
		{"disable allowed", Rules{AllowDisable: true}, with(func(f *Facts) { f.MFAOn = true }), false, true, Change},
		{"disable dry run", Rules{AllowDisable: true, DryRun: true}, with(func(f *Facts) { f.MFAOn = true }), false, false, WouldChange},
		{"disable already off", Rules{AllowDisable: true}, customer, false, false, Compliant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			origin := ByPolicy
			if tt.explicit {
				origin = ByCaller
			}
			d := tt.rules.Decide(tt.facts, Intent{Enable: tt.want, Origin: origin})
			if d.Outcome != tt.outcome {
				t.Fatalf("Decide = %s (%s), want %s", d.Outcome, d.Reason, tt.outcome)
			}
			if d.Reason == "" {
				t.Fatal("a decision without a reason cannot be audited")
			}
		})
	}
}

func TestExclusionsIgnoreCase(t *testing.T) {
	e := NewExclusions([]string{"6F1E2D3C-0000-4000-8000-000000000001"})
	if !e.Has("6f1e2d3c-0000-4000-8000-000000000001") {
		t.Fatal("an excluded id in another case was not recognised")
	}
	if e.Has("6f1e2d3c-0000-4000-8000-000000000002") {
		t.Fatal("an id that was not listed is excluded")
	}
}

func TestSkippedOutcomes(t *testing.T) {
	for o, skipped := range map[Outcome]bool{
		SkippedInherited: true, SkippedDisabled: true, SkippedExcluded: true,
		Compliant: false, Change: false, WouldChange: false, NotAllowed: false,
	} {
		if o.Skipped() != skipped {
			t.Errorf("%s.Skipped() = %v", o, !skipped)
		}
	}
}
