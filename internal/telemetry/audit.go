package telemetry

import (
	"context"
	"log/slog"
	"time"
)

// Action is what happened to a tenant's MFA setting, as an audit line reports it.
type Action string

// Actions.
const (
	ActionEnable       Action = "enable"        // MFA was turned on
	ActionDisable      Action = "disable"       // MFA was turned off
	ActionWouldEnable  Action = "would_enable"  // a dry run would have turned MFA on
	ActionWouldDisable Action = "would_disable" // a dry run would have turned MFA off
	ActionUnchanged    Action = "unchanged"     // the tenant already had the requested state
	ActionSkipped      Action = "skipped"       // policy refused: inherited, disabled, excluded, not allowed
	ActionFailed       Action = "failed"        // Acronis, the deadline or the rollout's state stopped the change
	ActionNotify       Action = "notify"        // the tenant got its rollout notice; MFA follows at the deadline
	ActionWouldNotify  Action = "would_notify"  // a dry run would have given the notice
)

// AuditMessage is the message of every audit line, so that one filter finds them all.
const AuditMessage = "mfa audit"

// Audit is one decision about one tenant. Previous and Current are MFA states as
// Acronis names them, empty when unknown (a failure before the first read).
type Audit struct {
	TenantID         string
	TenantName       string
	Kind             string
	Action           Action
	Reason           string
	Previous         string
	Current          string
	SweepID          string
	Error            string
	UsersWithoutTOTP int
	Deadline         time.Time // when a tenant notified or in grace gets MFA
	DryRun           bool
}

// LogAudit writes a as one line with "audit": true: at ERROR for a failure or
// an error beside the action, so that error alarms see it, and at INFO
// otherwise. The optional fields appear only when set.
func LogAudit(ctx context.Context, l *slog.Logger, a Audit) {
	level := slog.LevelInfo
	if a.Action == ActionFailed || a.Error != "" {
		level = slog.LevelError
	}
	attrs := []slog.Attr{
		slog.Bool("audit", true),
		slog.String("tenant_id", a.TenantID),
		slog.String("action", string(a.Action)),
		slog.String("reason", a.Reason),
		slog.String("previous", a.Previous),
		slog.String("current", a.Current),
	}
	for _, opt := range []struct{ key, value string }{
		{"tenant_name", a.TenantName},
		{"kind", a.Kind},
		{"sweep_id", a.SweepID},
		{"error", a.Error},
	} {
		if opt.value != "" {
			attrs = append(attrs, slog.String(opt.key, opt.value))
		}
	}
	if a.UsersWithoutTOTP != 0 {
		attrs = append(attrs, slog.Int("users_without_totp", a.UsersWithoutTOTP))
	}
	if !a.Deadline.IsZero() {
		attrs = append(attrs, slog.String("deadline", a.Deadline.UTC().Format(time.RFC3339)))
	}
	if a.DryRun {
		attrs = append(attrs, slog.Bool("dry_run", true))
	}
	l.LogAttrs(ctx, level, AuditMessage, attrs...)
}
