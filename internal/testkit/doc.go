// Package testkit is what the project's tests (and `make demo`, which narrates
// over the same helpers) share: one fake clock, one output buffer that reads
// back log lines, audit lines and EMF documents, one fixture tree on the
// Acronis simulator, one moto_server starter, one runner of built functions
// under the Lambda Runtime Interface Emulator, and builders of the events the
// triggers take. Faults are injected one way: through the simulator's Faults.
//
// Production code never imports this package.
package testkit
