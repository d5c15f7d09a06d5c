package acronis_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"acronismfa/internal/acronis"
	"acronismfa/internal/acronis/sim"
)

// simEnv is a simulator behind a real HTTP server and a client of it.
type simEnv struct {
	sim    *sim.Server
	url    string
	client *acronis.Client
	sleeps *sleepRecorder
}

func newSimEnv(t *testing.T, so sim.Options, opts acronis.Options) *simEnv {
	t.Helper()
	s := sim.New(so)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	src := acronis.StaticCredentials{BaseURL: srv.URL, ClientID: s.ClientID(), ClientSecret: s.ClientSecret()}
	c, rec := newClient(src, opts)
	return &simEnv{sim: s, url: srv.URL, client: c, sleeps: rec}
}

func TestSimOneTokenServesAThousandRequests(t *testing.T) {
	env := newSimEnv(t, sim.Options{}, acronis.Options{})
	root := env.sim.RootID()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 125 {
				if _, err := env.client.MFAStatus(t.Context(), root); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := env.sim.TokensIssued(); n != 1 {
		t.Errorf("%d tokens for 1,000 requests, want 1", n)
	}
	if got := env.client.Stats(); got != (acronis.Stats{Requests: 1001}) {
		t.Errorf("stats %+v, want 1,001 requests and nothing else", got)
	}
}

func TestSimTokenRenewedBeforeItExpires(t *testing.T) {
	clock := newFakeClock()
	env := newSimEnv(t, sim.Options{TokenTTL: 2 * time.Hour, Now: clock.Now}, acronis.Options{Now: clock.Now})
	root := env.sim.RootID()
	for _, step := range []struct {
		advance time.Duration
		tokens  int
	}{
		{0, 1},
		{104 * time.Minute, 1}, // 16 minutes left: still used
		{2 * time.Minute, 2},   // 14 minutes left: replaced
		{100 * time.Minute, 2},
		{10 * time.Minute, 3},
	} {
		clock.Advance(step.advance)
		if _, err := env.client.MFAStatus(t.Context(), root); err != nil {
			t.Fatal(err)
		}
		if n := env.sim.TokensIssued(); n != step.tokens {
			t.Fatalf("after %v more: %d tokens, want %d", step.advance, n, step.tokens)
		}
	}
	for _, r := range env.sim.Requests() {
		if r.Stale {
			t.Errorf("%s %s was sent with an expired token", r.Method, r.Path)
		}
	}
}

func TestSimRevokedTokenMidRunCausesExactlyOneRenewal(t *testing.T) {
	env := newSimEnv(t, sim.Options{}, acronis.Options{})
	env.sim.Generate(sim.TreeSpec{Seed: 1, Size: 200})
	if _, err := env.client.MFAStatus(t.Context(), env.sim.RootID()); err != nil {
		t.Fatal(err)
	}
	env.sim.ExpireTokens()

	tenants := env.sim.All()
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			<-start
			for j := i; j < len(tenants); j += 64 {
				if _, err := env.client.Tenant(t.Context(), tenants[j].ID); err != nil {
					t.Error(err)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if n := env.sim.TokensIssued(); n != 2 {
		t.Errorf("%d tokens, want 2: the first and one renewal", n)
	}
	stale := 0
	for _, r := range env.sim.Requests() {
		if r.Stale {
			stale++
		}
	}
	if stale == 0 || stale > 64 {
		t.Errorf("%d requests refused for a revoked token, want 1 to 64 (one per caller at most)", stale)
	}
}

func TestSimThrottlingFollowsRetryAfter(t *testing.T) {
	tests := []struct {
		name   string
		faults sim.Faults
		status int
	}{
		{"429", sim.Faults{ThrottleEvery: 3, RetryAfter: 7}, http.StatusTooManyRequests},
		{"503", sim.Faults{UnavailableEvery: 3, RetryAfter: 7}, http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newSimEnv(t, sim.Options{}, acronis.Options{})
			env.sim.SetFaults(tt.faults)
			for range 20 {
				if _, err := env.client.MFAStatus(t.Context(), env.sim.RootID()); err != nil {
					t.Fatal(err)
				}
			}
			faults := 0
			for _, r := range env.sim.Requests() {
				if r.Status == tt.status {
					faults++
				}
			}
			waits := env.sleeps.recorded()
			if faults == 0 || len(waits) != faults {
				t.Fatalf("%d waits for %d answers %d", len(waits), faults, tt.status)
			}
			for _, w := range waits {
				if w != 7*time.Second {
					t.Errorf("waited %v, want the 7s of Retry-After", w)
				}
			}
			if got := env.client.Stats(); got.Throttled != int64(faults) || got.Errors != 0 {
				t.Errorf("stats %+v, want Throttled %d and no errors", got, faults)
			}
		})
	}
}

func TestSimDeadlineRespected(t *testing.T) {
	env := newSimEnv(t, sim.Options{}, acronis.Options{Sleep: func(ctx context.Context, d time.Duration) error {
		t.Errorf("waited %v: a slow answer is no reason to retry within the same deadline", d)
		return nil
	}})
	root := env.sim.RootID()
	if _, err := env.client.MFAStatus(t.Context(), root); err != nil {
		t.Fatal(err)
	}
	env.sim.SetFaults(sim.Faults{Latency: time.Minute})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	begun := time.Now()
	_, err := env.client.MFAStatus(ctx, root)
	if took := time.Since(begun); took > 2*time.Second {
		t.Errorf("returned %v after a 100ms deadline", took)
	}
	if !errors.Is(err, acronis.ErrDeadline) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want ErrDeadline wrapping context.DeadlineExceeded", err)
	}
	if e := asError(t, err); e.Op != "GET /tenants/{id}/mfa/status" || e.TenantID != root {
		t.Errorf("error fields %+v", e)
	}
}

func TestSimErrorClasses(t *testing.T) {
	const missing = "00000000-0000-4000-8000-000000000000"
	tests := []struct {
		name string
		run  func(t *testing.T, env *simEnv) error
		want error
	}{
		{"no such tenant", func(t *testing.T, env *simEnv) error {
			_, err := env.client.Tenant(t.Context(), missing)
			return err
		}, acronis.ErrNotFound},
		{"tenant outside the client's tree", func(t *testing.T, env *simEnv) error {
			own, _ := env.sim.Get(env.sim.RootID())
			_, err := env.client.MFAStatus(t.Context(), own.ParentID)
			return err
		}, acronis.ErrNotAllowed},
		{"MFA switch on a unit", func(t *testing.T, env *simEnv) error {
			mustAdd(t, env.sim, sim.Tenant{ID: "cust", Kind: "customer", Enabled: true, UpdateAllowed: true})
			mustAdd(t, env.sim, sim.Tenant{ID: "unit", Kind: "unit", ParentID: "cust", Enabled: true})
			_, err := env.client.SetMFA(t.Context(), "unit", true)
			return err
		}, acronis.ErrNotAllowed},
		{"conflict", func(t *testing.T, env *simEnv) error {
			env.sim.SetFaults(sim.Faults{FailTenants: map[string]int{env.sim.RootID(): http.StatusConflict}})
			_, err := env.client.SetMFA(t.Context(), env.sim.RootID(), true)
			return err
		}, acronis.ErrBadRequest},
		{"ambiguous name", func(t *testing.T, env *simEnv) error {
			mustAdd(t, env.sim, sim.Tenant{Name: "Twin", Kind: "customer"})
			mustAdd(t, env.sim, sim.Tenant{Name: "Twin", Kind: "customer"})
			_, err := env.client.FindTenantByName(t.Context(), env.sim.RootID(), "Twin")
			return err
		}, acronis.ErrBadRequest},
		{"unknown name", func(t *testing.T, env *simEnv) error {
			_, err := env.client.FindTenantByName(t.Context(), env.sim.RootID(), "Nobody")
			return err
		}, acronis.ErrNotFound},
		{"wrong secret", func(t *testing.T, env *simEnv) error {
			env.sim.SetClientSecret("rotated-elsewhere")
			_, err := env.client.OwnTenantID(t.Context())
			return err
		}, acronis.ErrUnauthorized},
		{"throttled throughout", func(t *testing.T, env *simEnv) error {
			env.sim.SetFaults(sim.Faults{ThrottleEvery: 1, RetryAfter: 2})
			_, err := env.client.Tenant(t.Context(), env.sim.RootID())
			return err
		}, acronis.ErrThrottled},
		{"server errors throughout", func(t *testing.T, env *simEnv) error {
			env.sim.SetFaults(sim.Faults{FailTenants: map[string]int{env.sim.RootID(): http.StatusInternalServerError}})
			_, err := env.client.MFAStatus(t.Context(), env.sim.RootID())
			return err
		}, acronis.ErrUpstream},
		{"cancelled", func(t *testing.T, env *simEnv) error {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			_, err := env.client.MFAStatus(ctx, env.sim.RootID())
			return err
		}, acronis.ErrDeadline},
	}
	classes := []error{acronis.ErrNotFound, acronis.ErrNotAllowed, acronis.ErrBadRequest, acronis.ErrUnauthorized,
		acronis.ErrThrottled, acronis.ErrUpstream, acronis.ErrDeadline}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newSimEnv(t, sim.Options{}, acronis.Options{})
			err := tt.run(t, env)
			asError(t, err)
			for _, class := range classes {
				if errors.Is(err, class) != (class == tt.want) {
					t.Errorf("error %v: errors.Is(%v) = %t", err, class, errors.Is(err, class))
				}
			}
		})
	}
}

