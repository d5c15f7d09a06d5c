package sweep_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"acronismfa/internal/acronis"
	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/enforce"
	"acronismfa/internal/policy"
	"acronismfa/internal/sweep"
	"acronismfa/internal/telemetry"
	"acronismfa/internal/testkit"
)

const namespace = "AcronisMFA/Test"

// expected is what a sweep should report and do, worked out from the
// simulator's records rather than through the sweep's code.
type expected struct {
	sweep.Summary
	turnsOn []string // the tenants whose MFA the sweep turns on, sorted
	quiet   int      // the tenants without an audit line: compliant ones, units and folders
}

// expect buckets the subtree of root as the contract does. all is the
// simulator's tree in depth order, so that exclusions above root count too.
func expect(all []sim.Tenant, root string, dryRun bool, excluded ...string) expected {
	want := expected{Summary: sweep.Summary{RootTenantID: root, Desired: "enabled", DryRun: dryRun}}
	s := &want.Summary
	// mfa/status counts the users of a tenant's folders and units with its own.
	users := testkit.IndexUsers(all)
	lockedOut := func(t sim.Tenant) int {
		n, totp := users.Of(t)
		return n - totp
	}
	out, in := map[string]bool{}, map[string]bool{}
	for _, t := range all {
		out[t.ID] = slices.Contains(excluded, t.ID) || out[t.ParentID]
		in[t.ID] = t.ID == root || in[t.ParentID]
		if !in[t.ID] {
			continue
		}
		s.TenantsSeen++
		inherits := t.Kind == "unit" || t.Kind == "folder"
		if inherits {
			want.quiet++
		}
		switch {
		case out[t.ID]:
			s.SkippedExcluded++
		case inherits:
			s.SkippedInherited++
		case !t.Enabled:
			s.SkippedDisabled++
		case t.MFAStatus == "enabled" || t.MFAStatus == "setup_required":
			s.Compliant++
			want.quiet++
		case !t.UpdateAllowed:
			s.NotAllowed++
		case dryRun:
			s.WouldChange++
			s.UsersWithoutTOTP += lockedOut(t)
		default:
			s.Changed++
			s.UsersWithoutTOTP += lockedOut(t)
			want.turnsOn = append(want.turnsOn, t.ID)
		}
	}
	p := 100.0
	if eligible := s.TenantsSeen - s.SkippedExcluded - s.SkippedInherited - s.SkippedDisabled; eligible > 0 {
		p = math.Round(1000*float64(s.Compliant+s.Changed)/float64(eligible)) / 10
	}
	s.CompliancePercent = &p
	slices.Sort(want.turnsOn)
	return want
}

// accounted is the sum of the buckets, which equals TenantsSeen when no tenant
// was lost.
func accounted(s sweep.Summary) int {
	return s.Compliant + s.Changed + s.WouldChange + s.SkippedInherited + s.SkippedDisabled +
		s.SkippedExcluded + s.NotAllowed + s.Failed + s.FannedOut + s.InGrace
}

// checkSummary compares summaries as JSON, apart from the duration.
func checkSummary(t *testing.T, got sweep.Summary, want expected) {
	t.Helper()
	if got.DurationMs <= 0 {
		t.Errorf("duration_ms %d, want the time the clock moved on", got.DurationMs)
	}
	got.DurationMs = 0
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want.Summary)
	if string(g) != string(w) {
		t.Fatalf("summary\n got %s\nwant %s", g, w)
	}
}

// checkTree checks that the sweep turned on exactly the tenants it should, with
// one write each.
func checkTree(t *testing.T, acr *testkit.Acronis, before map[string]string, want expected) {
	t.Helper()
	if got := testkit.Changed(before, testkit.MFAStates(acr.Sim)); !slices.Equal(got, want.turnsOn) {
		t.Errorf("MFA turned on for %v, want %v", got, want.turnsOn)
	}
	if n := acr.Sim.Count("PUT", "/mfa/status"); n != len(want.turnsOn) {
		t.Errorf("%d PUTs, want %d", n, len(want.turnsOn))
	}
}

