// Package sweep walks a tenant tree and brings every eligible tenant's MFA switch
// to the desired state: the listing decides, a bounded pool confirms and writes,
// and a fleet too large for one invocation is fanned out to the worker queue.
package sweep

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"time"

	"acronismfa/internal/acronis"
	"acronismfa/internal/enforce"
	"acronismfa/internal/policy"
	"acronismfa/internal/tenant"
)

// Lister is the part of the Acronis client that reads the tree.
type Lister interface {
	Subtree(ctx context.Context, rootID string, o acronis.ListOptions) iter.Seq2[tenant.Tenant, error]
	Children(ctx context.Context, id string) ([]tenant.Tenant, error)
	Tenant(ctx context.Context, id string) (tenant.Tenant, error)
}

// Sweeper holds what does not change between runs.
type Sweeper struct {
	Lister   Lister
	Enforcer *enforce.Enforcer
	Desired  bool
	// Concurrency is the number of tenants enforced at once; the Acronis client
	// bounds its requests in flight to the same number.
	Concurrency int
	// InlineLimit: a sweep that lists more tenants than this fans the drifting
	// ones out to Fanout instead of enforcing them itself.
	InlineLimit int
	Fanout      *Fanout // nil when no queue is configured
	// Audit writes the audit line of a result that needs one.
	Audit func(ctx context.Context, r enforce.Result)
	Now   func() time.Time
	// Reserve is kept free before the invocation deadline to hand over what is
	// left and answer: no tenant is started later, and requests are cut off
	// when three quarters of it are left.
	// Zero means a tenth of the time left at the start, between 1 and 30 seconds.
	Reserve time.Duration
	// PageSize of the subtree listing; 0 lets the client choose (5000).
	PageSize int
}

// Run is one sweep's parameters.
type Run struct {
	RootTenantID string
	DryRun       bool
	SweepID      string
}

// ErrIncomplete comes with the summary of what was done when the tree could not
// be listed to the end: the tenants never listed are in no bucket.
var ErrIncomplete = errors.New("sweep incomplete: the tenant tree was not listed to the end")

// run is the state of one sweep.
type run struct {
	*Sweeper
	Run
	enf     enforce.Enforcer
	workCtx context.Context // ends a quarter of the reserve before the deadline
	stopAt  time.Time       // no tenant is started after it; zero without a deadline
	fan     chan tenant.Tenant

	mu  sync.Mutex
	sum Summary

	retryMu sync.Mutex
	retries []attempt // tenants whose last try failed in a way a later one may not
}

// attempt is a tenant and the result of its latest try.
type attempt struct {
	t   tenant.Tenant
	res enforce.Result
}

// retryPasses is how many more times a tenant whose enforcement failed for a
// transient reason (throttling or a 5xx past the client's retry budget) is
// tried once the first pass is done, while time allows. The client's own
// retries follow each other within seconds; a later pass comes back when the
// pool is idle, so under sustained throttling a tenant fails only when every
// attempt of every pass was refused.
const retryPasses = 2

