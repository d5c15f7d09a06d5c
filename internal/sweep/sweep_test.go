package sweep_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"acronismfa/internal/acronis"
	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/enforce"
	"acronismfa/internal/policy"
	"acronismfa/internal/sweep"
	"acronismfa/internal/testkit"
)

// expect counts a tree's initial state the way the contract buckets it, from the
// simulator's own records rather than through the sweep's code.
func expect(all []sim.Tenant, excluded map[string]bool, dryRun bool) sweep.Summary {
	var s sweep.Summary
	out := map[string]bool{}
	children := map[string][]sim.Tenant{}
	for _, t := range all {
		children[t.ParentID] = append(children[t.ParentID], t)
	}
	// mfa/status counts the users of a tenant's folders and units with its own.
	var lockedOut func(t sim.Tenant) int
	lockedOut = func(t sim.Tenant) int {
		n := t.UsersCount - t.UsersWithTOTP
		for _, c := range children[t.ID] {
			if c.Kind == "unit" || c.Kind == "folder" {
				n += lockedOut(c)
			}
		}
		return n
	}
	for _, t := range all {
		s.TenantsSeen++
		isOut := excluded[t.ID] || out[t.ParentID]
		out[t.ID] = isOut
		on := t.MFAStatus == "enabled" || t.MFAStatus == "setup_required"
		switch {
		case isOut:
			s.SkippedExcluded++
		case t.Kind == "unit" || t.Kind == "folder":
			s.SkippedInherited++
		case !t.Enabled:
			s.SkippedDisabled++
		case on:
			s.Compliant++
		case !t.UpdateAllowed:
			s.NotAllowed++
		case dryRun:
			s.WouldChange++
			s.UsersWithoutTOTP += lockedOut(t)
		default:
			s.Changed++
			s.UsersWithoutTOTP += lockedOut(t)
		}
	}
	return s
}

type audits struct {
	mu    sync.Mutex
	lines map[string]int // tenant id -> audit lines
	fails []enforce.Result
}

func (a *audits) record(_ context.Context, r enforce.Result) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.lines == nil {
		a.lines = map[string]int{}
	}
	a.lines[r.TenantID]++
	if r.Err != nil {
		a.fails = append(a.fails, r)
	}
}

func newSweeper(env *testkit.Acronis, rules policy.Rules, a *audits) *sweep.Sweeper {
	return &sweep.Sweeper{
		Lister:      env.Client,
		Enforcer:    &enforce.Enforcer{API: env.Client, Rules: rules},
		Desired:     true,
		Concurrency: 8,
		InlineLimit: 5000,
		Audit:       a.record,
		Now:         time.Now,
	}
}

// partnersOf picks n partner ids of the tree, for exclusions.
func partnersOf(all []sim.Tenant, n int) []string {
	var ids []string
	for _, t := range all[1:] {
		if t.Kind == "partner" && len(ids) < n {
			ids = append(ids, t.ID)
		}
	}
	return ids
}

// accounted is the sum of the buckets, which equals TenantsSeen when no tenant
// was lost.
func accounted(s sweep.Summary) int {
	return s.Compliant + s.Changed + s.WouldChange + s.SkippedInherited + s.SkippedDisabled +
		s.SkippedExcluded + s.NotAllowed + s.Failed + s.FannedOut
}

func comparable(s sweep.Summary) sweep.Summary {
	s.RootTenantID, s.Desired, s.DryRun, s.DurationMs = "", "", false, 0
	return s
}