// newSweeper is a Sweeper as production configures one, over the simulator.
func newSweeper(acr *testkit.Acronis, rules policy.Rules) *sweep.Sweeper {
	return &sweep.Sweeper{
		Lister:      acr.Client,
		Enforcer:    &enforce.Enforcer{API: acr.Client, Rules: rules},
		Desired:     true,
		Concurrency: 8,
		InlineLimit: 5000,
		Now:         testkit.NewTicker(3 * time.Millisecond).Now,
	}
}

// rig is the sweep function's handler over the simulator, with the rollout's
// state and notices in memory, on a fake clock, its stdout kept.
type rig struct {
	acr   *testkit.Acronis
	h     *sweep.Handler
	out   *testkit.Output
	clock *testkit.Clock
	state *testkit.MemoryState
	pub   *testkit.Publisher
}

func newRig(acr *testkit.Acronis, rules policy.Rules) *rig {
	return newRigOn(acr, testkit.NewTicker(3*time.Millisecond), rules)
}

// newRigOn is newRig on a clock the simulator may share, with a state table as
// the stack has one: the rollout's notices go to r.pub and its state to
// r.state, which also holds the write leases.
func newRigOn(acr *testkit.Acronis, clock *testkit.Clock, rules policy.Rules) *rig {
	r := &rig{acr: acr, out: testkit.NewOutput(nil), clock: clock, pub: &testkit.Publisher{}}
	r.state = testkit.NewMemoryState(clock.Now)
	s := newSweeper(acr, rules)
	s.Now, s.Notices, s.Enforcer.Leases = clock.Now, r.state, r.state
	s.Enforcer.Rollout = &enforce.Rollout{Notices: r.state, Notifier: r.pub, Directory: acr.Client, Now: clock.Now}
	r.h = &sweep.Handler{Sweeper: *s, Acronis: acr.Client, DryRun: rules.DryRun, Notifier: r.pub, Namespace: namespace, Out: r.out,
		Logger: telemetry.NewLogger(r.out, "sweep", "schedule", slog.LevelInfo)}
	return r
}

type invocation struct {
	sum    sweep.Summary
	err    error
	lines  []map[string]any
	audits []map[string]any
	emf    testkit.EMF
}

// run invokes the handler and checks what every invocation writes: JSON lines,
// and one EMF document that reports the summary and counts the Acronis
// requests made.
func (r *rig) run(t *testing.T, ctx context.Context, input string) invocation {
	t.Helper()
	mark, sent := r.out.Mark(), len(r.acr.Sim.Requests())
	sum, err := r.h.Handle(ctx, json.RawMessage(input))
	inv := invocation{sum: sum, err: err, lines: r.out.JSON(mark), audits: r.out.Audits(mark)}
	if lines := r.out.Since(mark); len(lines) != len(inv.lines) {
		t.Fatalf("output lines that are not JSON objects: %q", lines)
	}
	inv.emf = r.out.InvocationEMF(t, mark, namespace, "sweep", "schedule")
	want := map[string]int{
		telemetry.MetricTenantsChecked:     sum.TenantsSeen,
		telemetry.MetricTenantsCompliant:   sum.Compliant,
		telemetry.MetricTenantsChanged:     sum.Changed,
		telemetry.MetricTenantsWouldChange: sum.WouldChange,
		telemetry.MetricTenantsSkipped:     sum.SkippedInherited + sum.SkippedDisabled + sum.SkippedExcluded + sum.NotAllowed,
		telemetry.MetricTenantsFailed:      sum.Failed,
		telemetry.MetricTenantsInGrace:     sum.InGrace,
		telemetry.MetricTenantsNotified:    sum.Notified,
		telemetry.MetricUsersWithoutTotp:   sum.UsersWithoutTOTP,
		telemetry.MetricSweepDurationMs:    int(sum.DurationMs),
	}
	if _, deadline := ctx.Deadline(); !deadline { // requests cut off are counted when they end
		want[telemetry.MetricAcronisRequests] = len(r.acr.Sim.Requests()) - sent
	}
	for name, n := range want {
		if got, ok := inv.emf.Metrics[name]; !ok || got != float64(n) {
			t.Errorf("EMF %s = %v, want %d", name, inv.emf.Metrics[name], n)
		}
	}
	if unit := inv.emf.Units[telemetry.MetricSweepDurationMs]; unit != "Milliseconds" {
		t.Errorf("EMF SweepDurationMs declared with unit %q", unit)
	}
	p, ok := inv.emf.Metrics[telemetry.MetricCompliancePercent]
	if ok != (sum.CompliancePercent != nil) || ok && (p != *sum.CompliancePercent || inv.emf.Units[telemetry.MetricCompliancePercent] != "Percent") {
		t.Errorf("EMF CompliancePercent %v (%v, unit %q) for compliance_percent %v", p, ok, inv.emf.Units[telemetry.MetricCompliancePercent], sum.CompliancePercent)
	}
	return inv
}

