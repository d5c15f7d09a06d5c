package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"acronismfa/internal/testkit"
)

func (d *demo) header(title string) {
	d.step++
	fmt.Fprintf(d.out, "\n%d. %s\n", d.step, title)
}

func (d *demo) printf(format string, args ...any) {
	fmt.Fprintf(d.out, "   "+format+"\n", args...)
}

// table prints label/value pairs, perRow pairs to a row.
func (d *demo) table(perRow int, pairs ...any) {
	for i := 0; i < len(pairs); i += 2 {
		if i%(2*perRow) == 0 {
			fmt.Fprint(d.out, "    ")
		}
		fmt.Fprintf(d.out, " %-18s %-7v", pairs[i], pairs[i+1])
		if (i/2)%perRow == perRow-1 || i+2 >= len(pairs) {
			fmt.Fprintln(d.out)
		}
	}
}

// printEMF shows an invocation's metrics as CloudWatch would get them.
func (d *demo) printEMF(e testkit.EMF) {
	d.printf("metrics (EMF, namespace %s, Function=%s, Trigger=%s):", e.Namespace, e.Dimension("Function"), e.Dimension("Trigger"))
	var pairs []any
	for _, name := range e.Order {
		v := fmt.Sprint(e.Metrics[name])
		if e.Units[name] == "Milliseconds" {
			v += " ms"
		}
		pairs = append(pairs, name, v)
	}
	d.table(4, pairs...)
}

// printSummary shows a sweep's summary, its counts in the order of docs/reference.md.
func (d *demo) printSummary(s testkit.SweepSummary) {
	d.printf("answer: summary (root %s, desired %s, dry_run %v)", s.RootTenantID, s.Desired, s.DryRun)
	var pairs []any
	for _, k := range testkit.SweepCounts {
		pairs = append(pairs, k, s.Counts[k])
	}
	d.table(3, pairs...)
}

// printJSON shows a JSON document indented under the step.
func (d *demo) printJSON(label, doc string) {
	var buf bytes.Buffer
	if json.Indent(&buf, []byte(doc), "     ", "  ") != nil {
		buf.WriteString(doc)
	}
	d.printf("%s", label)
	fmt.Fprintf(d.out, "     %s\n", buf.Bytes())
}

// most names the five tenants with the most users to set up TOTP.
func most(tenants []testkit.TenantUsers) string {
	if len(tenants) == 0 {
		return "none"
	}
	var names []string
	for _, t := range tenants[:min(len(tenants), 5)] {
		names = append(names, t.String())
	}
	return strings.Join(names, ", ")
}

// writeLogs writes what each child process wrote, its lines prefixed with its
// name, to path.
func writeLogs(path string, names []string, outputs map[string]*testkit.Output) error {
	var buf bytes.Buffer
	for _, name := range names {
		if out := outputs[name]; out != nil {
			for _, line := range out.Lines() {
				fmt.Fprintf(&buf, "%-7s | %s\n", name, line)
			}
		}
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}
