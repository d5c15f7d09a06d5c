package telemetry

import (
	"bytes"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"
)

// emfDoc is an EMF document as CloudWatch reads it; the metric values stay raw
// so that the test sees what type each one was written as.
type emfDoc struct {
	AWS struct {
		Timestamp         *int64 `json:"Timestamp"`
		CloudWatchMetrics []struct {
			Namespace  string
			Dimensions [][]string
			Metrics    []struct{ Name, Unit string }
		}
	} `json:"_aws"`
	Function, Trigger string
}

// writeCalls records each Write separately.
type writeCalls [][]byte

func (w *writeCalls) Write(p []byte) (int, error) {
	*w = append(*w, bytes.Clone(p))
	return len(p), nil
}

func TestMetricsWrite(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 123_456_789, time.UTC)
	tests := []struct {
		name       string
		function   string
		trigger    string
		record     func(*Metrics)
		want       map[string]int64 // counters not listed must be 0
		durationMs int64            // -1: no SweepDurationMs in the document
	}{
		{
			name: "nothing happened: every count is 0", function: "webhook", trigger: "http",
			record: func(*Metrics) {}, durationMs: -1,
		},
		{
			name: "webhook change", function: "webhook", trigger: "http",
			record: func(m *Metrics) {
				m.Add(MetricTenantsChecked, 1)
				m.Add(MetricTenantsChanged, 1)
				m.Add(MetricUsersWithoutTotp, 4)
				m.Add(MetricAcronisRequests, 3)
			},
			want:       map[string]int64{MetricTenantsChecked: 1, MetricTenantsChanged: 1, MetricUsersWithoutTotp: 4, MetricAcronisRequests: 3},
			durationMs: -1,
		},
		{
			name: "sweep", function: "sweep", trigger: "schedule",
			record: func(m *Metrics) {
				for _, name := range counters {
					m.Add(name, 2)
				}
				m.Add(MetricTenantsChecked, 9998)
				m.SetDurationMs(5123)
			},
			want: map[string]int64{
				MetricTenantsChecked: 10000, MetricTenantsCompliant: 2, MetricTenantsChanged: 2,
				MetricTenantsWouldChange: 2, MetricTenantsSkipped: 2, MetricTenantsFailed: 2,
				MetricUsersWithoutTotp: 2, MetricAcronisRequests: 2, MetricAcronisThrottled: 2, MetricAcronisErrors: 2,
			},
			durationMs: 5123,
		},
		{
			name: "sweep that took no time", function: "sweep", trigger: "schedule",
			record: func(m *Metrics) { m.SetDurationMs(0) }, durationMs: 0,
		},
		{
			name: "clock stepped back during a sweep", function: "sweep", trigger: "schedule",
			record: func(m *Metrics) { m.SetDurationMs(-40) }, durationMs: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMetrics("AcronisMFA", tt.function, tt.trigger)
			tt.record(m)
			var calls writeCalls
			if err := m.Write(&calls, now); err != nil {
				t.Fatal(err)
			}
			if len(calls) != 1 {
				t.Fatalf("document written in %d Write calls, want 1", len(calls))
			}
			line := calls[0]
			if bytes.Count(line, []byte("\n")) != 1 || !bytes.HasSuffix(line, []byte("\n")) {
				t.Fatalf("document is not one line: %q", line)
			}

			var doc emfDoc
			if err := json.Unmarshal(line, &doc); err != nil {
				t.Fatal(err)
			}
			var values map[string]json.RawMessage
			if err := json.Unmarshal(line, &values); err != nil {
				t.Fatal(err)
			}
			if doc.AWS.Timestamp == nil || *doc.AWS.Timestamp != now.UnixMilli() {
				t.Errorf("_aws.Timestamp = %v, want %d", doc.AWS.Timestamp, now.UnixMilli())
			}
			if doc.Function != tt.function || doc.Trigger != tt.trigger {
				t.Errorf("Function, Trigger = %q, %q, want %q, %q", doc.Function, doc.Trigger, tt.function, tt.trigger)
			}
			if len(doc.AWS.CloudWatchMetrics) != 1 {
				t.Fatalf("%d metric directives, want 1", len(doc.AWS.CloudWatchMetrics))
			}
			dir := doc.AWS.CloudWatchMetrics[0]
			if dir.Namespace != "AcronisMFA" {
				t.Errorf("Namespace = %q", dir.Namespace)
			}
			if len(dir.Dimensions) != 1 || !slices.Equal(dir.Dimensions[0], []string{"Function", "Trigger"}) {
				t.Errorf("Dimensions = %v, want [[Function Trigger]]", dir.Dimensions)
			}
			if len(dir.Metrics) > 100 {
				t.Errorf("%d metrics declared; EMF allows 100", len(dir.Metrics))
			}

			wantDeclared := slices.Clone(counters[:])
			if tt.durationMs >= 0 {
				wantDeclared = append(wantDeclared, MetricSweepDurationMs)
			}
			var declared []string
			for _, d := range dir.Metrics {
				declared = append(declared, d.Name)
				wantUnit := "Count"
				if d.Name == MetricSweepDurationMs {
					wantUnit = "Milliseconds"
				}
				if d.Unit != wantUnit {
					t.Errorf("%s Unit = %q, want %q", d.Name, d.Unit, wantUnit)
				}
				var v int64 // fails on strings, booleans and null alike
				if err := json.Unmarshal(values[d.Name], &v); err != nil {
					t.Errorf("%s = %s, not an integer: %v", d.Name, values[d.Name], err)
					continue
				}
				want := tt.want[d.Name]
				if d.Name == MetricSweepDurationMs {
					want = tt.durationMs
				}
				if v != want || m.Get(d.Name) != want {
					t.Errorf("%s = %d in the document, %d from Get, want %d", d.Name, v, m.Get(d.Name), want)
				}
			}
			if !slices.Equal(declared, wantDeclared) {
				t.Errorf("declared metrics = %v, want %v", declared, wantDeclared)
			}
			if _, ok := values[MetricSweepDurationMs]; ok && tt.durationMs < 0 {
				t.Errorf("SweepDurationMs = %s in a document that is not a sweep's", values[MetricSweepDurationMs])
			}
		})
	}
}

