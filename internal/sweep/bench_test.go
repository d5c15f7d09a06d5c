package sweep_test

import (
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"acronismfa/internal/acronis"
	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/policy"
	"acronismfa/internal/sweep"
	"acronismfa/internal/testkit"
)

// BenchmarkSweep sweeps generated trees with 10 % of the tenants drifting, on a
// simulator that takes 20 ms per request, at concurrency 8 (make bench). It
// reports the requests made against ceil(N/5000) + 2K, the wall time against
// the latency bound pages × 20 ms + ceil(2K/8) × 20 ms, the most requests in
// flight at once, and the sweep's peak heap above the simulator's own.
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
				runtime.GC()
				peak := sampleHeap()
				b.StartTimer()

				start := time.Now()
				sum, err := s.Run(b.Context(), sweep.Run{RootTenantID: root})
				wall := time.Since(start)

				b.StopTimer()
				heapPeak, heapBase := peak()
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
				b.ReportMetric(float64(heapPeak-heapBase)/(1<<20), "sweep-heap-MB")
				b.ReportMetric(float64(acr.Sim.MaxInFlight()), "max-in-flight")
				b.Logf("N=%d K=%d: %d requests (ceil(N/5000)+2K = %d, ratio %.3f); wall %s (bound %s, ratio %.3f); "+
					"at most %d in flight; peak heap %.1f MB above the %.1f MB of simulator and test",
					sum.TenantsSeen, k, api, formula, float64(api)/float64(formula), wall.Round(time.Millisecond),
					bound, wall.Seconds()/bound.Seconds(), acr.Sim.MaxInFlight(),
					float64(heapPeak-heapBase)/(1<<20), float64(heapBase)/(1<<20))
			}
		})
	}
}

// sampleHeap samples the live heap every millisecond until the returned
// function is called, which reports the peak and the heap at the start.
func sampleHeap() (stop func() (peak, base uint64)) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	base := read()
	var (
		mu   sync.Mutex
		max  = base
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	wg.Go(func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if v := read(); v > max {
					mu.Lock()
					max = v
					mu.Unlock()
				}
			}
		}
	})
	return func() (uint64, uint64) {
		close(done)
		wg.Wait()
		return max, base
	}
}