func mustAdd(t *testing.T, s *sim.Server, tenant sim.Tenant) {
	t.Helper()
	if err := s.Add(tenant); err != nil {
		t.Fatal(err)
	}
}

func TestSimSubtreeOf12000TenantsInThreeCalls(t *testing.T) {
	env := newSimEnv(t, sim.Options{}, acronis.Options{})
	env.sim.Generate(sim.TreeSpec{Seed: 7, Size: 11999})
	env.sim.ResetRequests()
	seen := make(map[string]bool)
	first := ""
	for tenant, err := range env.client.Subtree(t.Context(), env.sim.RootID(), 5000) {
		if err != nil {
			t.Fatal(err)
		}
		if first == "" {
			first = tenant.ID
		}
		if seen[tenant.ID] {
			t.Fatalf("tenant %s listed twice", tenant.ID)
		}
		if tenant.MFAStatus == "" {
			t.Fatalf("tenant %s listed without its MFA status", tenant.ID)
		}
		seen[tenant.ID] = true
	}
	if len(seen) != 12000 || first != env.sim.RootID() {
		t.Errorf("%d tenants, first %s; want 12,000 starting with the root", len(seen), first)
	}
	if n := env.sim.Count(http.MethodGet, "/tenants"); n != 3 {
		t.Errorf("%d listing calls, want 3", n)
	}
}

