package app

import (
	"context"
	"encoding/json"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"acronismfa/internal/enforce"
	"acronismfa/internal/notify"
	"acronismfa/internal/report"
	"acronismfa/internal/statestore"
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

// Webhook is the webhook function's handler, which records every verified
// webhook-id in STATE_TABLE when it is set.
func Webhook(d *Deps) Handler[events.APIGatewayV2HTTPRequest, events.APIGatewayV2HTTPResponse] {
	table := d.stateTable()
	h := &webhook.Handler{
		Keys: func(ctx context.Context, fresh bool) ([][]byte, error) {
			if fresh {
				return d.Secrets.WebhookKeysFresh(ctx, d.Config.WebhookSecretID)
			}
			return d.Secrets.WebhookKeys(ctx, d.Config.WebhookSecretID)
		},
		Acronis: d.Acronis,
		// A caller's request never waits for a grace: no rollout, and no SNS
		// client to build at a cold start.
		Enforcer:  &enforce.Enforcer{API: d.Acronis, Rules: d.Config.Rules()},
		Logger:    d.Logger,
		Namespace: d.Config.MetricsNamespace,
		Out:       d.Out,
		Now:       time.Now,
		Reserve:   webhookReserve,
	}
	if table != nil {
		h.Replays = table
		h.Enforcer.Leases = table
	}
	return h.Handle
}

// Worker is the worker function's handler.
func Worker(d *Deps) Handler[events.SQSEvent, events.SQSEventResponse] {
	h := &worker.Handler{
		Acronis:      d.Acronis,
		Enforcer:     d.Enforcer(),
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
	return h.Handle
}

// Sweep is the sweep function's handler, fanning out to ENFORCE_QUEUE_URL and
// writing reports to REPORT_BUCKET when they are set.
func Sweep(d *Deps) Handler[json.RawMessage, sweep.Summary] {
	h := &sweep.Handler{
		Sweeper:      d.Sweeper(),
		Acronis:      d.Acronis,
		RootTenantID: d.Config.RootTenantID,
		DryRun:       d.Config.DryRun,
		Logger:       d.Logger,
		Namespace:    d.Config.MetricsNamespace,
		Out:          d.Out,
	}
	if pub := d.Publisher(); pub != nil {
		h.Notifier = pub
	}
	return h.Handle
}

// Sweeper is a sweep as the configuration has it: the sweep function's and
// the command line's.
func (d *Deps) Sweeper() sweep.Sweeper {
	table := d.stateTable()
	s := sweep.Sweeper{
		Lister:      d.Acronis,
		Enforcer:    d.enforcer(table),
		Desired:     d.Config.DesiredEnabled,
		Concurrency: d.Config.SweepConcurrency,
		InlineLimit: d.Config.SweepInlineLimit,
		Now:         time.Now,
	}
	if d.Config.EnforceQueueURL != "" {
		s.Fanout = &sweep.Fanout{SQS: sqs.NewFromConfig(d.AWS), QueueURL: d.Config.EnforceQueueURL, Concurrency: 8, Attempts: 3}
	}
	if s.Enforcer.Rollout != nil {
		s.Notices = table
	}
	if bucket := d.Config.ReportBucket; bucket != "" {
		client := s3.NewFromConfig(d.AWS)
		s.NewReport = func(ctx context.Context, sweepID string, at time.Time) sweep.Report {
			return report.StartS3(ctx, client, bucket, d.Config.ReportPrefix, sweepID, at)
		}
	}
	return s
}

// Enforcer is the configured policy over the Acronis client, with the write
// leases and the rollout's notices when STATE_TABLE is set.
func (d *Deps) Enforcer() *enforce.Enforcer { return d.enforcer(d.stateTable()) }

// enforcer is Enforcer over a given state table.
func (d *Deps) enforcer(table *statestore.Table) *enforce.Enforcer {
	e := &enforce.Enforcer{API: d.Acronis, Rules: d.Config.Rules()}
	if table != nil {
		// With a grace of 0 too: the notices given under an earlier grace end
		// with an enforced notice at the next run, and leave the table.
		e.Leases = table
		e.Rollout = &enforce.Rollout{Notices: table, Directory: d.Acronis, Now: time.Now}
		if pub := d.Publisher(); pub != nil {
			e.Rollout.Notifier = pub
		}
	}
	return e
}

// stateTable is STATE_TABLE, nil when it is not set.
func (d *Deps) stateTable() *statestore.Table {
	if d.Config.StateTable == "" {
		return nil
	}
	return &statestore.Table{DB: dynamodb.NewFromConfig(d.AWS), Name: d.Config.StateTable, Now: time.Now}
}

// Publisher publishes to NOTIFY_TOPIC_ARN, nil when it is not set.
func (d *Deps) Publisher() *notify.Publisher {
	if d.Config.NotifyTopicARN == "" {
		return nil
	}
	return &notify.Publisher{SNS: sns.NewFromConfig(d.AWS), TopicARN: d.Config.NotifyTopicARN}
}
