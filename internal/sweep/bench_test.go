package sweep_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"acronismfa/internal/acronis"
	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/policy"
	"acronismfa/internal/sweep"
	"acronismfa/internal/tenant"
	"acronismfa/internal/testkit"
)

// BenchmarkSweep sweeps generated trees with 10 % of the tenants drifting, on a
// simulator that takes 20 ms per request, at concurrency 8 (make bench). It
// reports the requests made against ceil(N/5000) + 2K, the wall time against
// the latency bound pages × 20 ms + ceil(2K/8) × 20 ms, and the most requests
// in flight at once. BenchmarkReport measures the sweep's memory, with the
// simulator in a process of its own.
func BenchmarkSweep(b *testing.B) {
	const (
		latency     = 20 * time.Millisecond
		concurrency = 8
	)
	for _, n := range []int{20_000, 100_000} {
		b.Run(fmt.Sprintf("tenants=%d", n), func(b *testing.B) {
			// Drift is a fraction of the tenants with a setting of their own,
			// about four in five of a generated tree: 0.125 drifts one in ten.
			spec := sim.TreeSpec{Seed: 1, Size: n - 1, Drift: 0.125}
			for range b.N {
				b.StopTimer()
				acr := testkit.NewAcronis(b, testkit.AcronisOptions{Tree: &spec, Client: acronis.Options{MaxInFlight: concurrency}, RealSleep: true})
				want := expect(acr.Sim.All(), acr.Sim.RootID(), false)
				k := want.Changed + want.NotAllowed // drifting: each costs a GET, all but the locked a PUT
				acr.Sim.SetFaults(sim.Faults{Latency: latency})
				s := newSweeper(acr, policy.Rules{})
				s.Concurrency = concurrency
				root := acr.Sim.RootID()
				b.StartTimer()

				start := time.Now()
				sum, err := s.Run(b.Context(), sweep.Run{RootTenantID: root})
				wall := time.Since(start)

				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				if sum.Changed != want.Changed || sum.Failed != 0 {
					b.Fatalf("summary %+v, want %d changed and none failed", sum, want.Changed)
				}
				api := len(acr.Sim.Requests()) - acr.Sim.Count("POST", "/idp/token")
				pages := (sum.TenantsSeen + 4999) / 5000
				formula := pages + 2*k
				bound := time.Duration(pages)*latency + time.Duration((2*k+concurrency-1)/concurrency)*latency
				b.ReportMetric(float64(api), "requests")
				b.ReportMetric(float64(api)/float64(formula), "requests/formula")
				b.ReportMetric(wall.Seconds(), "wall-s")
				b.ReportMetric(wall.Seconds()/bound.Seconds(), "wall/bound")
				b.ReportMetric(float64(acr.Sim.MaxInFlight()), "max-in-flight")
				b.Logf("N=%d K=%d: %d requests (ceil(N/5000)+2K = %d, ratio %.3f); wall %s (bound %s, ratio %.3f); at most %d in flight",
					sum.TenantsSeen, k, api, formula, float64(api)/float64(formula), wall.Round(time.Millisecond),
					bound, wall.Seconds()/bound.Seconds(), acr.Sim.MaxInFlight())
			}
		})
	}
}