// Run sweeps the tree under r.RootTenantID. Every listed tenant is counted in
// exactly one bucket of the summary, whatever fails.
func (s *Sweeper) Run(ctx context.Context, params Run) (Summary, error) {
	start := s.Now()
	r := &run{Sweeper: s, Run: params, enf: *s.Enforcer, workCtx: ctx}
	r.enf.Rules.DryRun = params.DryRun
	r.sum = Summary{RootTenantID: params.RootTenantID, Desired: tenant.MFAState(s.Desired), DryRun: params.DryRun}
	if deadline, ok := ctx.Deadline(); ok {
		reserve := s.Reserve
		if reserve == 0 {
			reserve = min(max(deadline.Sub(start)/10, time.Second), 30*time.Second)
		}
		r.stopAt = deadline.Add(-reserve)
		// Requests already under way may run past stopAt into the reserve, so
		// that a write is rarely cut off after Acronis has made it.
		var cancel context.CancelFunc
		r.workCtx, cancel = context.WithDeadline(ctx, deadline.Add(-reserve/4))
		defer cancel()
	}

	// The listing shows exclusions inside the tree; one above its root (a sweep
	// started below an excluded partner) takes the whole tree out.
	rootExcluded := false
	if len(r.enf.Rules.Excluded) > 0 {
		root, err := r.Lister.Tenant(r.workCtx, r.RootTenantID)
		if err == nil {
			rootExcluded, err = r.enf.Excluded(r.workCtx, root)
		}
		if err != nil {
			return r.sum, fmt.Errorf("check EXCLUDED_TENANT_IDS above the sweep root %s: %w", r.RootTenantID, err)
		}
	}

	// A dry run never fans out: the worker would enforce for real what this run
	// only reports.
	var fanDone sync.WaitGroup
	if s.Fanout != nil && !params.DryRun {
		r.fan = make(chan tenant.Tenant)
		results := make(chan sendResult)
		fanDone.Go(func() { r.collectFanout(ctx, results) })
		// Sending ends with the work: a queue that does not answer must not
		// keep the sweep from answering before Lambda's deadline.
		go func() {
			s.Fanout.run(r.workCtx, params.SweepID, r.fan, results)
			close(results)
		}()
	}

	work := make(chan tenant.Tenant)
	var workers sync.WaitGroup
	for range max(s.Concurrency, 1) {
		workers.Go(func() {
			for t := range work {
				r.enforce(ctx, t)
			}
		})
	}

	listErr := r.list(ctx, work, rootExcluded)

	close(work)
	workers.Wait()
	r.retry(ctx)
	if r.fan != nil {
		close(r.fan)
		fanDone.Wait()
	}
	r.sum.DurationMs = s.Now().Sub(start).Milliseconds()
	if listErr != nil {
		return r.sum, fmt.Errorf("%w: %w", ErrIncomplete, listErr)
	}
	return r.sum, nil
}

// list reads the tree and decides each tenant from the listing. Drifting tenants
// go to work, or to the fan-out once the tree is known to be larger than the
// inline limit; until then they are held, which costs at most InlineLimit entries.
func (r *run) list(ctx context.Context, work chan<- tenant.Tenant, rootExcluded bool) error {
	var held []tenant.Tenant
	decided, fanned := false, false
	route := func(t tenant.Tenant) {
		if fanned {
			r.fan <- t
		} else {
			work <- t
		}
	}
	seen := 0
	excluded := map[string]bool{} // excluded tenants seen so far: their children are excluded too
	err := r.walk(r.workCtx, func(t tenant.Tenant) {
		seen++
		isExcluded := rootExcluded || r.enf.Rules.Excluded.Has(t.ID) || excluded[t.ParentID]
		if isExcluded {
			excluded[t.ID] = true
		}
		r.mu.Lock()
		r.sum.TenantsSeen++
		r.mu.Unlock()
		if !decided && seen > r.InlineLimit {
			decided, fanned = true, r.fan != nil
			for _, h := range held {
				route(h)
			}
			held = nil
		}
		d := r.enf.Preview(enforce.Request{Tenant: t, Intent: r.intent(), Excluded: isExcluded})
		switch {
		case d.Outcome != policy.Change && d.Outcome != policy.WouldChange:
			r.record(ctx, r.result(t, d, nil))
		case decided:
			route(t)
		default:
			held = append(held, t)
		}
	})
	for _, h := range held {
		route(h)
	}
	if err != nil && r.late() {
		return fmt.Errorf("the invocation deadline came first: %w", err)
	}
	return err
}

// walk calls visit for every tenant of the tree, root first, through the subtree
// listing, or by walking children where the listing is refused.
func (r *run) walk(ctx context.Context, visit func(tenant.Tenant)) error {
	first := true
	for t, err := range r.Lister.Subtree(ctx, r.RootTenantID, acronis.ListOptions{PageSize: r.PageSize}) {
		if err != nil {
			if first && (errors.Is(err, acronis.ErrNotAllowed) || errors.Is(err, acronis.ErrNotFound)) {
				return r.walkChildren(ctx, visit)
			}
			return err
		}
		first = false
		visit(t)
	}
	return nil
}

// walkChildren is the guide's recursive walk, breadth first so that parents are
// visited before their children as in the listing.
func (r *run) walkChildren(ctx context.Context, visit func(tenant.Tenant)) error {
	root, err := r.Lister.Tenant(ctx, r.RootTenantID)
	if err != nil {
		return err
	}
	visit(root)
	queue := []string{root.ID}
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		children, err := r.Lister.Children(ctx, id)
		if err != nil {
			return err
		}
		for _, c := range children {
			visit(c)
			if c.HasChildren {
				queue = append(queue, c.ID)
			}
		}
	}
	return nil
}

