package acronis_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"acronismfa/internal/acronis"
	"acronismfa/internal/tenant"
)

const (
	testClientID = "client-1"
	testSecret   = "s3cret-value"
)

// fakeAcronis serves the token endpoint (token, or a default that issues
// "tok-N" for two hours) and hands every other request to api.
type fakeAcronis struct {
	*httptest.Server
	tokenCalls atomic.Int32
	apiCalls   atomic.Int32
}

func newFake(t *testing.T, token, api http.HandlerFunc) *fakeAcronis {
	t.Helper()
	f := &fakeAcronis{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/2/idp/token" {
			n := f.tokenCalls.Add(1)
			if token != nil {
				token(w, r)
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"access_token": fmt.Sprintf("tok-%d", n), "token_type": "bearer", "expires_in": 7200})
			return
		}
		f.apiCalls.Add(1)
		api(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func platformError(w http.ResponseWriter, status, code int, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "domain": "PlatformAccountServer", "message": message}})
}

func okStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, tenant.MFAStatus{MFAStatus: tenant.MFAEnabled, UsersCount: 3, UsersWithTOTPEnabledCount: 1, UpdateAllowed: true})
}

// sleepRecorder stands in for the retry timer: it records the wait and returns
// at once.
type sleepRecorder struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleepRecorder) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waits = append(s.waits, d)
	return ctx.Err()
}

func (s *sleepRecorder) recorded() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

func creds(base string) acronis.StaticCredentials {
	return acronis.StaticCredentials{BaseURL: base, ClientID: testClientID, ClientSecret: testSecret}
}

// newClient builds a client against base whose retry waits are recorded, not slept.
func newClient(src acronis.CredentialSource, opts acronis.Options) (*acronis.Client, *sleepRecorder) {
	rec := &sleepRecorder{}
	if opts.Sleep == nil {
		opts.Sleep = rec.sleep
	}
	return acronis.New(src, opts), rec
}

// fakeClock is a settable clock shared by the client and the fakes.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func asError(t *testing.T, err error) *acronis.Error {
	t.Helper()
	var e *acronis.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *acronis.Error", err, err)
	}
	return e
}

func TestTokenIsRequestedAsDocumentedAndReused(t *testing.T) {
	f := newFake(t,
		func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			id, secret, ok := r.BasicAuth()
			switch {
			case r.Method != http.MethodPost:
				t.Errorf("token method %s, want POST", r.Method)
			case r.Header.Get("Content-Type") != "application/x-www-form-urlencoded":
				t.Errorf("token Content-Type %q", r.Header.Get("Content-Type"))
			case string(body) != "grant_type=client_credentials":
				t.Errorf("token body %q", body)
			case !ok || id != testClientID || secret != testSecret:
				t.Errorf("token request without the client's Basic credentials")
			}
			writeJSON(w, http.StatusOK, map[string]any{"access_token": "tok-A", "token_type": "bearer", "expires_in": 7200})
		},
		func(w http.ResponseWriter, r *http.Request) {
			if got := r.Header.Get("Authorization"); got != "Bearer tok-A" {
				t.Errorf("Authorization %q, want the issued bearer token", got)
			}
			okStatus(w, r)
		})
	c, _ := newClient(creds(f.URL), acronis.Options{})
	for range 5 {
		if _, err := c.MFAStatus(t.Context(), "t1"); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.tokenCalls.Load(); n != 1 {
		t.Errorf("%d token calls for 5 requests, want 1", n)
	}
	if got, want := c.Stats(), (acronis.Stats{Requests: 6}); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
}

