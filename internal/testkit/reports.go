package testkit

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// ReportHeader is a compliance report's header row, exactly as
// docs/reference.md, Compliance reports, gives it.
const ReportHeader = "tenant_id,tenant_name,kind,parent_id,tenant_enabled,mfa_status,outcome,reason,users_count,users_without_totp,grace_deadline"

// Report is a full sweep's compliance report as S3 holds it.
type Report struct {
	URI   string
	Bytes []byte
	Rows  []map[string]string // by column name
}

// S3 is an S3 client of the stack's moto.
func (s *Stack) S3() *s3.Client { return S3Client(s.AWS) }

// S3Client is an S3 client on cfg, which aims at moto. Path-style addressing
// keeps bucket names out of host names, and the SDK would log a line about
// each checksum it cannot check on moto's answers.
func S3Client(cfg aws.Config) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = true
		o.DisableLogOutputChecksumValidationSkipped = true
	})
}

// ReadReport reads the report that a full sweep's summary names and checks it
// against docs/reference.md, Compliance reports: its key is
// REPORT_PREFIX/yyyy/mm/dd/{sweep_id}.csv, latest.csv holds the same bytes, the
// header is exact, lines end in \r\n, and there is one row per tenant seen,
// each counted in the summary's bucket its outcome names.
func (s *Stack) ReadReport(ctx context.Context, sum SweepSummary) (Report, error) {
	r := Report{URI: sum.Report}
	key, ok := strings.CutPrefix(sum.Report, "s3://"+ReportBucket+"/")
	dated := regexp.MustCompile(`^` + ReportPrefix + `(\d{4}/\d{2}/\d{2})/` + regexp.QuoteMeta(sum.SweepID) + `\.csv$`).FindStringSubmatch(key)
	if !ok || sum.SweepID == "" || dated == nil {
		return r, fmt.Errorf("report %q, want s3://%s/%syyyy/mm/dd/%s.csv", sum.Report, ReportBucket, ReportPrefix, sum.SweepID)
	}
	if day, err := time.Parse("2006/01/02", dated[1]); err != nil || time.Since(day) < 0 || time.Since(day) > 48*time.Hour {
		return r, fmt.Errorf("report %s is not dated today", sum.Report)
	}
	var latest []byte
	for _, k := range []struct {
		key string
		out *[]byte
	}{{key, &r.Bytes}, {ReportPrefix + "latest.csv", &latest}} {
		obj, err := s.S3().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(ReportBucket), Key: aws.String(k.key)})
		if err != nil {
			return r, fmt.Errorf("read s3://%s/%s: %w", ReportBucket, k.key, err)
		}
		*k.out, err = io.ReadAll(obj.Body)
		obj.Body.Close()
		if err != nil {
			return r, fmt.Errorf("read s3://%s/%s: %w", ReportBucket, k.key, err)
		}
	}
	if !bytes.Equal(r.Bytes, latest) {
		return r, fmt.Errorf("latest.csv (%d bytes) is not the report %s (%d bytes)", len(latest), sum.Report, len(r.Bytes))
	}
	if !bytes.HasPrefix(r.Bytes, []byte(ReportHeader+"\r\n")) || !bytes.HasSuffix(r.Bytes, []byte("\r\n")) {
		return r, fmt.Errorf("report %s does not start with the header and a \\r\\n, or does not end in \\r\\n: %.200q", sum.Report, r.Bytes)
	}
	records, err := csv.NewReader(bytes.NewReader(r.Bytes)).ReadAll()
	if err != nil {
		return r, fmt.Errorf("report %s: %w", sum.Report, err)
	}
	header, outcomes, seen := records[0], map[string]int{}, map[string]bool{}
	for _, rec := range records[1:] {
		row := map[string]string{}
		for i, col := range header {
			row[col] = rec[i]
		}
		r.Rows = append(r.Rows, row)
		outcomes[row["outcome"]]++
		seen[row["tenant_id"]] = true
	}
	if len(r.Rows) != sum.Counts["tenants_seen"] || len(seen) != len(r.Rows) {
		return r, fmt.Errorf("report %s has %d rows for %d tenants, want one per tenant seen (%d)", sum.Report, len(r.Rows), len(seen), sum.Counts["tenants_seen"])
	}
	for outcome, n := range outcomes {
		if !slices.Contains(SweepCounts[1:11], outcome) || sum.Counts[outcome] != n {
			return r, fmt.Errorf("report %s has %d rows with outcome %q; the summary counts %d", sum.Report, n, outcome, sum.Counts[outcome])
		}
	}
	return r, nil
}
