package acronis_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"acronismfa/internal/acronis"
	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/tenant"
	"acronismfa/internal/testkit"
)

// The simulator refuses a token request that is not the documented client
// credentials grant and an API request without a valid bearer token, so every
// successful call below also shows that the client asked as documented.

var classes = []error{acronis.ErrNotFound, acronis.ErrNotAllowed, acronis.ErrBadRequest, acronis.ErrUnauthorized,
	acronis.ErrThrottled, acronis.ErrUpstream, acronis.ErrDeadline}

// wantClass checks that err is an *acronis.Error of class want and of no other
// class, and that Retryable agrees with its class.
// wantListingErr checks the errors a listing ended with: none when want is
// nil, else exactly one, of class want. It reports whether that one is there.
func wantListingErr(t *testing.T, errs []error, want error) bool {
	t.Helper()
	switch {
	case want == nil && len(errs) != 0:
		t.Errorf("errors %v", errs)
	case want != nil && len(errs) != 1:
		t.Errorf("errors %v, want one %v", errs, want)
	case want != nil:
		wantClass(t, errs[0], want)
		return true
	}
	return false
}

func wantClass(t *testing.T, err, want error) *acronis.Error {
	t.Helper()
	var e *acronis.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want an *acronis.Error of class %v", err, err, want)
	}
	for _, class := range classes {
		if errors.Is(err, class) != (class == want) {
			t.Errorf("error %v: errors.Is(%v) = %t", err, class, errors.Is(err, class))
		}
	}
	if retryable := want == acronis.ErrThrottled || want == acronis.ErrUpstream; acronis.Retryable(err) != retryable {
		t.Errorf("Retryable(%v) = %t", err, !retryable)
	}
	return e
}

func mfaPath(id string) string { return "/api/2/tenants/" + id + "/mfa/status" }

func add(t *testing.T, s *sim.Server, tenants ...sim.Tenant) {
	t.Helper()
	for _, tn := range tenants {
		if err := s.Add(tn); err != nil {
			t.Fatal(err)
		}
	}
}

func staleRequests(s *sim.Server) int {
	n := 0
	for _, r := range s.Requests() {
		if r.Stale {
			n++
		}
	}
	return n
}

func TestOneTokenServesConcurrentCallers(t *testing.T) {
	a := testkit.NewAcronis(t, testkit.AcronisOptions{})
	before := a.Client.Stats()
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			<-start
			for range 16 {
				if _, err := a.Client.MFAStatus(t.Context(), a.Sim.RootID()); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if n := a.Sim.TokensIssued(); n != 1 {
		t.Errorf("%d tokens for 64 concurrent callers, want 1", n)
	}
	if got := a.Client.Stats().Sub(before); got != (acronis.Stats{Requests: 1025}) {
		t.Errorf("stats %+v, want 1,025 requests and nothing else", got)
	}
}

func TestTokenRenewedBeforeExpiry(t *testing.T) {
	tests := []struct {
		name      string
		ttl       time.Duration
		omit      []string
		simAhead  time.Duration // Acronis's clock ahead of the client's
		reusedFor time.Duration // since issue; a second later a new token is fetched
	}{
		{name: "expires_in and expires_on", reusedFor: 105 * time.Minute},
		{name: "expires_in only", omit: []string{"expires_on"}, reusedFor: 105 * time.Minute},
		{name: "expires_on only", omit: []string{"expires_in"}, reusedFor: 105 * time.Minute},
		{name: "neither: two hours assumed", omit: []string{"expires_in", "expires_on"}, reusedFor: 105 * time.Minute},
		{name: "expires_on earlier: Acronis's clock behind", simAhead: -time.Hour, reusedFor: 45 * time.Minute},
		{name: "expires_in earlier: Acronis's clock ahead", simAhead: time.Hour, reusedFor: 105 * time.Minute},
		{name: "short-lived token kept for half its life", ttl: 10 * time.Minute, reusedFor: 5 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := testkit.NewClock()
			a := testkit.NewAcronis(t, testkit.AcronisOptions{
				Sim:    sim.Options{TokenTTL: tt.ttl, Now: func() time.Time { return clock.Now().Add(tt.simAhead) }},
				Client: acronis.Options{Now: clock.Now},
			})
			a.Sim.SetFaults(sim.Faults{OmitTokenFields: tt.omit})
			for _, step := range []struct {
				advance time.Duration
				tokens  int
			}{{0, 1}, {tt.reusedFor - time.Second, 1}, {2 * time.Second, 2}} {
				clock.Advance(step.advance)
				if _, err := a.Client.MFAStatus(t.Context(), a.Sim.RootID()); err != nil {
					t.Fatal(err)
				}
				if n := a.Sim.TokensIssued(); n != step.tokens {
					t.Fatalf("after %v more: %d tokens, want %d", step.advance, n, step.tokens)
				}
			}
			if n := staleRequests(a.Sim); n != 0 {
				t.Errorf("%d requests sent with an expired token", n)
			}
		})
	}
}

// blockingSource holds the first caller inside the token renewal.
type blockingSource struct {
	testkit.StaticCredentials
	entered, release chan struct{}
}

func (b blockingSource) Credentials(ctx context.Context) (acronis.Credentials, error) {
	close(b.entered)
	<-b.release
	return b.StaticCredentials.Credentials(ctx)
}

