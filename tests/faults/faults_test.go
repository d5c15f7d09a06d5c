//go:build integration

package faults_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"acronismfa/internal/acronis"
	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/app"
	"acronismfa/internal/config"
	"acronismfa/internal/sweep"
	"acronismfa/internal/tenant"
	"acronismfa/internal/testkit"
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
	checkBuckets(t, sum)
}

// TestSweepUnderThrottlingAndUnavailability: with every 7th Acronis request
// answered 429 and every 11th 503, a sweep of 1,000 tenants still enables every
// eligible tenant, writes each once and fails none.
func TestSweepUnderThrottlingAndUnavailability(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testkit.AcronisOptions{Tree: &sim.TreeSpec{Seed: 42, Size: 1000}})
	before := w.Sim.All()
	f := w.start(t, config.Sweep, nil)
	w.Sim.SetFaults(sim.Faults{ThrottleEvery: 7, UnavailableEvery: 11})

	sum, err := f.sweep(t.Context(), scheduled)
	if err != nil {
		t.Fatalf("sweep: %v", err)
	}
	checkSweptTree(t, before, w.Sim.All(), sum)
	reqs := w.Sim.Requests()
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
	t.Parallel()
	w := newWorld(t, testkit.AcronisOptions{Tree: &sim.TreeSpec{Seed: 12, Size: 200}})
	flaky, lost := testkit.Twin1, testkit.Twin2
	mfa := func(id string) string { return "/api/2/tenants/" + id + "/mfa/status" }
	w.Sim.SetFaults(sim.Faults{
		// Every attempt of the first confirming read of flaky fails; lost's
		// write lands but its answers are lost, and so is every attempt of the
		// read that checks it.
		FailNth: []sim.NthFailure{
			{Method: http.MethodGet, Path: mfa(flaky), Nth: []int{1, 2, 3, 4}, Status: http.StatusBadGateway},
			{Method: http.MethodGet, Path: mfa(lost), Nth: []int{2, 3, 4, 5}, Status: http.StatusBadGateway},
		},
		LoseWriteAnswers: []string{lost},
	})
	before := w.Sim.All()
	f := w.start(t, config.Sweep, nil)

	sum, err := f.sweep(t.Context(), scheduled)
	if err != nil {
		t.Fatal(err)
	}
	if n := statuses(w.Sim.Requests())[http.StatusBadGateway]; n < 9 {
		t.Fatalf("%d answers 502: the faults did not fire", n)
	}
	checkSweptTree(t, before, w.Sim.All(), sum)
	tenants := byTenant(audits(t, f))
	for _, id := range []string{flaky, lost} {
		if l := tenants[id]; len(l) != 1 || l[0].get("action") != "enable" || tenant.MFAOn(l[0].get("previous")) {
			t.Errorf("tenant %s: audit lines %v, want one enable", id, l)
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
			if refused[k]++; refused[k] > 1 {
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
	t.Parallel()
	tests := []struct {
		name string
		// lose runs before the 40th and the 120th API request of the sweep.
		lose func(s *sim.Server, simClock, shared *testkit.Clock)
		// stale: whether requests are refused for their token (a token renewed
		// on the client's own schedule never is).
		stale bool
	}{
		{"revoked by Acronis", func(s *sim.Server, _, _ *testkit.Clock) { s.ExpireTokens() }, true},
		{"expired early by Acronis's clock", func(_ *sim.Server, simClock, _ *testkit.Clock) { simClock.Advance(3 * time.Hour) }, true},
		{"due for renewal on the client's clock", func(_ *sim.Server, _, shared *testkit.Clock) { shared.Advance(110 * time.Minute) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			simClock, shared := testkit.NewClock(), testkit.NewClock()
			simNow := func() time.Time { return simClock.Now().Add(shared.Now().Sub(testkit.Epoch)) }
			w := newWorld(t, testkit.AcronisOptions{Sim: sim.Options{Now: simNow}, Tree: &sim.TreeSpec{Seed: 9, Size: 1000}})
			before := w.Sim.All()
			f := w.start(t, config.Sweep, nil)
			// The one thing app.Init cannot be given: the client's clock.
			d := f.deps
			d.Acronis = acronis.New(d.Secrets.Acronis(d.Config.AcronisSecretID),
				acronis.Options{Logger: d.Logger, MaxInFlight: d.Config.SweepConcurrency, Now: shared.Now})
			sweepOnClock := app.Sweep(d)
			w.Sim.SetFaults(sim.Faults{BeforeRequest: func(n int) {
				if n == 40 || n == 120 {
					tt.lose(w.Sim, simClock, shared)
				}
			}})

			sum, err := sweepOnClock(t.Context(), scheduled)
			if err != nil {
				t.Fatalf("sweep: %v", err)
			}
			checkSweptTree(t, before, w.Sim.All(), sum)
			reqs := w.Sim.Requests()
			if api := len(reqs) - w.Sim.TokensIssued(); api < 120 {
				t.Fatalf("only %d API requests: the token was not lost twice", api)
			}
			if n := w.Sim.TokensIssued(); n != 3 {
				t.Errorf("%d tokens issued, want 3: the first and one per loss", n)
			}
			if stale := staleRepeats(t, reqs); tt.stale != (stale > 0) {
				t.Errorf("%d requests refused for a stale token", stale)
			}
		})
	}
}

// TestOneTenantAnswering500 makes Acronis fail every MFA request of one tenant:
// that tenant is reported failed with an audit line that says why, quoting
// the API's answer and not the request that caused it, and every other tenant
// is done, through the sweep and through the worker.
func TestOneTenantAnswering500(t *testing.T) {
	t.Parallel()
	victim := testkit.Broken
	checkVictim := func(t *testing.T, f *function) {
		t.Helper()
		lines := byTenant(audits(t, f))[victim]
		if len(lines) != 1 {
			t.Fatalf("%d audit lines for the failing tenant, want 1: %v", len(lines), lines)
		}
		l := lines[0]
		if l.get("action") != "failed" || l.get("level") != "ERROR" || !strings.Contains(l.get("reason"), acronis.ErrUpstream.Error()) ||
			!strings.Contains(l.get("error"), "HTTP 500") || !strings.Contains(l.get("error"), "/mfa/status") {
			t.Errorf("the failing tenant's audit line does not say why: %v", l)
		}
		for _, word := range []string{"Authorization", "Bearer", "Accept", "Content-Type", "127.0.0.1"} {
			if strings.Contains(l.get("error"), word) {
				t.Errorf("the error %q echoes the request (%s)", l.get("error"), word)
			}
		}
	}
	failing := sim.Faults{FailTenants: map[string]int{victim: http.StatusInternalServerError}}

	t.Run("sweep", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, testkit.AcronisOptions{Tree: &sim.TreeSpec{Seed: 5, Size: 400}})
		w.Sim.SetFaults(failing)
		before := w.Sim.All()
		f := w.start(t, config.Sweep, nil)

		sum, err := f.sweep(t.Context(), scheduled)
		if err != nil {
			t.Fatalf("one tenant's failure failed the sweep: %v", err)
		}
		if sum.Failed != 1 {
			t.Errorf("summary failed = %d, want 1", sum.Failed)
		}
		if w.MFAOn(t, victim) {
			t.Error("the failing tenant has MFA on")
		}
		// Counted as changed, the victim leaves the rest of the tree to be
		// checked as after any complete sweep.
		sum.Failed--
		sum.Changed++
		w.Sim.SetMFA(victim, "enabled")
		checkSweptTree(t, before, w.Sim.All(), sum)
		checkVictim(t, f)
	})

	t.Run("worker", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, testkit.AcronisOptions{})
		w.Sim.SetFaults(failing)
		ids := []string{testkit.OffCustomer, testkit.Contoso, testkit.ContosoHoldings, victim, testkit.Twin1, testkit.Twin2}
		f := w.start(t, config.Worker, nil)

		resp, err := f.worker(t.Context(), testkit.SQSBatch(enableMsg(ids[0]), enforceMsg(ids[1]), createdMsg(ids[2]),
			enforceMsg(victim), enableMsg(ids[4]), createdMsg(ids[5])))
		if err != nil {
			t.Fatal(err)
		}
		if got := failed(resp); !slices.Equal(got, []string{"m3"}) {
			t.Errorf("batch item failures %v, want only m3", got)
		}
		for _, id := range ids {
			if on := w.MFAOn(t, id); on == (id == victim) {
				t.Errorf("tenant %s (failing: %v) has MFA on: %v", id, id == victim, on)
			}
		}
		checkVictim(t, f)
	})
}

