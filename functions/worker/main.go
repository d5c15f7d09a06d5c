// Command worker is the SQS handler: enforcement requests, tenant-created
// events and sweep fan-out, with partial batch failures.
package main

import (
	"acronismfa/internal/app"
	"acronismfa/internal/config"
)

func main() { app.Run(config.Worker, app.Worker) }