func TestSweepSummaryMatchesTheTree(t *testing.T) {
	for _, dryRun := range []bool{false, true} {
		t.Run(map[bool]string{false: "real", true: "dry run"}[dryRun], func(t *testing.T) {
			env := testkit.NewAcronis(t, testkit.AcronisOptions{Tree: &sim.TreeSpec{Seed: 7, Size: 3000, Locked: 0.03}})
			all := env.Sim.All()
			exclude := partnersOf(all, 2)
			excluded := map[string]bool{}
			for _, id := range exclude {
				excluded[id] = true
			}
			want := expect(all, excluded, dryRun)
			if want.Changed+want.WouldChange == 0 || want.SkippedExcluded == 0 || want.NotAllowed == 0 || want.SkippedDisabled == 0 {
				t.Fatalf("the generated tree lacks a case: %+v", want)
			}

			a := &audits{}
			s := newSweeper(env, policy.Rules{Excluded: policy.NewExclusions(exclude)}, a)
			got, err := s.Run(t.Context(), sweep.Run{RootTenantID: env.Sim.RootID(), DryRun: dryRun, SweepID: "s1"})
			if err != nil {
				t.Fatal(err)
			}
			if comparable(got) != want {
				t.Fatalf("summary\n got %+v\nwant %+v", comparable(got), want)
			}

			// The tree is now what the summary says.
			drifting := want.Changed + want.WouldChange
			puts := env.Sim.Count("PUT", "/mfa/status")
			if dryRun && puts != 0 {
				t.Fatalf("a dry run wrote %d times", puts)
			}
			if !dryRun {
				if puts != want.Changed {
					t.Fatalf("%d PUTs for %d changes", puts, want.Changed)
				}
				after := expect(env.Sim.All(), excluded, false)
				if after.Changed != 0 {
					t.Fatalf("%d eligible tenants still drift after the sweep", after.Changed)
				}
			}
			// A confirming GET per drifting tenant (locked ones too), nothing per compliant one.
			if gets := env.Sim.Count("GET", "/mfa/status"); gets != drifting+want.NotAllowed {
				t.Fatalf("%d status GETs, want %d", gets, drifting+want.NotAllowed)
			}
			// One audit line per tenant decided about, none twice: not for a
			// compliant tenant, nor for a unit or folder, which has no switch.
			for id, n := range a.lines {
				if n != 1 {
					t.Fatalf("tenant %s has %d audit lines", id, n)
				}
			}
			inheriting := 0
			for _, tn := range all {
				if tn.Kind == "unit" || tn.Kind == "folder" {
					inheriting++
				}
			}
			if audited := want.TenantsSeen - want.Compliant - inheriting; len(a.lines) != audited {
				t.Fatalf("%d audited tenants, want %d", len(a.lines), audited)
			}
		})
	}
}

func TestSweepFallsBackToChildrenWalk(t *testing.T) {
	for _, status := range []int{403, 404} {
		env := testkit.NewAcronis(t, testkit.AcronisOptions{Tree: &sim.TreeSpec{Seed: 3, Size: 400}})
		want := expect(env.Sim.All(), nil, false)
		env.Sim.SetFaults(sim.Faults{SubtreeStatus: status})
		got, err := newSweeper(env, policy.Rules{}, &audits{}).Run(t.Context(), sweep.Run{RootTenantID: env.Sim.RootID()})
		if err != nil {
			t.Fatal(err)
		}
		if comparable(got) != want {
			t.Fatalf("listing %d: summary\n got %+v\nwant %+v", status, comparable(got), want)
		}
		if n := env.Sim.Count("GET", "/children"); n == 0 {
			t.Fatalf("listing %d: the children were never walked", status)
		}
	}
}

func TestSweepOneTenantsFailureDoesNotStopIt(t *testing.T) {
	env := testkit.NewAcronis(t, testkit.AcronisOptions{Tree: &sim.TreeSpec{Seed: 5, Size: 500}})
	all := env.Sim.All()
	want := expect(all, nil, false)
	var victim string
	for _, tn := range all {
		if tn.Kind == "customer" && tn.Enabled && tn.UpdateAllowed && tn.MFAStatus == "disabled" {
			victim = tn.ID
			break
		}
	}
	env.Sim.SetFaults(sim.Faults{FailTenants: map[string]int{victim: 500}})
	a := &audits{}
	got, err := newSweeper(env, policy.Rules{}, a).Run(t.Context(), sweep.Run{RootTenantID: env.Sim.RootID()})
	if err != nil {
		t.Fatal(err)
	}
	if got.Failed != 1 || got.Changed != want.Changed-1 {
		t.Fatalf("failed %d changed %d, want 1 and %d", got.Failed, got.Changed, want.Changed-1)
	}
	if len(a.fails) != 1 || a.fails[0].TenantID != victim || !strings.Contains(a.fails[0].Err.Error(), "HTTP 500") {
		t.Fatalf("the failure's audit does not say which tenant and why: %+v", a.fails)
	}
}

