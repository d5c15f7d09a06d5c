package testkit

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Sign returns the webhook-signature entry "v1,<base64>" a Standard Webhooks
// sender computes for this id, timestamp and body. It is written here from the
// specification, apart from the webhook's own code, so that the two check
// each other.
func Sign(key []byte, id string, ts time.Time, body []byte) string {
	h := hmac.New(sha256.New, key)
	fmt.Fprintf(h, "%s.%d.", id, ts.Unix())
	h.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// WhSec is a signing key as the webhook secret lists it.
func WhSec(key []byte) string { return "whsec_" + base64.StdEncoding.EncodeToString(key) }

// WebhookKeysJSON is the webhook signing keys secret listing keys.
func WebhookKeysJSON(keys ...[]byte) string {
	list := make([]string, len(keys))
	for i, k := range keys {
		list[i] = WhSec(k)
	}
	b, _ := json.Marshal(map[string][]string{"signing_keys": list})
	return string(b)
}

// WebhookRequest is an API Gateway HTTP API (payload 2.0) request for method
// on /tenants/{tenantID}/mfa, signed with key at now under a new webhook-id.
// A nil key leaves the request unsigned.
func WebhookRequest(key []byte, now time.Time, method, tenantID, body string) events.APIGatewayV2HTTPRequest {
	path := "/tenants/" + tenantID + "/mfa"
	req := events.APIGatewayV2HTTPRequest{
		Version:        "2.0",
		RouteKey:       method + " /tenants/{tenant_id}/mfa",
		RawPath:        path,
		Headers:        map[string]string{"content-type": "application/json"},
		PathParameters: map[string]string{"tenant_id": tenantID},
		Body:           body,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RequestID: rand.Text(),
			Stage:     "$default",
			HTTP:      events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path, Protocol: "HTTP/1.1", SourceIP: "192.0.2.10"},
		},
	}
	if key != nil {
		id := "msg_" + rand.Text()
		req.Headers["webhook-id"] = id
		req.Headers["webhook-timestamp"] = strconv.FormatInt(now.Unix(), 10)
		req.Headers["webhook-signature"] = Sign(key, id, now, []byte(body))
	}
	return req
}

// SQSBatch is an SQS event with one record per body, message ids m0, m1, ...
func SQSBatch(bodies ...string) events.SQSEvent {
	var ev events.SQSEvent
	for i, b := range bodies {
		ev.Records = append(ev.Records, SQSRecord(fmt.Sprintf("m%d", i), b))
	}
	return ev
}

// SQSRecord is a record as Lambda's SQS event source delivers it.
func SQSRecord(id, body string) events.SQSMessage {
	sum := md5.Sum([]byte(body))
	return events.SQSMessage{
		MessageId:      id,
		ReceiptHandle:  "AQEB" + id,
		Body:           body,
		Md5OfBody:      hex.EncodeToString(sum[:]),
		Attributes:     map[string]string{"ApproximateReceiveCount": "1", "SentTimestamp": "1767225600000"},
		EventSource:    "aws:sqs",
		EventSourceARN: "arn:aws:sqs:" + MotoRegion + ":123456789012:acronis-mfa-enforce",
		AWSRegion:      MotoRegion,
	}
}

// TenantCreated is a "Tenant Created" event as an EventBridge rule whose
// target is the queue delivers it; detail is the detail object's JSON.
func TenantCreated(detail string) string {
	return fmt.Sprintf(`{"version":"0","id":%q,"detail-type":"Tenant Created","source":"provisioning.example",`+
		`"account":"123456789012","time":"2026-01-01T00:00:00Z","region":%q,"resources":[],"detail":%s}`,
		rand.Text(), MotoRegion, detail)
}

// FailedIDs lists a batch response's failures.
func FailedIDs(resp events.SQSEventResponse) []string {
	var out []string
	for _, f := range resp.BatchItemFailures {
		out = append(out, f.ItemIdentifier)
	}
	return out
}
