// Package statestore keeps the project's state in one DynamoDB table
// (STATE_TABLE): the rollout's notices, one per tenant in grace, the webhook's
// replay records, one per verified webhook-id, and short leases on the tenants
// being written. All three share the
// table under keys that cannot collide (docs/reference.md, State table), and
// every write that decides who goes first is conditional, so that overlapping
// runs and instances agree without luck.
//
// DynamoDB's own TTL deletes expired items eventually, not at once; readers
// here treat an item past its expires_at as absent.
package statestore