// TestDeadlineMidRequest lets the invocation deadline come while Acronis has
// not answered: the webhook answers 504 upstream_timeout and the worker lists
// exactly the messages it could not finish, before the deadline, with the
// affected tenants unchanged.
func TestDeadlineMidRequest(t *testing.T) {
	t.Parallel()
	t.Run("webhook", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, testkit.AcronisOptions{})
		id := testkit.OffCustomer
		f := w.start(t, config.Webhook, nil)
		// Warm: the signing keys and the access token are cached.
		if resp, _ := f.webhook(t.Context(), w.request(http.MethodGet, id, "")); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET: %d %s", resp.StatusCode, resp.Body)
		}
		w.Sim.SetFaults(sim.Faults{Latency: time.Minute})

		ctx, cancel := context.WithTimeout(t.Context(), 800*time.Millisecond)
		defer cancel()
		resp, err := f.webhook(ctx, w.request(http.MethodPut, id, `{"enabled": true}`))
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusGatewayTimeout || errorCode(resp) != "upstream_timeout" {
			t.Errorf("answer %d %s, want 504 upstream_timeout", resp.StatusCode, resp.Body)
		}
		if ctx.Err() != nil {
			t.Error("the webhook answered after the invocation deadline")
		}
		if w.MFAOn(t, id) {
			t.Error("the tenant changed although the webhook answered 504")
		}
	})

	ids := []string{testkit.OffCustomer, testkit.Contoso, testkit.Broken, testkit.Twin1}
	tests := []struct {
		name   string
		faults sim.Faults
		late   []string // the messages that cannot finish
	}{
		{"one tenant never answers", sim.Faults{HoldTenants: []string{ids[2]}}, []string{"m2"}},
		{"Acronis never answers", sim.Faults{Latency: time.Minute}, []string{"m0", "m1", "m2", "m3"}},
	}
	for _, tt := range tests {
		t.Run("worker/"+tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, testkit.AcronisOptions{})
			f := w.start(t, config.Worker, nil)
			if _, err := f.deps.Acronis.OwnTenantID(t.Context()); err != nil { // warm: a token is cached
				t.Fatal(err)
			}
			w.Sim.SetFaults(tt.faults)

			ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
			defer cancel()
			resp, err := f.worker(ctx, testkit.SQSBatch(enforceMsg(ids[0]), enableMsg(ids[1]), enforceMsg(ids[2]), createdMsg(ids[3])))
			if err != nil {
				t.Fatal(err)
			}
			if ctx.Err() != nil {
				t.Error("the worker answered after the invocation deadline")
			}
			if got := failed(resp); !slices.Equal(got, tt.late) {
				t.Errorf("batch item failures %v, want %v", got, tt.late)
			}
			w.Sim.SetFaults(sim.Faults{})
			lines := byTenant(audits(t, f))
			for i, id := range ids {
				cut := slices.Contains(tt.late, fmt.Sprintf("m%d", i))
				if on := w.MFAOn(t, id); on == cut {
					t.Errorf("tenant %d (cut off: %v) has MFA on: %v", i, cut, on)
				}
				if l := lines[id]; len(l) != 1 || cut && (l[0].get("action") != "failed" || !strings.Contains(l[0].get("reason"), acronis.ErrDeadline.Error())) {
					t.Errorf("tenant %d (cut off: %v) audit lines %v", i, cut, l)
				}
			}
		})
	}
}
