// Package enforce carries out policy decisions for one tenant at a time: it
// reads what it needs from Acronis, asks package policy, and writes only when
// the decision is a change. Every trigger enforces through it, and reports
// what came of it (the audit line and the metrics) through it too.
package enforce
