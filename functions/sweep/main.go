// Command sweep is the scheduled compliance sweep over the tenant tree.
package main

import (
	"context"
	"fmt"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"acronismfa/internal/app"
	"acronismfa/internal/config"
	"acronismfa/internal/enforce"
	"acronismfa/internal/sweep"
)

func main() {
	opts := app.Options{MaxInFlight: func(c config.Config) int { return c.SweepConcurrency }}
	app.Start(config.Sweep, "schedule", opts, func(ctx context.Context, d *app.Deps) (any, error) {
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
	})
}
