// Package app builds what a function needs once per cold start: configuration,
// logger, secrets, the Acronis client and the handler. functions/*/main.go only
// name their function; everything they share is here, so the three start alike
// and tests build them exactly as production does.
package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"acronismfa/internal/acronis"
	"acronismfa/internal/config"
	"acronismfa/internal/policy"
	"acronismfa/internal/secrets"
	"acronismfa/internal/telemetry"
)

// Deps are a function's dependencies, built once and shared by its invocations.
type Deps struct {
	Config  config.Config
	Logger  *slog.Logger
	Secrets *secrets.Store
	Acronis *acronis.Client
	Out     io.Writer // stdout: logs and EMF documents
}

// Rules is the operator's policy from the configuration.
func (d *Deps) Rules() policy.Rules {
	return policy.Rules{
		AllowDisable: d.Config.AllowDisable,
		DryRun:       d.Config.DryRun,
		Excluded:     policy.NewExclusions(d.Config.ExcludedTenantIDs),
	}
}

// Trigger names what invokes each function, as the logs' and metrics' Trigger.
var Trigger = map[config.Function]string{config.Webhook: "http", config.Worker: "sqs", config.Sweep: "schedule"}

// Options change how Init builds the dependencies; production uses none.
type Options struct {
	// Sleep replaces the Acronis client's wait between retries; nil waits for
	// real. Only tests set it, so that throttling through the production
	// wiring costs them no time.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Init loads the configuration of fn and builds its dependencies.
func Init(ctx context.Context, fn config.Function, getenv func(string) string, out io.Writer, o Options) (*Deps, error) {
	logger := telemetry.NewLogger(out, string(fn), Trigger[fn], telemetry.LevelFromEnv(getenv))
	cfg, err := config.Load(fn, getenv)
	if err != nil {
		return &Deps{Logger: logger}, err
	}
	sm, err := secrets.NewSecretsManagerClient(ctx)
	if err != nil {
		return &Deps{Logger: logger}, fmt.Errorf("AWS configuration: %w", err)
	}
	store := secrets.NewStore(sm, secrets.DefaultTTL, time.Now)
	opts := acronis.Options{Logger: logger, Sleep: o.Sleep}
	if fn == config.Sweep {
		// Listing, confirming and writing together stay within what the
		// operator allowed.
		opts.MaxInFlight = cfg.SweepConcurrency
	}
	return &Deps{
		Config:  cfg,
		Logger:  logger,
		Secrets: store,
		Acronis: acronis.New(store.Acronis(cfg.AcronisSecretID), opts),
		Out:     out,
	}, nil
}

// Start initialises fn and hands the handler that build makes to the Lambda
// runtime. A bad configuration stops the function at init with one log line
// that names the variable and what it accepts.
func Start(fn config.Function, build func(context.Context, *Deps) (any, error)) {
	ctx := context.Background()
	deps, err := Init(ctx, fn, os.Getenv, os.Stdout, Options{})
	if err == nil {
		var handler any
		if handler, err = build(ctx, deps); err == nil {
			lambda.Start(handler)
			return
		}
	}
	deps.Logger.ErrorContext(ctx, "init failed: "+err.Error())
	os.Exit(1)
}
