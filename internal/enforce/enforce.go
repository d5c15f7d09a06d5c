package enforce

import (
	"context"
	"fmt"
	"time"

	"acronismfa/internal/acronis"
	"acronismfa/internal/policy"
	"acronismfa/internal/statestore"
	"acronismfa/internal/tenant"
)

// API is the part of the Acronis client that enforcement uses.
type API interface {
	TenantReader
	MFAStatus(ctx context.Context, id string) (tenant.MFAStatus, error)
	SetMFA(ctx context.Context, id string, enabled bool) (tenant.MFAStatus, error)
}

// Enforcer applies Rules through API. It holds no per-request state and is safe
// for concurrent use.
type Enforcer struct {
	API   API
	Rules policy.Rules
	// Rollout gives notice before enabling MFA locks users out (when
	// Rules.Grace is above 0) and closes the notices given; nil without a
	// state table.
	Rollout *Rollout
	// Leases guard each write against overlapping runs; nil without a state
	// table.
	Leases Leases
}

// Request asks for one tenant's MFA switch to be brought to Intent.Enable.
type Request struct {
	// Tenant is the tenant object as the subtree listing (or the API) showed
	// it; its MFA state is the starting point, confirmed before any write.
	Tenant tenant.Tenant
	Intent policy.Intent
	// Excluded is the caller's knowledge of the tenant's ancestry: the tenant
	// or one of its ancestors is in the rules' exclusions.
	Excluded bool
	// SweepID names the sweep asking, if one is, in notices.
	SweepID string
	// Notices are the rollout records the caller has read, by tenant id (a
	// sweep reads them in bulk); nil: Enforce reads this tenant's own when the
	// rollout needs it.
	Notices map[string]statestore.Notice
}

func (r Request) facts(now time.Time) policy.Facts {
	return policy.Facts{
		Kind:             r.Tenant.Kind,
		Enabled:          r.Tenant.Enabled,
		MFAOn:            tenant.MFAOn(r.Tenant.MFAStatus),
		UpdateAllowed:    true,
		Excluded:         r.Excluded,
		UsersWithoutTOTP: -1, // the listing does not say; mfa/status does
		Now:              now,
	}
}

// Result is what happened to one tenant; every trigger reports it the same way.
type Result struct {
	Tenant   tenant.Tenant // as the request knew it: a name lookup's failure has the name only
	Intent   policy.Intent
	Decision policy.Decision
	Previous string           // MFA state before, "" when never read
	Current  string           // MFA state after, "" when never read
	Status   tenant.MFAStatus // the latest mfa/status answer, zero when none was requested
	// Requested: Acronis was asked about this tenant by a request of its own
	// (its tenant object or its mfa/status), so the result is not the
	// listing's alone and is audited even when nothing changed.
	Requested bool
	// Wrote: the MFA switch was sent a PUT, whatever the answer. A PUT that
	// failed (a 5xx, the deadline) may have landed all the same.
	Wrote bool
	// Notified: this run gave the tenant its notice.
	Notified bool
	Err      error
	// NoticeErr is a failure of the rollout's bookkeeping that changed
	// nothing for the tenant: an enforced notice not published, a notice of a
	// compliant tenant not removed.
	NoticeErr error
}

// Changed reports whether the switch was written.
func (r Result) Changed() bool { return r.Err == nil && r.Decision.Outcome == policy.Change }

// Quiet reports whether a sweep writes no audit line for the result: a tenant
// that the listing alone showed compliant or still in grace, or a unit or
// folder, which has no switch of its own, is the normal case of a sweep and
// no decision about that tenant.
func (r Result) Quiet() bool {
	o := r.Decision.Outcome
	return r.Err == nil && r.NoticeErr == nil && !r.Requested &&
		(o == policy.Compliant || o == policy.InGrace || o.Skipped() && r.Tenant.Kind.InheritsMFA())
}

