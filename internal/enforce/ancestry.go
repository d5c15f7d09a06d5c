package enforce

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"acronismfa/internal/acronis"
	"acronismfa/internal/policy"
	"acronismfa/internal/tenant"
)

// TenantReader reads one tenant.
type TenantReader interface {
	Tenant(ctx context.Context, id string) (tenant.Tenant, error)
}

// Ancestry tells whether tenants sit under an excluded tenant. A tenant object
// names only its parent, so where the caller has not seen the parent (a
// per-tenant request, a watch run's window, a listing out of depth order) it
// walks up through the API; it remembers what it learned, so that one run
// walks each ancestor at most once, and never walks without exclusions.
// It is safe for concurrent use.
type Ancestry struct {
	api      TenantReader
	excluded policy.Exclusions

	mu sync.Mutex
	// known holds, for tenants that may be parents (those with children, and
	// ancestors read), whether they or an ancestor are excluded.
	known map[string]bool
}

// NewAncestry returns an empty ancestry over api for the exclusions.
func NewAncestry(api TenantReader, excluded policy.Exclusions) *Ancestry {
	return &Ancestry{api: api, excluded: excluded, known: map[string]bool{}}
}

// Listed answers for a tenant from what the run has seen, and remembers it:
// ok is false when its parent has not been seen, and Excluded must walk.
func (a *Ancestry) Listed(t tenant.Tenant) (excluded, ok bool) {
	if len(a.excluded) == 0 {
		return false, true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch v, seen := a.known[t.ParentID]; {
	case a.excluded.Has(t.ID) || a.excluded.Has(t.ParentID):
		excluded, ok = true, true
	case seen:
		excluded, ok = v, true
	default:
		return false, false
	}
	if t.HasChildren {
		a.known[t.ID] = excluded
	}
	return excluded, true
}

// Excluded reports whether t or an ancestor is excluded, walking up until an
// excluded or already known tenant, the real root (its own parent), or a
// tenant the client may not see.
func (a *Ancestry) Excluded(ctx context.Context, t tenant.Tenant) (bool, error) {
	if excluded, ok := a.Listed(t); ok {
		return excluded, nil
	}
	chain := []tenant.Tenant{t}
	excluded, err := a.walk(ctx, t, chain)
	if err != nil {
		return false, fmt.Errorf("check exclusions of tenant %s: %w", t.ID, err)
	}
	return excluded, nil
}

func (a *Ancestry) walk(ctx context.Context, t tenant.Tenant, chain []tenant.Tenant) (bool, error) {
	learn := func(excluded bool) (bool, error) {
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, c := range chain {
			a.known[c.ID] = excluded
		}
		return excluded, nil
	}
	for {
		a.mu.Lock()
		v, seen := a.known[t.ParentID]
		a.mu.Unlock()
		switch {
		case a.excluded.Has(t.ID) || a.excluded.Has(t.ParentID):
			return learn(true)
		case seen:
			return learn(v)
		case t.IsRoot() || len(chain) > maxDepth:
			return learn(false)
		}
		parent, err := a.api.Tenant(ctx, t.ParentID)
		if errors.Is(err, acronis.ErrNotAllowed) || errors.Is(err, acronis.ErrNotFound) {
			// Above the client's own tenant: nothing there is ours to exclude.
			return learn(false)
		}
		if err != nil {
			return false, err
		}
		chain = append(chain, parent)
		t = parent
	}
}

// maxDepth bounds a walk up the tree: real hierarchies are a handful of levels
// deep, and a parent chain that loops must not walk forever.
const maxDepth = 64
