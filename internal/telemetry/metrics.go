package telemetry

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Metric names (docs/reference.md, Metrics): dashboards and alarms name them too.
const (
	MetricTenantsChecked     = "TenantsChecked"
	MetricTenantsCompliant   = "TenantsCompliant"
	MetricTenantsChanged     = "TenantsChanged"
	MetricTenantsWouldChange = "TenantsWouldChange"
	MetricTenantsSkipped     = "TenantsSkipped"
	MetricTenantsFailed      = "TenantsFailed"
	MetricUsersWithoutTotp   = "UsersWithoutTotp"
	MetricAcronisRequests    = "AcronisRequests"
	MetricAcronisThrottled   = "AcronisThrottled"
	MetricAcronisErrors      = "AcronisErrors"
	MetricTenantsInGrace     = "TenantsInGrace"
	MetricTenantsNotified    = "TenantsNotified"
	// MetricReportFailures is 1 when a full sweep's compliance report could not
	// be written, for an alarm.
	MetricReportFailures    = "ReportFailures"
	MetricSweepDurationMs   = "SweepDurationMs"
	MetricCompliancePercent = "CompliancePercent"
)

// counters are the metrics Add accepts, in the order a document lists them. Every
// one is written, zero included, so that alarms on them see data points rather
// than missing data.
var counters = [...]string{
	MetricTenantsChecked, MetricTenantsCompliant, MetricTenantsChanged,
	MetricTenantsWouldChange, MetricTenantsSkipped, MetricTenantsFailed,
	MetricUsersWithoutTotp, MetricAcronisRequests, MetricAcronisThrottled,
	MetricAcronisErrors, MetricTenantsInGrace, MetricTenantsNotified,
}

// Metrics collects one invocation's metrics. Its methods are safe for concurrent
// use, so a sweep's workers count into one Metrics.
type Metrics struct {
	namespace, function, trigger string
	counts                       [len(counters)]atomic.Int64
	durationMs                   atomic.Int64 // -1 until SetDurationMs: not a sweep
	// sweep holds what only sweeps report, set once at the end of a run.
	sweep struct {
		mu         sync.Mutex
		compliance *float64 // full sweeps only
		reports    *int64   // full sweeps with REPORT_BUCKET only
	}
}

// Source is a function and what invokes it: the Function and Trigger
// dimensions of its metrics and the keys of its log lines.
type Source struct{ Function, Trigger string }

// The functions of the stack, as their logs and metrics name them.
var (
	Webhook = Source{Function: "webhook", Trigger: "http"}
	Worker  = Source{Function: "worker", Trigger: "sqs"}
	Sweep   = Source{Function: "sweep", Trigger: "schedule"}
)

// NewMetrics returns empty metrics for one invocation of src, to be published
// in the CloudWatch namespace.
func NewMetrics(namespace string, src Source) *Metrics {
	m := &Metrics{namespace: namespace, function: src.Function, trigger: src.Trigger}
	m.durationMs.Store(-1)
	return m
}

// Add adds n to the counter name, one of the Metric constants other than
// MetricSweepDurationMs. Any other name is a programming error and panics, so
// that a misspelt metric fails the first test instead of vanishing from dashboards.
func (m *Metrics) Add(name string, n int64) {
	m.counts[counterIndex(name)].Add(n)
}

// SetDurationMs records how long a sweep took; a document carries
// SweepDurationMs only once this was called. A negative duration, from a clock
// step, is recorded as 0.
func (m *Metrics) SetDurationMs(ms int64) {
	m.durationMs.Store(max(ms, 0))
}

func counterIndex(name string) int {
	i := slices.Index(counters[:], name)
	if i < 0 {
		panic(fmt.Sprintf("telemetry: %q is not a counter metric", name))
	}
	return i
}

// SetCompliancePercent records a full sweep's compliance: CompliancePercent,
// unit Percent, is in the document only once this was called.
func (m *Metrics) SetCompliancePercent(p float64) {
	m.sweep.mu.Lock()
	defer m.sweep.mu.Unlock()
	m.sweep.compliance = &p
}

// SetReportFailed records whether a full sweep's report could not be written:
// ReportFailures is in the document only once this was called.
func (m *Metrics) SetReportFailed(failed bool) {
	n := int64(0)
	if failed {
		n = 1
	}
	m.sweep.mu.Lock()
	defer m.sweep.mu.Unlock()
	m.sweep.reports = &n
}

// emfMetric, emfDirective and emfMetadata are the _aws member of an Embedded
// Metric Format document.
type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

type emfDirective struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

type emfMetadata struct {
	Timestamp         int64          `json:"Timestamp"`
	CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
}

// Write writes the metrics to w as one Embedded Metric Format document timestamped
// now: one line of JSON, in a single Write call so that concurrent log lines on
// the same stream never split it.
func (m *Metrics) Write(w io.Writer, now time.Time) error {
	doc := map[string]any{"Function": m.function, "Trigger": m.trigger}
	declared := make([]emfMetric, 0, len(counters)+3)
	for i, name := range counters {
		doc[name] = m.counts[i].Load()
		declared = append(declared, emfMetric{Name: name, Unit: "Count"})
	}
	if ms := m.durationMs.Load(); ms >= 0 {
		doc[MetricSweepDurationMs] = ms
		declared = append(declared, emfMetric{Name: MetricSweepDurationMs, Unit: "Milliseconds"})
	}
	m.sweep.mu.Lock()
	if p := m.sweep.compliance; p != nil {
		doc[MetricCompliancePercent] = *p
		declared = append(declared, emfMetric{Name: MetricCompliancePercent, Unit: "Percent"})
	}
	if n := m.sweep.reports; n != nil {
		doc[MetricReportFailures] = *n
		declared = append(declared, emfMetric{Name: MetricReportFailures, Unit: "Count"})
	}
	m.sweep.mu.Unlock()
	doc["_aws"] = emfMetadata{
		Timestamp: now.UnixMilli(),
		CloudWatchMetrics: []emfDirective{{
			Namespace:  m.namespace,
			Dimensions: [][]string{{"Function", "Trigger"}},
			Metrics:    declared,
		}},
	}
	// Strings, integers and fixed structs always encode, so Marshal cannot fail.
	line, _ := json.Marshal(doc)
	_, err := w.Write(append(line, '\n'))
	return err
}
