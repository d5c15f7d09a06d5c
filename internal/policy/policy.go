// Package policy decides what to do with one tenant's MFA switch. It is pure: the
// triggers gather the facts, call Decide, and carry out the decision through
// package enforce, so all three triggers follow the same rules.
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

// Decide says what to do to bring a tenant to want (MFA on or off). explicit is
// true when a caller named this tenant and the state (webhook, queue message with
// "enabled"): a suspended tenant is then changed as asked, while policy-driven
// enforcement (sweep, tenant events) leaves suspended tenants alone.
func (r Rules) Decide(f Facts, want, explicit bool) Decision {
	switch {
	case !want && !r.AllowDisable:
		return Decision{NotAllowed, "disabling MFA requires MFA_ALLOW_DISABLE=true"}
	case f.Excluded:
		return Decision{SkippedExcluded, "tenant or an ancestor is in EXCLUDED_TENANT_IDS"}
	case f.Kind.InheritsMFA():
		return Decision{SkippedInherited, string(f.Kind) + " tenants inherit MFA from their parent"}
	case !f.Enabled && !explicit:
		return Decision{SkippedDisabled, "tenant is disabled"}
	case f.MFAOn == want:
		return Decision{Compliant, "MFA already " + State(want)}
	case !f.UpdateAllowed:
		return Decision{NotAllowed, "Acronis reports update_allowed: false for this tenant"}
	case r.DryRun:
		return Decision{WouldChange, "dry run: MFA would be " + State(want)}
	default:
		return Decision{Change, "MFA " + State(want) + " by policy"}
	}
}

// State names a wanted MFA state the way the API and the configuration do.
func State(on bool) string {
	if on {
		return tenant.MFAEnabled
	}
	return tenant.MFADisabled
}
