package report

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// S3 is the part of the S3 client an upload uses.
type S3 interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, opts ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error)
	UploadPart(ctx context.Context, in *s3.UploadPartInput, opts ...func(*s3.Options)) (*s3.UploadPartOutput, error)
	CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, opts ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error)
	AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, opts ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
	CopyObject(ctx context.Context, in *s3.CopyObjectInput, opts ...func(*s3.Options)) (*s3.CopyObjectOutput, error)
}

// PartSize is the size of an upload's parts: S3's least but for the last, so
// that an upload holds little memory.
const PartSize = 5 << 20

// Upload streams an object to S3: parts of PartSize go up while the next one
// fills, so memory stays at two parts whatever the object's size. An object
// smaller than one part is one PutObject. On a failure the multipart upload is
// aborted, so nothing half-written is ever visible under the key, and later
// writes are discarded: a failing report must not hold up the sweep writing it.
// An Upload is not safe for concurrent use.
type Upload struct {
	ctx         context.Context
	s3          S3
	bucket, key string

	buf      *bytes.Buffer
	uploadID string
	parts    []types.CompletedPart
	pending  chan error // the part in flight, if any
	err      error
}

// NewUpload starts an object at bucket/key; nothing reaches S3 before the
// first part is full, or Close.
func NewUpload(ctx context.Context, client S3, bucket, key string) *Upload {
	return &Upload{ctx: ctx, s3: client, bucket: bucket, key: key, buf: bytes.NewBuffer(make([]byte, 0, PartSize))}
}

// Err is the upload's first failure, nil while it is sound.
func (u *Upload) Err() error { return u.err }

// Write buffers p and sends every full part. After a failure it discards p and
// returns the failure.
func (u *Upload) Write(p []byte) (int, error) {
	if u.err != nil {
		return 0, u.err
	}
	n := len(p)
	for len(p) > 0 {
		room := PartSize - u.buf.Len()
		take := min(room, len(p))
		u.buf.Write(p[:take])
		p = p[take:]
		if u.buf.Len() == PartSize {
			if err := u.sendPart(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

// sendPart hands the full buffer to S3 in the background, after the part
// before it is done.
func (u *Upload) sendPart() error {
	if u.uploadID == "" {
		out, err := u.s3.CreateMultipartUpload(u.ctx, &s3.CreateMultipartUploadInput{
			Bucket: aws.String(u.bucket), Key: aws.String(u.key), ContentType: aws.String(contentType),
		})
		if err != nil {
			return u.fail(fmt.Errorf("start the multipart upload: %w", err))
		}
		u.uploadID = aws.ToString(out.UploadId)
	}
	if err := u.wait(); err != nil {
		return err
	}
	part := u.buf
	u.buf = bytes.NewBuffer(make([]byte, 0, PartSize))
	number := int32(len(u.parts) + 1)
	u.parts = append(u.parts, types.CompletedPart{PartNumber: aws.Int32(number)})
	done := make(chan error, 1)
	u.pending = done
	go func() {
		out, err := u.s3.UploadPart(u.ctx, &s3.UploadPartInput{
			Bucket: aws.String(u.bucket), Key: aws.String(u.key), UploadId: aws.String(u.uploadID),
			PartNumber: aws.Int32(number), Body: bytes.NewReader(part.Bytes()),
		})
		if err == nil {
			u.parts[number-1].ETag = out.ETag
		} else {
			err = fmt.Errorf("upload part %d: %w", number, err)
		}
		done <- err
	}()
	return nil
}

// wait waits for the part in flight.
func (u *Upload) wait() error {
	if u.pending == nil {
		return nil
	}
	err := <-u.pending
	u.pending = nil
	if err != nil {
		return u.fail(err)
	}
	return nil
}

// fail records the first failure and aborts the multipart upload, if any.
func (u *Upload) fail(err error) error {
	if u.err != nil {
		return u.err
	}
	u.err = fmt.Errorf("report s3://%s/%s: %w", u.bucket, u.key, err)
	if u.pending != nil {
		<-u.pending
		u.pending = nil
	}
	if u.uploadID != "" {
		// The sweep's own context may be what ended: the abort gets a moment of its own.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(u.ctx), abortTimeout)
		defer cancel()
		if _, aerr := u.s3.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
			Bucket: aws.String(u.bucket), Key: aws.String(u.key), UploadId: aws.String(u.uploadID),
		}); aerr != nil {
			u.err = errors.Join(u.err, fmt.Errorf("abort the multipart upload %s: %w", u.uploadID, aerr))
		}
	}
	u.buf = nil
	return u.err
}

// Close sends what is left and completes the object. The object exists under
// its key only if Close returns nil.
func (u *Upload) Close() error {
	if u.err != nil {
		return u.err
	}
	if u.uploadID == "" {
		_, err := u.s3.PutObject(u.ctx, &s3.PutObjectInput{
			Bucket: aws.String(u.bucket), Key: aws.String(u.key), ContentType: aws.String(contentType),
			Body: bytes.NewReader(u.buf.Bytes()),
		})
		if err != nil {
			return u.fail(fmt.Errorf("put: %w", err))
		}
		return nil
	}
	if u.buf.Len() > 0 {
		if err := u.sendPart(); err != nil {
			return err
		}
	}
	if err := u.wait(); err != nil {
		return err
	}
	_, err := u.s3.CompleteMultipartUpload(u.ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(u.bucket), Key: aws.String(u.key), UploadId: aws.String(u.uploadID),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: u.parts},
	})
	if err != nil {
		return u.fail(fmt.Errorf("complete the multipart upload: %w", err))
	}
	return nil
}

const (
	contentType  = "text/csv; charset=utf-8"
	abortTimeout = 10 * time.Second
)