// enforce confirms and writes one drifting tenant, or hands it on when the
// deadline is too near to start.
func (r *run) enforce(ctx context.Context, t tenant.Tenant) {
	if !r.late() {
		r.settle(ctx, attempt{t: t, res: r.enf.Enforce(r.workCtx, enforce.Request{Tenant: t, Intent: r.intent()})})
		return
	}
	r.handOver(ctx, attempt{t: t})
}

// handOver deals with a tenant the deadline leaves no time for: the fan-out
// takes it if there is one, otherwise it fails, with the failure of its last
// try if it had one.
func (r *run) handOver(ctx context.Context, a attempt) {
	if r.fan != nil {
		r.fan <- a.t
		return
	}
	if a.res.Err == nil {
		a.res = r.result(a.t, policy.Decision{}, fmt.Errorf(
			"sweep %s: the invocation deadline came before this tenant was enforced: %w", r.SweepID, acronis.ErrDeadline))
	}
	r.record(ctx, a.res)
}

// settle records a try's result, or keeps it for a retry pass when it failed
// for a transient reason.
func (r *run) settle(ctx context.Context, a attempt) {
	if a.res.Err != nil && acronis.Retryable(a.res.Err) {
		r.retryMu.Lock()
		r.retries = append(r.retries, a)
		r.retryMu.Unlock()
		return
	}
	r.record(ctx, a.res)
}

// retry runs the retry passes over the tenants that failed transiently; what
// is still failing after the last pass is recorded with its latest failure.
func (r *run) retry(ctx context.Context) {
	for pass := 0; pass < retryPasses; pass++ {
		r.retryMu.Lock()
		pending := r.retries
		r.retries = nil
		r.retryMu.Unlock()
		if len(pending) == 0 {
			return
		}
		work := make(chan attempt)
		var workers sync.WaitGroup
		for range min(max(r.Concurrency, 1), len(pending)) {
			workers.Go(func() {
				for a := range work {
					if r.late() {
						r.handOver(ctx, a)
						continue
					}
					a.res = again(a.res, r.enf.Enforce(r.workCtx, enforce.Request{Tenant: a.t, Intent: r.intent()}))
					r.settle(ctx, a)
				}
			})
		}
		for _, a := range pending {
			work <- a
		}
		close(work)
		workers.Wait()
	}
	r.retryMu.Lock()
	pending := r.retries
	r.retries = nil
	r.retryMu.Unlock()
	for _, a := range pending {
		r.record(ctx, a.res)
	}
}

// again merges a retry's result with the one before it. A write that failed
// may have landed: when the retry then finds the tenant compliant, this sweep
// did change it, and the result says so, so that the audit trail has the
// change and the summary counts it.
func again(before, now enforce.Result) enforce.Result {
	if now.Err == nil && now.Decision.Outcome == policy.Compliant && before.Wrote {
		now.Decision = before.Decision
		now.Previous = before.Previous
	}
	now.Wrote = now.Wrote || before.Wrote
	return now
}

// collectFanout counts each answered message as fanned out, or as failed with
// its audit line.
func (r *run) collectFanout(ctx context.Context, results <-chan sendResult) {
	for res := range results {
		if res.Err != nil {
			r.record(ctx, r.result(res.Tenant, policy.Decision{}, res.Err))
			continue
		}
		r.mu.Lock()
		r.sum.FannedOut++
		r.mu.Unlock()
	}
}

// intent is what a sweep enforces: the desired state, by policy.
func (r *run) intent() policy.Intent {
	return policy.Intent{Enable: r.Desired, Origin: policy.ByPolicy}
}

func (r *run) late() bool { return !r.stopAt.IsZero() && !r.Now().Before(r.stopAt) }

func (r *run) result(t tenant.Tenant, d policy.Decision, err error) enforce.Result {
	return enforce.Result{TenantID: t.ID, TenantName: t.Name, Kind: t.Kind, Intent: r.intent(),
		Decision: d, Previous: t.MFAStatus, Current: t.MFAStatus, Err: err}
}

func (r *run) record(ctx context.Context, res enforce.Result) {
	if !res.Quiet() && r.Audit != nil {
		r.Audit(ctx, res)
	}
	r.mu.Lock()
	r.sum.add(res)
	r.mu.Unlock()
}
