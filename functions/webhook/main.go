// Command webhook is the API Gateway HTTP API handler: signed GET and PUT
// /tenants/{tenant_id}/mfa for provisioning systems.
package main

import (
	"context"

	"acronismfa/internal/app"
	"acronismfa/internal/config"
)

func main() {
	app.Start(config.Webhook, func(_ context.Context, d *app.Deps) (any, error) {
		return app.Webhook(d).Handle, nil
	})
}
