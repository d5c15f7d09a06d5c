package sweep

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"acronismfa/internal/acronis"
	"acronismfa/internal/enforce"
	"acronismfa/internal/notify"
	"acronismfa/internal/telemetry"
)

// Acronis is the part of the Acronis client the sweep handler uses beyond the
// Sweeper's own.
type Acronis interface {
	OwnTenantID(ctx context.Context) (string, error)
	Stats() acronis.Stats
}

// Notifier publishes the digest of a full sweep.
type Notifier interface {
	Publish(ctx context.Context, n notify.Notice) error
}

// Handler runs one sweep per scheduled invocation (docs/reference.md, Sweep).
type Handler struct {
	Sweeper      Sweeper // Audit is set per run
	Acronis      Acronis
	RootTenantID string // from the configuration; "" means the API client's own tenant
	DryRun       bool   // from the configuration
	// Notifier publishes the sweep_completed digest of every full sweep that
	// is not a dry run; nil without NOTIFY_TOPIC_ARN.
	Notifier  Notifier
	Logger    *slog.Logger
	Namespace string
	Out       io.Writer
}

// ErrDryRunOverride refuses an ad-hoc run that would turn a configured dry run
// into real changes: only the configuration may do that.
var ErrDryRunOverride = errors.New(`override "dry_run": false refused: DRY_RUN=true is configured, and an ad-hoc run may only be drier than the configuration`)

// Handle parses the invocation input, sweeps, and reports the summary.
func (h *Handler) Handle(ctx context.Context, input json.RawMessage) (Summary, error) {
	metrics := telemetry.NewMetrics(h.Namespace, telemetry.Sweep)
	before := h.Acronis.Stats()
	sum, run, err := h.sweep(ctx, input)
	if sum.CompliancePercent != nil {
		metrics.SetCompliancePercent(*sum.CompliancePercent)
	}
	// A sweep that did not list the whole tree still has a report of what it saw.
	if (err == nil || errors.Is(err, ErrIncomplete)) && !run.Watch() && h.Sweeper.NewReport != nil {
		metrics.SetReportFailed(sum.Report == nil)
		if sum.Report == nil {
			h.Logger.ErrorContext(ctx, "report not written", "sweep_id", run.SweepID, "error", sum.ReportErr)
		}
	}
	count(metrics, sum)
	enforce.CountRequests(metrics, h.Acronis.Stats().Sub(before))
	if werr := metrics.Write(h.Out, h.Sweeper.Now()); werr != nil {
		h.Logger.ErrorContext(ctx, "write metrics", "error", werr)
	}
	if h.Notifier != nil {
		if err := PublishDigest(ctx, h.Notifier, run, sum); err != nil {
			h.Logger.ErrorContext(ctx, "sweep digest not published", "sweep_id", run.SweepID, "error", err)
		}
	}
	if err != nil {
		h.Logger.ErrorContext(ctx, "sweep failed", "error", err, "summary", sum)
		return sum, err
	}
	h.Logger.InfoContext(ctx, "sweep done", "summary", sum)
	return sum, nil
}

// count adds the summary to the invocation's metrics.
func count(m *telemetry.Metrics, sum Summary) {
	m.Add(telemetry.MetricTenantsChecked, int64(sum.TenantsSeen))
	m.Add(telemetry.MetricTenantsCompliant, int64(sum.Compliant))
	m.Add(telemetry.MetricTenantsChanged, int64(sum.Changed))
	m.Add(telemetry.MetricTenantsWouldChange, int64(sum.WouldChange))
	m.Add(telemetry.MetricTenantsSkipped, int64(sum.SkippedInherited+sum.SkippedDisabled+sum.SkippedExcluded+sum.NotAllowed))
	m.Add(telemetry.MetricTenantsFailed, int64(sum.Failed))
	m.Add(telemetry.MetricTenantsInGrace, int64(sum.InGrace))
	m.Add(telemetry.MetricTenantsNotified, int64(sum.Notified))
	m.Add(telemetry.MetricUsersWithoutTotp, int64(sum.UsersWithoutTOTP))
	m.SetDurationMs(sum.DurationMs)
}

// PublishDigest publishes the sweep_completed notice of a full sweep that
// listed the whole tree and is not a dry run; other runs have none.
func PublishDigest(ctx context.Context, n Notifier, run Run, sum Summary) error {
	if run.Watch() || run.DryRun || sum.CompliancePercent == nil {
		return nil
	}
	doc, _ := json.Marshal(sum) // a struct of strings and numbers always encodes
	text := fmt.Sprintf("The MFA compliance sweep %s of tenant %s is done: %d tenants, %.1f%% compliant.\n\n"+
		"Changed: %d. In grace: %d (%d notified now). Not allowed: %d. Failed: %d. Sent to the worker: %d.\n"+
		"Users who must now set up TOTP: %d.\n", run.SweepID, sum.RootTenantID, sum.TenantsSeen, *sum.CompliancePercent,
		sum.Changed, sum.InGrace, sum.Notified, sum.NotAllowed, sum.Failed, sum.FannedOut, sum.UsersWithoutTOTP)
	if sum.Report != nil {
		text += "Report: " + *sum.Report + "\n"
	}
	return n.Publish(ctx, notify.SweepCompleted{Summary: doc, SweepID: run.SweepID, Text: text})
}

func (h *Handler) sweep(ctx context.Context, input json.RawMessage) (Summary, Run, error) {
	o, err := ParseInput(input)
	if err != nil {
		return Summary{}, Run{}, fmt.Errorf("sweep input: %w", err)
	}
	run := Run{RootTenantID: h.RootTenantID, DryRun: h.DryRun, SweepID: sweepID(ctx)}
	if o.DryRun != nil {
		if h.DryRun && !*o.DryRun {
			return Summary{}, run, ErrDryRunOverride
		}
		run.DryRun = *o.DryRun
	}
	if o.RootTenantID != "" {
		run.RootTenantID = o.RootTenantID
	}
	if o.UpdatedWithin > 0 {
		run.UpdatedSince = h.Sweeper.Now().Add(-o.UpdatedWithin)
	}
	if run.RootTenantID == "" {
		if run.RootTenantID, err = h.Acronis.OwnTenantID(ctx); err != nil {
			return newSummary(run, h.Sweeper.Desired), run, fmt.Errorf("find the API client's own tenant, the default sweep root: %w", err)
		}
	}
	s := h.Sweeper
	s.Audit = func(ctx context.Context, r enforce.Result) {
		enforce.Audit(ctx, h.Logger, r, run.SweepID, run.DryRun)
	}
	attrs := []any{"sweep_id", run.SweepID, "root_tenant_id", run.RootTenantID, "dry_run", run.DryRun}
	if run.Watch() {
		attrs = append(attrs, "updated_since", stamp(run.UpdatedSince))
	}
	h.Logger.InfoContext(ctx, "sweep started", attrs...)
	sum, err := s.Run(ctx, run)
	return sum, run, err
}

// sweepID names a sweep in its audit lines and fan-out messages: Lambda's
// request id where there is one, so that the sweep's own log lines match.
func sweepID(ctx context.Context) string {
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		return lc.AwsRequestID
	}
	return rand.Text()
}