func TestTokenRenewedBeforeExpiry(t *testing.T) {
	tests := []struct {
		name        string
		answer      func(now time.Time) map[string]any
		reusedUntil time.Duration // since issue; the next second needs a new token
	}{
		{"expires_in", func(time.Time) map[string]any { return map[string]any{"expires_in": 7200} }, 105 * time.Minute},
		{"expires_on", func(now time.Time) map[string]any { return map[string]any{"expires_on": now.Add(2 * time.Hour).Unix()} }, 105 * time.Minute},
		{"earlier of the two", func(now time.Time) map[string]any {
			return map[string]any{"expires_on": now.Add(time.Hour).Unix(), "expires_in": 7200}
		}, 45 * time.Minute},
		{"neither: two hours assumed", func(time.Time) map[string]any { return map[string]any{} }, 105 * time.Minute},
		{"short-lived token kept for half its life", func(time.Time) map[string]any { return map[string]any{"expires_in": 600} }, 5 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			var f *fakeAcronis
			f = newFake(t,
				func(w http.ResponseWriter, r *http.Request) {
					a := tt.answer(clock.Now())
					a["access_token"] = fmt.Sprintf("tok-%d", f.tokenCalls.Load())
					writeJSON(w, http.StatusOK, a)
				}, okStatus)
			c, _ := newClient(creds(f.URL), acronis.Options{Now: clock.Now})
			steps := []struct {
				advance time.Duration
				tokens  int32
			}{
				{0, 1},
				{tt.reusedUntil - time.Second, 1},
				{2 * time.Second, 2},
			}
			for _, s := range steps {
				clock.Advance(s.advance)
				if _, err := c.MFAStatus(t.Context(), "t1"); err != nil {
					t.Fatal(err)
				}
				if n := f.tokenCalls.Load(); n != s.tokens {
					t.Fatalf("after %v more: %d token calls, want %d", s.advance, n, s.tokens)
				}
			}
		})
	}
}

func TestConcurrentCallersShareOneTokenRenewal(t *testing.T) {
	f := newFake(t, nil, okStatus)
	c, _ := newClient(creds(f.URL), acronis.Options{})
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			<-start
			if _, err := c.MFAStatus(t.Context(), "t1"); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	if n := f.tokenCalls.Load(); n != 1 {
		t.Errorf("%d token calls for 64 concurrent callers, want 1", n)
	}
}

func TestCallerWaitingForRenewalGivesUpWithItsContext(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	f := newFake(t,
		func(w http.ResponseWriter, r *http.Request) {
			close(entered)
			<-release
			writeJSON(w, http.StatusOK, map[string]any{"access_token": "tok", "expires_in": 7200})
		}, okStatus)
	c, _ := newClient(creds(f.URL), acronis.Options{})

	first := make(chan error, 1)
	go func() { _, err := c.MFAStatus(t.Context(), "t1"); first <- err }()
	<-entered

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	waiter := make(chan error, 1)
	go func() { _, err := c.MFAStatus(ctx, "t2"); waiter <- err }()
	select {
	case err := <-waiter:
		if !errors.Is(err, acronis.ErrDeadline) || !errors.Is(err, context.Canceled) {
			t.Errorf("waiter got %v, want ErrDeadline wrapping context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("a caller with an ended context stayed blocked behind another's renewal")
	}
	close(release)
	if err := <-first; err != nil {
		t.Errorf("renewing caller: %v", err)
	}
}

func TestRevokedTokenIsRenewedOnceAndRequestRetriedOnce(t *testing.T) {
	tests := []struct {
		name      string
		rejects   int32 // 401 answers before the API accepts the token
		wantErr   error
		wantAPI   int32
		wantToken int32
	}{
		{"one 401: renewed and retried", 1, nil, 2, 2},
		{"401 again after renewal is final", 100, acronis.ErrUnauthorized, 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f *fakeAcronis
			f = newFake(t, nil, func(w http.ResponseWriter, r *http.Request) {
				if f.apiCalls.Load() <= tt.rejects {
					platformError(w, http.StatusUnauthorized, 401, "token expired")
					return
				}
				okStatus(w, r)
			})
			c, _ := newClient(creds(f.URL), acronis.Options{})
			_, err := c.MFAStatus(t.Context(), "t1")
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				e := asError(t, err)
				if e.Status != 401 || e.Code != "401" || e.Message != "token expired" || e.TenantID != "t1" || e.Op != "GET /tenants/{id}/mfa/status" {
					t.Errorf("error fields %+v", e)
				}
			}
			if got := f.apiCalls.Load(); got != tt.wantAPI {
				t.Errorf("%d API calls, want %d", got, tt.wantAPI)
			}
			if got := f.tokenCalls.Load(); got != tt.wantToken {
				t.Errorf("%d token calls, want %d", got, tt.wantToken)
			}
		})
	}
}

// rotatingSource holds the current secret and the one a re-read would find.
type rotatingSource struct {
	mu            sync.Mutex
	base          string
	secret, fresh string
	err, freshErr error
	refreshes     int
}

func (s *rotatingSource) Credentials(context.Context) (acronis.Credentials, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return acronis.Credentials{BaseURL: s.base, ClientID: testClientID, ClientSecret: s.secret}, s.err
}

