// Package notify publishes the rollout's notices to SNS (docs/reference.md,
// Notices): that a tenant's grace started, that it was enforced, and each full
// sweep's digest. Every message carries a JSON document for machines (a PSA,
// a chat bot) and a plain text for people subscribed by email, and names its
// kind in the "event" attribute so that subscriptions can filter.
package notify
