package faults_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"acronismfa/internal/acronis"
	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/config"
	"acronismfa/internal/sweep"
	"acronismfa/internal/tenant"
)

// checkSweptTree asserts the end state of every tenant after a complete sweep:
// each eligible tenant has MFA on, every other tenant with a switch of its own
// kept the state it had, and each listed tenant is in one bucket.
func checkSweptTree(t *testing.T, before, after []sim.Tenant, sum sweep.Summary) {
	t.Helper()
	now := byID(after)
	drifting := 0
	for _, b := range before {
		a := now[b.ID]
		switch {
		case !ownSetting(b):
		case eligible(b):
			if !tenant.MFAOn(b.MFAStatus) {
				drifting++
			}
			if !tenant.MFAOn(a.MFAStatus) {
				t.Errorf("eligible %s %s has MFA %q after the sweep", b.Kind, b.ID, a.MFAStatus)
			}
		case a.MFAStatus != b.MFAStatus:
			t.Errorf("%s %s (enabled %v, update allowed %v) went from %q to %q", b.Kind, b.ID, b.Enabled, b.UpdateAllowed, b.MFAStatus, a.MFAStatus)
		}
	}
	if sum.TenantsSeen != len(before) || sum.Changed != drifting || sum.Failed != 0 {
		t.Errorf("summary saw %d, changed %d, failed %d; the tree has %d tenants, %d of them eligible and off",
			sum.TenantsSeen, sum.Changed, sum.Failed, len(before), drifting)
	}
	if n := sum.Compliant + sum.Changed + sum.WouldChange + sum.SkippedInherited + sum.SkippedDisabled +
		sum.SkippedExcluded + sum.NotAllowed + sum.Failed + sum.FannedOut; n != sum.TenantsSeen {
		t.Errorf("%d tenants seen, %d in the buckets: %+v", sum.TenantsSeen, n, sum)
	}
}

// TestSweepUnderThrottlingAndUnavailability: with every 7th Acronis request
// answered 429 and every 11th 503, a sweep of 1,000 tenants still enables every
// eligible tenant and fails none.
func TestSweepUnderThrottlingAndUnavailability(t *testing.T) {
	r := newRig(t, sim.Options{}, &sim.TreeSpec{Seed: 42, Size: 1000})
	before := r.sim.All()
	f := r.direct(config.Sweep, nil, acronis.Options{})
	r.sim.SetFaults(sim.Faults{ThrottleEvery: 7, UnavailableEvery: 11})

	sum, err := f.sweep().Handle(t.Context(), json.RawMessage(`{}`))
	if err != nil {
		t.Fatalf("sweep: %v", err)
	}
	checkSweptTree(t, before, r.sim.All(), sum)

	reqs := r.sim.Requests()
	if got := statuses(reqs); got[http.StatusTooManyRequests] == 0 || got[http.StatusServiceUnavailable] == 0 {
		t.Fatalf("the faults never fired: answers %v", got)
	}
	for id, n := range acceptedWrites(reqs) {
		if n != 1 {
			t.Errorf("tenant %s written %d times", id, n)
		}
	}
}

