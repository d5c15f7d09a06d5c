package policy

import (
	"fmt"
	"strings"
	"time"

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
	// Notify: enabling MFA would lock users out; they get notice and a grace
	// period first. A tenant notified is in grace.
	Notify Outcome = "notify"
	// InGrace: the tenant's notice is out and its deadline has not come.
	InGrace Outcome = "in_grace"
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
	// Grace is how long after its notice a tenant is enforced when enabling
	// MFA would lock users out (ROLLOUT_GRACE_DAYS); 0 enforces at once.
	Grace time.Duration
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
	// UsersWithoutTOTP is how many users enabling MFA would lock out; negative
	// while unknown (the listing does not carry it).
	UsersWithoutTOTP int
	// Notice is the tenant's rollout notice, nil when it has none.
	Notice *Notice
	Now    time.Time
}

// Notice is what decides about a tenant's grace.
type Notice struct {
	NoticedAt time.Time // zero while another run is still giving the notice
}

// Decision is the outcome and the reason an audit line gives for it.
type Decision struct {
	Outcome Outcome
	Reason  string
	// Deadline is when a tenant notified or in grace gets MFA.
	Deadline time.Time
}

// disableRefused is the one statement of the disable rule: nothing turns MFA
// off unless the operator allowed it.
const disableRefused = "disabling MFA requires MFA_ALLOW_DISABLE=true"

// Preflight is the decision that needs no facts: an intent the rules refuse
// whatever the tenant. Callers ask it before any request, so that a refused
// intent costs Acronis nothing.
func (r Rules) Preflight(in Intent) (Decision, bool) {
	if !in.Enable && !r.AllowDisable {
		return Decision{Outcome: NotAllowed, Reason: disableRefused}, true
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
		return Decision{Outcome: SkippedExcluded, Reason: "tenant or an ancestor is in EXCLUDED_TENANT_IDS"}
	case f.Kind.InheritsMFA():
		return Decision{Outcome: SkippedInherited, Reason: string(f.Kind) + " tenants inherit MFA from their parent"}
	case !f.Enabled && in.Origin == ByPolicy:
		return Decision{Outcome: SkippedDisabled, Reason: "tenant is disabled"}
	case f.MFAOn == in.Enable:
		return Decision{Outcome: Compliant, Reason: "MFA already " + state}
	case !f.UpdateAllowed:
		return Decision{Outcome: NotAllowed, Reason: "Acronis reports update_allowed: false for this tenant"}
	}
	if d, waits := r.grace(f, in); waits {
		return d
	}
	if r.DryRun {
		return Decision{Outcome: WouldChange, Reason: "dry run: MFA would be " + state}
	}
	return Decision{Outcome: Change, Reason: "MFA " + state + " by policy"}
}

// grace is the rollout rule: enabling MFA by policy on a tenant whose users
// lack TOTP waits for a notice and its grace. Requests by name and disabling
// never wait, nor does a tenant whose users all have TOTP: nobody is locked out.
func (r Rules) grace(f Facts, in Intent) (Decision, bool) {
	if r.Grace <= 0 || in.Origin != ByPolicy || !in.Enable {
		return Decision{}, false
	}
	switch n := f.Notice; {
	case n != nil && n.NoticedAt.IsZero():
		return Decision{Outcome: InGrace, Reason: "another run is giving this tenant its notice"}, true
	case n != nil:
		deadline := n.NoticedAt.Add(r.Grace)
		if f.Now.Before(deadline) {
			return Decision{Outcome: InGrace, Reason: "in grace until " + stamp(deadline), Deadline: deadline}, true
		}
		return Decision{}, false
	case f.UsersWithoutTOTP > 0:
		deadline := f.Now.Add(r.Grace)
		reason := fmt.Sprintf("%d users lack TOTP: notice given, MFA from %s", f.UsersWithoutTOTP, stamp(deadline))
		if r.DryRun {
			reason = fmt.Sprintf("dry run: %d users lack TOTP: a notice would be given, MFA from %s", f.UsersWithoutTOTP, stamp(deadline))
		}
		return Decision{Outcome: Notify, Reason: reason, Deadline: deadline}, true
	}
	return Decision{}, false
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