// A sweep's workers count into one Metrics while the document may be written.
func TestMetricsConcurrentAdd(t *testing.T) {
	const workers, perWorker = 16, 1000
	m := NewMetrics("AcronisMFA", "sweep", "schedule")
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range perWorker {
				m.Add(MetricTenantsChecked, 1)
				m.Add(MetricAcronisRequests, 2)
			}
		})
	}
	wg.Go(func() {
		var buf bytes.Buffer
		if err := m.Write(&buf, time.Unix(0, 0)); err != nil {
			t.Error(err)
		}
	})
	wg.Wait()
	if got := m.Get(MetricTenantsChecked); got != workers*perWorker {
		t.Errorf("TenantsChecked = %d, want %d", got, workers*perWorker)
	}
	if got := m.Get(MetricAcronisRequests); got != 2*workers*perWorker {
		t.Errorf("AcronisRequests = %d, want %d", got, 2*workers*perWorker)
	}
}

// A misspelt metric name would silently vanish from dashboards; it panics instead.
func TestMetricsUnknownNamePanics(t *testing.T) {
	m := NewMetrics("AcronisMFA", "worker", "sqs")
	tests := []struct {
		name string
		call func()
	}{
		{"Add of a misspelt name", func() { m.Add("TenantChecked", 1) }},
		{"Add of the sweep duration", func() { m.Add(MetricSweepDurationMs, 1) }},
		{"Get of a misspelt name", func() { m.Get("tenantschecked") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("did not panic")
				}
			}()
			tt.call()
		})
	}
}