func (s *rotatingSource) Refresh(context.Context) (acronis.Credentials, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshes++
	s.secret = s.fresh
	return acronis.Credentials{BaseURL: s.base, ClientID: testClientID, ClientSecret: s.secret}, s.freshErr
}

func TestRejectedCredentialsAreReReadOnce(t *testing.T) {
	sourceDown := errors.New("secrets manager unavailable")
	tests := []struct {
		name          string
		accepted      string // the secret Acronis accepts
		status        int    // its answer to any other
		oauth         string
		src           *rotatingSource
		wantErr       error
		wantOp        string
		wantCode      string
		wantRefreshes int
		wantTokenHTTP int32
	}{
		{name: "rotated secret picked up", accepted: "new", status: 401, oauth: "invalid_client",
			src: &rotatingSource{secret: "old", fresh: "new"}, wantRefreshes: 1, wantTokenHTTP: 2},
		{name: "still rejected after re-read", accepted: "other", status: 401, oauth: "invalid_client",
			src: &rotatingSource{secret: "old", fresh: "new"}, wantErr: acronis.ErrUnauthorized, wantOp: "POST /idp/token",
			wantCode: "invalid_client", wantRefreshes: 1, wantTokenHTTP: 2},
		{name: "400 unauthorized_client", accepted: "other", status: 400, oauth: "unauthorized_client",
			src: &rotatingSource{secret: "old", fresh: "new"}, wantErr: acronis.ErrUnauthorized, wantOp: "POST /idp/token",
			wantCode: "unauthorized_client", wantRefreshes: 1, wantTokenHTTP: 2},
		{name: "403 access_denied", accepted: "other", status: 403, oauth: "access_denied",
			src: &rotatingSource{secret: "old", fresh: "new"}, wantErr: acronis.ErrUnauthorized, wantOp: "POST /idp/token",
			wantCode: "access_denied", wantRefreshes: 1, wantTokenHTTP: 2},
		{name: "malformed token request is not a credentials problem", accepted: "other", status: 400, oauth: "invalid_grant",
			src: &rotatingSource{secret: "old", fresh: "new"}, wantErr: acronis.ErrBadRequest, wantOp: "POST /idp/token",
			wantCode: "invalid_grant", wantRefreshes: 0, wantTokenHTTP: 1},
		{name: "source down", src: &rotatingSource{err: sourceDown}, wantErr: acronis.ErrUpstream, wantOp: "credentials"},
		{name: "re-read fails", accepted: "other", status: 401, oauth: "invalid_client",
			src:     &rotatingSource{secret: "old", freshErr: sourceDown},
			wantErr: acronis.ErrUpstream, wantOp: "credentials", wantRefreshes: 1, wantTokenHTTP: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t,
				func(w http.ResponseWriter, r *http.Request) {
					if _, secret, _ := r.BasicAuth(); secret != tt.accepted {
						writeJSON(w, tt.status, map[string]string{"error": tt.oauth, "error_description": "client authentication failed"})
						return
					}
					writeJSON(w, http.StatusOK, map[string]any{"access_token": "tok", "expires_in": 7200})
				}, okStatus)
			src := tt.src
			src.base = f.URL
			c, _ := newClient(src, acronis.Options{})
			_, err := c.MFAStatus(t.Context(), "t1")
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
			} else {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				e := asError(t, err)
				if e.Op != tt.wantOp || e.Code != tt.wantCode {
					t.Errorf("Op %q Code %q, want %q %q", e.Op, e.Code, tt.wantOp, tt.wantCode)
				}
				if tt.wantCode != "" && e.Message != "client authentication failed" {
					t.Errorf("Message %q, want the error_description", e.Message)
				}
				if tt.wantOp == "credentials" && !errors.Is(err, sourceDown) {
					t.Errorf("error %v does not wrap the source's failure", err)
				}
			}
			if src.refreshes != tt.wantRefreshes {
				t.Errorf("%d re-reads, want %d", src.refreshes, tt.wantRefreshes)
			}
			if n := f.tokenCalls.Load(); n != tt.wantTokenHTTP {
				t.Errorf("%d token calls, want %d", n, tt.wantTokenHTTP)
			}
			if f.apiCalls.Load() != 0 && tt.wantErr != nil {
				t.Error("an API call went out without a token")
			}
		})
	}
}

type answer struct {
	status     int
	retryAfter string
	body       string
}