// auditedOnce maps each audited tenant to its action, failing the test for a
// tenant audited twice.
func auditedOnce(t *testing.T, inv invocation) map[string]string {
	t.Helper()
	actions := map[string]string{}
	for _, a := range inv.audits {
		id, _ := a["tenant_id"].(string)
		if _, twice := actions[id]; twice {
			t.Fatalf("tenant %s has more than one audit line", id)
		}
		actions[id], _ = a["action"].(string)
	}
	return actions
}

// sqsFunc is a queue that misbehaves as the function says.
type sqsFunc func(context.Context, *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error)

func (f sqsFunc) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	return f(ctx, in)
}

func TestSweepSummaryMatchesTheTree(t *testing.T) {
	for _, dryRun := range []bool{false, true} {
		t.Run(fmt.Sprint("dry run ", dryRun), func(t *testing.T) {
			acr := testkit.NewAcronis(t, testkit.AcronisOptions{Tree: &sim.TreeSpec{Seed: 7, Size: 3000, Locked: 0.03}})
			all, before := acr.Sim.All(), testkit.MFAStates(acr.Sim)
			var exclude []string // two partners
			for _, tn := range all[1:] {
				if tn.Kind == "partner" && len(exclude) < 2 {
					exclude = append(exclude, tn.ID)
				}
			}
			want := expect(all, acr.Sim.RootID(), dryRun, exclude...)
			if want.Changed+want.WouldChange == 0 || want.SkippedExcluded == 0 || want.NotAllowed == 0 || want.SkippedDisabled == 0 {
				t.Fatalf("the generated tree lacks a case: %+v", want.Summary)
			}

			r := newRig(acr, policy.Rules{Excluded: policy.NewExclusions(exclude)})
			inv := r.run(t, t.Context(), fmt.Sprintf(`{"dry_run": %t}`, dryRun))
			if inv.err != nil {
				t.Fatal(inv.err)
			}
			checkSummary(t, inv.sum, want)
			checkTree(t, acr, before, want)
			// A confirming GET per drifting tenant (locked ones too), nothing per compliant one.
			if gets, drifting := acr.Sim.Count("GET", "/mfa/status"), want.Changed+want.WouldChange+want.NotAllowed; gets != drifting {
				t.Fatalf("%d status GETs, want %d", gets, drifting)
			}
			// One audit line per tenant decided about: none for a compliant
			// tenant, nor for a unit or folder, which has no switch.
			if n := len(auditedOnce(t, inv)); n != want.TenantsSeen-want.quiet {
				t.Fatalf("%d audited tenants, want %d", n, want.TenantsSeen-want.quiet)
			}
		})
	}
}

