package sweep

import (
	"math"
	"time"

	"acronismfa/internal/enforce"
	"acronismfa/internal/policy"
	"acronismfa/internal/report"
	"acronismfa/internal/tenant"
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
	InGrace          int    `json:"in_grace"`
	// Notified counts those of InGrace whose notice this run gave.
	Notified         int `json:"notified"`
	UsersWithoutTOTP int `json:"users_without_totp"`
	// CompliancePercent is a full sweep's that listed the whole tree; null
	// otherwise.
	CompliancePercent *float64 `json:"compliance_percent"`
	// Report is the s3:// URI of a full sweep's report; null without one.
	Report     *string `json:"report"`
	DurationMs int64   `json:"duration_ms"`
	// UpdatedSince is a watch run's window (RFC 3339).
	UpdatedSince string `json:"updated_since,omitempty"`
	// ReportErr is why a report that was due is not there.
	ReportErr error `json:"-"`
}

func newSummary(p Run, desired bool) Summary {
	s := Summary{RootTenantID: p.RootTenantID, Desired: tenant.MFAState(desired), DryRun: p.DryRun}
	if p.Watch() {
		s.UpdatedSince = stamp(p.UpdatedSince)
	}
	return s
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// Buckets, as the summary and the report name them.
const (
	bucketFailed    = "failed"
	bucketFannedOut = "fanned_out"
)

// bucket names the bucket a result lands in.
func bucket(r enforce.Result) string {
	if r.Err != nil {
		return bucketFailed
	}
	switch o := r.Decision.Outcome; o {
	case policy.Change:
		return "changed"
	case policy.Notify:
		return string(policy.InGrace)
	default:
		return string(o)
	}
}

// add counts one tenant's result in its bucket and returns the bucket.
func (s *Summary) add(r enforce.Result) string {
	s.UsersWithoutTOTP += r.UsersWithoutTOTP()
	if r.Notified {
		s.Notified++
	}
	b := bucket(r)
	switch b {
	case string(policy.Compliant):
		s.Compliant++
	case "changed":
		s.Changed++
	case string(policy.WouldChange):
		s.WouldChange++
	case string(policy.SkippedInherited):
		s.SkippedInherited++
	case string(policy.SkippedDisabled):
		s.SkippedDisabled++
	case string(policy.SkippedExcluded):
		s.SkippedExcluded++
	case string(policy.NotAllowed):
		s.NotAllowed++
	case string(policy.InGrace):
		s.InGrace++
	default:
		s.Failed++
	}
	return b
}

// Compliance is 100 × (compliant + changed) / the tenants policy applies to
// (those seen, but for the skipped), to one decimal; 100 when policy applies
// to none. A dry run's would-be changes are not compliance.
func (s Summary) Compliance() float64 {
	eligible := s.TenantsSeen - s.SkippedInherited - s.SkippedDisabled - s.SkippedExcluded
	if eligible <= 0 {
		return 100
	}
	return math.Round(1000*float64(s.Compliant+s.Changed)/float64(eligible)) / 10
}

// row is a tenant's line of the report.
func row(r enforce.Result, b string) report.Row {
	t := r.Tenant
	row := report.Row{TenantID: t.ID, TenantName: t.Name, Kind: string(t.Kind), ParentID: t.ParentID,
		TenantEnabled: t.Enabled, MFAStatus: r.Current, Outcome: b, Reason: enforce.Reason(r)}
	if r.Status.MFAStatus != "" {
		row.Users = &report.Users{Count: r.Status.UsersCount, WithoutTOTP: r.Status.UsersWithoutTOTP()}
	}
	if b == string(policy.InGrace) {
		row.GraceDeadline = r.Decision.Deadline
	}
	return row
}

// fannedOutRow is the line of a tenant handed to the worker queue.
func fannedOutRow(t tenant.Tenant) report.Row {
	return report.Row{TenantID: t.ID, TenantName: t.Name, Kind: string(t.Kind), ParentID: t.ParentID,
		TenantEnabled: t.Enabled, MFAStatus: t.MFAStatus, Outcome: bucketFannedOut,
		Reason: "sent to the worker queue, which enforces it"}
}