func TestRetriesAndClassification(t *testing.T) {
	clock := newFakeClock()
	const base, maxDelay = 100 * time.Millisecond, 300 * time.Millisecond
	caps := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond}
	platform := func(code int, msg string) string {
		return fmt.Sprintf(`{"error":{"code":%d,"domain":"PlatformAccountServer","message":%q,"details":{"info":null},"context":{}}}`, code, msg)
	}
	ok := answer{200, "", `{"mfa_status":"enabled","users_count":3}`}
	tests := []struct {
		name       string
		answers    []answer // the last one repeats
		wantErr    error
		wantStatus int
		wantCode   string
		wantRA     time.Duration
		waits      []time.Duration // exact waits; nil: backoffs within caps
		backoffs   int
		wantStats  acronis.Stats // API attempts only (token call subtracted)
	}{
		{name: "503 with Retry-After, then success", answers: []answer{{503, "2", ""}, ok},
			waits: []time.Duration{2 * time.Second}, wantStats: acronis.Stats{Requests: 2, Throttled: 1}},
		{name: "429 with an HTTP date", answers: []answer{{429, clock.Now().Add(3 * time.Second).Format(http.TimeFormat), ""}, ok},
			waits: []time.Duration{3 * time.Second}, wantStats: acronis.Stats{Requests: 2, Throttled: 1}},
		{name: "429 past the budget", answers: []answer{{429, "1", platform(429, "slow down")}},
			wantErr: acronis.ErrThrottled, wantStatus: 429, wantCode: "429", wantRA: time.Second,
			waits: []time.Duration{time.Second, time.Second, time.Second}, wantStats: acronis.Stats{Requests: 4, Throttled: 4}},
		{name: "429 without Retry-After backs off", answers: []answer{{429, "", ""}, {429, "", ""}, ok},
			backoffs: 2, wantStats: acronis.Stats{Requests: 3, Throttled: 2}},
		{name: "500 past the budget", answers: []answer{{500, "", platform(1000, "internal error")}},
			wantErr: acronis.ErrUpstream, wantStatus: 500, wantCode: "1000", backoffs: 3,
			wantStats: acronis.Stats{Requests: 4, Errors: 4}},
		{name: "503 without Retry-After is an upstream failure", answers: []answer{{503, "", ""}, ok},
			backoffs: 1, wantStats: acronis.Stats{Requests: 2, Errors: 1}},
		{name: "502 then success", answers: []answer{{502, "", "<html>bad gateway</html>"}, ok},
			backoffs: 1, wantStats: acronis.Stats{Requests: 2, Errors: 1}},
		{name: "unreadable 200 then success", answers: []answer{{200, "", `{"mfa_status":`}, ok},
			backoffs: 1, wantStats: acronis.Stats{Requests: 2, Errors: 1}},
		{name: "unreadable 200 past the budget", answers: []answer{{200, "", `<html>`}},
			wantErr: acronis.ErrUpstream, wantStatus: 200, backoffs: 3, wantStats: acronis.Stats{Requests: 4, Errors: 4}},
		{name: "404", answers: []answer{{404, "", platform(1005, "tenant not found")}},
			wantErr: acronis.ErrNotFound, wantStatus: 404, wantCode: "1005", wantStats: acronis.Stats{Requests: 1}},
		{name: "403", answers: []answer{{403, "", platform(1002, "access denied")}},
			wantErr: acronis.ErrNotAllowed, wantStatus: 403, wantCode: "1002", wantStats: acronis.Stats{Requests: 1}},
		{name: "400", answers: []answer{{400, "", platform(400, "bad")}},
			wantErr: acronis.ErrBadRequest, wantStatus: 400, wantCode: "400", wantStats: acronis.Stats{Requests: 1}},
		{name: "405", answers: []answer{{405, "", ""}}, wantErr: acronis.ErrBadRequest, wantStatus: 405, wantStats: acronis.Stats{Requests: 1}},
		{name: "409 with a string code", answers: []answer{{409, "", `{"error":{"code":"1001","message":"version mismatch"}}`}},
			wantErr: acronis.ErrBadRequest, wantStatus: 409, wantCode: "1001", wantStats: acronis.Stats{Requests: 1}},
		{name: "415", answers: []answer{{415, "", ""}}, wantErr: acronis.ErrBadRequest, wantStatus: 415, wantStats: acronis.Stats{Requests: 1}},
		{name: "422", answers: []answer{{422, "", ""}}, wantErr: acronis.ErrBadRequest, wantStatus: 422, wantStats: acronis.Stats{Requests: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f *fakeAcronis
			f = newFake(t, nil, func(w http.ResponseWriter, r *http.Request) {
				a := tt.answers[min(int(f.apiCalls.Load()), len(tt.answers))-1]
				if a.retryAfter != "" {
					w.Header().Set("Retry-After", a.retryAfter)
				}
				w.WriteHeader(a.status)
				_, _ = io.WriteString(w, a.body)
			})
			c, rec := newClient(creds(f.URL), acronis.Options{Now: clock.Now, BaseDelay: base, MaxDelay: maxDelay})
			st, err := c.MFAStatus(t.Context(), "t1")
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if st.MFAStatus != tenant.MFAEnabled || st.UsersCount != 3 {
					t.Errorf("status %+v, want the successful answer", st)
				}
			} else {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				e := asError(t, err)
				if e.Status != tt.wantStatus || e.Code != tt.wantCode || e.RetryAfter != tt.wantRA ||
					e.Op != "GET /tenants/{id}/mfa/status" || e.TenantID != "t1" {
					t.Errorf("error fields %+v", e)
				}
			}
			waits := rec.recorded()
			if tt.waits != nil {
				if fmt.Sprint(waits) != fmt.Sprint(tt.waits) {
					t.Errorf("waits %v, want %v", waits, tt.waits)
				}
			} else {
				if len(waits) != tt.backoffs {
					t.Errorf("%d waits, want %d", len(waits), tt.backoffs)
				}
				for i, w := range waits {
					if w < 0 || w > caps[i] {
						t.Errorf("wait %d is %v, want within [0, %v]", i, w, caps[i])
					}
				}
			}
			tt.wantStats.Requests++ // the token call
			if got := c.Stats(); got != tt.wantStats {
				t.Errorf("stats %+v, want %+v", got, tt.wantStats)
			}
		})
	}
}

