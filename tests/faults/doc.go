// Package faults holds no code, only the tests that prove the three functions
// (webhook, worker, sweep) safe to run against production tenants:
//
//   - under faults (throttling, 5xx, revoked and expiring tokens, one tenant
//     failing, answers lost after a write landed, Secrets Manager down or
//     holding a bad secret, credentials rotated while warm, the invocation
//     deadline arriving mid-request) every tenant ends in the state the
//     contract promises, every failure is reported (HTTP status,
//     batchItemFailures, sweep error or failed count) and nothing is lost;
//   - no client secret, access token, id token, Authorization header or webhook
//     signing key reaches any log line, EMF document, error or response body,
//     whatever fails;
//   - every tenant a trigger touches has exactly one audit line per decision,
//     and every MFA write that Acronis accepted has exactly one enable line.
//
// The handlers are built as functions/*/main.go builds them, through app.Init
// and app.Webhook, Worker or Sweep, with their secrets in a real Secrets
// Manager emulator (moto, behind testkit's AWS proxy, which counts the calls)
// and the Acronis API served by the simulator, whose Faults inject every
// Acronis failure. The tests need moto_server: they carry the integration
// build tag, and fail when it is missing.
package faults
