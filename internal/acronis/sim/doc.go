// Package sim simulates the part of the Acronis Account Management API v2 that
// this project uses: access tokens, the API client, tenants (one, children, the
// paged listings, also of recent changes, search), the tenant MFA switch and
// the paged users listing, all under /api/2.
//
// A Server is an http.Handler holding a tenant tree in memory. It answers like the
// real API (field names, paging cursors, OAuth and platform error bodies, status
// codes), so the API client, the Lambda handlers, `make demo` and the benchmarks
// all run against it. Tests shape the tree with Add, Create and Generate, inject faults
// with SetFaults, check what reached the API with Requests and Count, and what
// credentials and tokens crossed the wire with Secrets.
//
// It deliberately keeps its own wire structs instead of importing the client's
// package, so that a wrong field name in either shows up as a failing test.
package sim
