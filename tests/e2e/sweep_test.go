//go:build integration

package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/testkit"
)

// sweep runs a sweep and checks it against want (see testkit.Local.RunSweep:
// counts, switches, requests, its report in S3, its notices), the root and the
// desired state, and its EMF document.
func (w *world) sweep(t *testing.T, fn *testkit.Function, event []byte, want testkit.SweepExpect) testkit.SweepRun {
	t.Helper()
	r, err := w.local.RunSweep(t.Context(), fn, event, want)
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Summary; s.RootTenantID != w.sim.RootID() || s.Desired != "enabled" {
		t.Errorf("summary root %s desired %s, want %s enabled", s.RootTenantID, s.Desired, w.sim.RootID())
	}
	metrics := []string{"SweepDurationMs", "CompliancePercent", "ReportFailures"}
	if want.Seen != 0 {
		metrics = metrics[:1] // a watch run
	}
	checkEMF(t, r.EMF, "sweep", "schedule", metrics...)
	if r.EMF.Metrics["ReportFailures"] != 0 {
		t.Errorf("EMF ReportFailures %v", r.EMF.Metrics["ReportFailures"])
	}
	return r
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

	// A dry run reports and changes nothing.
	r := w.sweep(t, fn, readEvent(t, "sweep-dry-run.json"), testkit.SweepExpect{DryRun: true, Enable: drift.IDs()})
	want(t, "dry run", r.Summary.Counts, map[string]int{"users_without_totp": users})
	var would []string
	for _, a := range r.Audits() {
		if a["action"] == "would_enable" {
			would = append(would, str(a["tenant_id"]))
		}
	}
	if slices.Sort(would); !slices.Equal(would, drift.IDs()) {
		t.Errorf("would_enable audit lines for %d tenants, want the %d drifting ones", len(would), len(drift.Fixable))
	}

	// The scheduled event brings exactly the drifting tenants into line, one
	// PUT each, and publishes its digest.
	r = w.sweep(t, fn, readEvent(t, "sweep-scheduled.json"), testkit.SweepExpect{Enable: drift.IDs(), Notices: map[string][]string{}})
	n := r.Summary.Counts
	want(t, "sweep", n, map[string]int{"fanned_out": 0, "users_without_totp": users})
	if n["skipped_excluded"] < 1 {
		t.Errorf("skipped_excluded %d, want the excluded customer counted", n["skipped_excluded"])
	}

	// EventBridge Scheduler's bare input finds nothing left to do.
	r = w.sweep(t, fn, readEvent(t, "sweep-scheduler.json"), testkit.SweepExpect{Notices: map[string][]string{}})
	want(t, "second sweep", r.Summary.Counts, map[string]int{"compliant": n["compliant"] + n["changed"]})

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

	// The sweep itself makes no PUT: RunSweep wants none, since it enables none.
	r := w.sweep(t, sweepFn, []byte(`{}`), testkit.SweepExpect{Notices: map[string][]string{}})
	want(t, "fan-out", r.Summary.Counts, map[string]int{"fanned_out": len(drift.Fixable)})

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
