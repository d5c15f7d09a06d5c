package cli

import (
	"fmt"
	"text/tabwriter"

	"acronismfa/internal/sweep"
)

// table prints label, value pairs as two aligned columns.
func (s *session) table(pairs ...string) {
	tw := tabwriter.NewWriter(s.env.Stdout, 0, 0, 2, ' ', 0)
	for i := 0; i+1 < len(pairs); i += 2 {
		fmt.Fprintf(tw, "%s\t%s\n", pairs[i], pairs[i+1])
	}
	_ = tw.Flush()
}

// printSummary prints a sweep's summary for people.
func (s *session) printSummary(sum sweep.Summary, run sweep.Run) {
	kind := "Sweep"
	if run.Watch() {
		kind = "Watch run (tenants updated since " + sum.UpdatedSince + ")"
	}
	if sum.DryRun {
		kind += ", dry run"
	}
	fmt.Fprintf(s.env.Stdout, "%s of %s, desired %s, in %d ms\n\n", kind, sum.RootTenantID, sum.Desired, sum.DurationMs)
	pairs := []string{"tenants seen", fmt.Sprint(sum.TenantsSeen)}
	for _, b := range []struct {
		name string
		n    int
	}{{"compliant", sum.Compliant}, {"changed", sum.Changed}, {"would change", sum.WouldChange},
		{"in grace", sum.InGrace}, {"notified now", sum.Notified}, {"inherited (units, folders)", sum.SkippedInherited},
		{"suspended", sum.SkippedDisabled}, {"excluded", sum.SkippedExcluded}, {"not allowed", sum.NotAllowed},
		{"failed", sum.Failed}, {"sent to the worker", sum.FannedOut}, {"users who must set up TOTP", sum.UsersWithoutTOTP}} {
		if b.n != 0 {
			pairs = append(pairs, b.name, fmt.Sprint(b.n))
		}
	}
	if sum.CompliancePercent != nil {
		pairs = append(pairs, "compliance", fmt.Sprintf("%.1f%%", *sum.CompliancePercent))
	}
	if sum.Report != nil {
		pairs = append(pairs, "report", *sum.Report)
	}
	s.table(pairs...)
}
