// Package enforce carries out policy decisions for one tenant at a time: it reads
// what it needs from Acronis, asks package policy, and writes only when the
// decision is a change. All three triggers enforce through it.
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

// Result is what happened to one tenant; every trigger reports it the same way.
type Result struct {
	TenantID   string
	TenantName string
	Kind       tenant.Kind
	Want       bool
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
	if !r.Want || r.Err != nil {
		return 0
	}
	if o := r.Decision.Outcome; o != policy.Change && o != policy.WouldChange {
		return 0
	}
	return r.Status.UsersWithoutTOTP()
}

// ErrDisableNotAllowed refuses a request to turn MFA off while the operator has
// not allowed it. It is returned before Acronis is asked anything.
var ErrDisableNotAllowed = errors.New("disabling MFA requires MFA_ALLOW_DISABLE=true")

// Apply brings one tenant, known by id, to want. explicit marks a caller's direct
// request (see policy.Rules.Decide). Failures are in Result.Err, classified by
// package acronis.
func (e *Enforcer) Apply(ctx context.Context, tenantID string, want, explicit bool) Result {
	res := Result{TenantID: tenantID, Want: want}
	if !want && !e.Rules.AllowDisable {
		res.Decision = policy.Decision{Outcome: policy.NotAllowed, Reason: ErrDisableNotAllowed.Error()}
		return res
	}
	t, err := e.API.Tenant(ctx, tenantID)
	if err != nil {
		res.Err = err
		return res
	}
	excluded, err := e.Excluded(ctx, t)
	if err != nil {
		res.Err = err
		return res
	}
	res = e.decide(ctx, t, excluded, want, explicit)
	// A caller named this tenant: its audit line says what came of it, even
	// when the tenant object alone showed it compliant.
	res.Requested = true
	return res
}

// ApplyListed brings a tenant from the subtree listing to want. The listing
// carries the MFA state, so a compliant or skipped tenant costs no request; a
// drifting one is confirmed with its mfa/status before anything is written.
// excluded is the caller's knowledge of the tenant's ancestry.
func (e *Enforcer) ApplyListed(ctx context.Context, t tenant.Tenant, excluded, want bool) Result {
	return e.decide(ctx, t, excluded, want, false)
}

// Decide is ApplyListed without the Acronis requests: what the listing alone says.
func (e *Enforcer) Decide(t tenant.Tenant, excluded, want bool) policy.Decision {
	return e.Rules.Decide(listingFacts(t, excluded), want, false)
}

func listingFacts(t tenant.Tenant, excluded bool) policy.Facts {
	return policy.Facts{
		Kind:          t.Kind,
		Enabled:       t.Enabled,
		MFAOn:         tenant.MFAOn(t.MFAStatus),
		UpdateAllowed: true,
		Excluded:      excluded,
	}
}

func (e *Enforcer) decide(ctx context.Context, t tenant.Tenant, excluded, want, explicit bool) Result {
	res := Result{TenantID: t.ID, TenantName: t.Name, Kind: t.Kind, Want: want, Previous: t.MFAStatus, Current: t.MFAStatus}
	facts := listingFacts(t, excluded)
	res.Decision = e.Rules.Decide(facts, want, explicit)
	switch o := res.Decision.Outcome; {
	case o == policy.Change, o == policy.WouldChange:
	case o == policy.Compliant && explicit:
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
	res.Decision = e.Rules.Decide(facts, want, explicit)
	if res.Decision.Outcome != policy.Change {
		return res
	}

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
		if t.ParentID == "" || t.ParentID == t.ID || seen[t.ParentID] {
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
