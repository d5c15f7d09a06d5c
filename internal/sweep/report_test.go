package sweep_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/policy"
	"acronismfa/internal/report"
	"acronismfa/internal/sweep"
	"acronismfa/internal/tenant"
	"acronismfa/internal/testkit"
)

// memReport is a report written to memory, as the sweep writes it to S3.
type memReport struct {
	buf  bytes.Buffer
	w    *report.Writer
	fail error
}

func (m *memReport) Add(r report.Row) { _ = m.w.Write(r) }

func (m *memReport) Finish() (string, error) {
	if err := m.w.Flush(); err != nil {
		return "", err
	}
	if m.fail != nil {
		return "", m.fail
	}
	return "s3://reports/test.csv", nil
}

// withReport makes the rig's full sweeps write their report to rep.
func withReport(t *testing.T, r *rig, rep *memReport) {
	t.Helper()
	var err error
	if rep.w, err = report.NewWriter(&rep.buf); err != nil {
		t.Fatal(err)
	}
	r.h.Sweeper.NewReport = func(context.Context, string, time.Time) sweep.Report { return rep }
}

// The report has one row per tenant listed, each in its summary bucket, and
// says of each what the simulator holds after the run.
func TestSweepReportRows(t *testing.T) {
	acr := testkit.NewFixture(t, testkit.AcronisOptions{})
	acr.Sim.SetFaults(simFailBroken())
	r := newRunner(t, acr, policy.Rules{Grace: week, Excluded: policy.NewExclusions([]string{testkit.ExcludedPartner})})
	rep := &memReport{}
	withReport(t, r, rep)
	sum, emf, err := r.sweepOnce(t, `{}`)
	if err != nil || sum.Report == nil || *sum.Report != "s3://reports/test.csv" || emf.Metrics["ReportFailures"] != 0 {
		t.Fatalf("%+v, %v", sum, err)
	}
	records, err := csv.NewReader(&rep.buf).ReadAll()
	if err != nil || len(records) != sum.TenantsSeen+1 {
		t.Fatalf("%d records (%v), want a header and %d rows", len(records), err, sum.TenantsSeen)
	}
	buckets := map[string]int{}
	for _, rec := range records[1:] {
		row := map[string]string{}
		for i, h := range report.Header {
			row[h] = rec[i]
		}
		buckets[row["outcome"]]++
		tn, ok := acr.Sim.Get(row["tenant_id"])
		if !ok || tn.Name != row["tenant_name"] || tn.Kind != row["kind"] || tn.ParentID != row["parent_id"] {
			t.Errorf("row %v, simulator %+v", row, tn)
		}
		// A folder or unit takes its parent's state, which the sweep does not
		// follow past the listing.
		if row["outcome"] != "failed" && row["outcome"] != "skipped_inherited" && tenant.MFAOn(row["mfa_status"]) != tenant.MFAOn(tn.MFAStatus) {
			t.Errorf("row %v says MFA %s, the simulator %s", row["tenant_id"], row["mfa_status"], tn.MFAStatus)
		}
		switch row["outcome"] {
		case "changed", "in_grace":
			if row["users_count"] == "" || row["users_without_totp"] == "" {
				t.Errorf("row %v lacks the user counts that were read", row)
			}
		case "compliant", "skipped_inherited", "skipped_excluded":
			if row["users_count"] != "" {
				t.Errorf("row %v has user counts that were never read", row)
			}
		}
		if (row["outcome"] == "in_grace") != (row["grace_deadline"] != "") {
			t.Errorf("row %v: grace_deadline only in grace", row)
		}
	}
	want := map[string]int{"compliant": sum.Compliant, "changed": sum.Changed, "in_grace": sum.InGrace, "failed": sum.Failed,
		"skipped_inherited": sum.SkippedInherited, "skipped_disabled": sum.SkippedDisabled,
		"skipped_excluded": sum.SkippedExcluded, "not_allowed": sum.NotAllowed}
	for b, n := range want {
		if buckets[b] != n || n == 0 {
			t.Errorf("%d rows of %s, the summary %d (every bucket should be represented)", buckets[b], b, n)
		}
	}
}

