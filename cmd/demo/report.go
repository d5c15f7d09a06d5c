package main

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"acronismfa/internal/testkit"
)

func (d *demo) header(title string) {
	d.step++
	fmt.Fprintf(d.out, "\n%d. %s\n", d.step, title)
}

func (d *demo) printf(format string, args ...any) { fmt.Fprintf(d.out, "   "+format+"\n", args...) }

// table prints label/value pairs, perRow pairs to a row.
func (d *demo) table(perRow int, pairs ...any) {
	for row := range slices.Chunk(pairs, 2*perRow) {
		var line strings.Builder
		for i := 0; i < len(row); i += 2 {
			fmt.Fprintf(&line, " %-18s %-7v", row[i], row[i+1])
		}
		fmt.Fprintf(d.out, "    %s\n", line.String())
	}
}

// printEMF shows an invocation's metrics as CloudWatch would get them.
func (d *demo) printEMF(e testkit.EMF) {
	d.printf("metrics (EMF, namespace %s, Function=%s, Trigger=%s):", e.Namespace, e.Dimension("Function"), e.Dimension("Trigger"))
	var pairs []any
	for _, name := range e.Order {
		pairs = append(pairs, name, fmt.Sprint(e.Metrics[name])+map[string]string{"Milliseconds": " ms", "Percent": " %"}[e.Units[name]])
	}
	d.table(4, pairs...)
}

// printSummary shows a sweep's summary, its counts in the order of docs/reference.md.
func (d *demo) printSummary(s testkit.SweepSummary) {
	d.printf("answer: summary (root %s, desired %s, dry_run %v%s)", s.RootTenantID, s.Desired, s.DryRun,
		strings.TrimSuffix(", updated_since "+s.UpdatedSince, ", updated_since "))
	var pairs []any
	for _, k := range testkit.SweepCounts {
		pairs = append(pairs, k, s.Counts[k])
	}
	if p := s.CompliancePercent; p != nil {
		pairs = append(pairs, "compliance_percent", *p)
	}
	d.table(3, pairs...)
}

// printReport shows where a full sweep's report is, its header and its first
// row of a tenant whose mfa/status the sweep read (or its first row).
func (d *demo) printReport(r testkit.Report) {
	if r.URI != "" {
		d.printf("report: %s, %d rows (one per tenant);\n           %slatest.csv holds the same bytes. The first lines:", r.URI, len(r.Rows), testkit.ReportPrefix)
		lines := strings.Split(string(r.Bytes), "\r\n")
		read := max(1, 1+slices.IndexFunc(r.Rows, func(row map[string]string) bool { return row["users_count"] != "" }))
		fmt.Fprintf(d.out, "          %s\n          %s\n", lines[0], lines[read])
	}
}

// printNotices shows the notices the topic's subscriber received: how many of
// each kind, and the first two of each.
func (d *demo) printNotices(byEvent map[string][]testkit.Notice) {
	for _, event := range []string{"grace_started", "enforced", "sweep_completed"} {
		if len(byEvent[event]) > 0 {
			d.printf("SNS: %d %s notices, as the topic's subscriber queue received them; the first:", len(byEvent[event]), event)
		}
		for _, n := range byEvent[event][:min(len(byEvent[event]), 2)] {
			d.printf("  subject %q, tenant_id %q", n.Subject, n.TenantID)
			d.printf("    %s", map[string]string{"grace_started": fmt.Sprintf("deadline %s, %d of %d users without TOTP, %d named (users_truncated %v): %s",
				n.Deadline.Format(time.RFC3339), n.UsersWithoutTOTP, n.UsersCount, len(n.Users), n.UsersTruncated,
				list(n.Users, 2, func(u testkit.NoticeUser) string { return fmt.Sprintf("%s (%s) <%s>", u.Login, u.Name, u.Email) })),
				"enforced":        fmt.Sprintf("notified_at %s, %d users without TOTP", n.NotifiedAt.Format(time.RFC3339), n.UsersWithoutTOTP),
				"sweep_completed": "summary " + string(n.Summary)}[event])
		}
	}
}

// list shows the first n of items, "none" when there is none.
func list[T any](items []T, n int, show func(T) string) string {
	var out []string
	for _, it := range items[:min(len(items), n)] {
		out = append(out, show(it))
	}
	return cmp.Or(strings.Join(out, ", ")+map[bool]string{true: ", …"}[len(items) > n], "none")
}

// writeLogs writes what each process wrote, its lines prefixed with its name,
// to path.
func writeLogs(path string, outputs map[string]*testkit.Output) error {
	var buf bytes.Buffer
	for _, name := range slices.Sorted(maps.Keys(outputs)) {
		for _, line := range outputs[name].Lines() {
			fmt.Fprintf(&buf, "%-10s | %s\n", name, line)
		}
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}
