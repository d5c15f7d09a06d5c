package stack

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func readEvent(t *testing.T, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "events", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("events/%s: %v", name, err)
	}
}

// TestEventFiles: every sample event named in the README exists and is JSON.
func TestEventFiles(t *testing.T) {
	want := []string{"sweep-dry-run.json", "sweep-scheduled.json", "sweep-scheduler.json", "tenant-created-entry.json", "webhook-get.json", "webhook-put.json", "worker-batch.json"}
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
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("events/%s is missing", w)
		}
	}
}

// httpAPIEvent is the part of an API Gateway HTTP API payload 2.0 event the
// webhook reads.
type httpAPIEvent struct {
	Version        string            `json:"version"`
	RouteKey       string            `json:"routeKey"`
	RawPath        string            `json:"rawPath"`
	Headers        map[string]string `json:"headers"`
	PathParameters map[string]string `json:"pathParameters"`
	RequestContext struct {
		HTTP struct {
			Method string `json:"method"`
			Path   string `json:"path"`
		} `json:"http"`
		RouteKey string `json:"routeKey"`
		Stage    string `json:"stage"`
	} `json:"requestContext"`
	Body            *string `json:"body"`
	IsBase64Encoded bool    `json:"isBase64Encoded"`
}

// TestWebhookEvents: the samples are payload 2.0 events of the template's routes.
func TestWebhookEvents(t *testing.T) {
	tpl, err := loadTemplate(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	e, err := newEvaluation(tpl, nil)
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string]bool{}
	for _, ev := range events(e.function("WebhookFunction")) {
		p := asMap(ev["Properties"])
		routes[str(p["Method"])+" "+str(p["Path"])] = true
	}
	for _, tc := range []struct{ file, method string }{{"webhook-get.json", "GET"}, {"webhook-put.json", "PUT"}} {
		t.Run(tc.file, func(t *testing.T) {
			var ev httpAPIEvent
			readEvent(t, tc.file, &ev)
			if ev.Version != "2.0" {
				t.Errorf("version %q, want 2.0", ev.Version)
			}
			if want := tc.method + " " + webhookPath; ev.RouteKey != want || ev.RequestContext.RouteKey != want {
				t.Errorf("routeKey %q / requestContext.routeKey %q, want %q", ev.RouteKey, ev.RequestContext.RouteKey, want)
			}
			if !routes[ev.RouteKey] {
				t.Errorf("routeKey %q is not a route of the template (%v)", ev.RouteKey, sortedKeys(routes))
			}
			id := ev.PathParameters["tenant_id"]
			if !uuidPattern.MatchString(id) {
				t.Errorf("pathParameters.tenant_id %q is not a UUID", id)
			}
			wantPath := strings.Replace(webhookPath, "{tenant_id}", id, 1)
			if ev.RawPath != wantPath || ev.RequestContext.HTTP.Path != wantPath {
				t.Errorf("rawPath %q / requestContext.http.path %q, want %q", ev.RawPath, ev.RequestContext.HTTP.Path, wantPath)
			}
			if ev.RequestContext.HTTP.Method != tc.method {
				t.Errorf("requestContext.http.method %q, want %s", ev.RequestContext.HTTP.Method, tc.method)
			}
			for _, h := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
				if ev.Headers[h] == "" {
					t.Errorf("header %s is missing (HTTP API lower-cases header names)", h)
				}
			}
			if _, err := strconv.ParseInt(ev.Headers["webhook-timestamp"], 10, 64); err != nil {
				t.Errorf("webhook-timestamp %q is not unix seconds", ev.Headers["webhook-timestamp"])
			}
			if !strings.HasPrefix(ev.Headers["webhook-signature"], "v1,") {
				t.Errorf("webhook-signature %q does not start with v1,", ev.Headers["webhook-signature"])
			}
			if ev.IsBase64Encoded {
				t.Error("isBase64Encoded is true")
			}
			if tc.method == "PUT" {
				if ev.Body == nil {
					t.Fatal("PUT sample has no body")
				}
				var body map[string]any
				if err := json.Unmarshal([]byte(*ev.Body), &body); err != nil {
					t.Fatalf("body %q is not JSON: %v", *ev.Body, err)
				}
				if _, ok := body["enabled"].(bool); !ok || len(body) != 1 {
					t.Errorf(`body %q, want {"enabled": true|false}`, *ev.Body)
				}
				if cl := ev.Headers["content-length"]; cl != strconv.Itoa(len(*ev.Body)) {
					t.Errorf("content-length %s, body is %d bytes", cl, len(*ev.Body))
				}
			}
		})
	}
}

type sqsRecord struct {
	MessageID      string `json:"messageId"`
	ReceiptHandle  string `json:"receiptHandle"`
	Body           string `json:"body"`
	MD5OfBody      string `json:"md5OfBody"`
	EventSource    string `json:"eventSource"`
	EventSourceARN string `json:"eventSourceARN"`
	AWSRegion      string `json:"awsRegion"`
	Attributes     map[string]string
}

