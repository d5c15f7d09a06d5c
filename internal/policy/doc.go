// Package policy decides what to do with one tenant's MFA switch. It is pure
// and imports only the domain: the triggers gather the facts, Decide says what
// follows from them, and package enforce carries the decision out, so all
// triggers follow the same rules.
package policy
