package enforce

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"acronismfa/internal/acronis"
)

// Leases keep overlapping runs (a watch run and a full sweep, the sweep's
// fan-out and a watch run, a webhook call) from writing one tenant's switch at
// the same moment: both would write, and both would audit the change.
type Leases interface {
	Lease(ctx context.Context, tenantID, holder string, ttl time.Duration) (bool, error)
	Unlease(ctx context.Context, tenantID, holder string) error
}

// ErrBusy: another run holds the tenant's write lease. It is transient: a
// retry finds the tenant written, and compliant.
var ErrBusy = errors.New("another run is changing this tenant's MFA right now")

// Retryable reports whether enforcing the tenant again later may succeed.
func Retryable(err error) bool { return acronis.Retryable(err) || errors.Is(err, ErrBusy) }

const (
	// leaseTTL outlasts any write with its retries; a lease left by an
	// invocation that died lapses after it.
	leaseTTL = time.Minute
	// unleaseTimeout is the moment a lease is given back in, whatever is left
	// of the caller's own time.
	unleaseTimeout = 5 * time.Second
)

// lease takes the tenant's write lease, if leases are kept, and returns how to
// give it back, which only the first call does.
func (e *Enforcer) lease(ctx context.Context, tenantID string) (func(), error) {
	if e.Leases == nil {
		return func() {}, nil
	}
	holder := rand.Text()
	ok, err := e.Leases.Lease(ctx, tenantID, holder, leaseTTL)
	switch {
	case err != nil:
		return nil, fmt.Errorf("lease tenant %s for its write: %w", tenantID, err)
	case !ok:
		return nil, fmt.Errorf("tenant %s: %w", tenantID, ErrBusy)
	}
	return sync.OnceFunc(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unleaseTimeout)
		defer cancel()
		// A lease not given back lapses after leaseTTL: nothing is lost.
		_ = e.Leases.Unlease(ctx, tenantID, holder)
	}), nil
}
