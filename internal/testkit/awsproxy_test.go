package testkit

import (
	"errors"
	"hash/crc32"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dynamodbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
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

	want := map[string]int{"secretsmanager.GetSecretValue": 3, "DynamoDB_20120810.PutItem": 2, "Publish": 3}
	if got := p.Actions(); !maps.Equal(got, want) {
		t.Errorf("Actions() = %v, want %v", got, want)
	}
	if n := p.Count("Publish", "TopicArn", "arn:aws:sns:us-east-1:123456789012:t"); n != 3 {
		t.Errorf("Count(Publish, TopicArn) = %d, want 3", n)
	}
	if n := reached.Load(); n != 5 {
		t.Errorf("%d calls reached moto, want 5: the 3 injected failures must not", n)
	}
}
