package app

import (
	"context"
	"fmt"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"acronismfa/internal/enforce"
	"acronismfa/internal/worker"
	"acronismfa/internal/sweep"
	"acronismfa/internal/webhook"
)

// Time kept free before an invocation's deadline to answer rather than be cut
// off: a webhook caller gets 504, a worker batch its failures listed.
const (
	webhookReserve = 500 * time.Millisecond
	workerReserve  = time.Second
)

// Webhook is the webhook function's handler.
func Webhook(d *Deps) *webhook.Handler {
	return &webhook.Handler{
		Keys: func(ctx context.Context, fresh bool) ([][]byte, error) {
			if fresh {
				return d.Secrets.WebhookKeysFresh(ctx, d.Config.WebhookSecretID)
			}
			return d.Secrets.WebhookKeys(ctx, d.Config.WebhookSecretID)
		},
		Acronis:   d.Acronis,
		Rules:     d.Rules(),
		Logger:    d.Logger,
		Namespace: d.Config.MetricsNamespace,
		Out:       d.Out,
		Now:       time.Now,
		Reserve:   webhookReserve,
	}
}

// Worker is the worker function's handler.
func Worker(d *Deps) *worker.Handler {
	return &worker.Handler{
		Acronis:      d.Acronis,
		Rules:        d.Rules(),
		Desired:      d.Config.DesiredEnabled,
		RootTenantID: d.Config.RootTenantID,
		// A batch is at most ten messages (the template's BatchSize).
		Concurrency: 10,
		Logger:      d.Logger,
		Namespace:   d.Config.MetricsNamespace,
		Out:         d.Out,
		Now:         time.Now,
		Reserve:     workerReserve,
	}
}

// Sweep is the sweep function's handler, fanning out to ENFORCE_QUEUE_URL when
// it is set.
func Sweep(ctx context.Context, d *Deps) (*sweep.Handler, error) {
	s := sweep.Sweeper{
		Lister:      d.Acronis,
		Enforcer:    &enforce.Enforcer{API: d.Acronis, Rules: d.Rules()},
		Desired:     d.Config.DesiredEnabled,
		Concurrency: d.Config.SweepConcurrency,
		InlineLimit: d.Config.SweepInlineLimit,
		Now:         time.Now,
	}
	if d.Config.EnforceQueueURL != "" {
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("AWS configuration for ENFORCE_QUEUE_URL: %w", err)
		}
		s.Fanout = &sweep.Fanout{SQS: sqs.NewFromConfig(awsCfg), QueueURL: d.Config.EnforceQueueURL, Concurrency: 8, Attempts: 3}
	}
	return &sweep.Handler{
		Sweeper:      s,
		Acronis:      d.Acronis,
		RootTenantID: d.Config.RootTenantID,
		DryRun:       d.Config.DryRun,
		Logger:       d.Logger,
		Namespace:    d.Config.MetricsNamespace,
		Out:          d.Out,
	}, nil
}
