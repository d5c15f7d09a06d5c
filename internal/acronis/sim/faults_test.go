package sim_test

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/testkit"
)

// cust is the customer every request-fault test works on.
const cust = "c0000000-0000-4000-8000-000000000001"

func TestRequestFaults(t *testing.T) {
	mfa, on := "/tenants/"+cust+"/mfa/status", `{"enabled":true}`
	type req struct {
		method, path string // path below /api/2; a PUT sends on
		status, code int    // code: the platform error's, when not the status
		header       string // "Name: value" the answer carries, "Name:" for none
		body         string // a 2xx body: "" JSON, "cut" short of it, or "empty"
	}
	get := func(status int, header string) req {
		return req{method: "GET", path: mfa, status: status, header: header}
	}
	tests := []struct {
		name   string
		faults sim.Faults
		reqs   []req
		after  string // the customer's MFA state afterwards
	}{
		{"every 3rd throttled, retry at once", sim.Faults{ThrottleEvery: 3},
			[]req{get(200, ""), get(200, ""), get(429, "Retry-After: 0"), get(200, ""), get(200, ""), get(429, "Retry-After: 0")}, "disabled"},
		{"every 2nd unavailable", sim.Faults{UnavailableEvery: 2, RetryAfter: 2},
			[]req{get(200, ""), get(503, "Retry-After: 2"), get(200, ""), get(503, "Retry-After: 2")}, ""},
		{"throttling wins a tie", sim.Faults{ThrottleEvery: 2, UnavailableEvery: 3},
			[]req{get(200, ""), get(429, ""), get(503, ""), get(429, ""), get(200, ""), get(429, "")}, ""},
		{"no Retry-After", sim.Faults{ThrottleEvery: 1, RetryAfter: -1}, []req{get(429, "Retry-After:")}, ""},
		{"Retry-After as a date", sim.Faults{ThrottleEvery: 1, RetryAfter: 5, RetryAfterDate: true},
			[]req{get(429, "Retry-After: Thu, 01 Jan 2026 00:00:05 GMT")}, ""},
		{"FailNth", sim.Faults{FailNth: []sim.NthFailure{
			{Method: "GET", Path: "/api/2" + mfa, Nth: []int{2, 4}, Status: 502},
			{Method: "GET", Path: "/api/2" + mfa, Nth: []int{3}, Status: 200},
			{Method: "PUT", Path: "/api/2" + mfa, Nth: []int{1}, Status: 307}}},
			[]req{get(200, ""), get(502, ""), {method: "GET", path: mfa, status: 200, body: "cut"}, get(502, ""), get(200, ""),
				{method: "PUT", path: mfa, status: 307, header: "Location: /api/2" + mfa}, {method: "PUT", path: mfa, status: 200}}, "setup_required"},
		{"ThrottleFirst", sim.Faults{ThrottleFirst: true}, []req{get(429, "Retry-After: 0"), get(200, ""),
			{method: "GET", path: "/tenants?subtree_root_id=" + cust, status: 429}, {method: "GET", path: "/tenants?uuids=" + cust, status: 200},
			{method: "PUT", path: mfa, status: 429}, {method: "PUT", path: mfa, status: 200}}, "setup_required"},
		{"FailTenants", sim.Faults{FailTenants: map[string]int{cust: 500}}, []req{get(500, ""),
			{method: "PUT", path: mfa, status: 500}, {method: "GET", path: "/tenants/" + cust, status: 200}}, "disabled"},
		{"FailTenants with a platform code", sim.Faults{FailTenants: map[string]int{cust: 404}}, []req{{method: "GET", path: mfa, status: 404, code: 1005}}, ""},
		{"LoseWriteAnswers", sim.Faults{LoseWriteAnswers: []string{cust}}, []req{{method: "PUT", path: mfa, status: 502}}, "setup_required"},
		{"EmptyWriteStatus 200", sim.Faults{EmptyWriteStatus: 200}, []req{{method: "PUT", path: mfa, status: 200, header: "Content-Length: 0", body: "empty"}}, "setup_required"},
		{"EmptyWriteStatus 204", sim.Faults{EmptyWriteStatus: 204}, []req{{method: "PUT", path: mfa, status: 204, body: "empty"}, get(200, "")}, "setup_required"},
		{"an escaped slash stays in its segment", sim.Faults{}, []req{{method: "GET", path: "/tenants/a%2F" + cust + "/mfa/status", status: 404, code: 1005}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAPI(t, sim.Options{Now: testkit.NewClock().Now})
			a.add(sim.Tenant{ID: cust, Kind: "customer", Enabled: true, UpdateAllowed: true, UsersCount: 2, UsersWithTOTP: 1})
			a.sim.SetFaults(tt.faults)
			if tt.faults.FailTenants != nil {
				tt.faults.FailTenants[a.sim.RootID()] = 500 // the Server keeps its own copy
				if status, _ := a.get("/tenants/" + a.sim.RootID() + "/mfa/status"); status != http.StatusOK {
					t.Errorf("another tenant: status %d", status)
				}
			}
			for i, r := range tt.reqs {
				resp, body := a.do(r.method, r.path, "application/json", map[string]string{"PUT": on}[r.method])
				switch {
				case resp.StatusCode >= 300:
					wantPlatformError(t, resp.StatusCode, body, r.status, cmp.Or(r.code, r.status))
				case resp.StatusCode != r.status:
					t.Fatalf("request %d: status %d, want %d: %s", i+1, resp.StatusCode, r.status, body)
				case r.body == "" && !json.Valid(body), r.body == "empty" && len(body) != 0,
					r.body == "cut" && (len(body) == 0 || json.Valid(body)):
					t.Errorf("request %d: body %q, want %q", i+1, body, cmp.Or(r.body, "JSON"))
				}
				if name, value, _ := strings.Cut(r.header, ":"); name != "" {
					if got := resp.Header.Values(name); strings.Join(got, ",") != strings.TrimSpace(value) {
						t.Errorf("request %d: %s %q, want %q", i+1, name, got, r.header)
					}
				}
			}
			if got, _ := a.sim.Get(cust); tt.after != "" && got.MFAStatus != tt.after {
				t.Errorf("customer afterwards %s, want %s", got.MFAStatus, tt.after)
			}
			a.sim.SetFaults(sim.Faults{})
			if status, body := a.get(mfa); status != http.StatusOK {
				t.Errorf("after clearing the faults: status %d: %s", status, body)
			}
		})
	}
}

