package e2e

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/testkit"
)

// summaryKeys are the fields of the sweep summary, contract section 6.
var summaryKeys = []string{
	"root_tenant_id", "desired", "dry_run", "tenants_seen", "compliant", "changed", "would_change",
	"skipped_inherited", "skipped_disabled", "skipped_excluded", "not_allowed", "failed", "fanned_out",
	"users_without_totp", "duration_ms",
}

// buckets are the summary fields each listed tenant lands in exactly one of.
var buckets = []string{
	"compliant", "changed", "would_change", "skipped_inherited", "skipped_disabled",
	"skipped_excluded", "not_allowed", "failed", "fanned_out",
}

// sweepSummary decodes and checks a sweep's answer: every field, and every
// listed tenant in exactly one bucket.
func sweepSummary(t *testing.T, inv invocation, st *stack) map[string]float64 {
	t.Helper()
	var raw map[string]any
	if err := json.Unmarshal(inv.body, &raw); err != nil {
		t.Fatalf("sweep answer %s: %v", inv.body, err)
	}
	if got := slices.Sorted(maps.Keys(raw)); !slices.Equal(got, slices.Sorted(slices.Values(summaryKeys))) {
		t.Fatalf("summary fields %v, want %v (answer %s)", got, summaryKeys, inv.body)
	}
	if raw["root_tenant_id"] != st.sim.RootID() || raw["desired"] != "enabled" {
		t.Errorf("summary root %v desired %v, want %s enabled", raw["root_tenant_id"], raw["desired"], st.sim.RootID())
	}
	n := map[string]float64{}
	for k, v := range raw {
		if f, ok := v.(float64); ok {
			n[k] = f
		}
	}
	if want := len(st.sim.All()); n["tenants_seen"] != float64(want) {
		t.Errorf("tenants_seen %v, want the tree's %d", n["tenants_seen"], want)
	}
	sum := 0.0
	for _, b := range buckets {
		sum += n[b]
	}
	if sum != n["tenants_seen"] {
		t.Errorf("buckets add up to %v, tenants_seen is %v: %s", sum, n["tenants_seen"], inv.body)
	}
	checkEMF(t, inv.emf, "sweep", "schedule", true)
	for metric, field := range map[string]string{"TenantsChecked": "tenants_seen", "TenantsChanged": "changed",
		"TenantsWouldChange": "would_change", "UsersWithoutTotp": "users_without_totp", "SweepDurationMs": "duration_ms"} {
		if inv.emf.Metrics[metric] != n[field] {
			t.Errorf("EMF %s %v, summary %s %v", metric, inv.emf.Metrics[metric], field, n[field])
		}
	}
	return n
}

func TestSweep(t *testing.T) {
	t.Parallel()
	st := newStack(t, sim.TreeSpec{Seed: 37, Size: 300})
	all := st.sim.All()
	// One drifting customer is excluded: it and its units stay as they are.
	var excluded sim.Tenant
	for _, d := range drifting(all) {
		if d.Kind == "customer" {
			excluded = d
			break
		}
	}
	if excluded.ID == "" {
		t.Fatal("the generated tree has no drifting customer")
	}
	drift := drifting(all, excluded.ID)
	wantUsers := 0
	for _, d := range drift {
		wantUsers += usersWithoutTOTP(all, d)
	}
	if len(drift) == 0 {
		t.Fatal("the generated tree does not drift")
	}
	fn := start(t, "sweep", st.env(map[string]string{"EXCLUDED_TENANT_IDS": excluded.ID, "SWEEP_CONCURRENCY": "4"}))

	t.Run("dry run reports and writes nothing", func(t *testing.T) {
		before := mfaStates(st.sim)
		inv := invoke(t, fn, readEvent(t, "sweep-dry-run.json"))
		n := sweepSummary(t, inv, st)
		if n["would_change"] != float64(len(drift)) || n["changed"] != 0 {
			t.Errorf("dry run: would_change %v changed %v, want %d and 0", n["would_change"], n["changed"], len(drift))
		}
		if n["users_without_totp"] != float64(wantUsers) {
			t.Errorf("dry run: users_without_totp %v, want %d", n["users_without_totp"], wantUsers)
		}
		if n["failed"] != 0 {
			t.Errorf("dry run: %v failed", n["failed"])
		}
		var raw map[string]any
		_ = json.Unmarshal(inv.body, &raw)
		if raw["dry_run"] != true {
			t.Errorf("dry run summary says dry_run %v", raw["dry_run"])
		}
		if got := st.sim.Count("PUT", "/mfa/status"); got != 0 {
			t.Errorf("dry run made %d PUTs", got)
		}
		if !maps.Equal(before, mfaStates(st.sim)) {
			t.Error("dry run changed the tree")
		}
		would := 0
		for _, m := range testkit.AuditLines(inv.lines) {
			if m["action"] == "would_enable" {
				would++
			}
		}
		if would != len(drift) {
			t.Errorf("%d would_enable audit lines, want %d", would, len(drift))
		}
	})

	var compliantAfter float64
	t.Run("scheduled event brings the tree into line", func(t *testing.T) {
		inv := invoke(t, fn, readEvent(t, "sweep-scheduled.json"))
		n := sweepSummary(t, inv, st)
		if n["changed"] != float64(len(drift)) || n["would_change"] != 0 || n["failed"] != 0 || n["fanned_out"] != 0 {
			t.Errorf("changed %v would_change %v failed %v fanned_out %v, want %d, 0, 0, 0",
				n["changed"], n["would_change"], n["failed"], n["fanned_out"], len(drift))
		}
		if n["users_without_totp"] != float64(wantUsers) {
			t.Errorf("users_without_totp %v, want %d", n["users_without_totp"], wantUsers)
		}
		if n["skipped_excluded"] < 1 {
			t.Errorf("skipped_excluded %v, want the excluded customer counted", n["skipped_excluded"])
		}
		if got := st.sim.Count("PUT", "/mfa/status"); got != len(drift) {
			t.Errorf("%d PUTs for %d drifting tenants", got, len(drift))
		}
		now := st.sim.All()
		if left := drifting(now, excluded.ID); len(left) != 0 {
			t.Errorf("%d tenants still drift after the sweep, first %+v", len(left), left[0])
		}
		if got := mustGet(t, st.sim, excluded.ID).MFAStatus; got != excluded.MFAStatus {
			t.Errorf("the excluded customer went from %q to %q", excluded.MFAStatus, got)
		}
		compliantAfter = n["compliant"] + n["changed"]
	})

	t.Run("Scheduler input finds nothing left to do", func(t *testing.T) {
		inv := invoke(t, fn, readEvent(t, "sweep-scheduler.json"))
		n := sweepSummary(t, inv, st)
		if n["changed"] != 0 || n["would_change"] != 0 || n["failed"] != 0 || n["compliant"] != compliantAfter {
			t.Errorf("second sweep: changed %v would_change %v failed %v compliant %v, want 0, 0, 0, %v",
				n["changed"], n["would_change"], n["failed"], n["compliant"], compliantAfter)
		}
	})

	fn.Stop()
	checkLogs(t, fn.Output().Lines(), "sweep", "schedule", true)
}

