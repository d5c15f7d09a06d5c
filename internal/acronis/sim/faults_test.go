package sim_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"acronismfa/internal/acronis/sim"
)

func TestPeriodicFaults(t *testing.T) {
	tests := []struct {
		name   string
		faults sim.Faults
		want   []int
		retry  string
	}{
		{"throttle every 3rd", sim.Faults{ThrottleEvery: 3, RetryAfter: 2}, []int{200, 200, 429, 200, 200, 429}, "2"},
		{"unavailable every 2nd", sim.Faults{UnavailableEvery: 2}, []int{200, 503, 200, 503, 200, 503}, "1"},
		{"throttling wins a tie", sim.Faults{ThrottleEvery: 2, UnavailableEvery: 3}, []int{200, 429, 503, 429, 200, 429}, "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAPI(t, sim.Options{})
			a.sim.SetFaults(tt.faults)
			path := "/tenants/" + a.sim.RootID() + "/mfa/status"
			for i, want := range tt.want {
				if i == 2 {
					// Neither token calls nor 401s count towards every Nth.
					good := a.token
					a.newToken()
					a.token = "revoked"
					if status, _ := a.get(path); status != http.StatusUnauthorized {
						t.Fatalf("bad token: status %d", status)
					}
					a.token = good
				}
				resp, body := a.do(http.MethodGet, path, "", "")
				if resp.StatusCode != want {
					t.Fatalf("request %d: status %d, want %d", i+1, resp.StatusCode, want)
				}
				if want != 200 {
					wantPlatformError(t, resp.StatusCode, body, want, want)
					if got := resp.Header.Get("Retry-After"); got != tt.retry {
						t.Errorf("request %d: Retry-After %q, want %q", i+1, got, tt.retry)
					}
				}
			}
			a.sim.SetFaults(sim.Faults{})
			if status, _ := a.get(path); status != http.StatusOK {
				t.Errorf("after clearing faults: status %d", status)
			}
		})
	}
}

func TestFailTenants(t *testing.T) {
	a := newAPI(t, sim.Options{})
	bad := a.add(sim.Tenant{Kind: "customer", Enabled: true, UpdateAllowed: true})
	gone := a.add(sim.Tenant{Kind: "customer", Enabled: true, UpdateAllowed: true})
	good := a.add(sim.Tenant{Kind: "customer", Enabled: true, UpdateAllowed: true})
	fail := map[string]int{bad: 500, gone: 404}
	a.sim.SetFaults(sim.Faults{FailTenants: fail})
	fail[good] = 500 // the Server keeps its own copy

	status, body := a.get("/tenants/" + bad + "/mfa/status")
	wantPlatformError(t, status, body, 500, 500)
	status, body = a.putMFA(bad, `{"enabled":true}`)
	wantPlatformError(t, status, body, 500, 500)
	status, body = a.get("/tenants/" + gone + "/mfa/status")
	wantPlatformError(t, status, body, 404, 1005)
	if status, _ := a.get("/tenants/" + bad); status != http.StatusOK {
		t.Errorf("GET tenant of a failing tenant: status %d, want 200: only mfa/status fails", status)
	}
	if status, _ := a.putMFA(good, `{"enabled":true}`); status != http.StatusOK {
		t.Errorf("PUT for a healthy tenant: status %d", status)
	}
	if got, _ := a.sim.Get(bad); got.MFAStatus != "disabled" {
		t.Errorf("failed PUT changed the tenant to %s", got.MFAStatus)
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

	a.sim.SetFaults(sim.Faults{Latency: time.Hour})
	a.sim.ResetRequests()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/api/2/tenants/"+a.sim.RootID(), nil)
	req.Header.Set("Authorization", "Bearer "+a.token)
	rec := httptest.NewRecorder()
	a.sim.ServeHTTP(rec, req) // returns at once: the caller has gone
	if rec.Body.Len() != 0 {
		t.Errorf("abandoned request was answered: %s", rec.Body)
	}
	if got := a.sim.Requests(); len(got) != 1 || got[0].Status != 0 {
		t.Errorf("record %+v, want one request with status 0", got)
	}
}

// gate holds every answer until n requests are being answered at once, which
// proves that all n were in flight together.
type gate struct {
	mu      sync.Mutex
	waiting int
	n       int
	open    chan struct{}
}

type gateWriter struct {
	http.ResponseWriter
	g *gate
}

func (w gateWriter) WriteHeader(code int) {
	w.g.mu.Lock()
	w.g.waiting++
	if w.g.waiting == w.g.n {
		close(w.g.open)
	}
	w.g.mu.Unlock()
	<-w.g.open
	w.ResponseWriter.WriteHeader(code)
}

func TestMaxInFlight(t *testing.T) {
	a := newAPI(t, sim.Options{})
	a.sim.Generate(sim.TreeSpec{Seed: 9, Size: 200})
	tenants := a.sim.All()

	for range 3 { // sequential requests never overlap
		a.get("/tenants/" + tenants[0].ID)
	}
	if got := a.sim.MaxInFlight(); got != 1 {
		t.Errorf("after sequential requests MaxInFlight = %d, want 1", got)
	}

	const n = 16
	a.sim.ResetRequests()
	g := &gate{n: n, open: make(chan struct{})}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			req := httptest.NewRequest(http.MethodGet, "/api/2/tenants/"+tenants[i].ID+"/mfa/status", nil)
			req.Header.Set("Authorization", "Bearer "+a.token)
			rec := httptest.NewRecorder()
			a.sim.ServeHTTP(gateWriter{rec, g}, req)
			if rec.Code != http.StatusOK {
				t.Errorf("status %d", rec.Code)
			}
		})
	}
	// Token calls run alongside but are not API requests.
	a.newToken()
	wg.Wait()
	if got := a.sim.MaxInFlight(); got != n {
		t.Errorf("MaxInFlight = %d, want exactly %d", got, n)
	}
	a.sim.ResetRequests()
	if got := a.sim.MaxInFlight(); got != 0 {
		t.Errorf("MaxInFlight after reset with nothing in flight = %d, want 0", got)
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
	if m := a.sim.MaxInFlight(); m < 1 || m > workers+1 {
		t.Errorf("MaxInFlight = %d, want between 1 and %d", m, workers+1)
	}
	for _, id := range ids {
		if tn, _ := a.sim.Get(id); tn.MFAStatus != "enabled" && tn.MFAStatus != "setup_required" {
			t.Fatalf("tenant %s is %s after its PUT", id, tn.MFAStatus)
		}
	}
}
