package policy

import (
	"strings"

	"acronismfa/internal/tenant"
)

// Outcome is what should happen to a tenant. Each sweep summary bucket is one outcome.
type Outcome string

// Outcomes.
const (
	Compliant        Outcome = "compliant"
	Change           Outcome = "change"
	WouldChange      Outcome = "would_change"
	SkippedInherited Outcome = "skipped_inherited"
	SkippedDisabled  Outcome = "skipped_disabled"
	SkippedExcluded  Outcome = "skipped_excluded"
	NotAllowed       Outcome = "not_allowed"
)

// Skipped reports whether the outcome leaves the tenant alone by policy, which
// is success for a queue message: retrying it would decide the same.
func (o Outcome) Skipped() bool {
	return o == SkippedInherited || o == SkippedDisabled || o == SkippedExcluded
}

// Origin says who asks for a tenant's MFA state, which decides how far policy
// may go on its own.
type Origin uint8

const (
	// ByPolicy is enforcement that nobody asked for by name: sweeps, tenant
	// events, queue messages without "enabled". It leaves suspended tenants alone.
	ByPolicy Origin = iota
	// ByCaller is a caller naming the tenant and the state (a webhook PUT, a
	// queue message with "enabled"): a suspended tenant is changed as asked.
	ByCaller
)

// Intent is what a caller wants done with a tenant's MFA switch.
type Intent struct {
	Enable bool // the state wanted: MFA on, or off
	Origin Origin
}

// Rules is the operator's configuration that every decision follows.
type Rules struct {
	AllowDisable bool
	DryRun       bool
	Excluded     Exclusions
}

// Exclusions is a set of tenant ids whose whole subtrees are never changed.
type Exclusions map[string]struct{}

// NewExclusions builds the set from tenant ids (compared case-insensitively).
func NewExclusions(ids []string) Exclusions {
	e := make(Exclusions, len(ids))
	for _, id := range ids {
		e[strings.ToLower(id)] = struct{}{}
	}
	return e
}

// Has reports whether id itself is excluded.
func (e Exclusions) Has(id string) bool {
	_, ok := e[strings.ToLower(id)]
	return ok
}

// Facts are what is known about a tenant when deciding.
type Facts struct {
	Kind    tenant.Kind
	Enabled bool // the tenant itself is enabled (not suspended)
	MFAOn   bool
	// UpdateAllowed is Acronis's word on whether this client may change the
	// switch. The subtree listing does not carry it, so a decision made from the
	// listing assumes true and is confirmed against the mfa/status answer.
	UpdateAllowed bool
	// Excluded: the tenant or one of its ancestors is in Rules.Excluded.
	Excluded bool
}

// Decision is the outcome and the reason an audit line gives for it.
type Decision struct {
	Outcome Outcome
	Reason  string
}

// disableRefused is the one statement of the disable rule: nothing turns MFA
// off unless the operator allowed it.
const disableRefused = "disabling MFA requires MFA_ALLOW_DISABLE=true"

// Preflight is the decision that needs no facts: an intent the rules refuse
// whatever the tenant. Callers ask it before any request, so that a refused
// intent costs Acronis nothing.
func (r Rules) Preflight(in Intent) (Decision, bool) {
	if !in.Enable && !r.AllowDisable {
		return Decision{NotAllowed, disableRefused}, true
	}
	return Decision{}, false
}

// Decide says what to do to bring a tenant to the intended state.
func (r Rules) Decide(f Facts, in Intent) Decision {
	if d, refused := r.Preflight(in); refused {
		return d
	}
	state := tenant.MFAState(in.Enable)
	switch {
	case f.Excluded:
		return Decision{SkippedExcluded, "tenant or an ancestor is in EXCLUDED_TENANT_IDS"}
	case f.Kind.InheritsMFA():
		return Decision{SkippedInherited, string(f.Kind) + " tenants inherit MFA from their parent"}
	case !f.Enabled && in.Origin == ByPolicy:
		return Decision{SkippedDisabled, "tenant is disabled"}
	case f.MFAOn == in.Enable:
		return Decision{Compliant, "MFA already " + state}
	case !f.UpdateAllowed:
		return Decision{NotAllowed, "Acronis reports update_allowed: false for this tenant"}
	case r.DryRun:
		return Decision{WouldChange, "dry run: MFA would be " + state}
	default:
		return Decision{Change, "MFA " + state + " by policy"}
	}
}