// flakyTransport fails the first n API requests before they reach the server.
type flakyTransport struct {
	n    atomic.Int32
	next http.RoundTripper
}

func (f *flakyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/idp/token") || f.n.Add(-1) < 0 {
		return f.next.RoundTrip(r)
	}
	return nil, errors.New("connection reset by peer")
}

func TestTransportFailuresAreRetried(t *testing.T) {
	tests := []struct {
		name     string
		failures int32
		wantErr  error
	}{
		{"recovered", 2, nil},
		{"past the budget", 4, acronis.ErrUpstream},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, nil, okStatus)
			tr := &flakyTransport{next: http.DefaultTransport}
			tr.n.Store(tt.failures)
			c, rec := newClient(creds(f.URL), acronis.Options{HTTPClient: &http.Client{Transport: tr}})
			_, err := c.MFAStatus(t.Context(), "t1")
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), f.URL) {
				t.Errorf("error %q repeats the URL", err)
			}
			if got := len(rec.recorded()); got != int(min(tt.failures, 3)) {
				t.Errorf("%d waits, want %d", got, min(tt.failures, 3))
			}
			if got := c.Stats().Errors; got != int64(tt.failures) {
				t.Errorf("Errors %d, want %d", got, tt.failures)
			}
		})
	}
}

func TestDeadlines(t *testing.T) {
	t.Run("a wait past the deadline is not begun", func(t *testing.T) {
		f := newFake(t, nil, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "60")
			w.WriteHeader(http.StatusTooManyRequests)
		})
		c, rec := newClient(creds(f.URL), acronis.Options{})
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		_, err := c.MFAStatus(ctx, "t1")
		if !errors.Is(err, acronis.ErrThrottled) {
			t.Fatalf("error %v, want ErrThrottled", err)
		}
		if ra, ok := acronis.RetryAfter(err); !ok || ra != time.Minute {
			t.Errorf("RetryAfter %v, want 1m", ra)
		}
		if n := len(rec.recorded()); n != 0 || f.apiCalls.Load() != 1 {
			t.Errorf("%d waits and %d calls, want none and 1", n, f.apiCalls.Load())
		}
	})
	t.Run("a slow answer ends with the context", func(t *testing.T) {
		f := newFake(t, nil, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		c, _ := newClient(creds(f.URL), acronis.Options{})
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		begun := time.Now()
		_, err := c.MFAStatus(ctx, "t1")
		if !errors.Is(err, acronis.ErrDeadline) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error %v, want ErrDeadline wrapping context.DeadlineExceeded", err)
		}
		if took := time.Since(begun); took > 2*time.Second {
			t.Errorf("took %v after a 50ms deadline", took)
		}
		if e := asError(t, err); e.Op != "GET /tenants/{id}/mfa/status" || e.TenantID != "t1" {
			t.Errorf("error fields %+v", e)
		}
		if got := c.Stats().Errors; got != 0 {
			t.Errorf("our own deadline counted as %d Acronis errors", got)
		}
	})
	t.Run("cancelled while waiting to retry", func(t *testing.T) {
		f := newFake(t, nil, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) })
		ctx, cancel := context.WithCancel(t.Context())
		c, _ := newClient(creds(f.URL), acronis.Options{Sleep: func(ctx context.Context, _ time.Duration) error {
			cancel()
			return ctx.Err()
		}})
		_, err := c.MFAStatus(ctx, "t1")
		if !errors.Is(err, acronis.ErrDeadline) || !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want ErrDeadline wrapping context.Canceled", err)
		}
		if n := f.apiCalls.Load(); n != 1 {
			t.Errorf("%d calls, want 1", n)
		}
	})
}

