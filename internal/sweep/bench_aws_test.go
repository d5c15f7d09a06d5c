//go:build integration

package sweep_test

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"acronismfa/internal/acronis"
	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/config"
	"acronismfa/internal/enforce"
	"acronismfa/internal/notify"
	"acronismfa/internal/policy"
	"acronismfa/internal/report"
	"acronismfa/internal/secrets"
	"acronismfa/internal/statestore"
	"acronismfa/internal/sweep"
	"acronismfa/internal/testkit"
)

// BenchmarkRollout sweeps 100,000 tenants, 10 % of them drifting, in the middle
// of a rollout with a 14-day grace: of the drifting tenants whose users lack
// TOTP, half got their notice a day ago (in grace, G) and half 15 days ago
// (grace over). The state table is moto's DynamoDB and the notices go to
// moto's SNS, through a proxy that counts every call (make bench). It reports
// the Acronis requests against ceil(N/5000) + 2(K − G), and the state reads
// against ceil(K/100).
func BenchmarkRollout(b *testing.B) {
	const (
		n           = 100_000
		latency     = 20 * time.Millisecond
		concurrency = 8
		grace       = 14 * 24 * time.Hour
	)
	moto := testkit.NewMoto(b)
	proxy := testkit.NewAWSProxy(b, moto.Endpoint)
	cfg := testkit.MotoConfig(b, proxy.URL)
	spec := sim.TreeSpec{Seed: 1, Size: n - 1, Drift: 0.125}
	for i := range b.N {
		b.StopTimer()
		ctx := b.Context()
		clock := testkit.NewClock()
		acr := testkit.NewAcronis(b, testkit.AcronisOptions{Tree: &spec, Client: acronis.Options{MaxInFlight: concurrency}, RealSleep: true})
		all := acr.Sim.All()
		want := expect(all, acr.Sim.RootID(), false)
		k := want.Changed + want.NotAllowed
		atOnce, lacking := graceSplit(all)

		name := fmt.Sprintf("rollout-%d", i)
		if err := testkit.CreateStateTable(ctx, cfg, name); err != nil {
			b.Fatal(err)
		}
		topic, err := sns.NewFromConfig(cfg).CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(name)})
		if err != nil {
			b.Fatal(err)
		}
		table := &statestore.Table{DB: dynamodb.NewFromConfig(cfg), Name: name, Now: clock.Now}
		inGrace := seedNotices(b, table, lacking, clock.Now(), grace)

		e := &enforce.Enforcer{API: acr.Client, Rules: policy.Rules{Grace: grace}, Leases: table,
			Rollout: &enforce.Rollout{Notices: table, Directory: acr.Client, Now: clock.Now,
				Notifier: &notify.Publisher{SNS: sns.NewFromConfig(cfg), TopicARN: aws.ToString(topic.TopicArn)}}}
		s := newSweeper(acr, policy.Rules{})
		s.Enforcer, s.Notices, s.Concurrency, s.Now = e, table, concurrency, clock.Now
		acr.Sim.SetFaults(sim.Faults{Latency: latency})
		acr.Sim.ResetRequests()
		before := proxy.Actions()
		b.StartTimer()

		start := time.Now()
		sum, err := s.Run(ctx, sweep.Run{RootTenantID: acr.Sim.RootID()})
		wall := time.Since(start)

		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		enforced := len(atOnce) + len(lacking) - inGrace
		if sum.InGrace != inGrace || sum.Changed != enforced || sum.Notified != 0 || sum.Failed != 0 {
			b.Fatalf("summary %+v, want %d in grace, %d changed", sum, inGrace, enforced)
		}
		calls := actionsSince(proxy.Actions(), before)
		reads := calls["DynamoDB_20120810.Query"] + calls["DynamoDB_20120810.BatchGetItem"] + calls["DynamoDB_20120810.GetItem"]
		api := len(acr.Sim.Requests()) - acr.Sim.Count("POST", "/idp/token")
		pages := (sum.TenantsSeen + 4999) / 5000
		formula := pages + 2*(k-inGrace)
		readBound := (k + 99) / 100
		b.ReportMetric(float64(api), "requests")
		b.ReportMetric(float64(api)/float64(formula), "requests/formula")
		b.ReportMetric(float64(reads), "state-reads")
		b.ReportMetric(float64(readBound), "ceil(K/100)")
		b.ReportMetric(wall.Seconds(), "wall-s")
		b.Logf("N=%d K=%d G=%d (%d enforced, %d of them after their grace): %d Acronis requests "+
			"(ceil(N/5000)+2(K-G) = %d, ratio %.3f); %d state reads (ceil(K/100) = %d); AWS calls %v; wall %s",
			sum.TenantsSeen, k, inGrace, sum.Changed, len(lacking)-inGrace, api, formula, float64(api)/float64(formula),
			reads, readBound, calls, wall.Round(time.Millisecond))
	}
}

