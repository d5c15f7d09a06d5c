// Command sweep is the scheduled compliance sweep over the tenant tree.
package main

import (
	"context"

	"acronismfa/internal/app"
	"acronismfa/internal/config"
)

func main() {
	app.Start(config.Sweep, func(ctx context.Context, d *app.Deps) (any, error) {
		h, err := app.Sweep(ctx, d)
		if err != nil {
			return nil, err
		}
		return h.Handle, nil
	})
}
