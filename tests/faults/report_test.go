//go:build integration

package faults_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/config"
	"acronismfa/internal/telemetry"
	"acronismfa/internal/testkit"
)

// TestReportFailuresLeaveEnforcementAlone: a full sweep whose report cannot be
// written (the bucket missing, S3 failing in the middle of a multipart
// upload, the copy to latest.csv refused) still gives every notice and
// enables every tenant due, answers "report": null, says why in an ERROR line
// "report not written", emits ReportFailures 1, and leaves no incomplete upload
// in the bucket (a report whose copy failed stays whole under its dated key);
// the next sweep, S3 back, writes its report.
func TestReportFailuresLeaveEnforcementAlone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// tree is added to the fixture; a report over 5 MiB is a multipart
		// upload.
		tree    *sim.TreeSpec
		missing bool   // REPORT_BUCKET names no bucket until the fault is lifted
		action  string // the S3 action failing with err
		err     testkit.AWSError
	}{
		{name: "bucket missing", missing: true},
		{name: "S3 failing mid-upload", tree: &sim.TreeSpec{Seed: 3, Size: 40_000, Drift: -1, Locked: -1},
			action: "s3.UploadPart", err: testkit.AWSError{Status: http.StatusInternalServerError, Code: "InternalError"}},
		{name: "copy to latest.csv refused", action: "s3.CopyObject", err: testkit.AWSError{Status: http.StatusForbidden, Code: "AccessDenied"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, testkit.AcronisOptions{Tree: tt.tree})
			notice, atOnce := rolloutPlan(w.Sim.All())
			d := newDeployment(t)
			d.bucket = uniqueName("reports")
			cfg := testkit.MotoConfig(t, moto.Endpoint)
			if !tt.missing {
				if err := testkit.CreateBucket(t.Context(), cfg, d.bucket); err != nil {
					t.Fatal(err)
				}
			}
			if tt.action != "" {
				d.aws.Fail(tt.action, tt.err, "Bucket", d.bucket)
			}
			f := d.start(t, w, config.Sweep)

			sum, err := f.sweep(t.Context(), scheduled)
			if err != nil {
				t.Fatalf("sweep: %v", err)
			}
			checkBuckets(t, sum)
			if sum.Report != nil {
				t.Errorf("report %q, want null", *sum.Report)
			}
			if sum.Notified != len(notice) || sum.Changed != len(atOnce) || sum.Failed != 0 {
				t.Errorf("summary notified %d, changed %d, failed %d; want %d, %d and none: the report's failure stopped enforcement",
					sum.Notified, sum.Changed, sum.Failed, len(notice), len(atOnce))
			}
			checkUntouched(t, w, notice)
			if got := d.received(t, len(notice)+digests(scheduled))[graceStarted]; !slices.Equal(got, notice) {
				t.Errorf("grace_started for %v, want one each for %v", got, notice)
			}
			for _, id := range atOnce {
				if !w.MFAOn(t, id) {
					t.Errorf("tenant %s was not enabled", id)
				}
			}
			if tt.action != "" && d.aws.Count(tt.action, "Bucket", d.bucket) == 0 {
				t.Fatalf("the fault never fired: no %s", tt.action)
			}
			if tt.tree != nil && d.aws.Count("s3.CreateMultipartUpload", "Bucket", d.bucket) != 1 {
				t.Fatalf("the report was no multipart upload: %v", d.aws.Actions())
			}
			checkReportFailures(t, f, 0, 1)
			var notWritten []string
			for _, l := range f.out.JSON(0) {
				if msg, ok := l["error"].(string); ok && l["message"] == "report not written" && l["level"] == "ERROR" {
					notWritten = append(notWritten, msg)
				}
			}
			if len(notWritten) != 1 {
				t.Errorf("ERROR lines \"report not written\" with the error: %q, want 1", notWritten)
			}
			switch {
			case tt.missing:
			case tt.action == "s3.CopyObject":
				objects := listBucket(t, d.bucket)
				// The report is whole under its dated key, which the ERROR line
				// names; latest.csv is not updated. The function may not
				// delete reports.
				if len(objects) != 1 || !strings.HasPrefix(objects[0], "reports/2") || len(notWritten) != 1 || !strings.Contains(notWritten[0], objects[0]) {
					t.Errorf("objects %v and error %q, want the dated report alone, named by the error", objects, notWritten)
				}
			default:
				if objects := listBucket(t, d.bucket); len(objects) != 0 {
					t.Errorf("objects left in the bucket by a report that was not written: %v", objects)
				}
			}

			// S3 back: the next sweep writes its report.
			if tt.missing {
				if err := testkit.CreateBucket(t.Context(), cfg, d.bucket); err != nil {
					t.Fatal(err)
				}
			}
			d.aws.Fail(tt.action, testkit.AWSError{}, "Bucket", d.bucket)
			mark := f.out.Mark()
			if sum, err = f.sweep(t.Context(), scheduled); err != nil || sum.Report == nil {
				t.Fatalf("the sweep after the fault: report %v, %v", sum.Report, err)
			}
			checkReportFailures(t, f, mark, 0)
			d.received(t, digests(scheduled))
			objects := listBucket(t, d.bucket)
			if !slices.Contains(objects, strings.TrimPrefix(*sum.Report, "s3://"+d.bucket+"/")) || !slices.Contains(objects, "reports/latest.csv") {
				t.Errorf("objects %v, want the report %s and latest.csv", objects, *sum.Report)
			}
		})
	}
}

// checkReportFailures checks the ReportFailures metric of the one sweep after
// mark.
func checkReportFailures(t *testing.T, f *function, mark int, want float64) {
	t.Helper()
	docs, err := f.out.EMF(mark)
	if err != nil || len(docs) != 1 {
		t.Fatalf("%d EMF documents, want 1: %v", len(docs), err)
	}
	if got, ok := docs[0].Metrics[telemetry.MetricReportFailures]; !ok || got != want {
		t.Errorf("ReportFailures %v (present: %v), want %v", got, ok, want)
	}
}

// listBucket lists every object and every incomplete multipart upload in the
// bucket, by key, objects first.
func listBucket(t *testing.T, bucket string) []string {
	t.Helper()
	client := s3.NewFromConfig(testkit.MotoConfig(t, moto.Endpoint))
	var keys []string
	objects, err := client.ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("list %s: %v", bucket, err)
	}
	for _, o := range objects.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	uploads, err := client.ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("list the uploads in %s: %v", bucket, err)
	}
	for _, u := range uploads.Uploads {
		keys = append(keys, "incomplete upload of "+aws.ToString(u.Key))
	}
	return keys
}