// BenchmarkWatch runs watch runs (updated_within_minutes 5) over a fleet of
// 100,000 tenants a day old, on a simulator that takes 20 ms per request, at
// concurrency 8 (make bench):
//
//   - quiet: nothing new. The run makes exactly one Acronis request (the token
//     excluded), and its wall time is compared with 1.5 × 20 ms plus the
//     function's own overhead, measured by the same runs at no latency;
//   - created=20: 20 tenants created a minute ago, 14 of them drifting (the
//     others compliant, or units that inherit). The run makes 1 + 2 × 14
//     requests and enforces all 14.
//
// A tenant created just after a run started is listed by the next one, a
// schedule period (1 minute) later: creation to enforcement takes at most the
// period plus the created=20 run's wall time, which it reports.
func BenchmarkWatch(b *testing.B) {
	const (
		n           = 100_000
		latency     = 20 * time.Millisecond
		concurrency = 8
		period      = time.Minute
		window      = 5 * time.Minute
	)
	spec := sim.TreeSpec{Seed: 1, Size: n - 1, Drift: 0.125}
	fleet := func(b *testing.B) (*testkit.Acronis, *testkit.Clock, *sweep.Sweeper) {
		clock := testkit.NewClock()
		acr := testkit.NewAcronis(b, testkit.AcronisOptions{Tree: &spec, Sim: sim.Options{Now: clock.Now},
			Client: acronis.Options{MaxInFlight: concurrency, Now: clock.Now}, RealSleep: true})
		clock.Advance(24 * time.Hour)
		s := newSweeper(acr, policy.Rules{})
		s.Concurrency, s.Now = concurrency, clock.Now
		// The token is fetched before the measured runs, as a warm function has it.
		if _, err := acr.Client.OwnTenantID(b.Context()); err != nil {
			b.Fatal(err)
		}
		return acr, clock, s
	}
	watch := func(b *testing.B, acr *testkit.Acronis, clock *testkit.Clock, s *sweep.Sweeper) (sweep.Summary, time.Duration, int) {
		acr.Sim.ResetRequests()
		start := time.Now()
		sum, err := s.Run(b.Context(), sweep.Run{RootTenantID: acr.Sim.RootID(), UpdatedSince: clock.Now().Add(-window)})
		wall := time.Since(start)
		if err != nil || sum.Failed != 0 {
			b.Fatalf("watch run: %+v, %v", sum, err)
		}
		return sum, wall, len(acr.Sim.Requests()) - acr.Sim.Count("POST", "/idp/token")
	}

	b.Run("quiet", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			acr, clock, s := fleet(b)
			// The overhead is the median of five runs at no latency, after one
			// that warms the connection: the sweep's own work and the
			// simulator's filtering of 100,000 tenants, which Acronis does
			// within its latency.
			var runs []time.Duration
			for range 6 {
				_, wall, _ := watch(b, acr, clock, s)
				runs = append(runs, wall)
			}
			slices.Sort(runs[1:])
			overhead := runs[1+len(runs[1:])/2]
			acr.Sim.SetFaults(sim.Faults{Latency: latency})
			b.StartTimer()
			sum, wall, api := watch(b, acr, clock, s)
			b.StopTimer()
			if api != 1 || sum.TenantsSeen != 0 {
				b.Fatalf("a quiet watch run made %d Acronis requests and saw %d tenants, want 1 and 0", api, sum.TenantsSeen)
			}
			bound := latency*3/2 + overhead
			b.ReportMetric(float64(api), "requests")
			b.ReportMetric(wall.Seconds()*1000, "wall-ms")
			b.ReportMetric(overhead.Seconds()*1000, "overhead-ms")
			b.ReportMetric(wall.Seconds()/bound.Seconds(), "wall/bound")
			b.Logf("quiet fleet of %d: %d request; wall %s against 1.5 × %s + overhead %s = %s (ratio %.2f)",
				n, api, wall.Round(100*time.Microsecond), latency, overhead.Round(100*time.Microsecond),
				bound.Round(100*time.Microsecond), wall.Seconds()/bound.Seconds())
		}
	})

	b.Run("created=20", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			acr, clock, s := fleet(b)
			drifting := createTwenty(b, acr)
			clock.Advance(time.Minute)
			acr.Sim.SetFaults(sim.Faults{Latency: latency})
			b.StartTimer()
			sum, wall, api := watch(b, acr, clock, s)
			b.StopTimer()
			enforced := 0
			for _, id := range drifting {
				if tn, _ := acr.Sim.Get(id); tenant.MFAOn(tn.MFAStatus) {
					enforced++
				}
			}
			formula := 1 + 2*len(drifting)
			if sum.TenantsSeen != 20 || sum.Changed != len(drifting) || enforced != len(drifting) || api != formula {
				b.Fatalf("watch run: %+v; %d requests, want %d; %d of %d drifting enforced", sum, api, formula, enforced, len(drifting))
			}
			b.ReportMetric(float64(api), "requests")
			b.ReportMetric(float64(api)/float64(formula), "requests/formula")
			b.ReportMetric(wall.Seconds()*1000, "wall-ms")
			b.ReportMetric((period + wall).Seconds(), "creation-to-enforcement-s")
			b.Logf("20 created in a fleet of %d, %d drifting: %d requests (1 + 2 × %d = %d), all %d enforced; wall %s; "+
				"creation to enforcement at most %s + %s", n, len(drifting), api, len(drifting), formula, enforced,
				wall.Round(time.Millisecond), period, wall.Round(time.Millisecond))
		}
	})
}

// createTwenty creates 20 tenants under the fleet's partners, as consoles and
// provisioning systems do: 14 customers and partners with MFA off, 4 with it
// on, 2 units. It returns the drifting ones.
func createTwenty(b *testing.B, acr *testkit.Acronis) (drifting []string) {
	var partners []string
	for _, tn := range acr.Sim.All() {
		if tn.Kind == "partner" && tn.Enabled {
			partners = append(partners, tn.ID)
		}
	}
	for i := range 20 {
		tn := sim.Tenant{Name: fmt.Sprintf("New %02d", i), Kind: "customer", ParentID: partners[i*7%len(partners)],
			Enabled: true, UpdateAllowed: true, UsersCount: i % 4}
		switch {
		case i%10 == 9:
			tn.Kind, tn.UpdateAllowed, tn.ParentID = "unit", false, drifting[0]
		case i%5 == 3:
			tn.MFAStatus = "enabled"
		case i%7 == 6:
			tn.Kind = "partner"
		}
		created, err := acr.Sim.Create(tn)
		if err != nil {
			b.Fatal(err)
		}
		if tn.Kind != "unit" && tn.MFAStatus == "" {
			drifting = append(drifting, created.ID)
		}
	}
	return drifting
}