func TestSweepWithinDeadlineAccountsForEveryTenant(t *testing.T) {
	env := testkit.NewAcronis(t, testkit.AcronisOptions{Tree: &sim.TreeSpec{Seed: 11, Size: 2000}, Client: acronis.Options{MaxInFlight: 8}})
	// About 200 drifting tenants at 2 × 50 ms, 8 at a time, need 2.5 s: more
	// than the deadline allows, while the one-page listing fits easily.
	env.Sim.SetFaults(sim.Faults{Latency: 50 * time.Millisecond})
	want := expect(env.Sim.All(), nil, false)
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	s := newSweeper(env, policy.Rules{}, &audits{})
	s.Reserve = 300 * time.Millisecond
	got, err := s.Run(ctx, sweep.Run{RootTenantID: env.Sim.RootID()})
	if err != nil {
		t.Fatal(err)
	}
	if got.TenantsSeen != want.TenantsSeen {
		t.Fatalf("listed %d of %d tenants", got.TenantsSeen, want.TenantsSeen)
	}
	if got.Failed == 0 {
		t.Fatalf("the deadline was not reached: %+v", got)
	}
	if accounted(got) != got.TenantsSeen {
		t.Fatalf("%d tenants seen but %d in the buckets: %+v", got.TenantsSeen, accounted(got), got)
	}
	// Locked tenants not confirmed before the deadline are failures too.
	if got.Changed+got.NotAllowed+got.Failed != want.Changed+want.NotAllowed {
		t.Fatalf("changed %d + not allowed %d + failed %d != %d drifting tenants",
			got.Changed, got.NotAllowed, got.Failed, want.Changed+want.NotAllowed)
	}
	// A write cut off by the deadline may have landed all the same: it is
	// reported failed, never silently changed.
	if puts := env.Sim.Count("PUT", "/mfa/status"); puts < got.Changed || puts > got.Changed+got.Failed {
		t.Fatalf("%d PUTs but %d reported changed and %d failed", puts, got.Changed, got.Failed)
	}
	if ctx.Err() != nil {
		t.Fatal("the sweep returned after its deadline")
	}
}

// TestSweepRequestCount prints the Acronis requests of a sweep over 10,000
// tenants with 500 drifting: the listing costs ceil(N/5000) requests and each
// drifting tenant a GET and a PUT, so the total is about ceil(N/5000) + 2K, not N.
func TestSweepRequestCount(t *testing.T) {
	env := testkit.NewAcronis(t, testkit.AcronisOptions{Tree: &sim.TreeSpec{Seed: 1, Size: 9999, Drift: 0.0625, Disabled: -1, Locked: -1}})
	want := expect(env.Sim.All(), nil, false)
	n, k := want.TenantsSeen, want.Changed
	if _, err := newSweeper(env, policy.Rules{}, &audits{}).Run(t.Context(), sweep.Run{RootTenantID: env.Sim.RootID()}); err != nil {
		t.Fatal(err)
	}
	var api int
	for _, r := range env.Sim.Requests() {
		if !strings.HasSuffix(r.Path, "/idp/token") {
			api++
		}
	}
	bound := (n+4999)/5000 + 2*k
	t.Logf("sweep of N=%d tenants, K=%d drifting: %d Acronis API requests (ceil(N/5000)+2K = %d), plus %d token call(s)",
		n, k, api, bound, env.Sim.TokensIssued())
	if api != bound {
		t.Fatalf("%d requests, want ceil(N/5000)+2K = %d", api, bound)
	}
}