func TestFaultCountsLeaveOutTokenCallsAnd401s(t *testing.T) {
	a := newAPI(t, sim.Options{})
	var hooked []int
	a.sim.SetFaults(sim.Faults{ThrottleEvery: 2, BeforeRequest: func(n int) {
		hooked = append(hooked, n)
		if n == 3 {
			a.sim.ExpireTokens() // before its token is checked: request 3 is refused
		}
	}})
	path := "/tenants/" + a.sim.RootID()
	want := []int{200, 429, 401, 200, 429}
	for i, w := range want {
		if i == 3 {
			a.token = a.newToken()
		}
		if status, _ := a.get(path); status != w {
			t.Errorf("request %d: status %d, want %d", i+1, status, w)
		}
	}
	if !slices.Equal(hooked, []int{1, 2, 3, 4, 5}) {
		t.Errorf("hook ran for %v, want each API request once", hooked)
	}
}

func TestTokenAnswers(t *testing.T) {
	every := "access_token expires_in expires_on id_token token_type"
	tests := []struct {
		name          string
		faults        sim.Faults
		secret        string
		status        int
		fields, error string // the answer's fields, or its OAuth error
	}{
		{"every field", sim.Faults{}, "", 200, every, ""},
		{"expiry left out", sim.Faults{OmitTokenFields: []string{"expires_in", "expires_on"}}, "", 200, "access_token id_token token_type", ""},
		{"no access token", sim.Faults{OmitTokenFields: []string{"access_token"}}, "", 200, "expires_in expires_on id_token token_type", ""},
		{"wrong secret", sim.Faults{}, "wrong", 401, "", "invalid_client"},
		{"wrong secret, refused otherwise", sim.Faults{CredentialsRefusal: sim.OAuthRefusal{Status: 400, Error: "unauthorized_client"}}, "wrong", 400, "", "unauthorized_client"},
		{"FailNth on the token endpoint", sim.Faults{FailNth: []sim.NthFailure{{Method: "POST", Path: "/api/2/idp/token", Nth: []int{1}, Status: 503}}}, "", 503, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := testkit.NewClock()
			a := newAPI(t, sim.Options{Now: clock.Now})
			a.sim.SetFaults(tt.faults)
			secret := cmp.Or(tt.secret, a.sim.ClientSecret())
			status, body := a.requestToken(a.sim.ClientID(), secret, form, "grant_type=client_credentials")
			var answer map[string]any
			decode(t, body, &answer)
			fields := slices.Sorted(maps.Keys(answer))
			if status != tt.status || tt.fields != "" && strings.Join(fields, " ") != tt.fields || tt.error != "" && answer["error"] != tt.error {
				t.Errorf("status %d %s, want %d with %q %q", status, body, tt.status, tt.fields, tt.error)
			}
			a.get("/tenants/" + a.sim.RootID())
			// Whatever the answer, what was sent and issued crossed the wire.
			basic := base64.StdEncoding.EncodeToString([]byte(a.sim.ClientID() + ":" + secret))
			seen := []string{"Basic " + basic, basic, "Bearer " + a.token, a.token}
			for _, k := range []string{"access_token", "id_token"} {
				if v, ok := answer[k].(string); ok {
					seen = append(seen, v)
				}
			}
			for _, want := range seen {
				if !slices.Contains(a.sim.Secrets(), want) {
					t.Errorf("Secrets() lacks %q", want)
				}
			}
			if tt.fields != every {
				return
			}
			if answer["access_token"] == a.token || answer["id_token"] == "" || answer["token_type"] != "bearer" ||
				answer["expires_in"] != 7200.0 || answer["expires_on"] != float64(clock.Now().Add(2*time.Hour).Unix()) {
				t.Errorf("answer %s: want a fresh bearer token and an id_token for two hours", body)
			}
			if got := a.sim.TokensIssued(); got != 2 {
				t.Errorf("TokensIssued = %d, want 2", got)
			}
		})
	}
	t.Run("hang-up", func(t *testing.T) {
		a := newAPI(t, sim.Options{})
		a.sim.SetFaults(sim.Faults{FailNth: []sim.NthFailure{{Method: "GET", Path: "/api/2/tenants/" + a.sim.RootID(), Nth: []int{1}, Status: sim.HangUp}}})
		req := a.request(context.Background(), http.MethodGet, "/tenants/"+a.sim.RootID(), "", "")
		if resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("answered %d, want the connection closed", resp.StatusCode)
		}
		if got := a.sim.Requests(); got[len(got)-1].Status != 0 {
			t.Errorf("record %+v, want status 0 for no answer", got[len(got)-1])
		}
	})
}

