package sweep

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
	"time"

	"acronismfa/internal/acronis"
	"acronismfa/internal/enforce"
	"acronismfa/internal/policy"
	"acronismfa/internal/report"
	"acronismfa/internal/statestore"
	"acronismfa/internal/tenant"
)

// Lister is the part of the Acronis client that reads the tree.
type Lister interface {
	Subtree(ctx context.Context, rootID string, o acronis.ListOptions) iter.Seq2[tenant.Tenant, error]
	Children(ctx context.Context, id string) ([]tenant.Tenant, error)
	Tenant(ctx context.Context, id string) (tenant.Tenant, error)
}

// Notices is the state table's side of a sweep in a rollout: a full sweep
// reads every notice at once, a watch run those of its drifting tenants.
type Notices interface {
	AllNotices(ctx context.Context) (map[string]statestore.Notice, error)
	Notices(ctx context.Context, ids []string) (map[string]statestore.Notice, error)
}

// Report is a full sweep's compliance report on its way out.
type Report interface {
	Add(report.Row)
	Finish() (uri string, err error)
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
	// Notices are read when the enforcer gives notice (Enforcer.Rollout).
	Notices Notices
	// NewReport starts a full sweep's report; nil without REPORT_BUCKET.
	NewReport func(ctx context.Context, sweepID string, at time.Time) Report
	// Audit writes the audit line of a result that needs one.
	Audit func(ctx context.Context, r enforce.Result)
	Now   func() time.Time
	// Reserve is kept free before the invocation deadline to hand over what is
	// left and answer: no tenant is started later, and requests are cut off
	// when a quarter of it is left.
	// Zero means a tenth of the time left at the start, between 1 and 30 seconds.
	Reserve time.Duration
	// PageSize of the subtree listing; 0 lets the client choose (5000).
	PageSize int
	// Progress, when set, counts the run's progress as it goes, for a watcher
	// (the command line's progress line).
	Progress *Progress
}

// Progress counts a run's tenants as it goes.
type Progress struct {
	Listed   atomic.Int64 // tenants listed
	Drifting atomic.Int64 // of those, found to need a change
	Settled  atomic.Int64 // tenants counted in the summary
}

// Run is one sweep's parameters.
type Run struct {
	RootTenantID string
	DryRun       bool
	SweepID      string
	// UpdatedSince makes the run a watch run over the tenants created or
	// updated after it; zero sweeps the whole tree.
	UpdatedSince time.Time
}

// Watch reports whether the run is a watch run.
func (p Run) Watch() bool { return !p.UpdatedSince.IsZero() }

// ErrIncomplete comes with the summary of what was done when the tree could not
// be listed to the end: the tenants never listed are in no bucket.
var ErrIncomplete = errors.New("sweep incomplete: the tenant tree was not listed to the end")

// run is the state of one sweep.
type run struct {
	*Sweeper
	Run
	enf      enforce.Enforcer
	intent   policy.Intent
	ancestry *enforce.Ancestry
	workCtx  context.Context // ends a quarter of the reserve before the deadline
	stopAt   time.Time       // no tenant is started after it; zero without a deadline
	fan      chan tenant.Tenant
	work     chan workItem
	// notices are the rollout's notices as this run read them (nil outside a
	// rollout, or before a watch run read them); noticeErr why they could not
	// be read: its drifting tenants then fail rather than go without notice.
	notices   map[string]statestore.Notice
	noticeErr error

	mu     sync.Mutex // guards sum and report
	sum    Summary
	report Report

	retryMu sync.Mutex
	retries []attempt // tenants whose last try failed in a way a later one may not
}

// workItem is a drifting tenant on its way to a worker, with the notices
// read for it.
type workItem struct {
	t       tenant.Tenant
	notices map[string]statestore.Notice
}

// attempt is a tenant and the result of its latest try.
type attempt struct {
	workItem
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
// exactly one bucket of the summary, whatever fails. A full sweep's report is
// finished before Run returns; the summary names it, or why there is none.
func (s *Sweeper) Run(ctx context.Context, params Run) (Summary, error) {
	start := s.Now()
	r := &run{Sweeper: s, Run: params, enf: *s.Enforcer, workCtx: ctx,
		intent: policy.Intent{Enable: s.Desired, Origin: policy.ByPolicy}}
	r.enf.Rules.DryRun = params.DryRun
	r.ancestry = enforce.NewAncestry(s.Lister, r.enf.Rules.Excluded)
	r.sum = newSummary(params, s.Desired)
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
	if err := r.checkRoot(); err != nil {
		return r.sum, err
	}
	if r.rollingOut() && !params.Watch() {
		r.notices, r.noticeErr = s.Notices.AllNotices(r.workCtx)
	}
	if s.NewReport != nil && !params.Watch() {
		r.report = s.NewReport(ctx, params.SweepID, start)
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

	r.work = make(chan workItem)
	var workers sync.WaitGroup
	for range max(s.Concurrency, 1) {
		workers.Go(func() {
			for w := range r.work {
				r.enforce(ctx, w)
			}
		})
	}

	listErr := r.list(ctx)

	close(r.work)
	workers.Wait()
	r.retry(ctx)
	if r.fan != nil {
		close(r.fan)
		fanDone.Wait()
	}
	r.finishReport()
	r.sum.DurationMs = s.Now().Sub(start).Milliseconds()
	if listErr != nil {
		return r.sum, fmt.Errorf("%w: %w", ErrIncomplete, listErr)
	}
	// Compliance speaks for the whole tree: a sweep that did not list it to
	// the end, or a watch run, has none.
	if !params.Watch() {
		c := r.sum.Compliance()
		r.sum.CompliancePercent = &c
	}
	return r.sum, nil
}

// checkRoot learns whether the root sits under an excluded tenant: one above
// the root (a sweep started below an excluded partner) takes the whole tree
// out, and the listing cannot show it.
func (r *run) checkRoot() error {
	if len(r.enf.Rules.Excluded) == 0 {
		return nil
	}
	root, err := r.Lister.Tenant(r.workCtx, r.RootTenantID)
	if err == nil {
		_, err = r.ancestry.Excluded(r.workCtx, root)
	}
	if err != nil {
		return fmt.Errorf("check EXCLUDED_TENANT_IDS above the sweep root %s: %w", r.RootTenantID, err)
	}
	return nil
}

// rollingOut reports whether this run reads the rollout's notices: to give
// notice before enabling, or, with a grace of 0, to close the notices given.
func (r *run) rollingOut() bool {
	return r.Notices != nil && r.enf.Rollout != nil && r.intent.Enable
}

// finishReport completes the report, if any; a report that cannot be written
// changes nothing else, and the summary says so by its null report.
func (r *run) finishReport() {
	if r.report == nil {
		return
	}
	uri, err := r.report.Finish()
	if err != nil {
		r.sum.ReportErr = err
		return
	}
	r.sum.Report = &uri
}

func (r *run) late() bool { return !r.stopAt.IsZero() && !r.Now().Before(r.stopAt) }

func (r *run) result(t tenant.Tenant, d policy.Decision, err error) enforce.Result {
	return enforce.Result{Tenant: t, Intent: r.intent, Decision: d, Previous: t.MFAStatus, Current: t.MFAStatus, Err: err}
}

// record counts a tenant's final result, audits it and writes its report row.
func (r *run) record(ctx context.Context, res enforce.Result) {
	if !res.Quiet() && r.Audit != nil {
		r.Audit(ctx, res)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.sum.add(res)
	if r.Progress != nil {
		r.Progress.Settled.Add(1)
	}
	if r.report != nil {
		r.report.Add(row(res, b))
	}
}