func TestCallerWaitingForRenewalGivesUpWithItsContext(t *testing.T) {
	a := testkit.NewAcronis(t, testkit.AcronisOptions{})
	src := blockingSource{testkit.StaticCredentials(a.Creds), make(chan struct{}), make(chan struct{})}
	c := acronis.New(src, acronis.Options{})
	first := make(chan error, 1)
	go func() { _, err := c.MFAStatus(t.Context(), a.Sim.RootID()); first <- err }()
	<-src.entered

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	waiter := make(chan error, 1)
	go func() { _, err := c.MFAStatus(ctx, a.Sim.RootID()); waiter <- err }()
	select {
	case err := <-waiter:
		wantClass(t, err, acronis.ErrDeadline)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("waiter got %v, want it to wrap context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("a caller with an ended context stayed blocked behind another's renewal")
	}
	close(src.release)
	if err := <-first; err != nil {
		t.Errorf("renewing caller: %v", err)
	}
}

func TestRevokedTokenIsRenewedOnce(t *testing.T) {
	t.Run("by every caller at once", func(t *testing.T) {
		a := testkit.NewAcronis(t, testkit.AcronisOptions{})
		if _, err := a.Client.MFAStatus(t.Context(), a.Sim.RootID()); err != nil {
			t.Fatal(err)
		}
		a.Sim.ExpireTokens()
		var wg sync.WaitGroup
		for range 64 {
			wg.Go(func() {
				for range 4 {
					if _, err := a.Client.Tenant(t.Context(), a.Sim.RootID()); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		if n := a.Sim.TokensIssued(); n != 2 {
			t.Errorf("%d tokens, want 2: the first and one renewal", n)
		}
		if n := staleRequests(a.Sim); n == 0 || n > 64 {
			t.Errorf("%d requests refused for a revoked token, want 1 to 64 (one per caller at most)", n)
		}
	})
	t.Run("a 401 after renewal is final", func(t *testing.T) {
		a := testkit.NewAcronis(t, testkit.AcronisOptions{})
		root := a.Sim.RootID()
		a.Sim.SetFaults(sim.Faults{FailNth: []sim.NthFailure{{Method: "GET", Path: mfaPath(root), Nth: []int{1, 2, 3}, Status: 401}}})
		_, err := a.Client.MFAStatus(t.Context(), root)
		e := wantClass(t, err, acronis.ErrUnauthorized)
		if e.Status != 401 || e.Code != "401" || e.Message != "Unauthorized" || e.TenantID != root || e.Op != "GET /tenants/{id}/mfa/status" {
			t.Errorf("error fields %+v", e)
		}
		if gets, tokens := a.Sim.Count("GET", "/mfa/status"), a.Sim.TokensIssued(); gets != 2 || tokens != 2 {
			t.Errorf("%d requests and %d tokens, want 2 and 2", gets, tokens)
		}
	})
}

// rotatingSource serves its credentials; a re-read finds fresh, or the
// simulator's current secret when fresh is empty, as a re-read of Secrets
// Manager would after a rotation.
type rotatingSource struct {
	mu              sync.Mutex
	creds           acronis.Credentials
	sim             *sim.Server
	fresh           string
	err, refreshErr error
	refreshes       int
}

func (s *rotatingSource) Credentials(context.Context) (acronis.Credentials, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.creds, s.err
}

func (s *rotatingSource) Refresh(context.Context) (acronis.Credentials, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshes++
	s.creds.ClientSecret = cmp.Or(s.fresh, s.sim.ClientSecret())
	return s.creds, s.refreshErr
}

func TestRejectedCredentialsAreReReadOnce(t *testing.T) {
	sourceDown := errors.New("secrets manager unavailable")
	tests := []struct {
		name          string
		secret, fresh string // the source's secret ("" the simulator's) and what a re-read finds
		rotate        bool   // the simulator's secret changes after a first successful call
		refusal       sim.OAuthRefusal
		err, reErr    error
		want          error
		wantOp        string
		wantCode      string
		refreshes     int
		tokenCalls    int
	}{
		{name: "rotated secret picked up", secret: "old", refreshes: 1, tokenCalls: 2},
		{name: "rotated while its token was in use", rotate: true, refreshes: 1, tokenCalls: 3},
		{name: "still rejected after re-read", secret: "old", fresh: "older", want: acronis.ErrUnauthorized,
			wantOp: "POST /idp/token", wantCode: "invalid_client", refreshes: 1, tokenCalls: 2},
		{name: "400 unauthorized_client", secret: "old", fresh: "older", refusal: sim.OAuthRefusal{Status: 400, Error: "unauthorized_client"},
			want: acronis.ErrUnauthorized, wantOp: "POST /idp/token", wantCode: "unauthorized_client", refreshes: 1, tokenCalls: 2},
		{name: "403 access_denied", secret: "old", fresh: "older", refusal: sim.OAuthRefusal{Status: 403, Error: "access_denied"},
			want: acronis.ErrUnauthorized, wantOp: "POST /idp/token", wantCode: "access_denied", refreshes: 1, tokenCalls: 2},
		{name: "400 invalid_grant is no credentials problem", secret: "old", refusal: sim.OAuthRefusal{Status: 400, Error: "invalid_grant"},
			want: acronis.ErrBadRequest, wantOp: "POST /idp/token", wantCode: "invalid_grant", tokenCalls: 1},
		{name: "source down", err: sourceDown, want: acronis.ErrUpstream, wantOp: "credentials"},
		{name: "re-read fails", secret: "old", reErr: sourceDown, want: acronis.ErrUpstream, wantOp: "credentials", refreshes: 1, tokenCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := testkit.NewAcronis(t, testkit.AcronisOptions{})
			a.Sim.SetFaults(sim.Faults{CredentialsRefusal: tt.refusal})
			creds := a.Creds
			creds.ClientSecret = cmp.Or(tt.secret, creds.ClientSecret)
			src := &rotatingSource{creds: creds, sim: a.Sim, fresh: tt.fresh, err: tt.err, refreshErr: tt.reErr}
			c := acronis.New(src, acronis.Options{})
			if tt.rotate {
				if _, err := c.MFAStatus(t.Context(), a.Sim.RootID()); err != nil {
					t.Fatal(err)
				}
				a.Sim.SetClientSecret("rotated")
				a.Sim.ExpireTokens()
			}
			_, err := c.MFAStatus(t.Context(), a.Sim.RootID())
			if tt.want == nil && err != nil {
				t.Fatal(err)
			}
			if tt.want != nil {
				e := wantClass(t, err, tt.want)
				if e.Op != tt.wantOp || e.Code != tt.wantCode {
					t.Errorf("Op %q Code %q, want %q %q", e.Op, e.Code, tt.wantOp, tt.wantCode)
				}
				if tt.wantCode != "" && e.Message != "client authentication failed" {
					t.Errorf("Message %q, want the error_description", e.Message)
				}
				if tt.wantOp == "credentials" && !errors.Is(err, sourceDown) {
					t.Errorf("error %v does not wrap the source's failure", err)
				}
				if n := a.Sim.Count("GET", ""); n != 0 {
					t.Errorf("%d API requests went out without a token", n)
				}
			}
			if src.refreshes != tt.refreshes || a.Sim.Count("POST", "/idp/token") != tt.tokenCalls {
				t.Errorf("%d re-reads and %d token calls, want %d and %d", src.refreshes, a.Sim.Count("POST", "/idp/token"), tt.refreshes, tt.tokenCalls)
			}
		})
	}
	t.Run("incomplete credentials are not sent", func(t *testing.T) {
		a := testkit.NewAcronis(t, testkit.AcronisOptions{})
		for _, blank := range []func(*acronis.Credentials){
			func(c *acronis.Credentials) { c.BaseURL = "" },
			func(c *acronis.Credentials) { c.ClientID = "" },
			func(c *acronis.Credentials) { c.ClientSecret = "" },
		} {
			creds := a.Creds
			blank(&creds)
			_, err := acronis.New(testkit.StaticCredentials(creds), acronis.Options{}).OwnTenantID(t.Context())
			if e := wantClass(t, err, acronis.ErrUpstream); e.Op != "credentials" {
				t.Errorf("Op %q, want credentials", e.Op)
			}
		}
		if n := len(a.Sim.Requests()); n != 0 {
			t.Errorf("%d requests sent", n)
		}
	})
}

func TestRetriesAndClassification(t *testing.T) {
	caps := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond}
	nth := func(method string, status int, n ...int) []sim.NthFailure {
		return []sim.NthFailure{{Method: method, Path: "ROOT", Nth: n, Status: status}}
	}
	tests := []struct {
		name     string
		faults   sim.Faults
		write    bool // SetMFA rather than MFAStatus
		want     error
		status   int
		code     string
		ra       time.Duration
		waits    []time.Duration // exact waits; nil: as many backoffs within caps
		backoffs int
		stats    acronis.Stats // API requests only
	}{
		{name: "429 with Retry-After 0 is retried at once", faults: sim.Faults{FailNth: nth("GET", 429, 1, 2)},
			waits: []time.Duration{}, stats: acronis.Stats{Requests: 3, Throttled: 2}},
		{name: "503 with Retry-After, then success", faults: sim.Faults{FailNth: nth("GET", 503, 1), RetryAfter: 2},
			waits: []time.Duration{2 * time.Second}, stats: acronis.Stats{Requests: 2, Throttled: 1}},
		{name: "429 with an HTTP date", faults: sim.Faults{FailNth: nth("GET", 429, 1), RetryAfter: 3, RetryAfterDate: true},
			waits: []time.Duration{3 * time.Second}, stats: acronis.Stats{Requests: 2, Throttled: 1}},
		{name: "429 past the budget", faults: sim.Faults{ThrottleEvery: 1, RetryAfter: 1},
			want: acronis.ErrThrottled, status: 429, code: "429", ra: time.Second,
			waits: []time.Duration{time.Second, time.Second, time.Second}, stats: acronis.Stats{Requests: 4, Throttled: 4}},
		{name: "429 without Retry-After backs off", faults: sim.Faults{FailNth: nth("GET", 429, 1, 2), RetryAfter: -1},
			backoffs: 2, stats: acronis.Stats{Requests: 3, Throttled: 2}},
		{name: "503 without Retry-After is an upstream failure", faults: sim.Faults{FailNth: nth("GET", 503, 1), RetryAfter: -1},
			backoffs: 1, stats: acronis.Stats{Requests: 2, Errors: 1}},
		{name: "500 past the budget", faults: sim.Faults{FailTenants: map[string]int{"ROOT": 500}},
			want: acronis.ErrUpstream, status: 500, code: "500", backoffs: 3, stats: acronis.Stats{Requests: 4, Errors: 4}},
		{name: "502 then success", faults: sim.Faults{FailNth: nth("GET", 502, 1)}, backoffs: 1, stats: acronis.Stats{Requests: 2, Errors: 1}},
		{name: "unreadable 200 then success", faults: sim.Faults{FailNth: nth("GET", 200, 1)}, backoffs: 1, stats: acronis.Stats{Requests: 2, Errors: 1}},
		{name: "unreadable 200 past the budget", faults: sim.Faults{FailNth: nth("GET", 200, 1, 2, 3, 4)},
			want: acronis.ErrUpstream, status: 200, backoffs: 3, stats: acronis.Stats{Requests: 4, Errors: 4}},
		{name: "connection closed without an answer, then success", write: true, faults: sim.Faults{FailNth: nth("PUT", sim.HangUp, 1, 2)},
			backoffs: 2, stats: acronis.Stats{Requests: 3, Errors: 2}},
		{name: "connection closed past the budget", write: true, faults: sim.Faults{FailNth: nth("PUT", sim.HangUp, 1, 2, 3, 4)},
			want: acronis.ErrUpstream, backoffs: 3, stats: acronis.Stats{Requests: 4, Errors: 4}},
		{name: "a redirect is not followed", write: true, faults: sim.Faults{FailNth: nth("PUT", 307, 1)},
			want: acronis.ErrUpstream, status: 307, code: "307", stats: acronis.Stats{Requests: 1}},
		{name: "404", faults: sim.Faults{FailTenants: map[string]int{"ROOT": 404}}, want: acronis.ErrNotFound, status: 404, code: "1005", stats: acronis.Stats{Requests: 1}},
		{name: "403", faults: sim.Faults{FailTenants: map[string]int{"ROOT": 403}}, want: acronis.ErrNotAllowed, status: 403, code: "1002", stats: acronis.Stats{Requests: 1}},
		{name: "400", faults: sim.Faults{FailTenants: map[string]int{"ROOT": 400}}, want: acronis.ErrBadRequest, status: 400, code: "400", stats: acronis.Stats{Requests: 1}},
		{name: "405", faults: sim.Faults{FailTenants: map[string]int{"ROOT": 405}}, want: acronis.ErrBadRequest, status: 405, code: "405", stats: acronis.Stats{Requests: 1}},
		{name: "409", faults: sim.Faults{FailTenants: map[string]int{"ROOT": 409}}, want: acronis.ErrBadRequest, status: 409, code: "409", stats: acronis.Stats{Requests: 1}},
		{name: "415", faults: sim.Faults{FailTenants: map[string]int{"ROOT": 415}}, want: acronis.ErrBadRequest, status: 415, code: "415", stats: acronis.Stats{Requests: 1}},
		{name: "422", faults: sim.Faults{FailTenants: map[string]int{"ROOT": 422}}, want: acronis.ErrBadRequest, status: 422, code: "422", stats: acronis.Stats{Requests: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := testkit.NewClock()
			a := testkit.NewAcronis(t, testkit.AcronisOptions{Sim: sim.Options{Now: clock.Now},
				Client: acronis.Options{Now: clock.Now, BaseDelay: caps[0], MaxDelay: caps[2]}})
			root := a.Sim.RootID()
			for i := range tt.faults.FailNth {
				tt.faults.FailNth[i].Path = mfaPath(root)
			}
			if s, ok := tt.faults.FailTenants["ROOT"]; ok {
				tt.faults.FailTenants = map[string]int{root: s}
			}
			a.Sim.SetFaults(tt.faults)
			var st tenant.MFAStatus
			var err error
			if tt.write {
				st, err = a.Client.SetMFA(t.Context(), root, true)
			} else {
				st, err = a.Client.MFAStatus(t.Context(), root)
			}
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if st.MFAStatus != tenant.MFAEnabled || !st.UpdateAllowed {
					t.Errorf("status %+v, want the successful answer", st)
				}
			} else {
				e := wantClass(t, err, tt.want)
				op := map[bool]string{false: "GET /tenants/{id}/mfa/status", true: "PUT /tenants/{id}/mfa/status"}[tt.write]
				if e.Status != tt.status || e.Code != tt.code || e.RetryAfter != tt.ra || e.Op != op || e.TenantID != root {
					t.Errorf("error fields %+v", e)
				}
				if tt.code != "" && e.Message != http.StatusText(tt.status) {
					t.Errorf("Message %q, want the platform error's message", e.Message)
				}
				if ra, ok := acronis.RetryAfter(err); ra != tt.ra || ok != (tt.ra > 0) {
					t.Errorf("RetryAfter = %v, %t", ra, ok)
				}
				if strings.Contains(err.Error(), a.URL) {
					t.Errorf("error %q repeats the URL", err)
				}
			}
			waits := a.Waits.All()
			if tt.waits != nil && fmt.Sprint(waits) != fmt.Sprint(tt.waits) {
				t.Errorf("waits %v, want %v", waits, tt.waits)
			}
			if tt.waits == nil {
				if len(waits) != tt.backoffs {
					t.Errorf("%d waits, want %d", len(waits), tt.backoffs)
				}
				for i, w := range waits {
					if w < 0 || w > caps[i] {
						t.Errorf("wait %d is %v, want within [0, %v]", i, w, caps[i])
					}
				}
			}
			tt.stats.Requests++ // the token call
			if got := a.Client.Stats(); got != tt.stats {
				t.Errorf("stats %+v, want %+v", got, tt.stats)
			}
			if n := len(a.Sim.Requests()); n != int(tt.stats.Requests) {
				t.Errorf("Acronis saw %d requests, the client counted %d", n, tt.stats.Requests)
			}
		})
	}
}

func TestDeadlines(t *testing.T) {
	t.Run("a wait past the deadline is not begun", func(t *testing.T) {
		a := testkit.NewAcronis(t, testkit.AcronisOptions{})
		a.Sim.SetFaults(sim.Faults{ThrottleEvery: 1, RetryAfter: 60})
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		_, err := a.Client.MFAStatus(ctx, a.Sim.RootID())
		wantClass(t, err, acronis.ErrThrottled)
		if ra, ok := acronis.RetryAfter(err); !ok || ra != time.Minute {
			t.Errorf("RetryAfter %v, want 1m", ra)
		}
		if n, gets := len(a.Waits.All()), a.Sim.Count("GET", "/mfa/status"); n != 0 || gets != 1 {
			t.Errorf("%d waits and %d requests, want none and 1", n, gets)
		}
	})
	t.Run("a slow answer ends with the context", func(t *testing.T) {
		a := testkit.NewAcronis(t, testkit.AcronisOptions{})
		root := a.Sim.RootID()
		if _, err := a.Client.MFAStatus(t.Context(), root); err != nil {
			t.Fatal(err)
		}
		a.Sim.SetFaults(sim.Faults{Latency: time.Minute})
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		begun := time.Now()
		_, err := a.Client.MFAStatus(ctx, root)
		if took := time.Since(begun); took > 5*time.Second {
			t.Errorf("returned %v after a 100ms deadline", took)
		}
		e := wantClass(t, err, acronis.ErrDeadline)
		if !errors.Is(err, context.DeadlineExceeded) || e.Op != "GET /tenants/{id}/mfa/status" || e.TenantID != root {
			t.Errorf("error %v, fields %+v: want it to wrap context.DeadlineExceeded", err, e)
		}
		if got := a.Client.Stats(); got.Errors != 0 || len(a.Waits.All()) != 0 {
			t.Errorf("our own deadline counted as %d Acronis errors, %d waits", got.Errors, len(a.Waits.All()))
		}
	})
	t.Run("cancelled while waiting to retry", func(t *testing.T) {
		a := testkit.NewAcronis(t, testkit.AcronisOptions{})
		a.Sim.SetFaults(sim.Faults{FailTenants: map[string]int{a.Sim.RootID(): http.StatusBadGateway}})
		ctx, cancel := context.WithCancel(t.Context())
		c := a.NewClient(acronis.Options{Sleep: func(ctx context.Context, _ time.Duration) error {
			cancel()
			return ctx.Err()
		}})
		_, err := c.MFAStatus(ctx, a.Sim.RootID())
		wantClass(t, err, acronis.ErrDeadline)
		if !errors.Is(err, context.Canceled) || a.Sim.Count("GET", "/mfa/status") != 1 {
			t.Errorf("error %v after %d requests, want context.Canceled after 1", err, a.Sim.Count("GET", "/mfa/status"))
		}
	})
}

func TestIDsCannotAlterThePath(t *testing.T) {
	a := testkit.NewAcronis(t, testkit.AcronisOptions{Sim: sim.Options{ClientID: "c/1"}})
	const odd = "a/../b?c#d%"
	_, err := a.Client.MFAStatus(t.Context(), odd)
	// 1005: the simulator looked this very id up on the mfa/status route.
	if e := wantClass(t, err, acronis.ErrNotFound); e.Code != "1005" {
		t.Errorf("error %v, want the tenant not found", err)
	}
	if got := a.Sim.Requests(); got[len(got)-1].Path != mfaPath(odd) || got[len(got)-1].Query != "" {
		t.Errorf("request %+v, want the id kept whole in the path", got[len(got)-1])
	}
	for range 3 {
		if id, err := a.Client.OwnTenantID(t.Context()); err != nil || id != a.Sim.RootID() {
			t.Fatalf("OwnTenantID = %q, %v", id, err)
		}
	}
	if n := a.Sim.Count("GET", "/clients/c/1"); n != 1 {
		t.Errorf("%d client lookups for 3 calls, want 1", n)
	}

	a.Sim.ResetRequests()
	for _, id := range []string{"", ".", ".."} {
		calls := map[string]func() error{
			"Tenant":    func() error { _, err := a.Client.Tenant(t.Context(), id); return err },
			"MFAStatus": func() error { _, err := a.Client.MFAStatus(t.Context(), id); return err },
			"SetMFA":    func() error { _, err := a.Client.SetMFA(t.Context(), id, true); return err },
			"Children":  func() error { _, err := a.Client.Children(t.Context(), id); return err },
			"Search":    func() error { _, err := a.Client.FindTenantByName(t.Context(), id, "x"); return err },
			"Subtree": func() error {
				for _, err := range a.Client.Subtree(t.Context(), id, acronis.ListOptions{}) {
					return err
				}
				return nil
			},
			"Users": func() error {
				for _, err := range a.Client.Users(t.Context(), id) {
					return err
				}
				return nil
			},
		}
		for name, call := range calls {
			wantClass(t, call(), acronis.ErrBadRequest)
			if n := len(a.Sim.Requests()); n != 0 {
				t.Fatalf("%s(%q): %d requests sent", name, id, n)
			}
		}
	}
}

func TestSetMFA(t *testing.T) {
	put := func(status int) []sim.NthFailure {
		return []sim.NthFailure{{Method: "PUT", Path: mfaPath("cust"), Nth: []int{1}, Status: status}}
	}
	tests := []struct {
		name       string
		enable     bool
		faults     sim.Faults
		puts, gets int
	}{
		{"enable, first attempt fails", true, sim.Faults{FailNth: put(500)}, 2, 0},
		{"disable, first attempt fails", false, sim.Faults{FailNth: put(500)}, 2, 0},
		{"an unreadable answer is retried", true, sim.Faults{FailNth: put(200)}, 2, 0},
		{"200 without a body, then a read", true, sim.Faults{EmptyWriteStatus: 200}, 1, 1},
		{"204 No Content, then a read", false, sim.Faults{EmptyWriteStatus: 204}, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := testkit.NewAcronis(t, testkit.AcronisOptions{})
			add(t, a.Sim, sim.Tenant{ID: "cust", Kind: "customer", Enabled: true, UpdateAllowed: true,
				MFAStatus: tenant.MFAState(!tt.enable), UsersCount: 5, UsersWithTOTP: 2})
			a.Sim.SetFaults(tt.faults)
			st, err := a.Client.SetMFA(t.Context(), "cust", tt.enable)
			if err != nil {
				t.Fatal(err)
			}
			if want := (tenant.MFAStatus{MFAStatus: tenant.MFAState(tt.enable), UsersCount: 5, UsersWithTOTPEnabledCount: 2, UpdateAllowed: true}); st != want {
				t.Errorf("status %+v, want %+v", st, want)
			}
			if got, _ := a.Sim.Get("cust"); tenant.MFAOn(got.MFAStatus) != tt.enable {
				t.Errorf("tenant is %s afterwards", got.MFAStatus)
			}
			if puts, gets := a.Sim.Count("PUT", "/mfa/status"), a.Sim.Count("GET", "/mfa/status"); puts != tt.puts || gets != tt.gets {
				t.Errorf("%d PUTs and %d GETs, want %d and %d", puts, gets, tt.puts, tt.gets)
			}
		})
	}
}

func TestTenantAndChildren(t *testing.T) {
	a := testkit.NewAcronis(t, testkit.AcronisOptions{})
	root := a.Sim.RootID()
	add(t, a.Sim,
		sim.Tenant{ID: "p1", Name: "Partner", Kind: "partner", Enabled: true, MFAStatus: "setup_required"},
		sim.Tenant{ID: "c1", Kind: "customer", ParentID: "p1", MFAStatus: "disabled"},
		sim.Tenant{ID: "f1", Kind: "folder", ParentID: "p1"})
	got, err := a.Client.Tenant(t.Context(), "p1")
	want := tenant.Tenant{ID: "p1", Name: "Partner", Kind: tenant.KindPartner, ParentID: root, Enabled: true, HasChildren: true, MFAStatus: tenant.MFASetupRequired}
	if err != nil || got != want {
		t.Errorf("tenant %+v, %v; want %+v", got, err, want)
	}
	kids, err := a.Client.Children(t.Context(), "p1")
	if err != nil || len(kids) != 2 || kids[0].ID != "c1" || kids[0].MFAStatus != tenant.MFADisabled ||
		kids[1].Kind != tenant.KindFolder || kids[1].MFAStatus != tenant.MFASetupRequired {
		t.Errorf("children %+v, %v", kids, err)
	}
}

func TestSubtree(t *testing.T) {
	tests := []struct {
		name      string
		size      int // tenants below the root
		limit     int
		faults    sim.Faults
		stopAfter int
		wantIDs   func(all []string) []string
		wantErr   error
		calls     int
	}{
		{name: "pages in depth order", size: 4, limit: 2, calls: 3},
		{name: "default page size", size: 11999, calls: 3},
		{name: "failure midway yields one error and stops", size: 4, limit: 2,
			faults:  sim.Faults{FailNth: []sim.NthFailure{{Method: "GET", Path: "/api/2/tenants", Nth: []int{2}, Status: 403}}},
			wantIDs: func(all []string) []string { return all[:2] }, wantErr: acronis.ErrNotAllowed, calls: 2},
		{name: "consumer stops early", size: 4, limit: 2, stopAfter: 1, wantIDs: func(all []string) []string { return all[:1] }, calls: 1},
		{name: "a cursor that repeats at once", size: 7, limit: 2, faults: sim.Faults{LoopCursors: 1},
			wantIDs: func(all []string) []string { return all[:4] }, wantErr: acronis.ErrUpstream, calls: 2},
		{name: "cursors that cycle over two pages", size: 7, limit: 2, faults: sim.Faults{LoopCursors: 2},
			wantIDs: func(all []string) []string { return all[:6] }, wantErr: acronis.ErrUpstream, calls: 3},
		{name: "overlapping pages", size: 7, limit: 3, faults: sim.Faults{OverlapPages: true}, calls: 4},
		{name: "a tenant before its parent, as listed", size: 7, limit: 3, faults: sim.Faults{ListEarly: []string{"LAST"}},
			wantIDs: func(all []string) []string { return append([]string{all[0], all[7]}, all[1:7]...) }, calls: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := testkit.NewAcronis(t, testkit.AcronisOptions{Tree: &sim.TreeSpec{Seed: 7, Size: tt.size}})
			var all []string
			for _, tn := range a.Sim.All() {
				all = append(all, tn.ID)
			}
			if len(tt.faults.ListEarly) > 0 {
				tt.faults.ListEarly = all[len(all)-1:]
			}
			a.Sim.SetFaults(tt.faults)
			var ids []string
			var errs []error
			for tn, err := range a.Client.Subtree(t.Context(), a.Sim.RootID(), acronis.ListOptions{PageSize: tt.limit}) {
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if tn.MFAStatus == "" {
					t.Fatalf("tenant %s listed without its MFA status", tn.ID)
				}
				ids = append(ids, tn.ID)
				// A listing that never ends fails rather than hangs.
				if len(ids) == tt.stopAfter || len(ids) > 2*len(all) {
					break
				}
			}
			want := all
			if tt.wantIDs != nil {
				want = tt.wantIDs(all)
			}
			if !slices.Equal(ids, want) {
				t.Errorf("%d tenants listed, want %d in the simulator's order", len(ids), len(want))
			}
			if wantListingErr(t, errs, tt.wantErr) && tt.faults.LoopCursors > 0 && !strings.Contains(errs[0].Error(), "paging cursors loop") {
				t.Errorf("error %q does not say the cursors loop", errs[0])
			}
			if n := a.Sim.Count("GET", "/tenants"); n != tt.calls {
				t.Errorf("%d listing calls, want %d", n, tt.calls)
			}
		})
	}
}

