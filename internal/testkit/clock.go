package testkit

import (
	"sync"
	"time"
)

// Epoch is where every fake clock starts unless told otherwise: a fixed
// instant, so that timestamps in failures read the same on every run.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Clock is a fake clock, safe for concurrent use. It stands still unless
// advanced, or moves on by Step at every reading when Step is set (for code
// that measures durations between readings).
type Clock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

// NewClock returns a clock standing at Epoch.
func NewClock() *Clock { return &Clock{now: Epoch} }

// NewTicker returns a clock at Epoch that moves on by step at every reading.
func NewTicker(step time.Duration) *Clock { return &Clock{now: Epoch, step: step} }

// Now returns the clock's time, then moves it on by its step.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now
	c.now = c.now.Add(c.step)
	return now
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
