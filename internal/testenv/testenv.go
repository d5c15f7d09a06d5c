// Package testenv puts the Acronis simulator behind a real HTTP server and a
// real client, the way every trigger's tests and benchmarks use them. It is
// imported by tests only.
package testenv

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"acronismfa/internal/acronis"
	"acronismfa/internal/acronis/sim"
)

// Env is a simulator and a client of it.
type Env struct {
	Sim    *sim.Server
	URL    string
	Client *acronis.Client
	Creds  acronis.Credentials
	Sleeps *Sleeps
}

// Options tune New.
type Options struct {
	Sim         sim.Options
	Tree        *sim.TreeSpec // nil: only the client's own tenant
	MaxInFlight int
	// RealSleep makes the client really wait between retries (benchmarks);
	// by default waits are recorded and skipped.
	RealSleep bool
}

// New starts a simulator on a loopback port for the duration of the test.
func New(t testing.TB, o Options) *Env {
	t.Helper()
	s := sim.New(o.Sim)
	if o.Tree != nil {
		s.Generate(*o.Tree)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	env := &Env{Sim: s, URL: srv.URL, Sleeps: &Sleeps{},
		Creds: acronis.Credentials{BaseURL: srv.URL, ClientID: s.ClientID(), ClientSecret: s.ClientSecret()}}
	opts := acronis.Options{MaxInFlight: o.MaxInFlight}
	if !o.RealSleep {
		opts.Sleep = env.Sleeps.sleep
	}
	env.Client = acronis.New(acronis.StaticCredentials(env.Creds), opts)
	return env
}

// Sleeps records the client's waits between retries instead of waiting.
type Sleeps struct {
	mu  sync.Mutex
	all []time.Duration
}

func (s *Sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.all = append(s.all, d)
	s.mu.Unlock()
	return ctx.Err()
}

// All returns the waits asked for so far.
func (s *Sleeps) All() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.all...)
}