func TestFindTenantByName(t *testing.T) {
	a := testkit.NewAcronis(t, testkit.AcronisOptions{})
	root := a.Sim.RootID()
	add(t, a.Sim,
		sim.Tenant{ID: "p", Name: "Reseller", Kind: "partner"},
		sim.Tenant{ID: "hit", Name: "Acme", Kind: "customer", ParentID: "p"},
		sim.Tenant{Name: "Acme Ltd", Kind: "customer"}, sim.Tenant{Name: "acme", Kind: "customer"},
		sim.Tenant{Name: "Twin", Kind: "customer"}, sim.Tenant{Name: "Twin", Kind: "customer"})
	for i := range 100 {
		add(t, a.Sim, sim.Tenant{Name: fmt.Sprintf("Shop %03d", i), Kind: "customer"})
	}
	got, err := a.Client.FindTenantByName(t.Context(), root, "Acme")
	if want := (tenant.Tenant{ID: "hit", Name: "Acme", Kind: tenant.KindCustomer, ParentID: "p"}); err != nil || got != want {
		t.Errorf("Acme: %+v, %v; want %+v", got, err, want)
	}
	for _, tt := range []struct {
		name, msg string
		want      error
	}{
		{"Nobody", `no tenant named "Nobody" under ` + root, acronis.ErrNotFound},
		{"Twin", `2 tenants named "Twin" under ` + root + `: ambiguous`, acronis.ErrBadRequest},
		{"Shop", "cannot tell whether the name is unique", acronis.ErrBadRequest},
	} {
		_, err := a.Client.FindTenantByName(t.Context(), root, tt.name)
		if wantClass(t, err, tt.want); !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: error %v, want it to say %q", tt.name, err, tt.msg)
		}
	}
}

