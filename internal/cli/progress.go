package cli

import (
	"context"
	"fmt"
	"sync"
	"time"

	"acronismfa/internal/acronis"
	"acronismfa/internal/enforce"
	"acronismfa/internal/policy"
	"acronismfa/internal/sweep"
)

// progress reports a sweep as it goes on stderr: one live line on a terminal,
// plain lines now and then elsewhere (a log, a CI job); and each change or
// failure as it happens.
type progress struct {
	env    Env
	counts *sweep.Progress
	stats  func() acronis.Stats
	before acronis.Stats
	began  time.Time
	every  time.Duration

	mu   sync.Mutex // one writer of stderr at a time
	done chan struct{}
	wg   sync.WaitGroup
}

func newProgress(env Env, stats func() acronis.Stats) *progress {
	every := 5 * time.Second
	if env.Terminal {
		every = 200 * time.Millisecond
	}
	return &progress{env: env, counts: &sweep.Progress{}, stats: stats, every: every, done: make(chan struct{})}
}

func (p *progress) start(run sweep.Run) {
	p.began, p.before = time.Now(), p.stats()
	what := "sweep"
	if run.Watch() {
		what = "watch run"
	}
	fmt.Fprintf(p.env.Stderr, "%s of %s started (dry run: %v)\n", what, run.RootTenantID, run.DryRun)
	p.wg.Go(func() {
		t := time.NewTicker(p.every)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-t.C:
				p.print(false)
			}
		}
	})
}

func (p *progress) stop() {
	close(p.done)
	p.wg.Wait()
	p.print(true)
}

func (p *progress) line() string {
	c := p.counts
	return fmt.Sprintf("listed %d, drifting %d, done %d of %d, %d Acronis requests, %s elapsed",
		c.Listed.Load(), c.Drifting.Load(), c.Settled.Load(), c.Listed.Load(),
		p.stats().Sub(p.before).Requests, time.Since(p.began).Round(100*time.Millisecond))
}

func (p *progress) print(final bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.env.Terminal && final:
		fmt.Fprintf(p.env.Stderr, "\r\033[K%s\n", p.line())
	case p.env.Terminal:
		fmt.Fprintf(p.env.Stderr, "\r\033[K%s", p.line())
	default:
		fmt.Fprintln(p.env.Stderr, p.line())
	}
}

// audit tells of a tenant changed, noticed or failed, above the live line.
func (p *progress) audit(_ context.Context, r enforce.Result) {
	var what string
	switch {
	case r.Err != nil:
		what = "FAILED"
	case r.Decision.Outcome == policy.Change, r.Decision.Outcome == policy.WouldChange, r.Decision.Outcome == policy.Notify:
		what = string(r.Decision.Outcome)
	default:
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.env.Terminal {
		fmt.Fprint(p.env.Stderr, "\r\033[K")
	}
	fmt.Fprintf(p.env.Stderr, "%-12s %s (%s): %s\n", what, r.Tenant.Name, r.Tenant.ID, enforce.Reason(r))
}
