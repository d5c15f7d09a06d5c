package policy

import (
	"strings"
	"testing"
	"time"

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

func TestGrace(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	week := 7 * 24 * time.Hour
	rules := Rules{Grace: week}
	drifting := Facts{Kind: tenant.KindCustomer, Enabled: true, UpdateAllowed: true, UsersWithoutTOTP: 3, Now: now}
	with := func(mod func(*Facts)) Facts { f := drifting; mod(&f); return f }
	byPolicy := Intent{Enable: true, Origin: ByPolicy}
	noticed := func(ago time.Duration) func(*Facts) {
		return func(f *Facts) { f.Notice = &Notice{NoticedAt: now.Add(-ago)} }
	}
	tests := []struct {
		name     string
		rules    Rules
		facts    Facts
		intent   Intent
		outcome  Outcome
		deadline time.Time
	}{
		{"users lack TOTP: notice first", rules, drifting, byPolicy, Notify, now.Add(week)},
		{"dry run notifies too (the caller writes nothing)", Rules{Grace: week, DryRun: true}, drifting, byPolicy, Notify, now.Add(week)},
		{"nobody lacks TOTP: enforced at once", rules, with(func(f *Facts) { f.UsersWithoutTOTP = 0 }), byPolicy, Change, time.Time{}},
		{"users unknown yet: confirm first", rules, with(func(f *Facts) { f.UsersWithoutTOTP = -1 }), byPolicy, Change, time.Time{}},
		{"in grace", rules, with(noticed(time.Hour)), byPolicy, InGrace, now.Add(week - time.Hour)},
		{"in grace whatever the users", rules, with(func(f *Facts) { noticed(time.Hour)(f); f.UsersWithoutTOTP = -1 }), byPolicy, InGrace, now.Add(week - time.Hour)},
		{"deadline reached", rules, with(noticed(week)), byPolicy, Change, time.Time{}},
		{"deadline follows the current grace", Rules{Grace: time.Hour}, with(noticed(2 * time.Hour)), byPolicy, Change, time.Time{}},
		{"grace 0 ends every grace", Rules{}, with(noticed(time.Minute)), byPolicy, Change, time.Time{}},
		{"a notice on its way", rules, with(func(f *Facts) { f.Notice = &Notice{} }), byPolicy, InGrace, time.Time{}},
		{"a request by name never waits", rules, drifting, Intent{Enable: true, Origin: ByCaller}, Change, time.Time{}},
		{"disabling never waits", Rules{Grace: week, AllowDisable: true}, with(func(f *Facts) { f.MFAOn = true }), Intent{Origin: ByPolicy}, Change, time.Time{}},
		{"compliant with a notice", rules, with(func(f *Facts) { noticed(time.Hour)(f); f.MFAOn = true }), byPolicy, Compliant, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.rules.Decide(tt.facts, tt.intent)
			if d.Outcome != tt.outcome || !d.Deadline.Equal(tt.deadline) || d.Reason == "" {
				t.Fatalf("Decide = %+v, want %s with deadline %s", d, tt.outcome, tt.deadline)
			}
			// A dry run's reason never claims a notice it did not give.
			if d.Outcome == Notify && strings.Contains(d.Reason, "would be given") != tt.rules.DryRun {
				t.Errorf("reason %q of a Notify with dry run %v", d.Reason, tt.rules.DryRun)
			}
		})
	}
}