func TestNoSecretOrTokenInErrorsOrLogs(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a := testkit.NewAcronis(t, testkit.AcronisOptions{Sim: sim.Options{ClientSecret: "first-secret"}, Client: acronis.Options{Logger: logger}})
	add(t, a.Sim, sim.Tenant{ID: "cust", Kind: "customer", Enabled: true, UpdateAllowed: true})
	c := a.Client
	var errs []error
	try := func(_ any, err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	try(c.MFAStatus(t.Context(), "cust"))
	a.Sim.SetFaults(sim.Faults{ThrottleEvery: 2, FailTenants: map[string]int{"cust": http.StatusBadGateway}})
	for range 3 {
		try(c.SetMFA(t.Context(), "cust", true))
		try(c.Tenant(t.Context(), "nope"))
	}
	a.Sim.SetFaults(sim.Faults{})
	a.Sim.ExpireTokens()
	try(c.MFAStatus(t.Context(), a.Sim.RootID())) // renewed after a 401
	rotated := acronis.New(&rotatingSource{creds: a.Creds, sim: a.Sim}, acronis.Options{Logger: logger})
	try(rotated.MFAStatus(t.Context(), a.Sim.RootID()))
	a.Sim.SetClientSecret("second-secret")
	a.Sim.ExpireTokens()
	try(rotated.MFAStatus(t.Context(), a.Sim.RootID())) // re-read, then accepted
	a.Sim.SetClientSecret("third-secret")
	try(c.MFAStatus(t.Context(), a.Sim.RootID())) // rejected outright

	if len(errs) < 3 || !strings.Contains(logs.String(), "acronis retry") {
		t.Fatalf("the run was not faulty enough to prove anything: %d errors, logs %q", len(errs), logs.String())
	}
	secrets := append([]string{"first-secret", "second-secret", "third-secret"}, a.Sim.Secrets()...)
	if len(secrets) < 3+6 {
		t.Fatalf("saw only %d tokens and headers", len(secrets)-3)
	}
	out := logs.String()
	for _, err := range errs {
		out += fmt.Sprintf("%v\n%+v\n%#v\n", err, err, err)
	}
	for _, secret := range secrets {
		if strings.Contains(out, secret) {
			t.Errorf("secret or token %q appears in errors or logs", secret)
		}
	}
}

func TestCredentialsNeverFormatTheSecret(t *testing.T) {
	c := acronis.Credentials{BaseURL: "https://eu2-cloud.acronis.com", ClientID: "client-1", ClientSecret: "s3cret-value"}
	var out bytes.Buffer
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		fmt.Fprintf(&out, format+"\n", c)
	}
	slog.New(slog.NewJSONHandler(&out, nil)).Info("creds", "acronis", c)
	if strings.Contains(out.String(), "s3cret-value") || strings.Count(out.String(), "client-1") != 5 {
		t.Errorf("formatted as %q", out.String())
	}
}

