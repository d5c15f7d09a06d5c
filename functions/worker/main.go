// Command worker is the SQS handler: enforcement requests, tenant-created
// events and sweep fan-out, with partial batch failures.
package main

import (
	"context"
	"time"

	"acronismfa/internal/app"
	"acronismfa/internal/config"
	"acronismfa/internal/queue"
)

func main() {
	app.Start(config.Worker, "sqs", app.Options{}, func(_ context.Context, d *app.Deps) (any, error) {
		h := &queue.Handler{
			Acronis:      d.Acronis,
			Rules:        d.Rules(),
			Desired:      d.Config.DesiredEnabled,
			RootTenantID: d.Config.RootTenantID,
			Concurrency:  10,
			Logger:       d.Logger,
			Namespace:    d.Config.MetricsNamespace,
			Out:          d.Out,
			Now:          time.Now,
			Reserve:      time.Second,
		}
		return h.Handle, nil
	})
}