func TestIDsCannotAlterThePath(t *testing.T) {
	var gotPath, gotRaw string
	f := newFake(t, nil, func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotRaw = r.URL.Path, r.URL.EscapedPath()
		okStatus(w, r)
	})
	c, _ := newClient(creds(f.URL), acronis.Options{})
	if _, err := c.MFAStatus(t.Context(), "a/../b?c#d%"); err != nil {
		t.Fatal(err)
	}
	if want := "/api/2/tenants/a%2F..%2Fb%3Fc%23d%25/mfa/status"; gotRaw != want {
		t.Errorf("request path %q, want %q", gotRaw, want)
	}
	if want := "/api/2/tenants/a/../b?c#d%/mfa/status"; gotPath != want {
		t.Errorf("decoded path %q, want %q", gotPath, want)
	}

	for _, id := range []string{"", ".", ".."} {
		f.apiCalls.Store(0)
		calls := map[string]func() error{
			"Tenant":    func() error { _, err := c.Tenant(t.Context(), id); return err },
			"MFAStatus": func() error { _, err := c.MFAStatus(t.Context(), id); return err },
			"SetMFA":    func() error { _, err := c.SetMFA(t.Context(), id, true); return err },
			"Children":  func() error { _, err := c.Children(t.Context(), id); return err },
		}
		for name, call := range calls {
			if err := call(); !errors.Is(err, acronis.ErrBadRequest) {
				t.Errorf("%s(%q): %v, want ErrBadRequest", name, id, err)
			}
		}
		if n := f.apiCalls.Load(); n != 0 {
			t.Errorf("id %q: %d requests sent", id, n)
		}
	}
}

func TestSetMFA(t *testing.T) {
	for _, enabled := range []bool{true, false} {
		t.Run(fmt.Sprint(enabled), func(t *testing.T) {
			var bodies []string
			var f *fakeAcronis
			f = newFake(t, nil, func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				bodies = append(bodies, string(body))
				if r.Method != http.MethodPut || r.URL.Path != "/api/2/tenants/t1/mfa/status" ||
					r.Header.Get("Content-Type") != "application/json" {
					t.Errorf("%s %s Content-Type %q", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
				}
				if f.apiCalls.Load() == 1 {
					w.WriteHeader(http.StatusInternalServerError)
					return
				}
				writeJSON(w, http.StatusOK, map[string]any{"mfa_status": "disabled", "users_count": 5, "users_with_totp_enabled_count": 2, "update_allowed": true})
			})
			c, _ := newClient(creds(f.URL), acronis.Options{})
			st, err := c.SetMFA(t.Context(), "t1", enabled)
			if err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf(`{"enabled":%t}`, enabled)
			if len(bodies) != 2 || bodies[0] != want || bodies[1] != want {
				t.Errorf("bodies %q, want %q sent on both attempts", bodies, want)
			}
			if st != (tenant.MFAStatus{MFAStatus: "disabled", UsersCount: 5, UsersWithTOTPEnabledCount: 2, UpdateAllowed: true}) {
				t.Errorf("status %+v", st)
			}
		})
	}
}

