package testkit

// This file reads what a built function answers and writes for one invocation
// under the emulator: the end-to-end tests assert on it and `make demo`
// narrates it, so that both read the functions the same way.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/aws/aws-lambda-go/events"
)

// Invocation is one answer of a function and what it wrote meanwhile.
type Invocation struct {
	Body  []byte   // the handler's result
	Lines []string // everything written during the invocation, the emulator's END line last
	EMF   EMF      // the invocation's metrics
}

// Call sends event (JSON bytes, or a value to marshal) and returns the answer
// with the invocation's output and EMF document. A crash or failed init (the
// emulator's 502) and an error the handler returned are errors.
func (f *Function) Call(ctx context.Context, event any) (Invocation, error) {
	payload, ok := event.([]byte)
	if !ok {
		var err error
		if payload, err = json.Marshal(event); err != nil {
			return Invocation{}, err
		}
	}
	status, body, lines, err := f.invoke(ctx, payload)
	if err != nil {
		return Invocation{}, err
	}
	if status != 200 {
		return Invocation{}, fmt.Errorf("the emulator answered HTTP %d (crash or failed init): %s", status, body)
	}
	var fnErr struct{ ErrorMessage, ErrorType string }
	if json.Unmarshal(body, &fnErr) == nil && fnErr.ErrorMessage != "" {
		return Invocation{}, fmt.Errorf("the handler returned an error (%s): %s", fnErr.ErrorType, fnErr.ErrorMessage)
	}
	i := slices.IndexFunc(lines, IsEMF)
	if i < 0 {
		return Invocation{}, fmt.Errorf("no EMF document for the invocation (answer %s)", body)
	}
	inv := Invocation{Body: body, Lines: lines}
	if inv.EMF, err = ParseEMF(lines[i]); err != nil {
		return Invocation{}, fmt.Errorf("EMF document %s: %w", lines[i], err)
	}
	return inv, nil
}

// Audits returns the invocation's audit lines, decoded.
func (inv Invocation) Audits() []map[string]any { return AuditLines(inv.Lines) }

// HTTPAnswer is the webhook's API Gateway payload 2.0 response, its body decoded.
type HTTPAnswer struct {
	events.APIGatewayV2HTTPResponse
	JSON map[string]any
}

// Webhook sends the webhook function a request (see WebhookRequest) and
// decodes its answer, which must be a JSON object.
func (f *Function) Webhook(ctx context.Context, req events.APIGatewayV2HTTPRequest) (Invocation, HTTPAnswer, error) {
	var a HTTPAnswer
	inv, err := f.Call(ctx, req)
	if err != nil {
		return inv, a, err
	}
	if err := json.Unmarshal(inv.Body, &a.APIGatewayV2HTTPResponse); err != nil {
		return inv, a, fmt.Errorf("webhook answer %s: %w", inv.Body, err)
	}
	if err := json.Unmarshal([]byte(a.Body), &a.JSON); err != nil {
		return inv, a, fmt.Errorf("webhook body %q is not a JSON object: %w", a.Body, err)
	}
	return inv, a, nil
}

