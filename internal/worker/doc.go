// Package worker serves the worker function's SQS queue (docs/reference.md,
// Worker messages): it parses the message shapes, enforces each request
// through package enforce, and answers with partial batch failures, so that
// SQS retries what failed and finally dead-letters it.
package worker