// UsersWithoutTOTP counts the users that this result locks out (or would, in a
// dry run) until they set up TOTP.
func (r Result) UsersWithoutTOTP() int {
	if !r.Intent.Enable || r.Err != nil {
		return 0
	}
	if o := r.Decision.Outcome; o != policy.Change && o != policy.WouldChange {
		return 0
	}
	return r.Status.UsersWithoutTOTP()
}

// Preview is what the request alone says, before any request: the listing's
// decision for a listed tenant. A tenant in grace is recognised here, from the
// request's notices, so that it costs no Acronis request.
func (e *Enforcer) Preview(req Request) policy.Decision {
	facts := req.facts(e.now())
	if n, ok := req.Notices[req.Tenant.ID]; ok && e.rollingOut(req.Intent) {
		facts.Notice = noticeFacts(&n, facts.Now)
	}
	return e.Rules.Decide(facts, req.Intent)
}

// IDRequest asks for a tenant that a caller names by id.
type IDRequest struct {
	ID     string
	Intent policy.Intent
	// Name, when set, must be the tenant's exact name: a caller that sent both
	// is told when they disagree, rather than having the id win silently.
	Name    string
	SweepID string // the sweep that fanned the request out, if one did
}

// EnforceID brings the tenant a caller names to the intent: it reads the
// tenant and checks its ancestry against the exclusions, then enforces. An
// intent the rules refuse outright costs no request. Failures are in
// Result.Err, classified by package acronis.
func (e *Enforcer) EnforceID(ctx context.Context, r IDRequest) Result {
	id, name, in := r.ID, r.Name, r.Intent
	res := Result{Tenant: tenant.Tenant{ID: id, Name: name}, Intent: in}
	if d, refused := e.Rules.Preflight(in); refused {
		res.Decision = d
		return res
	}
	t, err := e.API.Tenant(ctx, id)
	if err != nil {
		res.Err = err
		return res
	}
	if name != "" && t.Name != name {
		res.Tenant = t
		res.Err = &acronis.Error{Op: "GET /tenants/{id}", TenantID: id, Class: acronis.ErrBadRequest,
			Message: fmt.Sprintf("tenant_id %s is tenant %q, not the tenant_name %q given with it", id, t.Name, name)}
		return res
	}
	excluded, err := NewAncestry(e.API, e.Rules.Excluded).Excluded(ctx, t)
	if err != nil {
		res.Tenant = t
		res.Err = err
		return res
	}
	res = e.Enforce(ctx, Request{Tenant: t, Intent: in, Excluded: excluded, SweepID: r.SweepID})
	// A caller named this tenant: its audit line says what came of it, even
	// when the tenant object alone showed it compliant.
	res.Requested = true
	return res
}

// Enforce decides from the request, then confirms a change against the
// tenant's mfa/status before writing it: a compliant, skipped or in-grace
// tenant costs no Acronis request.
func (e *Enforcer) Enforce(ctx context.Context, req Request) Result {
	t := req.Tenant
	res := Result{Tenant: t, Intent: req.Intent, Previous: t.MFAStatus, Current: t.MFAStatus}
	facts := req.facts(e.now())
	res.Decision = e.Rules.Decide(facts, req.Intent)
	switch o := res.Decision.Outcome; {
	case o == policy.Change, o == policy.WouldChange:
	case o == policy.Compliant && req.Intent.Origin == policy.ByCaller:
		// A caller who asked for this tenant gets its user counts back.
	default:
		return res
	}

	var notice *statestore.Notice
	// Only a caller's request gets this far compliant, and it never waits.
	if e.rollingOut(req.Intent) {
		var err error
		if notice, err = e.Rollout.notice(ctx, req); err != nil {
			res.Err = err
			return res
		}
		facts.Notice = noticeFacts(notice, facts.Now)
		if res.Decision = e.Rules.Decide(facts, req.Intent); res.Decision.Outcome == policy.InGrace {
			return res
		}
	}
	return e.confirm(ctx, req, facts, notice, res)
}

