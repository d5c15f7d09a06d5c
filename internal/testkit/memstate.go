package testkit

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"acronismfa/internal/notify"
	"acronismfa/internal/statestore"
)

// MemoryState is the state table's twin in memory, with the same conditional
// semantics, for unit tests that need no moto: the rollout's notices and the
// write leases. Down makes every call fail as an unreachable table does.
type MemoryState struct {
	Now func() time.Time

	mu      sync.Mutex
	notices map[string]statestore.Notice
	leases  map[string]memLease
	down    error
	reads   int // calls that read notices
}

type memLease struct {
	holder string
	until  time.Time
}

// NewMemoryState returns an empty state read on clock.
func NewMemoryState(clock func() time.Time) *MemoryState {
	return &MemoryState{Now: clock, notices: map[string]statestore.Notice{}, leases: map[string]memLease{}}
}

// Down makes every later call fail with err (nil: the table is back).
func (m *MemoryState) Down(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.down = err
}

// Reads counts the calls that read notices (BatchGetItem or Query).
func (m *MemoryState) Reads() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reads
}

// Snapshot returns the notices held now.
func (m *MemoryState) Snapshot() map[string]statestore.Notice {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.notices)
}

// Put stores a notice as is, for test setup.
func (m *MemoryState) Put(n statestore.Notice) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.notices[n.TenantID] = n
}

func (m *MemoryState) fail(op string) error {
	if m.down == nil {
		return nil
	}
	return fmt.Errorf("%w: %s: %w", statestore.ErrUnavailable, op, m.down)
}

// Notices reads the notices of ids, counting one read per 100 ids as
// BatchGetItem does.
func (m *MemoryState) Notices(_ context.Context, ids []string) (map[string]statestore.Notice, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail("BatchGetItem"); err != nil {
		return nil, err
	}
	m.reads += (len(ids) + 99) / 100
	out := map[string]statestore.Notice{}
	for _, id := range ids {
		if n, ok := m.notices[id]; ok {
			out[id] = n
		}
	}
	return out, nil
}

// AllNotices reads every notice, as one query.
func (m *MemoryState) AllNotices(context.Context) (map[string]statestore.Notice, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail("Query"); err != nil {
		return nil, err
	}
	m.reads++
	return maps.Clone(m.notices), nil
}

// Claim claims a notice unless one is given, or claimed less than stale ago.
func (m *MemoryState) Claim(_ context.Context, n statestore.Notice, stale time.Duration) (statestore.Notice, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail("PutItem"); err != nil {
		return statestore.Notice{}, false, err
	}
	if held, ok := m.notices[n.TenantID]; ok && (!held.Pending() || m.Now().Sub(held.ClaimedAt) <= stale) {
		return held, false, nil
	}
	n.NoticedAt = time.Time{}
	m.notices[n.TenantID] = n
	return n, true, nil
}

// Given marks a claimed notice given, if the claim is still the caller's.
func (m *MemoryState) Given(_ context.Context, n statestore.Notice) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail("UpdateItem"); err != nil {
		return err
	}
	held, ok := m.notices[n.TenantID]
	if !ok || !held.Pending() || !held.ClaimedAt.Equal(n.ClaimedAt) {
		return fmt.Errorf("%w: the claim on the notice of %s was taken over", statestore.ErrUnavailable, n.TenantID)
	}
	held.NoticedAt = n.NoticedAt
	m.notices[n.TenantID] = held
	return nil
}

// Release drops a claim the caller still holds.
func (m *MemoryState) Release(_ context.Context, n statestore.Notice) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail("DeleteItem"); err != nil {
		return err
	}
	if held, ok := m.notices[n.TenantID]; ok && held.Pending() && held.ClaimedAt.Equal(n.ClaimedAt) {
		delete(m.notices, n.TenantID)
	}
	return nil
}

// Forget removes a notice.
func (m *MemoryState) Forget(_ context.Context, tenantID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail("DeleteItem"); err != nil {
		return err
	}
	delete(m.notices, tenantID)
	return nil
}

// Lease takes a tenant's write lease unless another holder has it.
func (m *MemoryState) Lease(_ context.Context, tenantID, holder string, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail("PutItem"); err != nil {
		return false, err
	}
	if l, ok := m.leases[tenantID]; ok && m.Now().Before(l.until) {
		return false, nil
	}
	m.leases[tenantID] = memLease{holder: holder, until: m.Now().Add(ttl)}
	return true, nil
}

// Unlease gives a lease back.
func (m *MemoryState) Unlease(_ context.Context, tenantID, holder string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail("DeleteItem"); err != nil {
		return err
	}
	if l, ok := m.leases[tenantID]; ok && l.holder == holder {
		delete(m.leases, tenantID)
	}
	return nil
}

// HoldLease gives tenantID's lease to another holder until released, as an
// overlapping run would hold it.
func (m *MemoryState) HoldLease(tenantID string) (release func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.leases[tenantID] = memLease{holder: "another run", until: m.Now().Add(time.Hour)}
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		delete(m.leases, tenantID)
	}
}

// Publisher records notices instead of publishing them; Fail makes Publish
// fail as an unreachable topic does, and Then runs after each publish (to
// break something else in between, say).
type Publisher struct {
	mu        sync.Mutex
	published []notify.Notice
	Fail      error
	Then      func()
}

// Publish records n.
func (p *Publisher) Publish(_ context.Context, n notify.Notice) error {
	p.mu.Lock()
	if p.Fail != nil {
		defer p.mu.Unlock()
		return p.Fail
	}
	p.published = append(p.published, n)
	then := p.Then
	p.mu.Unlock()
	if then != nil {
		then()
	}
	return nil
}

// Published returns the notices published so far.
func (p *Publisher) Published() []notify.Notice {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]notify.Notice(nil), p.published...)
}