func TestSweepCredentialsRejectedFailsLoudly(t *testing.T) {
	env := testkit.NewAcronis(t, testkit.AcronisOptions{Tree: &sim.TreeSpec{Seed: 2, Size: 50}})
	env.Sim.SetClientSecret("rotated-away")
	_, err := newSweeper(env, policy.Rules{}, &audits{}).Run(t.Context(), sweep.Run{RootTenantID: env.Sim.RootID()})
	if err == nil || !strings.Contains(err.Error(), acronis.ErrUnauthorized.Error()) {
		t.Fatalf("error %v, want the credentials rejection", err)
	}
}

// An exclusion above the sweep's root covers the whole tree it sweeps: a sweep
// rooted below an excluded partner changes nothing.
func TestSweepBelowAnExcludedTenantChangesNothing(t *testing.T) {
	const (
		partner  = "30000000-0000-4000-8000-000000000001"
		customer = "30000000-0000-4000-8000-000000000002"
		unit     = "30000000-0000-4000-8000-000000000003"
	)
	for _, exclude := range []bool{false, true} {
		env := testkit.NewAcronis(t, testkit.AcronisOptions{})
		for _, tn := range []sim.Tenant{
			{ID: partner, Kind: "partner", ParentID: env.Sim.RootID(), Enabled: true, MFAStatus: "enabled", UpdateAllowed: true},
			{ID: customer, Kind: "customer", ParentID: partner, Enabled: true, MFAStatus: "disabled", UpdateAllowed: true},
			{ID: unit, Kind: "unit", ParentID: customer, Enabled: true, UpdateAllowed: true},
		} {
			if err := env.Sim.Add(tn); err != nil {
				t.Fatal(err)
			}
		}
		rules := policy.Rules{Excluded: policy.NewExclusions([]string{"30000000-0000-4000-8000-0000000000ff"})}
		if exclude {
			rules.Excluded = policy.NewExclusions([]string{partner})
		}
		got, err := newSweeper(env, rules, &audits{}).Run(t.Context(), sweep.Run{RootTenantID: customer})
		if err != nil {
			t.Fatal(err)
		}
		puts := env.Sim.Count("PUT", "/mfa/status")
		switch {
		case exclude && (got.SkippedExcluded != 2 || puts != 0):
			t.Fatalf("excluded parent: %+v, %d PUTs; want both tenants skipped_excluded and no write", got, puts)
		case !exclude && (got.Changed != 1 || puts != 1):
			t.Fatalf("no exclusion above: %+v, %d PUTs; want the customer changed", got, puts)
		}
	}
}

// hangingSQS never answers until its caller gives up.
type hangingSQS struct{}

func (hangingSQS) SendMessageBatch(ctx context.Context, _ *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// A queue that does not answer costs the tenants meant for it, reported as
// failed, and never the sweep's answer before the deadline.
func TestSweepAnswersWhenTheQueueHangs(t *testing.T) {
	env := testkit.NewAcronis(t, testkit.AcronisOptions{Tree: &sim.TreeSpec{Seed: 31, Size: 500}})
	want := expect(env.Sim.All(), nil, false)
	s := newSweeper(env, policy.Rules{}, &audits{})
	s.InlineLimit = 10
	s.Fanout = &sweep.Fanout{SQS: hangingSQS{}, QueueURL: "q", Concurrency: 2, Attempts: 3}
	s.Reserve = 400 * time.Millisecond
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	got, err := s.Run(ctx, sweep.Run{RootTenantID: env.Sim.RootID()})
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("the sweep answered after its deadline")
	}
	if got.Failed != want.Changed+want.NotAllowed || got.FannedOut != 0 || accounted(got) != got.TenantsSeen {
		t.Fatalf("summary %+v: want the %d drifting tenants failed", got, want.Changed+want.NotAllowed)
	}
}