// rotation is a credential source that serves the secret it was given until
// Refresh, which reads the simulator's current one, as a re-read of Secrets
// Manager would after a rotation.
type rotation struct {
	mu        sync.Mutex
	creds     acronis.Credentials
	sim       *sim.Server
	refreshes int
}

func (r *rotation) Credentials(context.Context) (acronis.Credentials, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.creds, nil
}

func (r *rotation) Refresh(context.Context) (acronis.Credentials, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refreshes++
	r.creds.ClientSecret = r.sim.ClientSecret()
	return r.creds, nil
}

func TestSimRotatedSecretIsPickedUp(t *testing.T) {
	s := sim.New(sim.Options{ClientSecret: "first-secret"})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	src := &rotation{creds: acronis.Credentials{BaseURL: srv.URL, ClientID: s.ClientID(), ClientSecret: s.ClientSecret()}, sim: s}
	c, _ := newClient(src, acronis.Options{})
	if _, err := c.MFAStatus(t.Context(), s.RootID()); err != nil {
		t.Fatal(err)
	}
	s.SetClientSecret("second-secret")
	s.ExpireTokens()
	if _, err := c.MFAStatus(t.Context(), s.RootID()); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if src.refreshes != 1 || s.TokensIssued() != 2 {
		t.Errorf("%d re-reads and %d tokens, want 1 and 2", src.refreshes, s.TokensIssued())
	}
}

// tokenSpy records every access and id token that crosses the wire.
type tokenSpy struct {
	mu     sync.Mutex
	tokens []string
	next   http.RoundTripper
}

