// Package cli runs the built acronis-mfa binary against the simulator, as an
// operator runs it: its outputs, exit statuses, --json shapes, its progress
// on a stderr that is no terminal, Ctrl-C, and a scan of everything it prints
// for secrets.
package cli