// Worker sends the worker function a batch and returns, sorted, the message
// ids its answer gives SQS to retry.
func (f *Function) Worker(ctx context.Context, batch events.SQSEvent) (Invocation, []string, error) {
	inv, err := f.Call(ctx, batch)
	if err != nil {
		return inv, nil, err
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(inv.Body, &resp); err != nil {
		return inv, nil, fmt.Errorf("worker answer %s: %w", inv.Body, err)
	}
	ids := FailedIDs(resp)
	slices.Sort(ids)
	return inv, ids, nil
}

// SweepCounts are the counts of a sweep's summary in the order of
// docs/reference.md, Sweep; SweepCounts[1:11] are the buckets every tenant
// seen lands in one of.
var SweepCounts = []string{
	"tenants_seen", "compliant", "changed", "would_change", "skipped_inherited", "skipped_disabled",
	"skipped_excluded", "not_allowed", "failed", "fanned_out", "in_grace", "notified", "users_without_totp", "duration_ms",
}

// SweepSummary is a sweep's answer.
type SweepSummary struct {
	RootTenantID string
	Desired      string
	DryRun       bool
	Counts       map[string]int // by field name
	// CompliancePercent is a full sweep's compliance_percent; nil in a watch run.
	CompliancePercent *float64
	Report            string // the s3:// URI of the report; "" for null
	UpdatedSince      string // a watch run's window; "" in a full sweep
	SweepID           string // from the sweep's "sweep started" line
	JSON              []byte // the answer as it came
}

// sweepMetrics are the EMF metrics that repeat a summary count.
var sweepMetrics = map[string]string{"TenantsChecked": "tenants_seen", "TenantsChanged": "changed",
	"TenantsWouldChange": "would_change", "TenantsInGrace": "in_grace", "TenantsNotified": "notified",
	"UsersWithoutTotp": "users_without_totp", "SweepDurationMs": "duration_ms"}

// Sweep sends the sweep function event and decodes its summary, checked:
// exactly the fields of docs/reference.md, Sweep, every tenant seen in one
// bucket, compliance_percent worked out from the counts, the audit lines adding
// up to users_without_totp, and the EMF document agreeing.
func (f *Function) Sweep(ctx context.Context, event []byte) (Invocation, SweepSummary, error) {
	inv, err := f.Call(ctx, event)
	if err != nil {
		return inv, SweepSummary{}, err
	}
	s, err := inv.sweepSummary()
	return inv, s, err
}

func (inv Invocation) sweepSummary() (SweepSummary, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(inv.Body, &raw); err != nil {
		return SweepSummary{}, fmt.Errorf("sweep answer %s: %w", inv.Body, err)
	}
	s := SweepSummary{Counts: map[string]int{}, JSON: inv.Body}
	want := append([]string{"root_tenant_id", "desired", "dry_run", "compliance_percent", "report"}, SweepCounts...)
	if _, watch := raw["updated_since"]; watch {
		want = append(want, "updated_since")
	}
	if got := slices.Sorted(maps.Keys(raw)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		return SweepSummary{}, fmt.Errorf("summary fields %v, want %v: %s", got, want, inv.Body)
	}
	var report *string
	errs := []error{json.Unmarshal(raw["root_tenant_id"], &s.RootTenantID), json.Unmarshal(raw["desired"], &s.Desired),
		json.Unmarshal(raw["dry_run"], &s.DryRun), json.Unmarshal(raw["compliance_percent"], &s.CompliancePercent),
		json.Unmarshal(raw["report"], &report)}
	if u, ok := raw["updated_since"]; ok {
		errs = append(errs, json.Unmarshal(u, &s.UpdatedSince))
	}
	for _, k := range SweepCounts {
		var n int
		errs = append(errs, json.Unmarshal(raw[k], &n))
		s.Counts[k] = n
	}
	if err := errors.Join(errs...); err != nil {
		return SweepSummary{}, fmt.Errorf("summary %s: %w", inv.Body, err)
	}
	if report != nil {
		s.Report = *report
	}
	for _, l := range inv.Lines {
		if m, ok := JSONObject(l); ok && m["message"] == "sweep started" {
			s.SweepID, _ = m["sweep_id"].(string)
		}
	}
	return s, s.check(inv)
}

// check holds the summary against itself, the audit lines and the EMF document.
func (s SweepSummary) check(inv Invocation) error {
	n, buckets := s.Counts, 0
	for _, k := range SweepCounts[1:11] {
		buckets += n[k]
	}
	if buckets != n["tenants_seen"] {
		return fmt.Errorf("the summary's buckets add up to %d, tenants_seen is %d: %s", buckets, n["tenants_seen"], s.JSON)
	}
	if n["notified"] > n["in_grace"] {
		return fmt.Errorf("notified %d is more than in_grace %d", n["notified"], n["in_grace"])
	}
	if total, _ := TOTPDebt(inv.Audits()); total != n["users_without_totp"] {
		return fmt.Errorf("users_without_totp is %d, the audit lines add up to %d", n["users_without_totp"], total)
	}
	for metric, field := range sweepMetrics {
		if got := inv.EMF.Metrics[metric]; got != float64(n[field]) {
			return fmt.Errorf("EMF %s is %v, the summary's %s %d", metric, got, field, n[field])
		}
	}
	p, inEMF := inv.EMF.Metrics["CompliancePercent"]
	switch watch := s.UpdatedSince != ""; {
	case watch && (s.CompliancePercent != nil || inEMF || s.Report != ""):
		return fmt.Errorf("a watch run with compliance_percent, its metric or a report: %s", s.JSON)
	case watch:
		return nil
	case s.CompliancePercent == nil || !inEMF || p != *s.CompliancePercent:
		return fmt.Errorf("a full sweep's compliance_percent %s and its metric (%v) disagree", s.JSON, p)
	}
	want := 100.0
	if eligible := n["tenants_seen"] - n["skipped_inherited"] - n["skipped_disabled"] - n["skipped_excluded"]; eligible > 0 {
		want = math.Round(1000*float64(n["compliant"]+n["changed"])/float64(eligible)) / 10
	}
	if *s.CompliancePercent != want {
		return fmt.Errorf("compliance_percent %v, the counts make it %v", *s.CompliancePercent, want)
	}
	return nil
}

// ReadEvent reads a sample event of the module's events/ directory.
func ReadEvent(name string) ([]byte, error) {
	root, err := ModuleRoot()
	if err != nil {
		return nil, err
	}
	return os.ReadFile(filepath.Join(root, "events", name))
}
