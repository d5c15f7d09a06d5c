package testkit

import (
	"errors"
	"hash/crc32"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dynamodbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
)

// TestAWSProxyCountsAndFailsCalls runs real SDK clients through the proxy, in
// front of a stand-in for moto that answers every call with success: the
// proxy counts the calls by action and parameter, and the SDK reads its
// injected errors as the services' own.
func TestAWSProxyCountsAndFailsCalls(t *testing.T) {
	var reached atomic.Int32
	moto := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		if r.Header.Get("X-Amz-Target") == "" {
			w.Header().Set("Content-Type", "text/xml")
			_, _ = w.Write([]byte(`<PublishResponse><PublishResult><MessageId>m1</MessageId></PublishResult></PublishResponse>`))
			return
		}
		w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
		w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte(`{}`))), 10))
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(moto.Close)
	p := NewAWSProxy(t, moto.URL)
	cfg := MotoConfig(t, p.URL)
	cfg.RetryMaxAttempts = 1 // each call reaches the proxy once
	ctx := t.Context()

	sm := secretsmanager.NewFromConfig(cfg)
	for _, id := range []string{"a", "b", "a"} {
		if _, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := p.Count("secretsmanager.GetSecretValue", "SecretId", "a"); n != 2 {
		t.Errorf("Count(GetSecretValue, SecretId a) = %d, want 2", n)
	}

	db := dynamodb.NewFromConfig(cfg)
	put := func() error {
		_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("state"),
			Item: map[string]dynamodbtypes.AttributeValue{"pk": &dynamodbtypes.AttributeValueMemberS{Value: "x"}}})
		return err
	}
	p.Fail("DynamoDB_20120810.PutItem", AWSError{Status: http.StatusBadRequest, Code: "ProvisionedThroughputExceededException", Times: 1})
	var throttled *dynamodbtypes.ProvisionedThroughputExceededException
	if err := put(); !errors.As(err, &throttled) {
		t.Errorf("PutItem failed with %v, want ProvisionedThroughputExceededException", err)
	}
	if err := put(); err != nil {
		t.Errorf("PutItem after its one failure: %v", err)
	}

	topic := sns.NewFromConfig(cfg)
	publish := func() error {
		_, err := topic.Publish(ctx, &sns.PublishInput{TopicArn: aws.String("arn:aws:sns:us-east-1:123456789012:t"), Message: aws.String("m")})
		return err
	}
	p.Fail("Publish", AWSError{Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable"})
	for range 2 {
		var code interface{ ErrorCode() string }
		var status interface{ HTTPStatusCode() int }
		if err := publish(); !errors.As(err, &code) || code.ErrorCode() != "ServiceUnavailable" || !errors.As(err, &status) || status.HTTPStatusCode() != 503 {
			t.Errorf("Publish failed with %v, want 503 ServiceUnavailable", err)
		}
	}
	p.Fail("Publish", AWSError{})
	if err := publish(); err != nil {
		t.Errorf("Publish once the failure is lifted: %v", err)
	}

	// Failures for one table, item or object leave the others' calls alone.
	p.Fail("DynamoDB_20120810.BatchGetItem", AWSError{Status: http.StatusInternalServerError, Code: "InternalServerError"}, "TableName", "down")
	p.Fail("DynamoDB_20120810.DeleteItem", AWSError{Status: http.StatusBadRequest, Code: "ProvisionedThroughputExceededException"}, "pk", "write#x")
	batchGet := func(table string) error {
		_, err := db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]dynamodbtypes.KeysAndAttributes{
			table: {Keys: []map[string]dynamodbtypes.AttributeValue{{"pk": &dynamodbtypes.AttributeValueMemberS{Value: "x"}}}}}})
		return err
	}
	del := func(pk string) error {
		_, err := db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String("state"),
			Key: map[string]dynamodbtypes.AttributeValue{"pk": &dynamodbtypes.AttributeValueMemberS{Value: pk}}})
		return err
	}
	if batchGet("down") == nil || batchGet("state") != nil || del("write#x") == nil || del("notice") != nil {
		t.Error("a failure scoped to a table or an item missed it, or hit another")
	}

	// S3 calls are named by operation, and read their injected errors as S3's.
	objects := s3.NewFromConfig(cfg)
	p.Fail("s3.PutObject", AWSError{Status: http.StatusForbidden, Code: "AccessDenied"}, "Key", "reports/denied.csv")
	putObject := func(key string) error {
		_, err := objects.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bucket"), Key: aws.String(key), Body: strings.NewReader("a,b\r\n")})
		return err
	}
	var code interface{ ErrorCode() string }
	if err := putObject("reports/denied.csv"); !errors.As(err, &code) || code.ErrorCode() != "AccessDenied" {
		t.Errorf("PutObject failed with %v, want AccessDenied", err)
	}
	if err := putObject("reports/other.csv"); err != nil {
		t.Errorf("PutObject of another key: %v", err)
	}
	if n := p.Count("s3.PutObject", "Bucket", "bucket", "Key", "reports/denied.csv"); n != 1 {
		t.Errorf("Count(s3.PutObject, Bucket, Key) = %d, want 1", n)
	}

	want := map[string]int{"secretsmanager.GetSecretValue": 3, "DynamoDB_20120810.PutItem": 2, "Publish": 3,
		"DynamoDB_20120810.BatchGetItem": 2, "DynamoDB_20120810.DeleteItem": 2, "s3.PutObject": 2}
	if got := p.Actions(); !maps.Equal(got, want) {
		t.Errorf("Actions() = %v, want %v", got, want)
	}
	if n := p.Count("Publish", "TopicArn", "arn:aws:sns:us-east-1:123456789012:t"); n != 3 {
		t.Errorf("Count(Publish, TopicArn) = %d, want 3", n)
	}
	if n := reached.Load(); n != 8 {
		t.Errorf("%d calls reached moto, want 8: the 6 injected failures must not", n)
	}
}

// TestAWSProxyOrdersConcurrentCalls: a hook sees each call before it goes on,
// and may hold it, so that a test decides which of two concurrent calls
// reaches moto first.
func TestAWSProxyOrdersConcurrentCalls(t *testing.T) {
	var mu sync.Mutex
	var order []string
	moto := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		order = append(order, string(body))
		mu.Unlock()
		w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte(`{}`))), 10))
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(moto.Close)
	p := NewAWSProxy(t, moto.URL)
	cfg := MotoConfig(t, p.URL)
	cfg.RetryMaxAttempts = 1
	db := dynamodb.NewFromConfig(cfg)
	put := func(pk string) error {
		_, err := db.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String("state"),
			Item: map[string]dynamodbtypes.AttributeValue{"pk": &dynamodbtypes.AttributeValueMemberS{Value: pk}}})
		return err
	}
	held, release := make(chan struct{}), make(chan struct{})
	p.Before(func(c AWSCall) {
		if c.Params["pk"] == "first" {
			close(held)
			<-release
		}
	})
	firstDone := make(chan error, 1)
	go func() { firstDone <- put("first") }()
	// The first call is held at the proxy: the second, sent after it, reaches
	// moto first.
	select {
	case <-held:
	case <-time.After(5 * time.Second):
		t.Fatal("the first call never reached the proxy")
	}
	if err := put("second"); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(order) != 2 || !strings.Contains(order[0], "second") || !strings.Contains(order[1], "first") {
		t.Errorf("moto received %q, want the second call first", order)
	}
}