func TestListingFaults(t *testing.T) {
	tests := []struct {
		name   string
		faults sim.Faults
		limit  int
		pages  [][]int // items as positions in All(), page by page, up to 4 pages
		same   [2]int  // pages that give the same after cursor (1-based), if any
	}{
		{"no fault", sim.Faults{}, 3, [][]int{{0, 1, 2}, {3, 4, 5}, {6, 7}}, [2]int{}},
		{"a loop over one cursor", sim.Faults{LoopCursors: 1}, 2, [][]int{{0, 1}, {2, 3}, {2, 3}, {2, 3}}, [2]int{1, 2}},
		{"a loop over two cursors", sim.Faults{LoopCursors: 2}, 2, [][]int{{0, 1}, {2, 3}, {4, 5}, {2, 3}}, [2]int{1, 3}},
		{"overlapping pages", sim.Faults{OverlapPages: true}, 3, [][]int{{0, 1, 2}, {2, 3, 4}, {4, 5, 6}, {6, 7}}, [2]int{}},
		{"a tenant before its parent", sim.Faults{ListEarly: []string{"C5"}}, 3, [][]int{{0, 7, 1}, {2, 3, 4}, {5, 6}}, [2]int{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAPI(t, sim.Options{})
			for _, tn := range []sim.Tenant{{ID: "P1", Kind: "partner"}, {ID: "P2", Kind: "partner"},
				{ID: "C1", ParentID: "P1"}, {ID: "C2", ParentID: "P1"}, {ID: "C3", ParentID: "P2"}, {ID: "C4", ParentID: "P2"}, {ID: "C5", ParentID: "P2"}} {
				a.add(sim.Tenant{ID: tn.ID, Kind: cmp.Or(tn.Kind, "customer"), ParentID: tn.ParentID})
			}
			pos := map[string]int{}
			for i, tn := range a.sim.All() {
				pos[tn.ID] = i
			}
			a.sim.SetFaults(tt.faults)
			var pages [][]int
			var cursors []string
			path := fmt.Sprintf("/tenants?subtree_root_id=%s&limit=%d", a.sim.RootID(), tt.limit)
			for len(pages) < 4 && path != "" {
				status, body := a.get(path)
				var p page
				decode(t, body, &p)
				if status != http.StatusOK {
					t.Fatalf("status %d: %s", status, body)
				}
				var items []int
				for _, it := range p.Items {
					items = append(items, pos[it.ID])
				}
				pages, path = append(pages, items), ""
				cursors = append(cursors, p.Paging.Cursors["after"])
				if after := p.Paging.Cursors["after"]; after != "" {
					path = "/tenants?after=" + after
				}
			}
			if fmt.Sprint(pages) != fmt.Sprint(tt.pages) {
				t.Errorf("pages %v, want %v", pages, tt.pages)
			}
			if i, j := tt.same[0], tt.same[1]; i > 0 && cursors[i-1] != cursors[j-1] {
				t.Errorf("pages %d and %d gave different cursors", i, j)
			}
		})
	}
}

