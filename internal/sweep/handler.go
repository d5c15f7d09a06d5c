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
	"acronismfa/internal/telemetry"
)

// Acronis is the part of the Acronis client the sweep handler uses beyond the
// Sweeper's own.
type Acronis interface {
	OwnTenantID(ctx context.Context) (string, error)
	Stats() acronis.Stats
}

// Handler runs one sweep per scheduled invocation (docs/reference.md, Sweep).
type Handler struct {
	Sweeper      Sweeper // Audit is set per run
	Acronis      Acronis
	RootTenantID string // from the configuration; "" means the API client's own tenant
	DryRun       bool   // from the configuration
	Logger       *slog.Logger
	Namespace    string
	Out          io.Writer
}

// ErrDryRunOverride refuses an ad-hoc run that would turn a configured dry run
// into real changes: only the configuration may do that.
var ErrDryRunOverride = errors.New(`override "dry_run": false refused: DRY_RUN=true is configured, and an ad-hoc run may only be drier than the configuration`)

// Handle parses the invocation input, sweeps, and reports the summary.
func (h *Handler) Handle(ctx context.Context, input json.RawMessage) (Summary, error) {
	metrics := telemetry.NewMetrics(h.Namespace, "sweep", "schedule")
	before := h.Acronis.Stats()
	sum, err := h.sweep(ctx, input)

	metrics.Add(telemetry.MetricTenantsChecked, int64(sum.TenantsSeen))
	metrics.Add(telemetry.MetricTenantsCompliant, int64(sum.Compliant))
	metrics.Add(telemetry.MetricTenantsChanged, int64(sum.Changed))
	metrics.Add(telemetry.MetricTenantsWouldChange, int64(sum.WouldChange))
	metrics.Add(telemetry.MetricTenantsSkipped, int64(sum.SkippedInherited+sum.SkippedDisabled+sum.SkippedExcluded+sum.NotAllowed))
	metrics.Add(telemetry.MetricTenantsFailed, int64(sum.Failed))
	metrics.Add(telemetry.MetricUsersWithoutTotp, int64(sum.UsersWithoutTOTP))
	metrics.SetDurationMs(sum.DurationMs)
	enforce.CountRequests(metrics, h.Acronis.Stats().Sub(before))
	if werr := metrics.Write(h.Out, h.Sweeper.Now()); werr != nil {
		h.Logger.ErrorContext(ctx, "write metrics", "error", werr)
	}
	if err != nil {
		h.Logger.ErrorContext(ctx, "sweep failed", "error", err, "summary", sum)
		return sum, err
	}
	h.Logger.InfoContext(ctx, "sweep done", "summary", sum)
	return sum, nil
}

func (h *Handler) sweep(ctx context.Context, input json.RawMessage) (Summary, error) {
	o, err := ParseInput(input)
	if err != nil {
		return Summary{}, fmt.Errorf("sweep input: %w", err)
	}
	run := Run{RootTenantID: h.RootTenantID, DryRun: h.DryRun, SweepID: sweepID(ctx)}
	if o.DryRun != nil {
		if h.DryRun && !*o.DryRun {
			return Summary{}, ErrDryRunOverride
		}
		run.DryRun = *o.DryRun
	}
	if o.RootTenantID != "" {
		run.RootTenantID = o.RootTenantID
	}
	if run.RootTenantID == "" {
		if run.RootTenantID, err = h.Acronis.OwnTenantID(ctx); err != nil {
			return Summary{DryRun: run.DryRun}, fmt.Errorf("find the API client's own tenant, the default sweep root: %w", err)
		}
	}
	s := h.Sweeper
	s.Audit = func(ctx context.Context, r enforce.Result) {
		enforce.Audit(ctx, h.Logger, r, run.SweepID, run.DryRun)
	}
	h.Logger.InfoContext(ctx, "sweep started", "sweep_id", run.SweepID, "root_tenant_id", run.RootTenantID, "dry_run", run.DryRun)
	return s.Run(ctx, run)
}

// sweepID names a sweep in its audit lines and fan-out messages: Lambda's
// request id where there is one, so that the sweep's own log lines match.
func sweepID(ctx context.Context) string {
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		return lc.AwsRequestID
	}
	return rand.Text()
}
