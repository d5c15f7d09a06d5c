// Command webhook is the API Gateway HTTP API handler: signed GET and PUT
// /tenants/{tenant_id}/mfa for provisioning systems.
package main

import (
	"context"
	"time"

	"acronismfa/internal/app"
	"acronismfa/internal/config"
	"acronismfa/internal/webhook"
)

func main() {
	app.Start(config.Webhook, "http", app.Options{}, func(_ context.Context, d *app.Deps) (any, error) {
		h := &webhook.Handler{
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
			Reserve:   500 * time.Millisecond,
		}
		return h.Handle, nil
	})
}
