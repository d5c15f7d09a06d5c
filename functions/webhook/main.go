// Command webhook is the API Gateway HTTP API handler: signed GET and PUT
// /tenants/{tenant_id}/mfa for provisioning systems.
package main

import (
	"acronismfa/internal/app"
	"acronismfa/internal/config"
)

func main() { app.Run(config.Webhook, app.Webhook) }
