package sim_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/testkit"
)

// api drives a Server over real HTTP with its own requests, so that the wire
// format is checked here independently of the project's client.
type api struct {
	t     testing.TB
	sim   *sim.Server
	url   string
	token string
}

func newAPI(t testing.TB, opts sim.Options) *api {
	t.Helper()
	env := testkit.NewAcronis(t, testkit.AcronisOptions{Sim: opts})
	a := &api{t: t, sim: env.Sim, url: env.URL}
	a.token = a.newToken()
	return a
}

const form = "application/x-www-form-urlencoded"

// requestToken asks for a token with the given credentials, content type and body.
func (a *api) requestToken(id, secret, contentType, body string) (int, []byte) {
	a.t.Helper()
	req, err := http.NewRequest(http.MethodPost, a.url+"/api/2/idp/token", strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if id != "" || secret != "" {
		req.SetBasicAuth(id, secret)
	}
	resp, b := a.send(req)
	return resp.StatusCode, b
}

func (a *api) newToken() string {
	a.t.Helper()
	status, body := a.requestToken(a.sim.ClientID(), a.sim.ClientSecret(), form, "grant_type=client_credentials")
	if status != http.StatusOK {
		a.t.Fatalf("token: status %d: %s", status, body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	decode(a.t, body, &tok)
	return tok.AccessToken
}

func (a *api) send(req *http.Request) (*http.Response, []byte) {
	a.t.Helper()
	resp, err := noRedirects.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	// Clients look at Content-Type before they decode an error body.
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode >= 400 && ct != "application/json" {
		a.t.Errorf("%s %s: status %d with Content-Type %q", req.Method, req.URL.Path, resp.StatusCode, ct)
	}
	return resp, body
}

// noRedirects shows answers as they come: a redirect is an answer to check.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// request is an API request with the api's token; path is below /api/2.
func (a *api) request(ctx context.Context, method, path, contentType, body string) *http.Request {
	a.t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, a.url+"/api/2"+path, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req
}

func (a *api) do(method, path, contentType, body string) (*http.Response, []byte) {
	a.t.Helper()
	return a.send(a.request(context.Background(), method, path, contentType, body))
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
	t.ID = cmp.Or(t.ID, newID())
	if err := a.sim.Add(t); err != nil {
		a.t.Fatal(err)
	}
	return t.ID
}

var idSeq atomic.Int64

// newID gives readable, unique ids in UUID form.
func newID() string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", idSeq.Add(1)) }

func decode(t testing.TB, body []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
}

// wantPlatformError checks an answer's status and its platform error body.
func wantPlatformError(t testing.TB, status int, body []byte, wantStatus, wantCode int) {
	t.Helper()
	var e struct {
		Error struct {
			Code    int                   `json:"code"`
			Domain  string                `json:"domain"`
			Message string                `json:"message"`
			Details struct{ Info string } `json:"details"`
			Context map[string]any        `json:"context"`
		} `json:"error"`
	}
	if status != wantStatus {
		t.Fatalf("status %d, want %d: %s", status, wantStatus, body)
	}
	decode(t, body, &e)
	if e.Error.Code != wantCode || e.Error.Domain != "PlatformAccountServer" || e.Error.Message == "" || e.Error.Context == nil {
		t.Fatalf("error body %s, want platform error with code %d", body, wantCode)
	}
}
