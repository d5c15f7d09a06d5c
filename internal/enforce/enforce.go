package enforce

import (
	"context"
	"errors"
	"fmt"

	"acronismfa/internal/acronis"
	"acronismfa/internal/policy"
	"acronismfa/internal/tenant"
)

// API is the part of the Acronis client that enforcement uses.
type API interface {
	Tenant(ctx context.Context, id string) (tenant.Tenant, error)
	MFAStatus(ctx context.Context, id string) (tenant.MFAStatus, error)
	SetMFA(ctx context.Context, id string, enabled bool) (tenant.MFAStatus, error)
}

// Enforcer applies Rules through API. It holds no per-request state and is safe
// for concurrent use.
type Enforcer struct {
	API   API
	Rules policy.Rules
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
}

func (r Request) facts() policy.Facts {
	return policy.Facts{
		Kind:          r.Tenant.Kind,
		Enabled:       r.Tenant.Enabled,
		MFAOn:         tenant.MFAOn(r.Tenant.MFAStatus),
		UpdateAllowed: true,
		Excluded:      r.Excluded,
	}
}

// Result is what happened to one tenant; every trigger reports it the same way.
type Result struct {
	TenantID   string
	TenantName string
	Kind       tenant.Kind
	Intent     policy.Intent
	Decision   policy.Decision
	Previous   string           // MFA state before, "" when never read
	Current    string           // MFA state after, "" when never read
	Status     tenant.MFAStatus // the latest mfa/status answer, zero when none was requested
	// Requested: Acronis was asked about this tenant by a request of its own
	// (its tenant object or its mfa/status), so the result is not the
	// listing's alone and is audited even when nothing changed.
	Requested bool
	// Wrote: the MFA switch was sent a PUT, whatever the answer. A PUT that
	// failed (a 5xx, the deadline) may have landed all the same.
	Wrote bool
	Err   error
}

// Changed reports whether the switch was written.
func (r Result) Changed() bool { return r.Err == nil && r.Decision.Outcome == policy.Change }

// Quiet reports whether the result needs no audit line: a tenant that the
// listing alone showed compliant, or a unit or folder, which has no switch of
// its own, is the normal case of a sweep and no decision about that tenant.
func (r Result) Quiet() bool {
	o := r.Decision.Outcome
	return r.Err == nil && !r.Requested && (o == policy.Compliant || o.Skipped() && r.Kind.InheritsMFA())
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

// Preview is what the request alone says, before any Acronis request: the
// listing's decision for a listed tenant.
func (e *Enforcer) Preview(req Request) policy.Decision {
	return e.Rules.Decide(req.facts(), req.Intent)
}

// EnforceID brings the tenant with this id to the intent: it reads the tenant
// and checks its ancestry against the exclusions, then enforces. An intent the
// rules refuse outright costs no request. Failures are in Result.Err,
// classified by package acronis.
func (e *Enforcer) EnforceID(ctx context.Context, id string, in policy.Intent) Result {
	res := Result{TenantID: id, Intent: in}
	if d, refused := e.Rules.Preflight(in); refused {
		res.Decision = d
		return res
	}
	t, err := e.API.Tenant(ctx, id)
	if err != nil {
		res.Err = err
		return res
	}
	excluded, err := e.Excluded(ctx, t)
	if err != nil {
		res.Err = err
		return res
	}
	res = e.Enforce(ctx, Request{Tenant: t, Intent: in, Excluded: excluded})
	// A caller named this tenant: its audit line says what came of it, even
	// when the tenant object alone showed it compliant.
	res.Requested = true
	return res
}

// Enforce decides from the request, then confirms a change against the
// tenant's mfa/status before writing it: a compliant or skipped tenant costs
// no request.
func (e *Enforcer) Enforce(ctx context.Context, req Request) Result {
	t := req.Tenant
	res := Result{TenantID: t.ID, TenantName: t.Name, Kind: t.Kind, Intent: req.Intent, Previous: t.MFAStatus, Current: t.MFAStatus}
	facts := req.facts()
	res.Decision = e.Rules.Decide(facts, req.Intent)
	switch o := res.Decision.Outcome; {
	case o == policy.Change, o == policy.WouldChange:
	case o == policy.Compliant && req.Intent.Origin == policy.ByCaller:
		// A caller who asked for this tenant gets its user counts back.
	default:
		return res
	}

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
	res.Decision = e.Rules.Decide(facts, req.Intent)
	if res.Decision.Outcome != policy.Change {
		return res
	}

	want := req.Intent.Enable
	res.Wrote = true
	after, err := e.API.SetMFA(ctx, t.ID, want)
	if err != nil && acronis.Retryable(err) && ctx.Err() == nil {
		// A 5xx or a dropped connection may have come after Acronis made the
		// change: read the switch once more, so that a change that happened is
		// reported as one rather than as a failure followed, on the next try, by
		// "unchanged", which would leave the audit trail without it.
		if now, gerr := e.API.MFAStatus(ctx, t.ID); gerr == nil && tenant.MFAOn(now.MFAStatus) == want {
			after, err = now, nil
		}
	}
	if err != nil {
		res.Err = err
		return res
	}
	res.Current = after.MFAStatus
	if tenant.MFAOn(after.MFAStatus) != want && after.MFAStatus != tenant.MFADisableInProgress {
		res.Err = fmt.Errorf("acronis PUT /tenants/{id}/mfa/status tenant %s: answered %q after setting %q: %w",
			t.ID, after.MFAStatus, tenant.MFAState(want), acronis.ErrUpstream)
	}
	return res
}

// Excluded reports whether t or an ancestor is excluded. The tenant object
// names only its parent, so this walks up until an excluded id, the real root
// (its own parent), or a tenant the client may not see.
func (e *Enforcer) Excluded(ctx context.Context, t tenant.Tenant) (bool, error) {
	if len(e.Rules.Excluded) == 0 {
		return false, nil
	}
	seen := map[string]bool{}
	for {
		if e.Rules.Excluded.Has(t.ID) {
			return true, nil
		}
		if t.IsRoot() || seen[t.ParentID] {
			return false, nil
		}
		seen[t.ID] = true
		if e.Rules.Excluded.Has(t.ParentID) {
			return true, nil
		}
		parent, err := e.API.Tenant(ctx, t.ParentID)
		if errors.Is(err, acronis.ErrNotAllowed) || errors.Is(err, acronis.ErrNotFound) {
			// Above the client's own tenant: nothing there is ours to exclude.
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("check exclusions of tenant %s: %w", t.ID, err)
		}
		t = parent
	}
}
