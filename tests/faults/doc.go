// Package hardening holds no code, only the tests that prove the three functions
// (webhook, worker, sweep) safe to run against production tenants:
//
//   - under faults (throttling, 5xx, revoked and expiring tokens, one tenant
//     failing, Secrets Manager down or holding a bad secret, credentials rotated
//     while warm, the invocation deadline arriving mid-request) every tenant
//     ends in the state the contract promises, every failure is reported (HTTP
//     status, batchItemFailures, sweep error or failed count) and nothing is
//     lost;
//   - no client secret, access token, id token, Authorization header or webhook
//     signing key reaches any log line, EMF document, error or response body,
//     whatever fails;
//   - every tenant a trigger touches has exactly one audit line, and every MFA
//     write that Acronis accepted has exactly one enable or disable line.
//
// The handlers are built the way functions/*/main.go builds them: through
// app.Init, with the configuration read from a map of environment variables,
// the secrets from a real Secrets Manager emulator (moto) and the Acronis API
// from the simulator behind a recording middleware.
package faults