func TestSubtreeStatus(t *testing.T) {
	a := newAPI(t, sim.Options{})
	a.sim.Generate(sim.TreeSpec{Seed: 5, Size: 20})
	root := a.sim.RootID()
	_, body := a.get("/tenants?subtree_root_id=" + root + "&limit=5")
	var p page
	decode(t, body, &p)
	for _, tt := range []struct{ status, code int }{{403, 1002}, {404, 1005}} {
		a.sim.SetFaults(sim.Faults{SubtreeStatus: tt.status})
		status, body := a.get("/tenants?subtree_root_id=" + root + "&lod=full")
		wantPlatformError(t, status, body, tt.status, tt.code)
		status, body = a.get("/tenants?after=" + p.Paging.Cursors["after"])
		wantPlatformError(t, status, body, tt.status, tt.code)
		if status, _ := a.get("/tenants/" + root + "/children?include_details=true"); status != http.StatusOK {
			t.Errorf("children while the subtree listing fails: status %d, want 200 for the fallback", status)
		}
	}
}

func TestLatency(t *testing.T) {
	a := newAPI(t, sim.Options{})
	const delay = 30 * time.Millisecond
	a.sim.SetFaults(sim.Faults{Latency: delay})
	start := time.Now()
	if status, _ := a.get("/tenants/" + a.sim.RootID()); status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	if took := time.Since(start); took < delay {
		t.Errorf("answer came after %v, want at least %v", took, delay)
	}

	// A caller that gives up on a slow request with a body must not leave the
	// simulator serving it for the whole latency: the server could not close.
	s := sim.New(sim.Options{})
	srv := httptest.NewServer(s)
	s.SetFaults(sim.Faults{Latency: 10 * time.Minute})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/api/2/idp/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", form)
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("the request was answered despite a ten-minute latency")
	}
	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("the server still serves the abandoned request")
	}
	if got := s.Requests(); len(got) != 1 || got[0].Status != 0 {
		t.Errorf("record %+v, want one request with status 0", got)
	}
}

