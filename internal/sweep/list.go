package sweep

import (
	"context"
	"errors"
	"fmt"

	"acronismfa/internal/acronis"
	"acronismfa/internal/enforce"
	"acronismfa/internal/policy"
	"acronismfa/internal/statestore"
	"acronismfa/internal/tenant"
)

// batchReads is how many notices a watch run reads at once (BatchGetItem's
// limit).
const batchReads = 100

// list reads the tree and decides each tenant from the listing. Drifting tenants
// go to work, or to the fan-out once the tree is known to be larger than the
// inline limit; until then they are held, which costs at most InlineLimit entries.
func (r *run) list(ctx context.Context) error {
	var held []tenant.Tenant
	decided, fanned := false, false
	seen := 0
	err := r.walk(r.workCtx, func(t tenant.Tenant) {
		seen++
		r.mu.Lock()
		r.sum.TenantsSeen++
		r.mu.Unlock()
		if r.Progress != nil {
			r.Progress.Listed.Add(1)
		}
		if !decided && seen > r.InlineLimit {
			decided, fanned = true, r.fan != nil
			r.dispatch(ctx, held, fanned)
			held = nil
		}
		excluded, err := r.ancestry.Excluded(r.workCtx, t)
		if err != nil {
			// Never fail open: a tenant whose ancestry is unknown is not changed.
			r.record(ctx, r.result(t, policy.Decision{}, err))
			return
		}
		req := enforce.Request{Tenant: t, Intent: r.intent, Excluded: excluded, SweepID: r.SweepID, Notices: r.notices}
		switch d := r.enf.Preview(req); {
		case d.Outcome == policy.Change, d.Outcome == policy.WouldChange:
			if r.Progress != nil {
				r.Progress.Drifting.Add(1)
			}
			if decided {
				r.dispatch(ctx, []tenant.Tenant{t}, fanned)
			} else {
				held = append(held, t)
			}
		default:
			res := r.result(t, d, nil)
			if _, noticed := r.notices[t.ID]; noticed && d.Outcome == policy.Compliant && !r.DryRun {
				res.NoticeErr = r.enf.Rollout.Forget(r.workCtx, t.ID)
			}
			r.record(ctx, res)
		}
	})
	r.dispatch(ctx, held, fanned)
	if err != nil && r.late() {
		return fmt.Errorf("the invocation deadline came first: %w", err)
	}
	return err
}

// dispatch hands drifting tenants on: to the fan-out, or to the workers after
// the rollout's notices are known. A watch run reads the notices of the
// tenants dispatched together, a hundred a call (held ones together, later ones
// one by one); a tenant its notice shows in grace costs no Acronis request, and
// one whose notice cannot be read fails rather than go without notice.
func (r *run) dispatch(ctx context.Context, tenants []tenant.Tenant, fanned bool) {
	if fanned {
		for _, t := range tenants {
			r.fan <- t
		}
		return
	}
	for start := 0; start < len(tenants); start += batchReads {
		batch := tenants[start:min(start+batchReads, len(tenants))]
		if r.rollingOut() && r.notices == nil && r.noticeErr == nil {
			ids := make([]string, len(batch))
			for i, t := range batch {
				ids[i] = t.ID
			}
			notices, err := r.Notices.Notices(r.workCtx, ids)
			if err != nil {
				r.failAll(ctx, batch, err)
				continue
			}
			r.route(ctx, batch, notices)
			continue
		}
		r.route(ctx, batch, r.notices)
	}
}

// route sends the tenants whose notices are known to the workers, or records
// those in grace.
func (r *run) route(ctx context.Context, tenants []tenant.Tenant, notices map[string]statestore.Notice) {
	if r.noticeErr != nil {
		r.failAll(ctx, tenants, r.noticeErr)
		return
	}
	for _, t := range tenants {
		req := enforce.Request{Tenant: t, Intent: r.intent, SweepID: r.SweepID, Notices: notices}
		if d := r.enf.Preview(req); d.Outcome == policy.InGrace {
			r.record(ctx, r.result(t, d, nil))
			continue
		}
		r.work <- workItem{t: t, notices: notices}
	}
}

// failAll records tenants that cannot be enforced because their notices are
// unknown.
func (r *run) failAll(ctx context.Context, tenants []tenant.Tenant, err error) {
	for _, t := range tenants {
		r.record(ctx, r.result(t, policy.Decision{}, fmt.Errorf("read the rollout notices: %w", err)))
	}
}

// walk calls visit for every tenant of the tree, root first, through the subtree
// listing, or by walking children where a full sweep's listing is refused.
func (r *run) walk(ctx context.Context, visit func(tenant.Tenant)) error {
	first := true
	for t, err := range r.Lister.Subtree(ctx, r.RootTenantID, acronis.ListOptions{PageSize: r.PageSize, UpdatedSince: r.UpdatedSince}) {
		if err != nil {
			if first && !r.Watch() && (errors.Is(err, acronis.ErrNotAllowed) || errors.Is(err, acronis.ErrNotFound)) {
				return r.walkChildren(ctx, visit)
			}
			if first && r.Watch() && errors.Is(err, acronis.ErrBadRequest) {
				return fmt.Errorf("Acronis refused the listing of recent changes (updated_since %s): %w", stamp(r.UpdatedSince), err)
			}
			return err
		}
		first = false
		visit(t)
	}
	return nil
}

// walkChildren is the guide's recursive walk, breadth first so that parents are
// visited before their children as in the listing. A watch run never walks: it
// would read the whole tree every minute.
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
