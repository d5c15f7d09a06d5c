package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"acronismfa/internal/acronis"
	"acronismfa/internal/config"
	"acronismfa/internal/secrets"
	"acronismfa/internal/telemetry"
)

// Deps are a function's dependencies, built once and shared by its invocations.
type Deps struct {
	Config  config.Config
	Logger  *slog.Logger
	AWS     aws.Config // loaded once: every AWS client of the function shares it
	Secrets *secrets.Store
	Acronis *acronis.Client
	Out     io.Writer // stdout: logs and EMF documents
}

// sources names each function in its logs and metrics.
var sources = map[config.Function]telemetry.Source{config.Webhook: telemetry.Webhook, config.Worker: telemetry.Worker,
	config.Sweep: telemetry.Sweep, config.CLI: {Function: "cli", Trigger: "operator"}}

// Init loads the configuration of fn through getenv and builds its dependencies.
// The logger is there even when the error is not, to say why.
func Init(ctx context.Context, fn config.Function, getenv func(string) string, out io.Writer) (*Deps, error) {
	logger := telemetry.NewLogger(out, sources[fn].Function, sources[fn].Trigger, telemetry.LevelFromEnv(getenv))
	cfg, err := config.Load(fn, getenv)
	if err != nil {
		return &Deps{Logger: logger}, err
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return &Deps{Logger: logger}, fmt.Errorf("AWS configuration: %w", err)
	}
	store := secrets.NewStore(secretsmanager.NewFromConfig(awsCfg), secrets.DefaultTTL, time.Now)
	var creds acronis.CredentialSource = store.Acronis(cfg.AcronisSecretID)
	if cfg.AcronisSecretID == "" {
		creds = secrets.Static(cfg.AcronisCredentials) // the command line's variables
	}
	opts := acronis.Options{Logger: logger}
	if fn == config.Sweep || fn == config.CLI {
		// Listing, confirming and writing together stay within what the
		// operator allowed.
		opts.MaxInFlight = cfg.SweepConcurrency
	}
	return &Deps{
		Config:  cfg,
		Logger:  logger,
		AWS:     awsCfg,
		Secrets: store,
		Acronis: acronis.New(creds, opts),
		Out:     out,
	}, nil
}

// Handler is a function's handler, as package lambda takes it.
type Handler[In, Out any] = func(context.Context, In) (Out, error)

// Run initialises fn, builds its handler and hands it to the Lambda runtime.
// A bad configuration stops the function at init with one log line that names
// the variable and what it accepts.
func Run[In, Out any](fn config.Function, build func(*Deps) Handler[In, Out]) {
	ctx := context.Background()
	deps, err := Init(ctx, fn, os.Getenv, os.Stdout)
	if err != nil {
		deps.Logger.ErrorContext(ctx, "init failed: "+err.Error())
		os.Exit(1)
	}
	lambda.StartHandlerFunc(build(deps))
}
