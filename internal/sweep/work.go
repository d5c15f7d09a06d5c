package sweep

import (
	"context"
	"fmt"
	"sync"

	"acronismfa/internal/acronis"
	"acronismfa/internal/enforce"
	"acronismfa/internal/policy"
)

// enforce confirms and writes one drifting tenant, or hands it on when the
// deadline is too near to start.
func (r *run) enforce(ctx context.Context, w workItem) {
	if r.late() {
		r.handOver(ctx, attempt{workItem: w})
		return
	}
	r.settle(ctx, attempt{workItem: w, res: r.enf.Enforce(r.workCtx, r.request(w))})
}

func (r *run) request(w workItem) enforce.Request {
	return enforce.Request{Tenant: w.t, Intent: r.intent, SweepID: r.SweepID, Notices: w.notices}
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
	if a.res.Err != nil && enforce.Retryable(a.res.Err) {
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
	for range retryPasses {
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
					a.res = again(a.res, r.enf.Enforce(r.workCtx, r.request(a.workItem)))
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
		if r.Progress != nil {
			r.Progress.Settled.Add(1)
		}
		if r.report != nil {
			r.report.Add(fannedOutRow(res.Tenant))
		}
		r.mu.Unlock()
	}
}