func TestSweepFallsBackToChildrenWalk(t *testing.T) {
	for _, status := range []int{403, 404} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			acr := testkit.NewAcronis(t, testkit.AcronisOptions{Tree: &sim.TreeSpec{Seed: 3, Size: 400}})
			want := expect(acr.Sim.All(), acr.Sim.RootID(), false)
			acr.Sim.SetFaults(sim.Faults{SubtreeStatus: status})
			inv := newRig(acr, policy.Rules{}).run(t, t.Context(), `{}`)
			if inv.err != nil {
				t.Fatal(inv.err)
			}
			checkSummary(t, inv.sum, want)
			if n := acr.Sim.Count("GET", "/children"); n == 0 {
				t.Fatal("the children were never walked")
			}
		})
	}
}

func TestSweepWithinDeadlineAccountsForEveryTenant(t *testing.T) {
	acr := testkit.NewAcronis(t, testkit.AcronisOptions{Tree: &sim.TreeSpec{Seed: 11, Size: 2000}, Client: acronis.Options{MaxInFlight: 8}})
	// About 200 drifting tenants at 2 × 50 ms, 8 at a time, need 2.5 s: more
	// than the deadline allows, while the one-page listing fits easily.
	acr.Sim.SetFaults(sim.Faults{Latency: 50 * time.Millisecond})
	want := expect(acr.Sim.All(), acr.Sim.RootID(), false)
	r := newRig(acr, policy.Rules{})
	r.h.Sweeper.Now, r.h.Sweeper.Reserve = time.Now, 300*time.Millisecond // the deadline is the real clock's
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	got := r.run(t, ctx, `{}`).sum
	if ctx.Err() != nil {
		t.Fatal("the sweep returned after its deadline")
	}
	if got.TenantsSeen != want.TenantsSeen || got.Failed == 0 || accounted(got) != got.TenantsSeen {
		t.Fatalf("summary %+v: want all %d tenants listed, in a bucket each, and some failed by the deadline", got, want.TenantsSeen)
	}
	// Locked tenants not confirmed before the deadline are failures too.
	if got.Changed+got.NotAllowed+got.Failed != want.Changed+want.NotAllowed {
		t.Fatalf("changed %d + not allowed %d + failed %d != %d drifting tenants",
			got.Changed, got.NotAllowed, got.Failed, want.Changed+want.NotAllowed)
	}
	// A write cut off by the deadline may have landed all the same: it is
	// reported failed, never silently changed.
	if puts := acr.Sim.Count("PUT", "/mfa/status"); puts < got.Changed || puts > got.Changed+got.Failed {
		t.Fatalf("%d PUTs but %d reported changed and %d failed", puts, got.Changed, got.Failed)
	}
}

// TestSweepRequestCount logs the Acronis requests of a sweep over 10,000
// tenants with 500 drifting: the listing costs ceil(N/5000) requests and each
// drifting tenant a GET and a PUT, so the total is ceil(N/5000) + 2K, not N.
func TestSweepRequestCount(t *testing.T) {
	acr := testkit.NewAcronis(t, testkit.AcronisOptions{Tree: &sim.TreeSpec{Seed: 1, Size: 9999, Drift: 0.0625, Disabled: -1, Locked: -1}})
	want := expect(acr.Sim.All(), acr.Sim.RootID(), false)
	r := newRig(acr, policy.Rules{})
	r.h.RootTenantID = acr.Sim.RootID() // configured: no lookup of the client's own tenant
	if inv := r.run(t, t.Context(), `{}`); inv.err != nil {
		t.Fatal(inv.err)
	}
	api := len(acr.Sim.Requests()) - acr.Sim.Count("POST", "/idp/token")
	n, k := want.TenantsSeen, want.Changed
	bound := (n+4999)/5000 + 2*k
	t.Logf("sweep of N=%d tenants, K=%d drifting: %d Acronis API requests (ceil(N/5000)+2K = %d), plus %d token call(s)",
		n, k, api, bound, acr.Sim.TokensIssued())
	if api != bound {
		t.Fatalf("%d requests, want ceil(N/5000)+2K = %d", api, bound)
	}
}