// seedNotices records notices for the tenants ids as earlier sweeps gave
// them: every other one a day before now (in grace), the rest a day longer ago
// than grace (grace over). It returns how many are in grace.
func seedNotices(b *testing.B, table *statestore.Table, ids []string, now time.Time, grace time.Duration) (inGrace int) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		next = make(chan int)
	)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				at := now.Add(-24 * time.Hour)
				if i%2 == 1 {
					at = now.Add(-grace - 24*time.Hour)
				}
				n := statestore.Notice{TenantID: ids[i], TenantName: "seeded", ClaimedAt: at, UsersWithoutTOTP: 1, SweepID: "seed"}
				_, claimed, err := table.Claim(b.Context(), n, time.Minute)
				if err == nil && !claimed {
					err = fmt.Errorf("the notice of %s was claimed already", ids[i])
				}
				if err == nil {
					n.NoticedAt = at
					err = table.Given(b.Context(), n)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := range ids {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	return (len(ids) + 1) / 2
}

func actionsSince(now, before map[string]int) map[string]int {
	out := map[string]int{}
	for a, c := range now {
		if d := c - before[a]; d > 0 {
			out[a] = d
		}
	}
	return out
}

// BenchmarkReport sweeps 20,000 and 100,000 tenants with the compliance report
// off and on, the report streamed to moto's S3 (make bench). The simulator
// runs in a process of its own (acronis-mfa sim, 20 ms per request), so that
// this process is the sweep's alone: its peak live heap (runtime/metrics,
// sampled every millisecond) and its peak resident set (VmHWM) are the
// sweep's memory. With the report on, the Acronis requests are the same as
// with it off, and the wall time within 5 % of it.
func BenchmarkReport(b *testing.B) {
	const (
		latency     = 20 * time.Millisecond
		concurrency = 8
		bucket      = "reports"
	)
	bin := filepath.Join(b.TempDir(), "acronis-mfa")
	if err := testkit.Build(b.Context(), "./cmd/acronis-mfa", bin); err != nil {
		b.Fatal(err)
	}
	moto := testkit.NewMoto(b)
	cfg := testkit.MotoConfig(b, moto.Endpoint)
	if err := testkit.CreateBucket(b.Context(), cfg, bucket); err != nil {
		b.Fatal(err)
	}
	s3c := s3.NewFromConfig(cfg)
	for _, n := range []int{20_000, 100_000} {
		for _, on := range []bool{false, true} {
			b.Run(fmt.Sprintf("tenants=%d/report=%s", n, map[bool]string{false: "off", true: "on"}[on]), func(b *testing.B) {
				for range b.N {
					b.StopTimer()
					ctx := b.Context()
					// `sim --tenants` counts the tenants under the root.
					proc, err := testkit.StartSimProcess(ctx, bin, n-1, latency)
					if err != nil {
						b.Fatal(err)
					}
					client := acronis.New(secrets.Static(proc.Creds), acronis.Options{MaxInFlight: concurrency})
					root, err := client.OwnTenantID(ctx)
					if err != nil {
						proc.Stop()
						b.Fatal(err)
					}
					s := &sweep.Sweeper{Lister: client, Enforcer: &enforce.Enforcer{API: client}, Desired: true,
						Concurrency: concurrency, InlineLimit: config.DefaultSweepInlineLimit, Now: time.Now}
					if on {
						s.NewReport = func(ctx context.Context, sweepID string, at time.Time) sweep.Report {
							return report.StartS3(ctx, s3c, bucket, config.DefaultReportPrefix, sweepID, at)
						}
					}
					runtime.GC()
					resetPeakRSS(b)
					peak := sampleHeap()
					requests := client.Stats().Requests
					b.StartTimer()

					start := time.Now()
					sum, err := s.Run(ctx, sweep.Run{RootTenantID: root, SweepID: fmt.Sprintf("bench-%d-%v", n, on)})
					wall := time.Since(start)

					b.StopTimer()
					heap := peak()
					rss := peakRSS(b)
					requests = client.Stats().Requests - requests
					proc.Stop()
					if err != nil || sum.Failed != 0 || sum.TenantsSeen != n {
						b.Fatalf("summary %+v, %v", sum, err)
					}
					if on {
						rows := reportRows(b, s3c, sum)
						if rows != sum.TenantsSeen {
							b.Fatalf("the report has %d rows, want one per tenant seen (%d)", rows, sum.TenantsSeen)
						}
					}
					b.ReportMetric(float64(requests), "requests")
					b.ReportMetric(wall.Seconds(), "wall-s")
					b.ReportMetric(float64(heap)/(1<<20), "peak-heap-MB")
					b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MB")
					b.Logf("N=%d report %v: %d Acronis requests (%d changed); wall %s; peak heap %.1f MB, peak RSS %.1f MB",
						sum.TenantsSeen, on, requests, sum.Changed, wall.Round(time.Millisecond), float64(heap)/(1<<20), float64(rss)/(1<<20))
				}
			})
		}
	}
}

// reportRows reads the sweep's report back from S3 with a standard CSV reader
// and counts its rows below the header.
func reportRows(b *testing.B, client *s3.Client, sum sweep.Summary) int {
	if sum.Report == nil {
		b.Fatalf("no report: %v", sum.ReportErr)
	}
	bucket, key, _ := strings.Cut(strings.TrimPrefix(*sum.Report, "s3://"), "/")
	obj, err := client.GetObject(b.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)},
		func(o *s3.Options) { o.DisableLogOutputChecksumValidationSkipped = true })
	if err != nil {
		b.Fatal(err)
	}
	defer obj.Body.Close()
	r := csv.NewReader(obj.Body)
	rows := -1
	for {
		_, err := r.Read()
		if err == io.EOF {
			return rows
		}
		if err != nil {
			b.Fatal(err)
		}
		rows++
	}
}

// sampleHeap samples the heap's objects every millisecond until the returned
// function is called, which reports the peak.
func sampleHeap() (stop func() (peak uint64)) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var (
		mu   sync.Mutex
		peak uint64
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	read := func() {
		metrics.Read(sample)
		mu.Lock()
		peak = max(peak, sample[0].Value.Uint64())
		mu.Unlock()
	}
	read()
	wg.Go(func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				read()
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		read()
		return peak
	}
}

// resetPeakRSS starts the process's resident set high-water mark afresh
// (Linux: clear_refs 5).
func resetPeakRSS(b *testing.B) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Fatalf("reset the peak resident set: %v", err)
	}
}

// peakRSS is the process's resident set high-water mark (VmHWM).
func peakRSS(b *testing.B) uint64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}
