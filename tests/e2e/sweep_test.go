//go:build integration

package e2e

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/testkit"
)

// sweep invokes a sweep and checks its summary (testkit checks it against the
// contract, the audit lines and the EMF document) against the tree: root,
// desired state, dry run and one count per tenant.
func (w *world) sweep(t *testing.T, fn *testkit.Function, event []byte, dryRun bool) (testkit.Invocation, map[string]int) {
	t.Helper()
	inv, s, err := fn.Sweep(t.Context(), event)
	if err != nil {
		t.Fatal(err)
	}
	if s.RootTenantID != w.sim.RootID() || s.Desired != "enabled" {
		t.Errorf("summary root %s desired %s, want %s enabled", s.RootTenantID, s.Desired, w.sim.RootID())
	}
	if want := len(w.sim.All()); s.Counts["tenants_seen"] != want {
		t.Errorf("tenants_seen %d, want the tree's %d", s.Counts["tenants_seen"], want)
	}
	checkEMF(t, inv.EMF, "sweep", "schedule")
	if s.DryRun != dryRun {
		t.Errorf("summary dry_run %v, want %v", s.DryRun, dryRun)
	}
	return inv, s.Counts
}

// want compares counts of a summary.
func want(t *testing.T, step string, got map[string]int, counts map[string]int) {
	t.Helper()
	for k, v := range counts {
		if got[k] != v {
			t.Errorf("%s: %s %d, want %d (summary %v)", step, k, got[k], v, got)
		}
	}
}

func TestSweep(t *testing.T) {
	t.Parallel()
	w := newWorld(t, sim.TreeSpec{Seed: 37, Size: 300})
	all := w.sim.All()
	// One drifting customer is excluded: it and its units stay as they are.
	i := slices.IndexFunc(testkit.DriftOf(all).Fixable, func(d sim.Tenant) bool { return d.Kind == "customer" })
	if i < 0 {
		t.Fatal("the generated tree has no drifting customer")
	}
	excluded := testkit.DriftOf(all).Fixable[i]
	drift := testkit.DriftOf(all, excluded.ID)
	users := 0
	for _, d := range drift.Fixable {
		u, totp := testkit.UserTotals(all, d)
		users += u - totp
	}
	fn := w.start(t, "sweep", map[string]string{"EXCLUDED_TENANT_IDS": excluded.ID, "SWEEP_CONCURRENCY": "4"})

	// A dry run reports and writes nothing.
	before := testkit.MFAStates(w.sim)
	inv, n := w.sweep(t, fn, readEvent(t, "sweep-dry-run.json"), true)
	want(t, "dry run", n, map[string]int{"would_change": len(drift.Fixable), "changed": 0, "failed": 0, "users_without_totp": users})
	if got := w.sim.Count("PUT", "/mfa/status"); got != 0 || !maps.Equal(before, testkit.MFAStates(w.sim)) {
		t.Errorf("the dry run changed the tree (%d PUTs)", got)
	}
	var would []string
	for _, a := range inv.Audits() {
		if a["action"] == "would_enable" {
			would = append(would, str(a["tenant_id"]))
		}
	}
	if slices.Sort(would); !slices.Equal(would, drift.IDs()) {
		t.Errorf("would_enable audit lines for %d tenants, want the %d drifting ones", len(would), len(drift.Fixable))
	}

	// The scheduled event brings exactly the drifting tenants into line, one PUT each.
	_, n = w.sweep(t, fn, readEvent(t, "sweep-scheduled.json"), false)
	want(t, "sweep", n, map[string]int{"changed": len(drift.Fixable), "would_change": 0, "failed": 0, "fanned_out": 0, "users_without_totp": users})
	if n["skipped_excluded"] < 1 {
		t.Errorf("skipped_excluded %d, want the excluded customer counted", n["skipped_excluded"])
	}
	if got := testkit.Changed(before, testkit.MFAStates(w.sim)); !slices.Equal(got, drift.IDs()) {
		t.Errorf("the sweep changed %d tenants, want exactly the %d drifting ones", len(got), len(drift.Fixable))
	}
	if got := w.sim.Count("PUT", "/mfa/status"); got != len(drift.Fixable) {
		t.Errorf("%d PUTs for %d drifting tenants", got, len(drift.Fixable))
	}
	compliant := n["compliant"] + n["changed"]

	// EventBridge Scheduler's bare input finds nothing left to do.
	_, n = w.sweep(t, fn, readEvent(t, "sweep-scheduler.json"), false)
	want(t, "second sweep", n, map[string]int{"changed": 0, "would_change": 0, "failed": 0, "compliant": compliant})

	checkLogs(t, fn, "sweep", "schedule", true)
}

// A sweep over more tenants than SWEEP_INLINE_LIMIT hands the drifting ones to
// the queue; the worker, fed what really landed in SQS, enforces them.
func TestSweepFanOutThroughQueue(t *testing.T) {
	t.Parallel()
	w := newWorld(t, sim.TreeSpec{Seed: 41, Size: 200})
	drift := testkit.DriftOf(w.sim.All())
	if len(drift.Fixable) == 0 {
		t.Fatal("the generated tree does not drift")
	}
	sweepFn := w.start(t, "sweep", map[string]string{"SWEEP_INLINE_LIMIT": "50"})
	workerFn := w.start(t, "worker", nil)

	_, n := w.sweep(t, sweepFn, []byte(`{}`), false)
	want(t, "fan-out", n, map[string]int{"fanned_out": len(drift.Fixable), "changed": 0, "failed": 0})
	if got := w.sim.Count("PUT", "/mfa/status"); got != 0 {
		t.Errorf("the fanning sweep made %d PUTs itself", got)
	}

	records := w.receive(t, len(drift.Fixable))
	for batch := range slices.Chunk(records, 10) { // SQS's batch size for the worker
		if _, failed, err := workerFn.Worker(t.Context(), events.SQSEvent{Records: batch}); err != nil || len(failed) != 0 {
			t.Errorf("worker failed fanned-out messages %v (%v)", failed, err)
		}
	}
	if left := testkit.DriftOf(w.sim.All()); len(left.Fixable) != 0 {
		t.Errorf("%d tenants still drift after the worker ran the fan-out", len(left.Fixable))
	}
	checkLogs(t, sweepFn, "sweep", "schedule", true)
	checkLogs(t, workerFn, "worker", "sqs", true)
}

// receive takes n messages off the queue, as SQS records for the worker.
func (w *world) receive(t *testing.T, n int) []events.SQSMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	client := sqs.NewFromConfig(w.stack.AWS)
	var records []events.SQSMessage
	seen := map[string]bool{}
	for len(records) < n {
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(w.stack.QueueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 60,
		})
		if err != nil {
			t.Fatalf("receive from the queue after %d of %d messages: %v", len(records), n, err)
		}
		for _, m := range out.Messages {
			if id := aws.ToString(m.MessageId); !seen[id] {
				seen[id] = true
				records = append(records, testkit.SQSRecord(id, aws.ToString(m.Body)))
			}
		}
	}
	return records
}
