package sim_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"acronismfa/internal/acronis/sim"
)

// api drives a Server over real HTTP, as the project's client would.
type api struct {
	t     testing.TB
	sim   *sim.Server
	url   string
	http  *http.Client
	token string
}

func newAPI(t testing.TB, opts sim.Options) *api {
	t.Helper()
	s := sim.New(opts)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	a := &api{t: t, sim: s, url: srv.URL, http: srv.Client()}
	a.token = a.newToken()
	return a
}

// requestToken asks for a token with the given credentials and content type.
func (a *api) requestToken(id, secret, contentType, form string) (int, []byte) {
	a.t.Helper()
	req, err := http.NewRequest(http.MethodPost, a.url+"/api/2/idp/token", strings.NewReader(form))
	if err != nil {
		a.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if id != "" || secret != "" {
		req.SetBasicAuth(id, secret)
	}
	return a.send(req)
}

func (a *api) newToken() string {
	a.t.Helper()
	status, body := a.requestToken(a.sim.ClientID(), a.sim.ClientSecret(), "application/x-www-form-urlencoded", "grant_type=client_credentials")
	if status != http.StatusOK {
		a.t.Fatalf("token: status %d: %s", status, body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	decode(a.t, body, &tok)
	return tok.AccessToken
}

func (a *api) send(req *http.Request) (int, []byte) {
	a.t.Helper()
	resp, err := a.http.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return resp.StatusCode, body
}

// do sends an API request with the api's token; path is below /api/2.
func (a *api) do(method, path, contentType, body string) (*http.Response, []byte) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.url+"/api/2"+path, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return resp, b
}

func (a *api) get(path string) (int, []byte) {
	a.t.Helper()
	resp, body := a.do(http.MethodGet, path, "", "")
	return resp.StatusCode, body
}

func (a *api) putMFA(id, body string) (int, []byte) {
	a.t.Helper()
	resp, b := a.do(http.MethodPut, "/tenants/"+id+"/mfa/status", "application/json", body)
	return resp.StatusCode, b
}

func (a *api) add(t sim.Tenant) string {
	a.t.Helper()
	if t.ID == "" {
		t.ID = newID()
	}
	if err := a.sim.Add(t); err != nil {
		a.t.Fatal(err)
	}
	return t.ID
}

// newID gives readable, unique ids in UUID form.
var (
	idMu  sync.Mutex
	idSeq int
)

func newID() string {
	idMu.Lock()
	defer idMu.Unlock()
	idSeq++
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", idSeq)
}

func decode(t testing.TB, body []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
}

type platformError struct {
	Error struct {
		Code    int                   `json:"code"`
		Domain  string                `json:"domain"`
		Message string                `json:"message"`
		Details struct{ Info string } `json:"details"`
		Context map[string]any        `json:"context"`
	} `json:"error"`
}

// wantPlatformError checks an answer's status and its platform error body.
func wantPlatformError(t *testing.T, status int, body []byte, wantStatus, wantCode int) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("status %d, want %d: %s", status, wantStatus, body)
	}
	var e platformError
	decode(t, body, &e)
	if e.Error.Code != wantCode || e.Error.Domain != "PlatformAccountServer" || e.Error.Message == "" || e.Error.Context == nil {
		t.Fatalf("error body %s, want platform error with code %d", body, wantCode)
	}
}

// clock is a fake clock that moves only when told.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
