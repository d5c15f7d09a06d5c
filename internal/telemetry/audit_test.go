package telemetry

import (
	"log/slog"
	"reflect"
	"testing"
	"time"
)

func TestLogAudit(t *testing.T) {
	// Every line carries these; each case adds its own fields.
	base := func(level string, fields map[string]any) map[string]any {
		m := map[string]any{
			"level": level, "message": AuditMessage, "requestId": "req-1",
			"function": "sweep", "trigger": "schedule", "audit": true,
		}
		for k, v := range fields {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name  string
		audit Audit
		want  map[string]any
	}{
		{
			name: "enable",
			audit: Audit{TenantID: "t-1", TenantName: "Acme", Kind: "customer", Action: ActionEnable,
				Reason: "desired state enabled", Previous: "disabled", Current: "setup_required",
				SweepID: "sw-1", UsersWithoutTOTP: 3},
			want: base("INFO", map[string]any{"tenant_id": "t-1", "tenant_name": "Acme", "kind": "customer",
				"action": "enable", "reason": "desired state enabled", "previous": "disabled",
				"current": "setup_required", "sweep_id": "sw-1", "users_without_totp": float64(3)}),
		},
		{
			name:  "disable",
			audit: Audit{TenantID: "t-2", Action: ActionDisable, Reason: "webhook request", Previous: "enabled", Current: "disabled"},
			want: base("INFO", map[string]any{"tenant_id": "t-2", "action": "disable", "reason": "webhook request",
				"previous": "enabled", "current": "disabled"}),
		},
		{
			name: "would_enable",
			audit: Audit{TenantID: "t-3", Action: ActionWouldEnable, Reason: "desired state enabled",
				Previous: "disabled", Current: "disabled", UsersWithoutTOTP: 5, DryRun: true},
			want: base("INFO", map[string]any{"tenant_id": "t-3", "action": "would_enable", "reason": "desired state enabled",
				"previous": "disabled", "current": "disabled", "users_without_totp": float64(5), "dry_run": true}),
		},
		{
			name: "would_disable",
			audit: Audit{TenantID: "t-4", Action: ActionWouldDisable, Reason: "queue request",
				Previous: "enabled", Current: "enabled", DryRun: true},
			want: base("INFO", map[string]any{"tenant_id": "t-4", "action": "would_disable", "reason": "queue request",
				"previous": "enabled", "current": "enabled", "dry_run": true}),
		},
		{
			name:  "unchanged",
			audit: Audit{TenantID: "t-5", Action: ActionUnchanged, Reason: "already enabled", Previous: "enabled", Current: "enabled"},
			want: base("INFO", map[string]any{"tenant_id": "t-5", "action": "unchanged", "reason": "already enabled",
				"previous": "enabled", "current": "enabled"}),
		},
		{
			name:  "skipped",
			audit: Audit{TenantID: "t-6", Kind: "unit", Action: ActionSkipped, Reason: "inherits from parent", Previous: "enabled", Current: "enabled"},
			want: base("INFO", map[string]any{"tenant_id": "t-6", "kind": "unit", "action": "skipped",
				"reason": "inherits from parent", "previous": "enabled", "current": "enabled"}),
		},
		{
			name: "notify",
			audit: Audit{TenantID: "t-8", Action: ActionNotify, Reason: "3 users lack TOTP", Previous: "disabled", Current: "disabled",
				UsersWithoutTOTP: 3, Deadline: time.Date(2026, 12, 6, 6, 0, 0, 0, time.FixedZone("CET", 3600))},
			want: base("INFO", map[string]any{"tenant_id": "t-8", "action": "notify", "reason": "3 users lack TOTP",
				"previous": "disabled", "current": "disabled", "users_without_totp": float64(3), "deadline": "2026-12-06T05:00:00Z"}),
		},
		{
			name:  "enabled, but the notice after it not published",
			audit: Audit{TenantID: "t-9", Action: ActionEnable, Reason: "grace over", Previous: "disabled", Current: "enabled", Error: "SNS down"},
			want: base("ERROR", map[string]any{"tenant_id": "t-9", "action": "enable", "reason": "grace over",
				"previous": "disabled", "current": "enabled", "error": "SNS down"}),
		},
		{
			name:  "failed, state unknown",
			audit: Audit{TenantID: "t-7", Action: ActionFailed, Reason: "upstream_error", Error: "acronis: 503 Service Unavailable"},
			want: base("ERROR", map[string]any{"tenant_id": "t-7", "action": "failed", "reason": "upstream_error",
				"previous": "", "current": "", "error": "acronis: 503 Service Unavailable"}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := logLine(t, func(l *slog.Logger) { LogAudit(invocation("req-1"), l, tt.audit) })
			if _, ok := got["timestamp"].(string); !ok {
				t.Errorf("timestamp missing: %v", got)
			}
			delete(got, "timestamp")
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("audit line\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

// A failure must stay visible when only errors are logged.
func TestLogAuditFailureSurvivesErrorLevel(t *testing.T) {
	lines := logLines(t, slog.LevelError, func(l *slog.Logger) {
		LogAudit(invocation("req-1"), l, Audit{TenantID: "t-1", Action: ActionEnable})
		LogAudit(invocation("req-1"), l, Audit{TenantID: "t-2", Action: ActionFailed})
	})
	if len(lines) != 1 || lines[0]["tenant_id"] != "t-2" {
		t.Errorf("at ERROR the lines written are %v, want only the failure of t-2", lines)
	}
}
