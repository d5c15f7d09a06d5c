package enforce

import (
	"context"
	"errors"
	"log/slog"

	"acronismfa/internal/acronis"
	"acronismfa/internal/policy"
	"acronismfa/internal/telemetry"
)

// Audit writes the result's audit line: the one record of what happened to this
// tenant, whichever trigger asked. Quiet results have none.
func Audit(ctx context.Context, l *slog.Logger, r Result, sweepID string, dryRun bool) {
	if r.Quiet() {
		return
	}
	a := telemetry.Audit{
		TenantID:         r.TenantID,
		TenantName:       r.TenantName,
		Kind:             string(r.Kind),
		Action:           action(r),
		Reason:           r.Decision.Reason,
		Previous:         r.Previous,
		Current:          r.Current,
		SweepID:          sweepID,
		UsersWithoutTOTP: r.UsersWithoutTOTP(),
		DryRun:           dryRun,
	}
	if r.Err != nil {
		a.Reason = "acronis: " + errorClass(r.Err)
		// The API's own message says which case of the class it was: "no tenant
		// named …" rather than only "not found".
		if ae := (*acronis.Error)(nil); errors.As(r.Err, &ae) && ae.Message != "" {
			a.Reason += ": " + ae.Message
		}
		a.Error = r.Err.Error()
	}
	telemetry.LogAudit(ctx, l, a)
}

// Count adds the result to the invocation's metrics.
func Count(m *telemetry.Metrics, r Result) {
	m.Add(telemetry.MetricTenantsChecked, 1)
	m.Add(metric(r), 1)
	m.Add(telemetry.MetricUsersWithoutTotp, int64(r.UsersWithoutTOTP()))
}

func action(r Result) telemetry.Action {
	if r.Err != nil {
		return telemetry.ActionFailed
	}
	switch r.Decision.Outcome {
	case policy.Change:
		if r.Intent.Enable {
			return telemetry.ActionEnable
		}
		return telemetry.ActionDisable
	case policy.WouldChange:
		if r.Intent.Enable {
			return telemetry.ActionWouldEnable
		}
		return telemetry.ActionWouldDisable
	case policy.Compliant:
		return telemetry.ActionUnchanged
	default:
		return telemetry.ActionSkipped
	}
}

func metric(r Result) string {
	if r.Err != nil {
		return telemetry.MetricTenantsFailed
	}
	switch r.Decision.Outcome {
	case policy.Change:
		return telemetry.MetricTenantsChanged
	case policy.WouldChange:
		return telemetry.MetricTenantsWouldChange
	case policy.Compliant:
		return telemetry.MetricTenantsCompliant
	default:
		return telemetry.MetricTenantsSkipped
	}
}

// errorClass names the class of an Acronis failure for the audit reason.
func errorClass(err error) string {
	for _, class := range []error{acronis.ErrNotFound, acronis.ErrNotAllowed, acronis.ErrBadRequest,
		acronis.ErrUnauthorized, acronis.ErrThrottled, acronis.ErrUpstream, acronis.ErrDeadline} {
		if errors.Is(err, class) {
			return class.Error()
		}
	}
	return "unexpected error"
}

// CountRequests adds an invocation's Acronis traffic to its metrics.
func CountRequests(m *telemetry.Metrics, s acronis.Stats) {
	m.Add(telemetry.MetricAcronisRequests, s.Requests)
	m.Add(telemetry.MetricAcronisThrottled, s.Throttled)
	m.Add(telemetry.MetricAcronisErrors, s.Errors)
}