// TestHeldRequestsAndMaxInFlight holds n requests until all have arrived: they
// were all in flight together, unanswered, while others were answered.
func TestHeldRequestsAndMaxInFlight(t *testing.T) {
	a := newAPI(t, sim.Options{})
	for range 3 { // sequential requests never overlap
		a.get("/tenants/" + a.sim.RootID())
	}
	if got := a.sim.MaxInFlight(); got != 1 {
		t.Errorf("after sequential requests MaxInFlight = %d, want 1", got)
	}
	const n = 16
	ids := make([]string, n)
	for i := range ids {
		ids[i] = a.add(sim.Tenant{Kind: "customer"})
	}
	var arrived sync.WaitGroup
	arrived.Add(n)
	a.sim.SetFaults(sim.Faults{HoldTenants: ids, BeforeRequest: func(int) { arrived.Done() }})
	if a.sim.ResetRequests(); a.sim.MaxInFlight() != 0 {
		t.Errorf("MaxInFlight after reset with nothing in flight = %d, want 0", a.sim.MaxInFlight())
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for i, id := range ids {
		path := map[bool]string{true: "/tenants/" + id, false: "/tenants/" + id + "/mfa/status"}[i%2 == 0]
		wg.Go(func() {
			if resp, err := http.DefaultClient.Do(a.request(ctx, http.MethodGet, path, "", "")); err == nil {
				resp.Body.Close()
				t.Errorf("%s answered %d, want no answer", path, resp.StatusCode)
			}
		})
	}
	arrived.Wait()
	a.sim.SetFaults(sim.Faults{HoldTenants: ids})
	a.newToken() // token calls run alongside but are not API requests
	if status, _ := a.get("/tenants/" + a.sim.RootID()); status != http.StatusOK {
		t.Errorf("another tenant while some are held: status %d", status)
	}
	cancel()
	wg.Wait()
	if got := a.sim.MaxInFlight(); got != n+1 {
		t.Errorf("MaxInFlight = %d, want exactly %d", got, n+1)
	}
	if got := a.sim.Requests(); a.sim.Count("GET", "") != n+1 || got[0].Status != 0 {
		t.Errorf("record %+v, want %d requests without an answer and one answered", got, n)
	}
}

// A sweep's worth of concurrent reads and writes; run with -race.
func TestConcurrentUse(t *testing.T) {
	a := newAPI(t, sim.Options{})
	a.sim.Generate(sim.TreeSpec{Seed: 11, Size: 800, Drift: 0.5})
	var ids []string
	for _, tn := range a.sim.All() {
		if tn.Kind != "folder" && tn.Kind != "unit" && tn.UpdateAllowed && tn.MFAStatus != "enabled" && tn.MFAStatus != "setup_required" {
			ids = append(ids, tn.ID)
		}
	}
	const workers = 32
	work := make(chan string)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for id := range work {
				a.get("/tenants/" + id + "/mfa/status")
				a.putMFA(id, `{"enabled":true}`)
			}
		})
	}
	wg.Go(func() { listAll(t, a, "subtree_root_id="+a.sim.RootID()+"&lod=full&limit=500") })
	wg.Go(func() { listUsers(t, a, "subtree_root_tenant_id="+a.sim.RootID()+"&lod=full&limit=500") })
	wg.Go(func() {
		for i := range 20 {
			a.sim.Add(sim.Tenant{Kind: "customer", Name: "Late " + strings.Repeat("x", i+1), Enabled: true})
		}
	})
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()

	if got, want := a.sim.Count("PUT", "/mfa/status"), len(ids); got != want {
		t.Errorf("%d PUTs recorded, want %d", got, want)
	}
	// The workers and the two listings are the only clients; adding tenants
	// is not a request.
	if m, clients := a.sim.MaxInFlight(), workers+2; m < 1 || m > clients {
		t.Errorf("MaxInFlight = %d, want between 1 and %d", m, clients)
	}
	for _, id := range ids {
		if tn, _ := a.sim.Get(id); tn.MFAStatus != "enabled" && tn.MFAStatus != "setup_required" {
			t.Fatalf("tenant %s is %s after its PUT", id, tn.MFAStatus)
		}
	}
}