func TestOwnTenantIDIsReadOnce(t *testing.T) {
	var gotRaw string
	f := newFake(t, nil, func(w http.ResponseWriter, r *http.Request) {
		gotRaw = r.URL.EscapedPath()
		writeJSON(w, http.StatusOK, map[string]any{"client_id": "c/1", "tenant_id": "root-tenant", "type": "api_client"})
	})
	c, _ := newClient(acronis.StaticCredentials{BaseURL: f.URL, ClientID: "c/1", ClientSecret: testSecret}, acronis.Options{})
	for range 3 {
		id, err := c.OwnTenantID(t.Context())
		if err != nil || id != "root-tenant" {
			t.Fatalf("OwnTenantID = %q, %v", id, err)
		}
	}
	if gotRaw != "/api/2/clients/c%2F1" {
		t.Errorf("path %q", gotRaw)
	}
	if n := f.apiCalls.Load(); n != 1 {
		t.Errorf("%d calls for 3 lookups, want 1", n)
	}
}

func TestTenantAndChildren(t *testing.T) {
	f := newFake(t, nil, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/2/tenants/p1":
			writeJSON(w, http.StatusOK, map[string]any{"id": "p1", "name": "Partner", "kind": "partner", "parent_id": "root",
				"enabled": true, "version": 7, "has_children": true, "mfa_status": "setup_required", "contact": map[string]any{}})
		case "/api/2/tenants/p1/children":
			if r.URL.Query().Get("include_details") != "true" {
				t.Errorf("children query %q", r.URL.RawQuery)
			}
			writeJSON(w, http.StatusOK, map[string]any{"items": []map[string]any{
				{"id": "c1", "kind": "customer", "parent_id": "p1", "mfa_status": "disabled"},
				{"id": "f1", "kind": "folder", "parent_id": "p1"},
			}})
		default:
			http.NotFound(w, r)
		}
	})
	c, _ := newClient(creds(f.URL), acronis.Options{})
	got, err := c.Tenant(t.Context(), "p1")
	if err != nil {
		t.Fatal(err)
	}
	want := tenant.Tenant{ID: "p1", Name: "Partner", Kind: tenant.KindPartner, ParentID: "root", Enabled: true, Version: 7, HasChildren: true, MFAStatus: tenant.MFASetupRequired}
	if got != want {
		t.Errorf("tenant %+v, want %+v", got, want)
	}
	kids, err := c.Children(t.Context(), "p1")
	if err != nil {
		t.Fatal(err)
	}
	if len(kids) != 2 || kids[0].ID != "c1" || kids[0].MFAStatus != tenant.MFADisabled || kids[1].Kind != tenant.KindFolder {
		t.Errorf("children %+v", kids)
	}
}