func (s *tokenSpy) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(r)
	if err != nil || !strings.HasSuffix(r.URL.Path, "/idp/token") {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var tok struct {
		AccessToken string `json:"access_token"`
		IDToken     string `json:"id_token"`
	}
	if json.Unmarshal(body, &tok) == nil {
		s.mu.Lock()
		for _, v := range []string{tok.AccessToken, tok.IDToken} {
			if v != "" {
				s.tokens = append(s.tokens, v)
			}
		}
		s.mu.Unlock()
	}
	return resp, nil
}

func TestSimNoSecretOrTokenInErrorsOrLogs(t *testing.T) {
	s := sim.New(sim.Options{ClientSecret: "first-secret"})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	mustAdd(t, s, sim.Tenant{ID: "cust", Kind: "customer", Enabled: true, UpdateAllowed: true})
	var logs bytes.Buffer
	spy := &tokenSpy{next: http.DefaultTransport}
	src := &rotation{creds: acronis.Credentials{BaseURL: srv.URL, ClientID: s.ClientID(), ClientSecret: s.ClientSecret()}, sim: s}
	c, _ := newClient(src, acronis.Options{
		HTTPClient: &http.Client{Transport: spy},
		Logger:     slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})

	var errs []error
	try := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	_, err := c.MFAStatus(t.Context(), "cust")
	try(err)
	s.SetFaults(sim.Faults{ThrottleEvery: 2, FailTenants: map[string]int{"cust": http.StatusBadGateway}})
	for range 3 {
		_, err = c.SetMFA(t.Context(), "cust", true)
		try(err)
		_, err = c.Tenant(t.Context(), "nope")
		try(err)
	}
	s.SetFaults(sim.Faults{})
	s.ExpireTokens()
	_, err = c.MFAStatus(t.Context(), s.RootID()) // renewed after a 401
	try(err)
	s.SetClientSecret("second-secret")
	s.ExpireTokens()
	_, err = c.MFAStatus(t.Context(), s.RootID()) // rotated: re-read, then accepted
	try(err)
	src.mu.Lock()
	src.creds.ClientSecret = "third-secret"
	src.mu.Unlock()
	s.SetClientSecret("fourth-secret")
	s.ExpireTokens()
	c2, _ := newClient(acronis.StaticCredentials(src.creds), acronis.Options{HTTPClient: &http.Client{Transport: spy}})
	_, err = c2.MFAStatus(t.Context(), s.RootID()) // rejected outright
	try(err)

	if len(errs) < 3 || !strings.Contains(logs.String(), "acronis retry") {
		t.Fatalf("the run was not faulty enough to prove anything: %d errors, logs %q", len(errs), logs.String())
	}
	spy.mu.Lock()
	secrets := append([]string{"first-secret", "second-secret", "third-secret", "fourth-secret"}, spy.tokens...)
	spy.mu.Unlock()
	if len(secrets) < 4+2*2 {
		t.Fatalf("saw only %d tokens", len(secrets)-4)
	}
	var out strings.Builder
	out.WriteString(logs.String())
	for _, err := range errs {
		fmt.Fprintf(&out, "%v\n%+v\n%#v\n", err, err, err)
	}
	for _, secret := range secrets {
		if strings.Contains(out.String(), secret) {
			t.Errorf("secret or token %q appears in errors or logs", secret)
		}
	}
}

func TestSimMaxInFlightBoundsConcurrentRequests(t *testing.T) {
	for _, bound := range []int{1, 8} {
		t.Run(fmt.Sprint(bound), func(t *testing.T) {
			env := newSimEnv(t, sim.Options{}, acronis.Options{MaxInFlight: bound})
			env.sim.SetFaults(sim.Faults{Latency: 2 * time.Millisecond})
			root := env.sim.RootID()
			var wg sync.WaitGroup
			for range 32 {
				wg.Go(func() {
					for range 4 {
						if _, err := env.client.MFAStatus(t.Context(), root); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			// 32 callers queue for the slots, so the bound is reached, never passed.
			if got := env.sim.MaxInFlight(); got != bound {
				t.Errorf("%d requests in flight at most, want exactly the bound %d", got, bound)
			}
		})
	}
}