// A sweep over more tenants than SWEEP_INLINE_LIMIT hands the drifting ones to
// the queue; the worker, fed what really landed in SQS, enforces them.
func TestSweepFanOutThroughQueue(t *testing.T) {
	t.Parallel()
	st := newStack(t, sim.TreeSpec{Seed: 41, Size: 200})
	drift := drifting(st.sim.All())
	if len(drift) == 0 {
		t.Fatal("the generated tree does not drift")
	}
	sweepFn := start(t, "sweep", st.env(map[string]string{"ENFORCE_QUEUE_URL": st.queueURL, "SWEEP_INLINE_LIMIT": "50"}))
	workerFn := start(t, "worker", st.env(nil))

	inv := invoke(t, sweepFn, []byte(`{}`))
	n := sweepSummary(t, inv, st)
	if n["fanned_out"] != float64(len(drift)) || n["changed"] != 0 || n["failed"] != 0 {
		t.Fatalf("fanned_out %v changed %v failed %v, want %d, 0, 0", n["fanned_out"], n["changed"], n["failed"], len(drift))
	}
	if got := st.sim.Count("PUT", "/mfa/status"); got != 0 {
		t.Errorf("the fanning sweep made %d PUTs itself", got)
	}

	records := receiveAll(t, st, len(drift))
	var failed []string
	for batch := range slices.Chunk(records, 10) { // SQS's batch size for the worker
		failed = append(failed, failedIDs(t, invoke(t, workerFn, sqsEvent(t, batch...)).body)...)
	}
	if len(failed) != 0 {
		t.Errorf("worker failed fanned-out messages %v", failed)
	}
	if left := drifting(st.sim.All()); len(left) != 0 {
		t.Errorf("%d tenants still drift after the worker ran the fan-out", len(left))
	}
	sweepFn.Stop()
	workerFn.Stop()
	checkLogs(t, sweepFn.Output().Lines(), "sweep", "schedule", true)
	checkLogs(t, workerFn.Output().Lines(), "worker", "sqs", true)
}

// receiveAll takes want messages off the queue, as SQS records for the worker.
func receiveAll(t *testing.T, st *stack, want int) []map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	client := sqs.NewFromConfig(st.aws)
	var records []map[string]any
	seen := map[string]bool{}
	for len(records) < want {
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(st.queueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 60,
		})
		if err != nil {
			t.Fatalf("receive from the queue after %d of %d messages: %v", len(records), want, err)
		}
		for _, m := range out.Messages {
			id := aws.ToString(m.MessageId)
			if seen[id] {
				continue
			}
			seen[id] = true
			records = append(records, sqsRecord(t, id, aws.ToString(m.Body)))
		}
	}
	return records
}
