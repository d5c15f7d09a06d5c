// Package cli is the operator's command line, acronis-mfa (docs/reference.md,
// Command line): status, set, users and sweep from a laptop, on the very same
// configuration, client, policy and enforcement as the functions, and sim,
// which serves the bundled simulator to try them on.
//
// Arguments are read with the standard flag package, one flag set per
// command: five commands with a handful of flags each need nothing more, and
// a library would add a dependency, and startup time, for help texts this
// package writes better by hand.
package cli
