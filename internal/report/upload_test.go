//go:build integration

package report_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"acronismfa/internal/report"
	"acronismfa/internal/testkit"
)

func get(t *testing.T, c *s3.Client, bucket, key string) ([]byte, bool) {
	t.Helper()
	out, err := c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, false
	}
	defer out.Body.Close()
	b, _ := io.ReadAll(out.Body)
	return b, true
}

// rows writes n rows of about 200 bytes.
func rows(r *report.S3Report, n int) {
	for i := range n {
		r.Add(report.Row{TenantID: "f0000000-0000-4000-8000-000000000001", TenantName: strings.Repeat("x", 100),
			Kind: "customer", Outcome: "compliant", Reason: "MFA already enabled", Users: &report.Users{Count: i}})
	}
}

func TestReportStreamsToS3(t *testing.T) {
	m := testkit.NewMoto(t)
	client := testkit.S3Client(testkit.MotoConfig(t, m.Endpoint))
	if err := testkit.CreateBucket(t.Context(), testkit.MotoConfig(t, m.Endpoint), "reports"); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, tc := range []struct {
		name string
		rows int
	}{{"one put", 10}, {"three parts", 60_000}} {
		t.Run(tc.name, func(t *testing.T) {
			r := report.StartS3(t.Context(), client, "reports", "mfa/", "sweep-"+tc.name[:3], at)
			rows(r, tc.rows)
			uri, err := r.Finish()
			if err != nil {
				t.Fatal(err)
			}
			key := "mfa/2026/03/04/sweep-" + tc.name[:3] + ".csv"
			if uri != "s3://reports/"+key {
				t.Errorf("uri %s", uri)
			}
			dated, ok := get(t, client, "reports", key)
			latest, _ := get(t, client, "reports", "mfa/latest.csv")
			if !ok || !bytes.Equal(dated, latest) || bytes.Count(dated, []byte("\r\n")) != tc.rows+1 {
				t.Errorf("dated report %d bytes (%d lines), latest.csv %d bytes", len(dated), bytes.Count(dated, []byte("\r\n")), len(latest))
			}
		})
	}
}

func TestReportThatCannotBeWrittenLeavesNothing(t *testing.T) {
	m := testkit.NewMoto(t)
	cfg := testkit.MotoConfig(t, m.Endpoint)
	if err := testkit.CreateBucket(t.Context(), cfg, "reports"); err != nil {
		t.Fatal(err)
	}
	direct := testkit.S3Client(cfg)
	at := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)

	t.Run("bucket missing", func(t *testing.T) {
		r := report.StartS3(t.Context(), direct, "no-such-bucket", "", "s1", at)
		rows(r, 10)
		if uri, err := r.Finish(); err == nil || uri != "" {
			t.Fatalf("%q, %v", uri, err)
		}
	})
	t.Run("S3 down mid-upload", func(t *testing.T) {
		// Down from the second part on, retries included.
		proxy := testkit.NewAWSProxy(t, m.Endpoint)
		proxy.Fail("s3.UploadPart", testkit.AWSError{Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable"}, "PartNumber", "2")
		client := testkit.S3Client(testkit.MotoConfig(t, proxy.URL))
		r := report.StartS3(t.Context(), client, "reports", "", "s2", at)
		rows(r, 60_000)
		if _, err := r.Finish(); err == nil {
			t.Fatal("a failed part went unnoticed")
		}
		if _, ok := get(t, direct, "reports", "2026/03/04/s2.csv"); ok {
			t.Error("a report is visible under its key after a failed upload")
		}
		up, err := direct.ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String("reports")})
		if err != nil || len(up.Uploads) != 0 {
			t.Errorf("multipart uploads left behind: %v, %v", up.Uploads, err)
		}
	})
}
