//go:build integration

package stack

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"acronismfa/internal/tenant"
	"acronismfa/internal/testkit"
)

func readEvent(t *testing.T, name string, v any) {
	t.Helper()
	data, err := testkit.ReadEvent(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("events/%s: %v", name, err)
	}
}

// evaluate is the template as a deployment with the default parameters sees it.
func evaluate(t *testing.T) *evaluation {
	t.Helper()
	tpl, err := loadTemplate(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	e, err := newEvaluation(tpl, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestEventFiles: every sample event the README names exists and is JSON.
func TestEventFiles(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join(repoRoot, "events"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
		var v any
		readEvent(t, e.Name(), &v)
	}
	for _, w := range []string{"sweep-dry-run.json", "sweep-scheduled.json", "sweep-scheduler.json", "tenant-created-entry.json", "webhook-get.json", "webhook-put.json", "worker-batch.json"} {
		if !slices.Contains(got, w) {
			t.Errorf("events/%s is missing", w)
		}
	}
}

// TestWebhookEvents: the samples are payload 2.0 events of the template's
// routes, shaped as the end-to-end tests' requests (testkit.WebhookRequest).
func TestWebhookEvents(t *testing.T) {
	routes := map[string]bool{}
	for _, ev := range eventsOf(evaluate(t).function("WebhookFunction")) {
		p := asMap(ev["Properties"])
		routes[str(p["Method"])+" "+str(p["Path"])] = true
	}
	for _, method := range []string{"GET", "PUT"} {
		file := "webhook-" + strings.ToLower(method) + ".json"
		var ev events.APIGatewayV2HTTPRequest
		readEvent(t, file, &ev)
		id := ev.PathParameters["tenant_id"]
		want := testkit.WebhookRequest(nil, time.Time{}, method, id, ev.Body)
		if ev.Version != "2.0" || ev.RouteKey != want.RouteKey || ev.RequestContext.RouteKey != want.RouteKey || !routes[ev.RouteKey] ||
			ev.RawPath != want.RawPath || ev.RequestContext.HTTP.Path != want.RawPath || ev.RequestContext.HTTP.Method != method ||
			!maps.Equal(ev.PathParameters, want.PathParameters) || ev.IsBase64Encoded {
			t.Errorf("%s: version %q, routeKey %q/%q, rawPath %q, http %+v, pathParameters %v, isBase64Encoded %v: want a payload 2.0 %s of %s (template routes %v)",
				file, ev.Version, ev.RouteKey, ev.RequestContext.RouteKey, ev.RawPath, ev.RequestContext.HTTP, ev.PathParameters, ev.IsBase64Encoded,
				method, want.RawPath, slices.Sorted(maps.Keys(routes)))
		}
		if !tenant.ValidID(id) {
			t.Errorf("%s: pathParameters.tenant_id %q is not a UUID", file, id)
		}
		for _, h := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
			if ev.Headers[h] == "" {
				t.Errorf("%s: header %s is missing (HTTP API lower-cases header names)", file, h)
			}
		}
		if _, err := strconv.ParseInt(ev.Headers["webhook-timestamp"], 10, 64); err != nil || !strings.HasPrefix(ev.Headers["webhook-signature"], "v1,") {
			t.Errorf("%s: webhook-timestamp %q, webhook-signature %q: want unix seconds and v1,...", file, ev.Headers["webhook-timestamp"], ev.Headers["webhook-signature"])
		}
		if method == "PUT" {
			var body map[string]any
			if err := json.Unmarshal([]byte(ev.Body), &body); err != nil || len(body) != 1 || reflect.TypeOf(body["enabled"]) != reflect.TypeFor[bool]() {
				t.Errorf(`%s: body %q, want {"enabled": true|false} (%v)`, file, ev.Body, err)
			}
			if cl := ev.Headers["content-length"]; cl != strconv.Itoa(len(ev.Body)) {
				t.Errorf("%s: content-length %s, body is %d bytes", file, cl, len(ev.Body))
			}
		}
	}
}

// TestWorkerEvent: an SQS batch with one message of each shape of
// docs/reference.md, Worker messages, as Lambda's SQS event source delivers it.
func TestWorkerEvent(t *testing.T) {
	var ev events.SQSEvent
	readEvent(t, "worker-batch.json", &ev)
	ids, shapes := map[string]bool{}, map[string]bool{}
	for i, r := range ev.Records {
		if r.EventSource != "aws:sqs" || !strings.HasPrefix(r.EventSourceARN, "arn:aws:sqs:") || r.AWSRegion == "" || r.ReceiptHandle == "" {
			t.Errorf("record %d is not an SQS record: %+v", i, r)
		}
		if ids[r.MessageId] || r.MessageId == "" {
			t.Errorf("record %d messageId %q is empty or repeated: batchItemFailures could not name it", i, r.MessageId)
		}
		ids[r.MessageId] = true
		if want := testkit.SQSRecord(r.MessageId, r.Body).Md5OfBody; r.Md5OfBody != want {
			t.Errorf("record %d md5OfBody %s is not the MD5 of its body", i, r.Md5OfBody)
		}
		var body map[string]any
		if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
			t.Errorf("record %d body is not JSON: %v", i, err)
			continue
		}
		target := body
		if body["detail-type"] != nil {
			if body["detail-type"] != "Tenant Created" || body["version"] != "0" {
				t.Errorf("record %d: EventBridge envelope %v, want version 0, detail-type Tenant Created", i, body)
			}
			target = asMap(body["detail"])
		}
		if id, ok := target["tenant_id"]; ok && !tenant.ValidID(str(id)) {
			t.Errorf("record %d tenant_id %v is not a UUID", i, id)
		}
		_, hasID := target["tenant_id"]
		_, hasName := target["tenant_name"]
		_, hasEnabled := target["enabled"].(bool)
		switch {
		case body["detail-type"] != nil && hasID:
			shapes["eventbridge"] = true
		case hasID && hasEnabled && len(target) == 2:
			shapes["explicit"] = true
		case hasID && len(target) == 1:
			shapes["policy"] = true
		case hasName && !hasID:
			shapes["tenant_name"] = true
		default:
			t.Errorf("record %d body %s is none of the contract's shapes", i, r.Body)
		}
	}
	if want := map[string]bool{"explicit": true, "policy": true, "eventbridge": true, "tenant_name": true}; len(ev.Records) != 4 || !maps.Equal(shapes, want) {
		t.Errorf("%d records of shapes %v, want one of each of %v", len(ev.Records), slices.Sorted(maps.Keys(shapes)), slices.Sorted(maps.Keys(want)))
	}
}

// TestSweepEvents: the inputs a sweep gets (docs/reference.md, Sweep).
func TestSweepEvents(t *testing.T) {
	var classic map[string]any
	readEvent(t, "sweep-scheduled.json", &classic)
	if classic["detail-type"] != "Scheduled Event" || classic["source"] != "aws.events" || classic["version"] != "0" ||
		!reflect.DeepEqual(classic["detail"], map[string]any{}) {
		t.Errorf("sweep-scheduled.json is not a classic schedule event with detail {}: %v", classic)
	}
	var bare, watch, dry map[string]any
	readEvent(t, "sweep-scheduler.json", &bare)
	if bare == nil || len(bare) != 0 {
		t.Errorf("sweep-scheduler.json is %v, want {}", bare)
	}
	readEvent(t, "sweep-watch.json", &watch)
	// They are exactly what the template's two schedules send.
	samples := map[string]map[string]any{"Schedule": bare, "Watch": watch}
	for name, ev := range eventsOf(evaluate(t).function("SweepFunction")) {
		var in map[string]any
		if err := json.Unmarshal([]byte(str(asMap(ev["Properties"])["Input"])), &in); err != nil || !reflect.DeepEqual(in, samples[name]) {
			t.Errorf("schedule %s Input %v differs from its sample (%v) in events/", name, asMap(ev["Properties"])["Input"], err)
		}
	}
	readEvent(t, "sweep-dry-run.json", &dry)
	if !reflect.DeepEqual(dry, map[string]any{"dry_run": true}) {
		t.Errorf("sweep-dry-run.json is %v, want {\"dry_run\": true}", dry)
	}
}
