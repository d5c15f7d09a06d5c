package report

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Latest is the key, below the prefix, that always holds the newest report.
const Latest = "latest.csv"

// S3Report is one sweep's report on its way to S3.
type S3Report struct {
	ctx    context.Context
	s3     S3
	bucket string
	key    string
	latest string
	upload *Upload
	csv    *Writer
}

// Key is where the report of sweep sweepID, started at, goes below prefix.
func Key(prefix, sweepID string, at time.Time) string {
	return prefix + at.UTC().Format("2006/01/02/") + sweepID + ".csv"
}

// StartS3 begins the report of sweep sweepID at Key(prefix, sweepID, at) in
// bucket. Failures surface at Finish.
func StartS3(ctx context.Context, client S3, bucket, prefix, sweepID string, at time.Time) *S3Report {
	r := &S3Report{ctx: ctx, s3: client, bucket: bucket, key: Key(prefix, sweepID, at), latest: prefix + Latest}
	r.upload = NewUpload(ctx, client, bucket, r.key)
	// The header cannot fail: nothing reaches S3 before a part is full.
	r.csv, _ = NewWriter(r.upload)
	return r
}

// Add writes a row. A report that cannot be written never stops the sweep:
// once the upload has failed, rows are dropped and Finish says why.
func (r *S3Report) Add(row Row) {
	if r.upload.Err() == nil {
		_ = r.csv.Write(row)
	}
}

// Finish completes the report, copies it to latest.csv, and returns its
// s3:// URI. A failed upload leaves nothing under the dated key. Should only
// the copy fail, the report stays whole under its dated key, which the error
// names, and latest.csv keeps the previous report: the function is not
// allowed to delete reports, so that none of an audit trail can be lost.
func (r *S3Report) Finish() (string, error) {
	// A flush fails only by a write to the upload, which has then failed and
	// been aborted; Close says why.
	_ = r.csv.Flush()
	if err := r.upload.Close(); err != nil {
		return "", err
	}
	_, err := r.s3.CopyObject(r.ctx, &s3.CopyObjectInput{
		Bucket:     aws.String(r.bucket),
		Key:        aws.String(r.latest),
		CopySource: aws.String(copySource(r.bucket, r.key)),
	})
	if err != nil {
		return "", fmt.Errorf("report s3://%s/%s: copy to %s: %w", r.bucket, r.key, r.latest, err)
	}
	return "s3://" + r.bucket + "/" + r.key, nil
}

// copySource is bucket/key as CopyObject takes it: URL-encoded, but for the
// slashes between key segments.
func copySource(bucket, key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return url.PathEscape(bucket) + "/" + strings.Join(segs, "/")
}
