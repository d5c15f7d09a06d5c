// Package sweep walks a tenant tree and brings every eligible tenant's MFA
// switch to the desired state (docs/reference.md, Sweep): the listing decides,
// a bounded pool confirms and writes, a fleet too large for one invocation is
// fanned out to the worker queue, and a full sweep writes its compliance
// report as it goes. A watch run is the same sweep over the tenants created or
// updated in the last minutes.
package sweep
