package testkit

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"acronismfa/internal/acronis"
	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/tenant"
)

// Acronis is the simulator on a loopback port and a client of it.
type Acronis struct {
	Sim    *sim.Server
	URL    string
	Client *acronis.Client
	Creds  acronis.Credentials
	// Waits are the client's waits between retries, recorded and not slept
	// unless AcronisOptions.RealSleep.
	Waits *Waits
}

// AcronisOptions tune NewAcronis.
type AcronisOptions struct {
	Sim  sim.Options
	Tree *sim.TreeSpec // generated under the client's own tenant; nil: none
	// Client is the client's options; its Sleep is replaced by a recorder
	// unless RealSleep.
	Client    acronis.Options
	RealSleep bool
}

// NewAcronis starts a simulator on a loopback port for the duration of the test.
func NewAcronis(t testing.TB, o AcronisOptions) *Acronis {
	t.Helper()
	s := sim.New(o.Sim)
	if o.Tree != nil {
		s.Generate(*o.Tree)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	a := &Acronis{Sim: s, URL: srv.URL, Waits: &Waits{},
		Creds: acronis.Credentials{BaseURL: srv.URL, ClientID: s.ClientID(), ClientSecret: s.ClientSecret()}}
	opts := o.Client
	if !o.RealSleep {
		opts.Sleep = a.Waits.sleep
	}
	a.Client = acronis.New(StaticCredentials(a.Creds), opts)
	return a
}

// MFAOn reports whether the simulator's tenant id has MFA on now; a tenant
// that is not there fails the test.
func (a *Acronis) MFAOn(t testing.TB, id string) bool {
	t.Helper()
	tn, ok := a.Sim.Get(id)
	if !ok {
		t.Fatalf("no tenant %s in the simulator", id)
	}
	return tenant.MFAOn(tn.MFAStatus)
}

// NewClient returns another client of the simulator with these options (the
// waits recorded as above).
func (a *Acronis) NewClient(opts acronis.Options) *acronis.Client {
	if opts.Sleep == nil {
		opts.Sleep = a.Waits.sleep
	}
	return acronis.New(StaticCredentials(a.Creds), opts)
}

// CredentialsJSON is the Acronis credentials secret pointing at the simulator.
func (a *Acronis) CredentialsJSON() string {
	return CredentialsJSON(a.URL, a.Sim.ClientID(), a.Sim.ClientSecret())
}

// ServeSim serves s on a free loopback port outside any test (the demo) and
// returns its base URL and how to stop it.
func ServeSim(s *sim.Server) (url string, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return "http://" + l.Addr().String(), func() { _ = srv.Close() }, nil
}

// StaticCredentials is a credentials source that never changes.
type StaticCredentials acronis.Credentials

// Credentials returns the credentials.
func (s StaticCredentials) Credentials(context.Context) (acronis.Credentials, error) {
	return acronis.Credentials(s), nil
}

// Refresh returns the same credentials: there is nothing to re-read.
func (s StaticCredentials) Refresh(context.Context) (acronis.Credentials, error) {
	return acronis.Credentials(s), nil
}

// String redacts the client secret, as acronis.Credentials does.
func (s StaticCredentials) String() string { return acronis.Credentials(s).String() }

// LogValue redacts the client secret in structured logs.
func (s StaticCredentials) LogValue() slog.Value { return acronis.Credentials(s).LogValue() }

// Waits records the waits a client asks for between retries instead of
// sleeping them.
type Waits struct {
	mu  sync.Mutex
	all []time.Duration
}

func (w *Waits) sleep(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	w.all = append(w.all, d)
	w.mu.Unlock()
	return ctx.Err()
}

// All returns the waits asked for so far.
func (w *Waits) All() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.all...)
}

// GoString redacts the client secret under %#v too.
func (s StaticCredentials) GoString() string { return s.String() }
