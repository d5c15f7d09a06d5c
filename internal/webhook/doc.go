// Package webhook serves the signed HTTP API (docs/reference.md, Webhook): Standard
// Webhooks signature verification, routing, body parsing and error mapping.
// The parsers here take plain strings and bytes, not API Gateway events, so
// that they can be fuzzed on their own.
package webhook