func TestSubtree(t *testing.T) {
	// pages maps a cursor ("" for the first call) to its items and next cursor.
	type page struct {
		ids   []string
		after string
	}
	pages := map[string]page{
		"":   {[]string{"root", "a"}, "c1"},
		"c1": {[]string{"b", "c"}, "c2"},
		"c2": {[]string{"d"}, ""},
	}
	serve := func(t *testing.T, fail map[string]int, wantLimit string) *fakeAcronis {
		return newFake(t, nil, func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			cursor := q.Get("after")
			if cursor == "" {
				if q.Get("subtree_root_id") != "root" || q.Get("lod") != "full" || q.Get("limit") != wantLimit || len(q) != 3 {
					t.Errorf("first page query %q", r.URL.RawQuery)
				}
			} else if len(q) != 1 {
				t.Errorf("next page query %q, want only the cursor", r.URL.RawQuery)
			}
			if status, ok := fail[cursor]; ok {
				platformError(w, status, status, "no")
				return
			}
			p := pages[cursor]
			items := make([]tenant.Tenant, len(p.ids))
			for i, id := range p.ids {
				items[i] = tenant.Tenant{ID: id, Kind: tenant.KindCustomer, MFAStatus: tenant.MFAEnabled}
			}
			body := map[string]any{"items": items, "timestamp": "2025-03-01T12:00:00Z", "paging": map[string]any{"cursors": map[string]any{}}}
			if p.after != "" {
				body["paging"] = map[string]any{"cursors": map[string]any{"after": p.after}}
			}
			writeJSON(w, http.StatusOK, body)
		})
	}
	collect := func(seq func(func(tenant.Tenant, error) bool), stopAfter int) (ids []string, errs []error) {
		for tenant, err := range seq {
			if err != nil {
				errs = append(errs, err)
				continue
			}
			ids = append(ids, tenant.ID)
			if len(ids) == stopAfter {
				break
			}
		}
		return ids, errs
	}

	tests := []struct {
		name      string
		limit     int
		wantLimit string
		fail      map[string]int
		stopAfter int
		wantIDs   string
		wantErr   error
		wantCalls int32
	}{
		{name: "all pages in order", limit: 2, wantLimit: "2", wantIDs: "root a b c d", wantCalls: 3},
		{name: "default page size", limit: 0, wantLimit: "5000", wantIDs: "root a b c d", wantCalls: 3},
		{name: "failure mid-way yields one error and stops", limit: 2, wantLimit: "2", fail: map[string]int{"c1": 403},
			wantIDs: "root a", wantErr: acronis.ErrNotAllowed, wantCalls: 2},
		{name: "consumer stops early", limit: 2, wantLimit: "2", stopAfter: 1, wantIDs: "root", wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := serve(t, tt.fail, tt.wantLimit)
			c, _ := newClient(creds(f.URL), acronis.Options{})
			ids, errs := collect(c.Subtree(t.Context(), "root", tt.limit), tt.stopAfter)
			if got := strings.Join(ids, " "); got != tt.wantIDs {
				t.Errorf("tenants %q, want %q", got, tt.wantIDs)
			}
			switch {
			case tt.wantErr == nil && len(errs) != 0:
				t.Errorf("errors %v", errs)
			case tt.wantErr != nil && (len(errs) != 1 || !errors.Is(errs[0], tt.wantErr)):
				t.Errorf("errors %v, want one %v", errs, tt.wantErr)
			}
			if n := f.apiCalls.Load(); n != tt.wantCalls {
				t.Errorf("%d listing calls, want %d", n, tt.wantCalls)
			}
		})
	}

	t.Run("a cursor that does not advance fails", func(t *testing.T) {
		f := newFake(t, nil, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]any{"items": []tenant.Tenant{{ID: "x"}}, "paging": map[string]any{"cursors": map[string]any{"after": "same"}}})
		})
		c, _ := newClient(creds(f.URL), acronis.Options{})
		_, errs := collect(c.Subtree(t.Context(), "root", 1), 0)
		if len(errs) != 1 || !errors.Is(errs[0], acronis.ErrUpstream) {
			t.Errorf("errors %v, want one ErrUpstream", errs)
		}
		if n := f.apiCalls.Load(); n != 2 {
			t.Errorf("%d calls, want 2", n)
		}
	})
}

func TestFindTenantByName(t *testing.T) {
	hit := func(objType, id, name string) map[string]any {
		return map[string]any{"obj_type": objType, "id": id, "parent_id": "p-" + id, "kind": "customer", "name": name, "path": []string{"root"}}
	}
	tests := []struct {
		name    string
		items   []map[string]any
		want    tenant.Tenant
		wantErr error
		wantMsg string
	}{
		{name: "one exact match among partial ones and users",
			items: []map[string]any{hit("tenant", "1", "Acme Ltd"), hit("user", "2", "Acme"), hit("tenant", "3", "Acme"), hit("tenant", "4", "acme")},
			want:  tenant.Tenant{ID: "3", Name: "Acme", Kind: tenant.KindCustomer, ParentID: "p-3"}},
		{name: "none", items: []map[string]any{hit("tenant", "1", "Acme Ltd"), hit("user", "2", "Acme")},
			wantErr: acronis.ErrNotFound, wantMsg: `no tenant named "Acme" under root`},
		{name: "several", items: []map[string]any{hit("tenant", "1", "Acme"), hit("tenant", "2", "Acme")},
			wantErr: acronis.ErrBadRequest, wantMsg: `2 tenants named "Acme" under root: ambiguous`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, nil, func(w http.ResponseWriter, r *http.Request) {
				q := r.URL.Query()
				if r.URL.Path != "/api/2/search" || q.Get("tenant") != "root" || q.Get("text") != "Acme" || q.Get("limit") == "" {
					t.Errorf("search %s?%s", r.URL.Path, r.URL.RawQuery)
				}
				writeJSON(w, http.StatusOK, map[string]any{"items": tt.items})
			})
			c, _ := newClient(creds(f.URL), acronis.Options{})
			got, err := c.FindTenantByName(t.Context(), "root", "Acme")
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("error %v, want %v saying %q", err, tt.wantErr, tt.wantMsg)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestStaticCredentialsNeverFormatTheSecret(t *testing.T) {
	s := creds("https://eu2-cloud.acronis.com")
	var buf strings.Builder
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		fmt.Fprintf(&buf, format+"\n", s)
	}
	if out := buf.String(); strings.Contains(out, testSecret) || !strings.Contains(out, testClientID) {
		t.Errorf("formatted as %q", out)
	}
}