// A tree that cannot be listed to the end makes the sweep incomplete, with
// every tenant that was listed in a bucket and the reason in the error.
func TestSweepIncomplete(t *testing.T) {
	tests := []struct {
		name   string
		faults sim.Faults
		why    error
	}{
		{"a children listing refused", sim.Faults{SubtreeStatus: 403, FailNth: []sim.NthFailure{
			{Method: "GET", Path: "/api/2/tenants/" + testkit.PartnerB + "/children", Nth: []int{1}, Status: 403}}}, acronis.ErrNotAllowed},
		{"the deadline", sim.Faults{Latency: 50 * time.Millisecond}, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acr := testkit.NewFixture(t, testkit.AcronisOptions{})
			acr.Sim.SetFaults(tt.faults)
			r := newRig(acr, policy.Rules{})
			r.h.RootTenantID = acr.Sim.RootID()
			s := &r.h.Sweeper
			// One tenant a page, at 50 ms each, cannot list the 17 tenants in time.
			s.PageSize, s.Reserve, s.Now = 1, 200*time.Millisecond, time.Now
			ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
			defer cancel()
			inv := r.run(t, ctx, `{}`)
			if !errors.Is(inv.err, sweep.ErrIncomplete) || !errors.Is(inv.err, tt.why) {
				t.Fatalf("error %v, want the sweep incomplete for %v", inv.err, tt.why)
			}
			if n := len(acr.Sim.All()); inv.sum.TenantsSeen == 0 || inv.sum.TenantsSeen >= n || accounted(inv.sum) != inv.sum.TenantsSeen {
				t.Fatalf("summary %+v: want some of the %d tenants seen, each in a bucket", inv.sum, n)
			}
		})
	}
}

// A write whose answer is lost may have landed: when reading the switch back
// fails too, the sweep's retry pass finds the tenant compliant, and the sweep
// reports the change it made, not a failure.
func TestSweepLostWriteAnswerIsAChange(t *testing.T) {
	acr := testkit.NewFixture(t, testkit.AcronisOptions{})
	before := testkit.MFAStates(acr.Sim)
	want := expect(acr.Sim.All(), acr.Sim.RootID(), false)
	acr.Sim.SetFaults(sim.Faults{LoseWriteAnswers: []string{testkit.Contoso}, FailNth: []sim.NthFailure{
		{Method: "GET", Path: "/api/2/tenants/" + testkit.Contoso + "/mfa/status", Nth: []int{2}, Status: 403}}})
	inv := newRig(acr, policy.Rules{}).run(t, t.Context(), `{}`)
	if inv.err != nil {
		t.Fatal(inv.err)
	}
	checkSummary(t, inv.sum, want)
	if got := testkit.Changed(before, testkit.MFAStates(acr.Sim)); !slices.Equal(got, want.turnsOn) {
		t.Errorf("MFA turned on for %v, want %v", got, want.turnsOn)
	}
	if a := auditedOnce(t, inv)[testkit.Contoso]; a != "enable" {
		t.Errorf("Contoso audited %q, want enable", a)
	}
}

// An exclusion above the sweep's root covers the whole tree it sweeps: a sweep
// rooted below an excluded partner changes nothing.
func TestSweepBelowAnExcludedTenantChangesNothing(t *testing.T) {
	for _, excluded := range []string{testkit.PartnerA, testkit.ExcludedPartner} {
		acr := testkit.NewFixture(t, testkit.AcronisOptions{})
		before := testkit.MFAStates(acr.Sim)
		want := expect(acr.Sim.All(), testkit.OffCustomer, false, excluded)
		r := newRig(acr, policy.Rules{Excluded: policy.NewExclusions([]string{excluded})})
		inv := r.run(t, t.Context(), `{"root_tenant_id": "`+testkit.OffCustomer+`"}`)
		if inv.err != nil {
			t.Fatal(inv.err)
		}
		checkSummary(t, inv.sum, want)
		checkTree(t, acr, before, want)
	}
}

