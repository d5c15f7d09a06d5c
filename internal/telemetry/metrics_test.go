package telemetry

import (
	"bytes"
	"slices"
	"sync"
	"testing"
	"time"

	"acronismfa/internal/testkit"
)

// writeCalls records each Write separately.
type writeCalls [][]byte

func (w *writeCalls) Write(p []byte) (int, error) {
	*w = append(*w, bytes.Clone(p))
	return len(p), nil
}

// document writes m as CloudWatch receives it and reads it back, checking what
// every document must be: one line in one Write, with its timestamp.
func document(t *testing.T, m *Metrics, now time.Time) testkit.EMF {
	t.Helper()
	var calls writeCalls
	if err := m.Write(&calls, now); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 || bytes.Count(calls[0], []byte("\n")) != 1 || !bytes.HasSuffix(calls[0], []byte("\n")) {
		t.Fatalf("document written as %q, want one line in one Write call", calls)
	}
	e, err := testkit.ParseEMF(string(calls[0]))
	if err != nil {
		t.Fatalf("%s: %v", calls[0], err)
	}
	raw, _ := testkit.JSONObject(string(calls[0]))
	if ts := raw["_aws"].(map[string]any)["Timestamp"]; ts != float64(now.UnixMilli()) {
		t.Errorf("_aws.Timestamp = %v, want %d", ts, now.UnixMilli())
	}
	return e
}

func TestMetricsWrite(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 123_456_789, time.UTC)
	tests := []struct {
		name       string
		function   string
		trigger    string
		record     func(*Metrics)
		want       map[string]float64 // counters not listed must be 0
		durationMs float64            // -1: no SweepDurationMs in the document
	}{
		{"nothing happened: every count is 0", "webhook", "http", func(*Metrics) {}, nil, -1},
		{"webhook change", "webhook", "http", func(m *Metrics) {
			m.Add(MetricTenantsChecked, 1)
			m.Add(MetricTenantsChanged, 1)
			m.Add(MetricUsersWithoutTotp, 4)
			m.Add(MetricAcronisRequests, 3)
		}, map[string]float64{MetricTenantsChecked: 1, MetricTenantsChanged: 1, MetricUsersWithoutTotp: 4, MetricAcronisRequests: 3}, -1},
		{"sweep", "sweep", "schedule", func(m *Metrics) {
			for _, name := range counters {
				m.Add(name, 2)
			}
			m.Add(MetricTenantsChecked, 9998)
			m.SetDurationMs(5123)
		}, map[string]float64{
			MetricTenantsChecked: 10000, MetricTenantsCompliant: 2, MetricTenantsChanged: 2,
			MetricTenantsWouldChange: 2, MetricTenantsSkipped: 2, MetricTenantsFailed: 2,
			MetricUsersWithoutTotp: 2, MetricAcronisRequests: 2, MetricAcronisThrottled: 2, MetricAcronisErrors: 2,
			MetricTenantsInGrace: 2, MetricTenantsNotified: 2,
		}, 5123},
		{"sweep that took no time", "sweep", "schedule", func(m *Metrics) { m.SetDurationMs(0) }, nil, 0},
		{"clock stepped back during a sweep", "sweep", "schedule", func(m *Metrics) { m.SetDurationMs(-40) }, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMetrics("AcronisMFA", Source{tt.function, tt.trigger})
			tt.record(m)
			e := document(t, m, now)
			if e.Namespace != "AcronisMFA" || e.Dimension("Function") != tt.function || e.Dimension("Trigger") != tt.trigger {
				t.Errorf("namespace %q, Function %q, Trigger %q", e.Namespace, e.Dimension("Function"), e.Dimension("Trigger"))
			}
			if len(e.Dimensions) != 1 || !slices.Equal(e.Dimensions[0], []string{"Function", "Trigger"}) {
				t.Errorf("Dimensions = %v, want [[Function Trigger]]", e.Dimensions)
			}
			want := map[string]float64{}
			wantOrder := slices.Clone(counters[:])
			for _, name := range counters {
				want[name] = tt.want[name]
			}
			if tt.durationMs >= 0 {
				want[MetricSweepDurationMs] = tt.durationMs
				wantOrder = append(wantOrder, MetricSweepDurationMs)
			}
			if !slices.Equal(e.Order, wantOrder) || len(e.Order) > 100 { // EMF allows 100 metrics
				t.Errorf("declared metrics = %v, want %v", e.Order, wantOrder)
			}
			for name, v := range e.Metrics {
				unit := "Count"
				if name == MetricSweepDurationMs {
					unit = "Milliseconds"
				}
				if v != want[name] || e.Units[name] != unit {
					t.Errorf("%s = %v %s, want %v %s", name, v, e.Units[name], want[name], unit)
				}
			}
			if _, ok := e.Values[MetricSweepDurationMs]; ok && tt.durationMs < 0 {
				t.Errorf("SweepDurationMs in a document that is not a sweep's")
			}
		})
	}
}

// A full sweep's document also carries its compliance, in percent, and
// whether its report failed; no other document carries them.
func TestMetricsFullSweep(t *testing.T) {
	for _, failed := range []bool{false, true} {
		m := NewMetrics("AcronisMFA", Sweep)
		m.SetDurationMs(900)
		m.SetCompliancePercent(85.8)
		m.SetReportFailed(failed)
		e := document(t, m, time.Unix(0, 0))
		want := append(slices.Clone(counters[:]), MetricSweepDurationMs, MetricCompliancePercent, MetricReportFailures)
		if !slices.Equal(e.Order, want) {
			t.Errorf("declared metrics %v, want %v", e.Order, want)
		}
		if e.Metrics[MetricCompliancePercent] != 85.8 || e.Units[MetricCompliancePercent] != "Percent" ||
			e.Metrics[MetricReportFailures] != map[bool]float64{true: 1}[failed] || e.Units[MetricReportFailures] != "Count" {
			t.Errorf("report failed %v: %v %v", failed, e.Metrics, e.Units)
		}
	}
}

// A sweep's workers count into one Metrics while the document may be written.
func TestMetricsConcurrentAdd(t *testing.T) {
	const workers, perWorker = 16, 1000
	m := NewMetrics("AcronisMFA", Sweep)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range perWorker {
				m.Add(MetricTenantsChecked, 1)
				m.Add(MetricAcronisRequests, 2)
			}
		})
	}
	wg.Go(func() { _ = m.Write(&bytes.Buffer{}, testkit.Epoch) })
	wg.Wait()
	e := document(t, m, testkit.Epoch)
	if got := e.Metrics[MetricTenantsChecked]; got != workers*perWorker {
		t.Errorf("TenantsChecked = %v, want %d", got, workers*perWorker)
	}
	if got := e.Metrics[MetricAcronisRequests]; got != 2*workers*perWorker {
		t.Errorf("AcronisRequests = %v, want %d", got, 2*workers*perWorker)
	}
}

// A misspelt metric name would silently vanish from dashboards; it panics instead.
func TestMetricsUnknownNamePanics(t *testing.T) {
	m := NewMetrics("AcronisMFA", Worker)
	for _, name := range []string{"TenantChecked", MetricSweepDurationMs} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Add(%q) did not panic", name)
				}
			}()
			m.Add(name, 1)
		}()
	}
}