// confirm reads the tenant's mfa/status, decides on it for real and acts on
// the decision: it writes a change, gives a notice, or removes the notice of a
// tenant found compliant.
func (e *Enforcer) confirm(ctx context.Context, req Request, facts policy.Facts, notice *statestore.Notice, res Result) Result {
	t := req.Tenant
	// A change is leased before it is confirmed: a run that read the switch
	// before another run's PUT, and leased after it, would write the tenant
	// and audit the change a second time.
	unlease := func() {}
	if res.Decision.Outcome == policy.Change {
		var err error
		if unlease, err = e.lease(ctx, t.ID); err != nil {
			res.Err = err
			return res
		}
	}
	defer unlease()

	// The tenant object's state may be stale, and it does not say whether this
	// client may write: ask the mfa/status endpoint before deciding for real.
	status, err := e.API.MFAStatus(ctx, t.ID)
	res.Requested = true
	if err != nil {
		res.Err = err
		return res
	}
	res.Status = status
	res.Previous, res.Current = status.MFAStatus, status.MFAStatus
	facts.MFAOn = tenant.MFAOn(status.MFAStatus)
	facts.UpdateAllowed = status.UpdateAllowed
	facts.UsersWithoutTOTP = status.UsersWithoutTOTP()
	res.Decision = e.Rules.Decide(facts, req.Intent)
	switch res.Decision.Outcome {
	case policy.Compliant:
		if notice != nil && !e.Rules.DryRun {
			res.NoticeErr = e.Rollout.Forget(ctx, t.ID)
		}
	case policy.Notify:
		if !e.Rules.DryRun {
			e.give(ctx, req, facts, &res)
		}
	case policy.Change:
		e.write(ctx, &res)
		unlease()
		if res.Err == nil && notice != nil {
			res.NoticeErr = e.Rollout.close(ctx, req, *notice, res.Status.UsersWithoutTOTP())
		}
	}
	return res
}

// write sends the PUT of a change and reads back what came of it.
func (e *Enforcer) write(ctx context.Context, res *Result) {
	id, want := res.Tenant.ID, res.Intent.Enable
	res.Wrote = true
	after, err := e.API.SetMFA(ctx, id, want)
	if err != nil && acronis.Retryable(err) && ctx.Err() == nil {
		// A 5xx or a dropped connection may have come after Acronis made the
		// change: read the switch once more, so that a change that happened is
		// reported as one rather than as a failure followed, on the next try, by
		// "unchanged", which would leave the audit trail without it.
		if now, gerr := e.API.MFAStatus(ctx, id); gerr == nil && tenant.MFAOn(now.MFAStatus) == want {
			after, err = now, nil
		}
	}
	if err != nil {
		res.Err = err
		return
	}
	res.Current = after.MFAStatus
	if tenant.MFAOn(after.MFAStatus) != want && after.MFAStatus != tenant.MFADisableInProgress {
		res.Err = fmt.Errorf("acronis PUT /tenants/{id}/mfa/status tenant %s: answered %q after setting %q: %w",
			id, after.MFAStatus, tenant.MFAState(want), acronis.ErrUpstream)
	}
}

// rollingOut reports whether the rollout's notices apply to the intent:
// enabling by policy, with a state table. With a grace of 0 a notice is no
// longer given, and one given earlier ends with the tenant's enforcement.
func (e *Enforcer) rollingOut(in policy.Intent) bool {
	return e.Rollout != nil && in.Enable && in.Origin == policy.ByPolicy
}

func (e *Enforcer) now() time.Time {
	if e.Rollout != nil {
		return e.Rollout.Now()
	}
	return time.Time{}
}

// noticeFacts is what policy needs of a notice. A claim older than claimStale
// was left by an invocation that died before giving the notice: it counts as
// no notice, and the next claim takes it over.
func noticeFacts(n *statestore.Notice, now time.Time) *policy.Notice {
	if n == nil || n.Pending() && now.Sub(n.ClaimedAt) > claimStale {
		return nil
	}
	return &policy.Notice{NoticedAt: n.NoticedAt}
}