// A queue that does not answer costs the tenants meant for it, reported as
// failed, and never the sweep's answer before the deadline.
func TestSweepAnswersWhenTheQueueHangs(t *testing.T) {
	acr := testkit.NewAcronis(t, testkit.AcronisOptions{Tree: &sim.TreeSpec{Seed: 31, Size: 500}})
	want := expect(acr.Sim.All(), acr.Sim.RootID(), false)
	r := newRig(acr, policy.Rules{})
	s := &r.h.Sweeper
	s.InlineLimit, s.Now = 10, time.Now // and the default Reserve, a second here
	s.Fanout = &sweep.Fanout{QueueURL: "q", Concurrency: 2, Attempts: 3,
		SQS: sqsFunc(func(ctx context.Context, _ *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		})}
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	got := r.run(t, ctx, `{}`).sum
	if ctx.Err() != nil {
		t.Fatal("the sweep answered after its deadline")
	}
	if got.Failed != want.Changed+want.NotAllowed || got.FannedOut != 0 || accounted(got) != got.TenantsSeen {
		t.Fatalf("summary %+v: want the %d drifting tenants failed", got, want.Changed+want.NotAllowed)
	}
}

// Only a message SQS confirms counts as fanned out: a call that fails is made
// again, and a tenant whose entry the answer never names fails once the
// attempts are spent.
func TestFanoutFailsWhatSQSNeverConfirms(t *testing.T) {
	acr := testkit.NewAcronis(t, testkit.AcronisOptions{Tree: &sim.TreeSpec{Seed: 23, Size: 300}})
	want := expect(acr.Sim.All(), acr.Sim.RootID(), false)
	drifting := want.Changed + want.NotAllowed
	r := newRig(acr, policy.Rules{})
	var calls atomic.Int32
	r.h.Sweeper.InlineLimit = 10
	r.h.Sweeper.Fanout = &sweep.Fanout{QueueURL: "q", Concurrency: 1, Attempts: 2,
		SQS: sqsFunc(func(context.Context, *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
			if calls.Add(1)%2 == 1 { // one batch at a time: every first attempt fails
				return nil, errors.New("connection reset")
			}
			return &sqs.SendMessageBatchOutput{}, nil
		})}
	inv := r.run(t, t.Context(), `{}`)
	if inv.err != nil || inv.sum.Failed != drifting || inv.sum.FannedOut != 0 || accounted(inv.sum) != inv.sum.TenantsSeen {
		t.Fatalf("summary %+v (%v): want the %d drifting tenants failed", inv.sum, inv.err, drifting)
	}
	if n, batches := int(calls.Load()), (drifting+9)/10; n != 2*batches {
		t.Errorf("%d calls for %d batches, want two each", n, batches)
	}
	unanswered := 0
	for _, a := range inv.audits {
		if e, _ := a["error"].(string); a["action"] == "failed" && strings.Contains(e, "no answer for this entry") {
			unanswered++
		}
	}
	if unanswered != drifting {
		t.Errorf("%d failure audit lines say SQS never answered, want %d", unanswered, drifting)
	}
}

// A dry run never fans out: the worker would enforce for real what the run
// only reports.
func TestDryRunNeverFansOut(t *testing.T) {
	acr := testkit.NewAcronis(t, testkit.AcronisOptions{Tree: &sim.TreeSpec{Seed: 23, Size: 300}})
	want := expect(acr.Sim.All(), acr.Sim.RootID(), true)
	r := newRig(acr, policy.Rules{})
	r.h.Sweeper.InlineLimit = 10
	r.h.Sweeper.Fanout = &sweep.Fanout{QueueURL: "unused", Concurrency: 2, Attempts: 1,
		SQS: sqsFunc(func(context.Context, *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
			t.Error("a dry run sent a batch to the worker queue")
			return nil, errors.New("no queue here")
		})}
	inv := r.run(t, t.Context(), `{"dry_run": true}`)
	if inv.err != nil {
		t.Fatal(inv.err)
	}
	checkSummary(t, inv.sum, want)
}