// TestSweepComesBackForTransientFailures: a tenant whose requests fail past the
// client's retry budget with a 5xx is tried again once the rest of the tree is
// done, and a write that landed although its answer and the check after it
// were lost is reported as the change it was.
func TestSweepComesBackForTransientFailures(t *testing.T) {
	r := newRig(t, sim.Options{}, &sim.TreeSpec{Seed: 12, Size: 200})
	ids := addCustomers(t, r.sim, 2, "disabled")
	flaky, lost := ids[0], ids[1]
	// Every attempt of the first confirming read of flaky fails.
	r.spy.FailNth(http.MethodGet, flaky, http.StatusBadGateway, 1, 2, 3, 4)
	// lost's write lands but its answers are lost, and so is every attempt of
	// the read that checks it.
	r.spy.LoseAnswers(lost)
	r.spy.FailNth(http.MethodGet, lost, http.StatusBadGateway, 2, 3, 4, 5)
	before := r.sim.All()
	f := r.direct(config.Sweep, nil, acronis.Options{})

	sum, err := f.sweep().Handle(t.Context(), json.RawMessage(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	checkSweptTree(t, before, r.sim.All(), sum)
	tenants := byTenant(audits(t, f.out.String()))
	for _, id := range ids {
		if l := tenants[id]; len(l) != 1 || l[0].Action != "enable" || tenant.MFAOn(*l[0].Previous) {
			t.Errorf("tenant %s: audit lines %+v, want one enable", id, l)
		}
	}
}

// staleRepeats checks that no request was sent more than once with a stale
// token, and that each one refused was then answered with a fresh token.
func staleRepeats(t *testing.T, reqs []sim.Request) (stale int) {
	t.Helper()
	type key struct{ method, path, query string }
	refused := map[key]int{}
	for _, r := range reqs {
		k := key{r.Method, r.Path, r.Query}
		if r.Stale {
			stale++
			refused[k]++
			if refused[k] > 1 {
				t.Errorf("%s %s?%s sent %d times with a stale token", r.Method, r.Path, r.Query, refused[k])
			}
			continue
		}
		if refused[k] > 0 && r.Status == http.StatusOK {
			refused[k] = -1 << 30 // answered: settled for good
		}
	}
	for k, n := range refused {
		if n > 0 {
			t.Errorf("%s %s?%s was refused for its token and never sent again", k.method, k.path, k.query)
		}
	}
	return stale
}

// TestTokenLostMidSweep revokes or expires the access token twice while a sweep
// of 1,000 tenants runs: each loss costs exactly one new token, no request is
// sent twice with a stale token, and the sweep finishes the job.
func TestTokenLostMidSweep(t *testing.T) {
	tests := []struct {
		name string
		// lose runs before the 40th and the 120th API request of the sweep.
		lose func(s *sim.Server, simClock, shared *clock)
		// stale: whether requests are refused for their token (a token renewed
		// on the client's own schedule never is).
		stale bool
	}{
		{"revoked by Acronis", func(s *sim.Server, _, _ *clock) { s.ExpireTokens() }, true},
		{"expired early by Acronis's clock", func(_ *sim.Server, simClock, _ *clock) { simClock.Advance(3 * time.Hour) }, true},
		{"due for renewal on the client's clock", func(_ *sim.Server, _, shared *clock) { shared.Advance(110 * time.Minute) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			simClock, shared := newClock(), newClock()
			simNow := func() time.Time { return simClock.Now().Add(shared.Now().Sub(epoch)) }
			r := newRig(t, sim.Options{Now: simNow}, &sim.TreeSpec{Seed: 9, Size: 1000})
			before := r.sim.All()
			f := r.direct(config.Sweep, nil, acronis.Options{Now: shared.Now})
			r.spy.Before(func(n int) {
				if n == 40 || n == 120 {
					tt.lose(r.sim, simClock, shared)
				}
			})

			sum, err := f.sweep().Handle(t.Context(), json.RawMessage(`{}`))
			if err != nil {
				t.Fatalf("sweep: %v", err)
			}
			checkSweptTree(t, before, r.sim.All(), sum)
			reqs := r.sim.Requests()
			if api := len(reqs) - r.sim.TokensIssued(); api < 120 {
				t.Fatalf("only %d API requests: the token was not lost twice", api)
			}
			if n := r.sim.TokensIssued(); n != 3 {
				t.Errorf("%d tokens issued, want 3: the first and one per loss", n)
			}
			stale := staleRepeats(t, reqs)
			if tt.stale && stale == 0 || !tt.stale && stale != 0 {
				t.Errorf("%d requests refused for a stale token", stale)
			}
		})
	}
}

// epoch is where every test clock starts.
var epoch = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// clock is a fake clock, safe for concurrent use.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: epoch} }

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

// TestOneTenantAnswering500 makes Acronis fail every MFA request of one tenant:
// that tenant is reported failed with an audit line that says why, and every
// other tenant is done, through the sweep and through the worker.
func TestOneTenantAnswering500(t *testing.T) {
	checkVictim := func(t *testing.T, out, victim string) {
		t.Helper()
		lines := byTenant(audits(t, out))[victim]
		if len(lines) != 1 {
			t.Fatalf("%d audit lines for the failing tenant, want 1: %+v", len(lines), lines)
		}
		l := lines[0]
		if l.Action != "failed" || l.Level != "ERROR" || !strings.Contains(l.Reason, acronis.ErrUpstream.Error()) || !strings.Contains(l.Error, "HTTP 500") {
			t.Errorf("the failing tenant's audit line does not say why: %+v", l)
		}
	}

	t.Run("sweep", func(t *testing.T) {
		r := newRig(t, sim.Options{}, &sim.TreeSpec{Seed: 5, Size: 400})
		victim := addCustomers(t, r.sim, 1, "disabled")[0]
		r.sim.SetFaults(sim.Faults{FailTenants: map[string]int{victim: http.StatusInternalServerError}})
		before := r.sim.All()
		f := r.direct(config.Sweep, nil, acronis.Options{})

		sum, err := f.sweep().Handle(t.Context(), json.RawMessage(`{}`))
		if err != nil {
			t.Fatalf("one tenant's failure failed the sweep: %v", err)
		}
		if sum.Failed != 1 {
			t.Errorf("summary failed = %d, want 1", sum.Failed)
		}
		// Counted as changed, the victim leaves the rest of the tree to be
		// checked as after any complete sweep.
		sum.Failed--
		after := r.sim.All()
		for i := range after {
			if after[i].ID == victim {
				if tenant.MFAOn(after[i].MFAStatus) {
					t.Errorf("the failing tenant has MFA %q", after[i].MFAStatus)
				}
				after[i].MFAStatus = "enabled"
				sum.Changed++
			}
		}
		checkSweptTree(t, before, after, sum)
		checkVictim(t, f.out.String(), victim)
	})

	t.Run("worker", func(t *testing.T) {
		r := newRig(t, sim.Options{}, nil)
		ids := addCustomers(t, r.sim, 6, "disabled")
		victim := ids[3]
		r.sim.SetFaults(sim.Faults{FailTenants: map[string]int{victim: http.StatusInternalServerError}})
		f := r.direct(config.Worker, nil, acronis.Options{})
		ev := batch(setMessage(ids[0], true), enforceMessage(ids[1]), eventMessage(ids[2]),
			enforceMessage(victim), setMessage(ids[4], true), eventMessage(ids[5]))

		resp, err := f.worker().Handle(t.Context(), ev)
		if err != nil {
			t.Fatal(err)
		}
		if got := failedIDs(resp); len(got) != 1 || !got["m3"] {
			t.Errorf("batch item failures %v, want only m3", got)
		}
		for _, id := range ids {
			if on := mfaOn(t, r.sim, id); on == (id == victim) {
				t.Errorf("tenant %s (failing: %v) has MFA on: %v", id, id == victim, on)
			}
		}
		checkVictim(t, f.out.String(), victim)
	})
}

// TestDeadlineMidRequest lets the invocation deadline come while Acronis has
// not answered: the webhook answers 504 upstream_timeout and the worker lists
// exactly the messages it could not finish, before the deadline, with the
// affected tenants unchanged.
func TestDeadlineMidRequest(t *testing.T) {
	t.Run("webhook", func(t *testing.T) {
		st := newStack(t, sim.Options{}, nil)
		id := addCustomers(t, st.sim, 1, "disabled")[0]
		h := st.start(config.Webhook, nil).webhook()
		// Warm: the signing keys and the access token are cached.
		if resp, _ := h.Handle(t.Context(), signed(st.key, http.MethodGet, id, "")); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET: %d %s", resp.StatusCode, resp.Body)
		}
		st.sim.SetFaults(sim.Faults{Latency: time.Minute})

		ctx, cancel := context.WithTimeout(t.Context(), 800*time.Millisecond)
		defer cancel()
		resp, err := h.Handle(ctx, signed(st.key, http.MethodPut, id, `{"enabled": true}`))
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusGatewayTimeout || errorCode(t, resp) != "upstream_timeout" {
			t.Errorf("answer %d %s, want 504 upstream_timeout", resp.StatusCode, resp.Body)
		}
		if ctx.Err() != nil {
			t.Error("the webhook answered after the invocation deadline")
		}
		st.sim.SetFaults(sim.Faults{})
		if mfaOn(t, st.sim, id) {
			t.Error("the tenant changed although the webhook answered 504")
		}
	})

	tests := []struct {
		name string
		slow func(r *rig, ids []string) map[string]bool // makes Acronis slow; returns the messages that cannot finish
	}{
		{"one tenant never answers", func(r *rig, ids []string) map[string]bool {
			r.spy.Hold(ids[2])
			return map[string]bool{"m2": true}
		}},
		{"Acronis never answers", func(r *rig, ids []string) map[string]bool {
			r.sim.SetFaults(sim.Faults{Latency: time.Minute})
			return map[string]bool{"m0": true, "m1": true, "m2": true, "m3": true}
		}},
	}
	for _, tt := range tests {
		t.Run("worker/"+tt.name, func(t *testing.T) {
			r := newRig(t, sim.Options{}, nil)
			ids := addCustomers(t, r.sim, 4, "disabled")
			f := r.direct(config.Worker, nil, acronis.Options{})
			h := f.worker()
			if _, err := f.deps.Acronis.OwnTenantID(t.Context()); err != nil { // warm: a token is cached
				t.Fatal(err)
			}
			late := tt.slow(r, ids)

			ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
			defer cancel()
			resp, err := h.Handle(ctx, batch(enforceMessage(ids[0]), setMessage(ids[1], true), enforceMessage(ids[2]), eventMessage(ids[3])))
			if err != nil {
				t.Fatal(err)
			}
			if ctx.Err() != nil {
				t.Error("the worker answered after the invocation deadline")
			}
			if got := failedIDs(resp); len(got) != len(late) {
				t.Errorf("batch item failures %v, want %v", got, late)
			} else {
				for m := range late {
					if !got[m] {
						t.Errorf("batch item failures %v, want %v", got, late)
					}
				}
			}
			r.sim.SetFaults(sim.Faults{})
			lines := byTenant(audits(t, f.out.String()))
			for i, id := range ids {
				cut := late[fmt.Sprintf("m%d", i)]
				if on := mfaOn(t, r.sim, id); on == cut {
					t.Errorf("tenant %d (cut off: %v) has MFA on: %v", i, cut, on)
				}
				if l := lines[id]; len(l) != 1 || cut && (l[0].Action != "failed" || !strings.Contains(l[0].Reason, acronis.ErrDeadline.Error())) {
					t.Errorf("tenant %d (cut off: %v) audit lines %+v", i, cut, l)
				}
			}
		})
	}
}
