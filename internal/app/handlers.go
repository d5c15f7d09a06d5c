package app

import (
	"context"
	"encoding/json"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"acronismfa/internal/enforce"
	"acronismfa/internal/sweep"
	"acronismfa/internal/webhook"
	"acronismfa/internal/worker"
)

// Time kept free before an invocation's deadline to answer rather than be cut
// off: a webhook caller gets 504, a worker batch its failures listed.
const (
	webhookReserve = 500 * time.Millisecond
	workerReserve  = time.Second
)

// Webhook is the webhook function's handler.
func Webhook(d *Deps) (Handler[events.APIGatewayV2HTTPRequest, events.APIGatewayV2HTTPResponse], error) {
	h := &webhook.Handler{
		Keys: func(ctx context.Context, fresh bool) ([][]byte, error) {
			if fresh {
				return d.Secrets.WebhookKeysFresh(ctx, d.Config.WebhookSecretID)
			}
			return d.Secrets.WebhookKeys(ctx, d.Config.WebhookSecretID)
		},
		Acronis:   d.Acronis,
		Rules:     d.Config.Rules(),
		Logger:    d.Logger,
		Namespace: d.Config.MetricsNamespace,
		Out:       d.Out,
		Now:       time.Now,
		Reserve:   webhookReserve,
	}
	return h.Handle, nil
}

// Worker is the worker function's handler.
func Worker(d *Deps) (Handler[events.SQSEvent, events.SQSEventResponse], error) {
	h := &worker.Handler{
		Acronis:      d.Acronis,
		Rules:        d.Config.Rules(),
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
	return h.Handle, nil
}

// Sweep is the sweep function's handler, fanning out to ENFORCE_QUEUE_URL when
// it is set.
func Sweep(d *Deps) (Handler[json.RawMessage, sweep.Summary], error) {
	s := sweep.Sweeper{
		Lister:      d.Acronis,
		Enforcer:    &enforce.Enforcer{API: d.Acronis, Rules: d.Config.Rules()},
		Desired:     d.Config.DesiredEnabled,
		Concurrency: d.Config.SweepConcurrency,
		InlineLimit: d.Config.SweepInlineLimit,
		Now:         time.Now,
	}
	if d.Config.EnforceQueueURL != "" {
		s.Fanout = &sweep.Fanout{SQS: sqs.NewFromConfig(d.AWS), QueueURL: d.Config.EnforceQueueURL, Concurrency: 8, Attempts: 3}
	}
	h := &sweep.Handler{
		Sweeper:      s,
		Acronis:      d.Acronis,
		RootTenantID: d.Config.RootTenantID,
		DryRun:       d.Config.DryRun,
		Logger:       d.Logger,
		Namespace:    d.Config.MetricsNamespace,
		Out:          d.Out,
	}
	return h.Handle, nil
}