func workerSampleBodies(t *testing.T) []string {
	t.Helper()
	var ev struct{ Records []sqsRecord }
	readEvent(t, "worker-batch.json", &ev)
	var bodies []string
	for _, r := range ev.Records {
		bodies = append(bodies, r.Body)
	}
	return bodies
}

// TestWorkerEvent: an SQS batch with one message of each shape of CONTRACT.md
// section 5, as Lambda's SQS event source delivers it.
func TestWorkerEvent(t *testing.T) {
	var ev struct{ Records []sqsRecord }
	readEvent(t, "worker-batch.json", &ev)
	if len(ev.Records) != 4 {
		t.Fatalf("%d records, want 4", len(ev.Records))
	}
	ids := map[string]bool{}
	shapes := map[string]bool{}
	for i, r := range ev.Records {
		if r.EventSource != "aws:sqs" || !strings.HasPrefix(r.EventSourceARN, "arn:aws:sqs:") || r.AWSRegion == "" || r.ReceiptHandle == "" {
			t.Errorf("record %d is not an SQS record: %+v", i, r)
		}
		if ids[r.MessageID] || r.MessageID == "" {
			t.Errorf("record %d messageId %q is empty or repeated: batchItemFailures could not name it", i, r.MessageID)
		}
		ids[r.MessageID] = true
		sum := md5.Sum([]byte(r.Body))
		if r.MD5OfBody != hex.EncodeToString(sum[:]) {
			t.Errorf("record %d md5OfBody %s is not the MD5 of its body", i, r.MD5OfBody)
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
		if id, ok := target["tenant_id"]; ok && !uuidPattern.MatchString(str(id)) {
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
	want := map[string]bool{"explicit": true, "policy": true, "eventbridge": true, "tenant_name": true}
	if !reflect.DeepEqual(shapes, want) {
		t.Errorf("shapes %v, want one of each of %v", sortedKeys(shapes), sortedKeys(want))
	}
}

// TestSweepEvents: the three inputs a sweep gets (CONTRACT.md section 6).
func TestSweepEvents(t *testing.T) {
	var classic map[string]any
	readEvent(t, "sweep-scheduled.json", &classic)
	if classic["detail-type"] != "Scheduled Event" || classic["source"] != "aws.events" || classic["version"] != "0" {
		t.Errorf("sweep-scheduled.json is not a classic schedule event: %v", classic)
	}
	if d, ok := classic["detail"].(map[string]any); !ok || len(d) != 0 {
		t.Errorf("sweep-scheduled.json detail %v, want {}", classic["detail"])
	}

	var bare map[string]any
	readEvent(t, "sweep-scheduler.json", &bare)
	if bare == nil || len(bare) != 0 {
		t.Errorf("sweep-scheduler.json is %v, want {}", bare)
	}
	// It is exactly what the template's schedule sends.
	tpl, err := loadTemplate(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	e, err := newEvaluation(tpl, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, ev := range events(e.function("SweepFunction")) {
		var in map[string]any
		if err := json.Unmarshal([]byte(str(asMap(ev["Properties"])["Input"])), &in); err != nil || !reflect.DeepEqual(in, bare) {
			t.Errorf("schedule %s Input %v differs from events/sweep-scheduler.json (%v)", name, asMap(ev["Properties"])["Input"], err)
		}
	}

	var dry map[string]any
	readEvent(t, "sweep-dry-run.json", &dry)
	if !reflect.DeepEqual(dry, map[string]any{"dry_run": true}) {
		t.Errorf("sweep-dry-run.json is %v, want {\"dry_run\": true}", dry)
	}
}

// TestTenantCreatedEntry: the PutEvents sample matches the template's rule.
func TestTenantCreatedEntry(t *testing.T) {
	entry := readTenantCreatedEntry(t)
	tpl, err := loadTemplate(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	pattern := asMap(tpl.Resources["TenantCreatedRule"].Properties["EventPattern"])
	if !slices.Contains(asList(pattern["detail-type"]), any(entry.DetailType)) {
		t.Errorf("DetailType %q does not match the rule's detail-type %v", entry.DetailType, pattern["detail-type"])
	}
	if entry.Source != "provisioning.example" || entry.EventBusName == "" {
		t.Errorf("entry %+v: want Source provisioning.example and an EventBusName placeholder", entry)
	}
	var detail map[string]any
	if err := json.Unmarshal([]byte(entry.Detail), &detail); err != nil || !uuidPattern.MatchString(str(detail["tenant_id"])) {
		t.Errorf("Detail %q: want a JSON string {\"tenant_id\": \"<uuid>\"} (%v)", entry.Detail, err)
	}
}
