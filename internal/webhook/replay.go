package webhook

import (
	"sync"
	"time"
)

// replayWindow is how long a webhook-id is remembered: a timestamp is accepted
// up to Tolerance either side of now, so a signed request stays valid for twice
// that.
const replayWindow = 2 * Tolerance

// replayInProgress is how long a request stays "in progress" in the state
// table when the invocation has no deadline of its own.
const replayInProgress = time.Minute

// maxRemembered bounds the memory of a flood of validly signed requests; past
// it the oldest ids are forgotten first.
const maxRemembered = 100_000

// replayGuard binds each webhook-id to the one route it was signed for, in one
// instance, when there is no state table to do it across instances. The
// Standard Webhooks signature covers the id, the timestamp and the body, not the
// method or path, so without this a captured signed {"enabled": true} could be
// replayed against any other tenant within the tolerance. A sender's retry of
// the same message (same id, same route) is still accepted: the PUT is
// idempotent.
type replayGuard struct {
	mu    sync.Mutex
	seen  map[string]remembered
	order []string // ids in the order first seen, for expiry
}

type remembered struct {
	route string
	until time.Time
}

// admit reports whether id may be used for route at now, and remembers it.
func (g *replayGuard) admit(id, route string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seen == nil {
		g.seen = map[string]remembered{}
	}
	for len(g.order) > 0 {
		oldest := g.order[0]
		if r, ok := g.seen[oldest]; ok && now.Before(r.until) && len(g.order) < maxRemembered {
			break
		}
		delete(g.seen, oldest)
		g.order = g.order[1:]
	}
	if r, ok := g.seen[id]; ok {
		return r.route == route
	}
	g.seen[id] = remembered{route: route, until: now.Add(replayWindow)}
	g.order = append(g.order, id)
	return true
}