func TestMaxInFlightBoundsConcurrentRequests(t *testing.T) {
	for _, bound := range []int{1, 8} {
		t.Run(fmt.Sprint(bound), func(t *testing.T) {
			a := testkit.NewAcronis(t, testkit.AcronisOptions{Client: acronis.Options{MaxInFlight: bound}})
			a.Sim.SetFaults(sim.Faults{Latency: 2 * time.Millisecond})
			var wg sync.WaitGroup
			for range 32 {
				wg.Go(func() {
					for range 4 {
						if _, err := a.Client.MFAStatus(t.Context(), a.Sim.RootID()); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			// 32 callers queue for the slots, so the bound is reached, never passed.
			if got := a.Sim.MaxInFlight(); got != bound {
				t.Errorf("%d requests in flight at most, want exactly the bound %d", got, bound)
			}
		})
	}
}

func TestSubtreeUpdatedSince(t *testing.T) {
	clock := testkit.NewClock()
	a := testkit.NewAcronis(t, testkit.AcronisOptions{Sim: sim.Options{Now: clock.Now}, Tree: &sim.TreeSpec{Seed: 5, Size: 3000}})
	clock.Advance(time.Hour)
	created := func() string {
		t.Helper()
		tn, err := a.Sim.Create(sim.Tenant{Kind: "customer", Enabled: true})
		if err != nil || !tn.CreatedAt.Equal(clock.Now()) || !tn.UpdatedAt.Equal(tn.CreatedAt) {
			t.Fatalf("created %+v, %v; want it stamped %v", tn, err, clock.Now())
		}
		return tn.ID
	}
	first := created() // at 01:00:00
	clock.Advance(time.Minute)
	second := created() // at 01:01:00
	tests := []struct {
		name  string
		since time.Time
		want  []string
		err   error
	}{
		{"the last five minutes of a quiet fleet", clock.Now().Add(-5 * time.Minute), []string{first, second}, nil},
		{"strictly after", testkit.Epoch.Add(time.Hour), []string{second}, nil},
		{"nothing since", clock.Now(), nil, nil},
		{"a time the API cannot read", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), nil, acronis.ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a.Sim.ResetRequests()
			var ids []string
			var errs []error
			for tn, err := range a.Client.Subtree(t.Context(), a.Sim.RootID(), acronis.ListOptions{UpdatedSince: tt.since}) {
				if err != nil {
					errs = append(errs, err)
					continue
				}
				ids = append(ids, tn.ID)
			}
			if !slices.Equal(ids, tt.want) {
				t.Errorf("listed %v, want %v", ids, tt.want)
			}
			// One request: all that a watch run costs on a quiet fleet.
			got := a.Sim.Requests()
			if last := got[len(got)-1]; a.Sim.Count("GET", "/tenants") != 1 ||
				!strings.Contains(last.Query, "updated_since="+url.QueryEscape(tt.since.UTC().Format(time.RFC3339))) {
				t.Errorf("requests %+v, want one listing with updated_since", got)
			}
			switch {
			case tt.err == nil && len(errs) != 0:
				t.Errorf("errors %v", errs)
			case tt.err != nil && len(errs) != 1:
				t.Errorf("errors %v, want one %v", errs, tt.err)
			case tt.err != nil:
				if e := wantClass(t, errs[0], tt.err); e.Status != 400 || !strings.Contains(e.Message, "updated_since") {
					t.Errorf("error %+v, want the API's message naming updated_since", e)
				}
			}
		})
	}
}

func TestUsers(t *testing.T) {
	const big = "b0000000-0000-4000-8000-000000000001" // 4,200 users: three pages of at most 2,000
	tests := []struct {
		name    string
		root    string
		faults  sim.Faults
		wantN   int // users listed, from the first
		wantErr error
		calls   int
	}{
		{name: "pages of a partner's tree", wantN: 4211, calls: 3},
		{name: "a customer and its unit", root: big, wantN: 4203, calls: 3},
		{name: "overlapping pages", faults: sim.Faults{OverlapPages: true}, wantN: 4211, calls: 3},
		{name: "failure midway yields one error and stops", wantN: 2000, wantErr: acronis.ErrNotAllowed, calls: 2,
			faults: sim.Faults{FailNth: []sim.NthFailure{{Method: "GET", Path: "/api/2/users", Nth: []int{2}, Status: 403}}}},
		{name: "a cursor that repeats", faults: sim.Faults{LoopCursors: 1}, wantN: 4000, wantErr: acronis.ErrUpstream, calls: 2},
		{name: "users listing refused", faults: sim.Faults{UsersStatus: 404}, wantErr: acronis.ErrNotFound, calls: 1},
		{name: "unknown tenant", root: testkit.Unknown, wantErr: acronis.ErrNotFound, calls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := testkit.NewAcronis(t, testkit.AcronisOptions{})
			add(t, a.Sim,
				sim.Tenant{ID: "p", Kind: "partner", UsersCount: 2, UsersWithTOTP: 2},
				sim.Tenant{ID: "c", Kind: "customer", ParentID: "p", UsersCount: 6, UsersWithTOTP: 1},
				sim.Tenant{ID: big, Kind: "customer", UsersCount: 4200, UsersWithTOTP: 4000},
				sim.Tenant{ID: "u", Kind: "unit", ParentID: big, UsersCount: 3})
			var want []sim.User
			for _, tn := range a.Sim.All() {
				if tt.root == big && tn.ID != big && tn.ID != "u" {
					continue
				}
				want = append(want, a.Sim.Users(tn.ID)...)
			}
			a.Sim.SetFaults(tt.faults)
			var got []tenant.User
			var errs []error
			for u, err := range a.Client.Users(t.Context(), cmp.Or(tt.root, a.Sim.RootID())) {
				if err != nil {
					errs = append(errs, err)
					continue
				}
				// A listing that never ends fails rather than hangs.
				if got = append(got, u); len(got) > 2*len(want) {
					break
				}
			}
			if len(got) != tt.wantN {
				t.Fatalf("%d users listed, want %d", len(got), tt.wantN)
			}
			for i, u := range got {
				w := want[i]
				if u != (tenant.User{ID: w.ID, TenantID: w.TenantID, Login: w.Login, Email: w.Email,
					FirstName: w.FirstName, LastName: w.LastName, Enabled: true, MFAStatus: w.MFAStatus}) {
					t.Fatalf("user %d: %+v, want %+v", i, u, w)
				}
			}
			wantListingErr(t, errs, tt.wantErr)
			if n := a.Sim.Count("GET", "/users"); n != tt.calls {
				t.Errorf("%d listing calls, want %d", n, tt.calls)
			}
		})
	}
}
