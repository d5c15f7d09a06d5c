// Command sweep is the scheduled compliance sweep over the tenant tree.
package main

import (
	"acronismfa/internal/app"
	"acronismfa/internal/config"
)

func main() { app.Run(config.Sweep, app.Sweep) }
