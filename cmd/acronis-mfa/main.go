// Command acronis-mfa is the operator's command line: assess, inspect and fix
// tenants' MFA from a laptop, on the same code as the deployed functions.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"acronismfa/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	info, err := os.Stderr.Stat()
	terminal := err == nil && info.Mode()&os.ModeCharDevice != 0
	code := cli.Main(ctx, os.Args[1:], cli.Env{Getenv: os.Getenv, Stdout: os.Stdout, Stderr: os.Stderr, Terminal: terminal})
	stop()
	os.Exit(code)
}
