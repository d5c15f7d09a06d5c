// Command worker is the SQS handler: enforcement requests, tenant-created
// events and sweep fan-out, with partial batch failures.
package main

import (
	"context"

	"acronismfa/internal/app"
	"acronismfa/internal/config"
)

func main() {
	app.Start(config.Worker, func(_ context.Context, d *app.Deps) (any, error) {
		return app.Worker(d).Handle, nil
	})
}
