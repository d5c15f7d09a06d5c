package sweep

import (
	"acronismfa/internal/enforce"
	"acronismfa/internal/policy"
)

// Summary is what a sweep returns (docs/reference.md, Sweep): every listed tenant is
// counted in exactly one of the buckets after TenantsSeen.
type Summary struct {
	RootTenantID     string `json:"root_tenant_id"`
	Desired          string `json:"desired"`
	DryRun           bool   `json:"dry_run"`
	TenantsSeen      int    `json:"tenants_seen"`
	Compliant        int    `json:"compliant"`
	Changed          int    `json:"changed"`
	WouldChange      int    `json:"would_change"`
	SkippedInherited int    `json:"skipped_inherited"`
	SkippedDisabled  int    `json:"skipped_disabled"`
	SkippedExcluded  int    `json:"skipped_excluded"`
	NotAllowed       int    `json:"not_allowed"`
	Failed           int    `json:"failed"`
	FannedOut        int    `json:"fanned_out"`
	UsersWithoutTOTP int    `json:"users_without_totp"`
	DurationMs       int64  `json:"duration_ms"`
}

// add counts one tenant's result in its bucket.
func (s *Summary) add(r enforce.Result) {
	s.UsersWithoutTOTP += r.UsersWithoutTOTP()
	if r.Err != nil {
		s.Failed++
		return
	}
	switch r.Decision.Outcome {
	case policy.Compliant:
		s.Compliant++
	case policy.Change:
		s.Changed++
	case policy.WouldChange:
		s.WouldChange++
	case policy.SkippedInherited:
		s.SkippedInherited++
	case policy.SkippedDisabled:
		s.SkippedDisabled++
	case policy.SkippedExcluded:
		s.SkippedExcluded++
	case policy.NotAllowed:
		s.NotAllowed++
	default:
		s.Failed++
	}
}
