package enforce

import (
	"context"
	"errors"
	"log/slog"

	"acronismfa/internal/acronis"
	"acronismfa/internal/policy"
	"acronismfa/internal/statestore"
	"acronismfa/internal/telemetry"
)

// errNotPublished is wrapped by the failure to publish a notice.
var errNotPublished = errors.New("notice not published")

// Audit writes the result's audit line: the one record of what happened to this
// tenant, whichever trigger asked. Quiet results have none.
func Audit(ctx context.Context, l *slog.Logger, r Result, sweepID string, dryRun bool) {
	if r.Quiet() {
		return
	}
	a := telemetry.Audit{
		TenantID:         r.Tenant.ID,
		TenantName:       r.Tenant.Name,
		Kind:             string(r.Tenant.Kind),
		Action:           action(r, dryRun),
		Reason:           r.Decision.Reason,
		Previous:         r.Previous,
		Current:          r.Current,
		SweepID:          sweepID,
		UsersWithoutTOTP: r.UsersWithoutTOTP(),
		DryRun:           dryRun,
	}
	// A tenant that failed has no grace running: its notice was not given.
	if o := r.Decision.Outcome; r.Err == nil && (o == policy.Notify || o == policy.InGrace) {
		a.UsersWithoutTOTP = r.Status.UsersWithoutTOTP()
		a.Deadline = r.Decision.Deadline
	}
	switch {
	case r.Err != nil:
		a.Reason = Reason(r)
		a.Error = r.Err.Error()
	case r.NoticeErr != nil:
		a.Error = r.NoticeErr.Error()
	}
	telemetry.LogAudit(ctx, l, a)
}

// Reason says why the result is what it is: the decision's reason, or what
// failed, by its class and the API's own message.
func Reason(r Result) string {
	if r.Err != nil {
		return failure(r.Err)
	}
	return r.Decision.Reason
}

// failure names what failed for the audit reason.
func failure(err error) string {
	for _, class := range []error{acronis.ErrNotFound, acronis.ErrNotAllowed, acronis.ErrBadRequest,
		acronis.ErrUnauthorized, acronis.ErrThrottled, acronis.ErrUpstream, acronis.ErrDeadline} {
		if errors.Is(err, class) {
			reason := "acronis: " + class.Error()
			// The API's own message says which case of the class it was: "no
			// tenant named …" rather than only "not found".
			if ae := (*acronis.Error)(nil); errors.As(err, &ae) && ae.Message != "" {
				reason += ": " + ae.Message
			}
			return reason
		}
	}
	switch {
	case errors.Is(err, statestore.ErrUnavailable):
		return statestore.ErrUnavailable.Error()
	case errors.Is(err, errNotPublished):
		return "rollout: " + errNotPublished.Error()
	case errors.Is(err, ErrBusy):
		return "busy: " + ErrBusy.Error()
	}
	return "unexpected error"
}

// Count adds the result to the invocation's metrics.
func Count(m *telemetry.Metrics, r Result) {
	m.Add(telemetry.MetricTenantsChecked, 1)
	m.Add(metric(r), 1)
	m.Add(telemetry.MetricUsersWithoutTotp, int64(r.UsersWithoutTOTP()))
	if r.Notified {
		m.Add(telemetry.MetricTenantsNotified, 1)
	}
}

func action(r Result, dryRun bool) telemetry.Action {
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
	case policy.Notify:
		if dryRun {
			return telemetry.ActionWouldNotify
		}
		return telemetry.ActionNotify
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
	case policy.Notify, policy.InGrace:
		return telemetry.MetricTenantsInGrace
	default:
		return telemetry.MetricTenantsSkipped
	}
}

// CountRequests adds an invocation's Acronis traffic to its metrics.
func CountRequests(m *telemetry.Metrics, s acronis.Stats) {
	m.Add(telemetry.MetricAcronisRequests, s.Requests)
	m.Add(telemetry.MetricAcronisThrottled, s.Throttled)
	m.Add(telemetry.MetricAcronisErrors, s.Errors)
}