// A report that cannot be written neither stops nor undoes enforcement.
func TestSweepReportFailure(t *testing.T) {
	acr := testkit.NewFixture(t, testkit.AcronisOptions{})
	want := len(testkit.DriftOf(acr.Sim.All()).Fixable)
	r := newRunner(t, acr, policy.Rules{})
	withReport(t, r, &memReport{fail: errors.New("AccessDenied")})
	mark := r.out.Mark()
	sum, emf, err := r.sweepOnce(t, `{}`)
	if err != nil || sum.Report != nil || sum.Changed != want || emf.Metrics["ReportFailures"] != 1 {
		t.Fatalf("%+v, %v, EMF %v", sum, err, emf.Metrics)
	}
	found := false
	for _, l := range r.out.JSON(mark) {
		if l["message"] == "report not written" && l["level"] == "ERROR" && strings.Contains(l["error"].(string), "AccessDenied") {
			found = true
		}
	}
	if !found {
		t.Error("no ERROR line says why the report is missing")
	}
}

func TestSweepCompliancePercent(t *testing.T) {
	for _, tt := range []struct {
		name  string
		input string
		rules policy.Rules
		root  string
		want  float64
	}{
		// 17 tenants: 2 inherit, 1 is suspended; of the 14 eligible 3 are
		// on, 1 is locked and 10 drift.
		{"a sweep that changes", `{}`, policy.Rules{}, "", 92.9},
		{"a dry run counts what is", `{"dry_run": true}`, policy.Rules{}, "", 21.4},
		{"nothing eligible", `{}`, policy.Rules{}, testkit.Unit, 100},
	} {
		t.Run(tt.name, func(t *testing.T) {
			acr := testkit.NewFixture(t, testkit.AcronisOptions{})
			r := newRunner(t, acr, tt.rules)
			r.h.RootTenantID = tt.root
			sum, emf, err := r.sweepOnce(t, tt.input)
			if err != nil || sum.CompliancePercent == nil || *sum.CompliancePercent != tt.want || emf.Metrics["CompliancePercent"] != tt.want || emf.Units["CompliancePercent"] != "Percent" {
				t.Fatalf("%+v, %v; EMF %v", sum, err, emf.Metrics)
			}
		})
	}
}

// simFailBroken makes Acronis fail on the fixture's Broken tenant.
func simFailBroken() sim.Faults {
	return sim.Faults{FailTenants: map[string]int{testkit.Broken: http.StatusInternalServerError}}
}

// A tenant handed to the worker queue is a fanned_out row.
func TestSweepReportFannedOutRows(t *testing.T) {
	acr := testkit.NewFixture(t, testkit.AcronisOptions{})
	r := newRunner(t, acr, policy.Rules{})
	rep := &memReport{}
	withReport(t, r, rep)
	r.h.Sweeper.InlineLimit = 1
	r.h.Sweeper.Fanout = &sweep.Fanout{QueueURL: "https://sqs.example/q", Concurrency: 1, Attempts: 1,
		SQS: sqsFunc(func(_ context.Context, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
			out := &sqs.SendMessageBatchOutput{}
			for _, e := range in.Entries {
				out.Successful = append(out.Successful, sqstypes.SendMessageBatchResultEntry{Id: e.Id})
			}
			return out, nil
		})}
	sum, _, err := r.sweepOnce(t, `{}`)
	if err != nil || sum.FannedOut == 0 {
		t.Fatalf("%+v, %v", sum, err)
	}
	fanned := strings.Count(rep.buf.String(), ",fanned_out,")
	if fanned != sum.FannedOut {
		t.Errorf("%d fanned_out rows, the summary %d", fanned, sum.FannedOut)
	}
}
