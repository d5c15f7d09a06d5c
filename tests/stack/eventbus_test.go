package stack

import (
	"context"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"acronismfa/internal/testkit"
)

// putEventsEntry is one entry of events/tenant-created-entry.json, the file an
// operator hands to `aws events put-events --entries file://...`.
type putEventsEntry struct {
	EventBusName string
	Source       string
	DetailType   string
	Detail       string
}

func readTenantCreatedEntry(t *testing.T) putEventsEntry {
	t.Helper()
	data, err := os.ReadFile(repoRoot + "/events/tenant-created-entry.json")
	if err != nil {
		t.Fatal(err)
	}
	var entries []putEventsEntry
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&entries); err != nil {
		t.Fatalf("events/tenant-created-entry.json: %v", err)
	}
	if len(entries) != 1 {
		t.Fatalf("events/tenant-created-entry.json holds %d entries, want 1", len(entries))
	}
	return entries[0]
}

// TestTenantCreatedReachesQueue runs the template's rule on moto's EventBridge:
// the sample "Tenant Created" entry, put on a bus, arrives on the queue as the
// EventBridge envelope the worker parses (CONTRACT.md section 5, shape 3), and
// an event of another detail-type does not.
func TestTenantCreatedReachesQueue(t *testing.T) {
	tpl, err := loadTemplate(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	rule, ok := tpl.Resources["TenantCreatedRule"]
	if !ok {
		t.Fatal("template has no TenantCreatedRule")
	}
	pattern, err := json.Marshal(rule.Properties["EventPattern"])
	if err != nil {
		t.Fatal(err)
	}
	entry := readTenantCreatedEntry(t)
	var detail struct {
		TenantID string `json:"tenant_id"`
	}
	if err := json.Unmarshal([]byte(entry.Detail), &detail); err != nil || !uuidPattern.MatchString(detail.TenantID) {
		t.Fatalf("events/tenant-created-entry.json Detail %q: want {\"tenant_id\": \"<uuid>\"} (%v)", entry.Detail, err)
	}

	endpoint := testkit.NewMoto(t).Endpoint
	cfg := testkit.MotoConfig(t, endpoint)
	eb := eventbridge.NewFromConfig(cfg)
	sq := sqs.NewFromConfig(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	const busName = "acronis-mfa-tenants"
	if _, err := eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String(busName)}); err != nil {
		t.Fatalf("CreateEventBus: %v", err)
	}
	q, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("enforce")})
	if err != nil {
		t.Fatalf("CreateQueue: %v", err)
	}
	attrs, err := sq.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatalf("GetQueueAttributes: %v", err)
	}
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{
		Name:         aws.String("tenant-created"),
		EventBusName: aws.String(busName),
		EventPattern: aws.String(string(pattern)),
		State:        ebtypes.RuleStateEnabled,
	}); err != nil {
		t.Fatalf("PutRule with the template's EventPattern %s: %v", pattern, err)
	}
	if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{
		Rule:         aws.String("tenant-created"),
		EventBusName: aws.String(busName),
		Targets:      []ebtypes.Target{{Id: aws.String("EnforceQueue"), Arn: aws.String(attrs.Attributes["QueueArn"])}},
	}); err != nil {
		t.Fatalf("PutTargets: %v", err)
	}

	other := entry
	other.DetailType = "Tenant Deleted"
	var reqs []ebtypes.PutEventsRequestEntry
	for _, e := range []putEventsEntry{other, entry} {
		reqs = append(reqs, ebtypes.PutEventsRequestEntry{
			EventBusName: aws.String(busName), // the sample holds a placeholder for the stack's output
			Source:       aws.String(e.Source),
			DetailType:   aws.String(e.DetailType),
			Detail:       aws.String(e.Detail),
		})
	}
	put, err := eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: reqs})
	if err != nil || put.FailedEntryCount != 0 {
		t.Fatalf("PutEvents: %v (failed entries: %+v)", err, put)
	}

	bodies := receiveAll(ctx, t, sq, aws.ToString(q.QueueUrl), 1, 20*time.Second)
	var env struct {
		Version    string          `json:"version"`
		ID         string          `json:"id"`
		DetailType string          `json:"detail-type"`
		Source     string          `json:"source"`
		Account    string          `json:"account"`
		Time       string          `json:"time"`
		Region     string          `json:"region"`
		Resources  []string        `json:"resources"`
		Detail     json.RawMessage `json:"detail"`
	}
	if err := json.Unmarshal([]byte(bodies[0]), &env); err != nil {
		t.Fatalf("queue body is not JSON: %v\n%s", err, bodies[0])
	}
	if env.Version != "0" || env.ID == "" || env.DetailType != "Tenant Created" || env.Source != entry.Source {
		t.Errorf("queue body is not the EventBridge envelope of the Tenant Created event:\n%s", bodies[0])
	}
	var got map[string]any
	if err := json.Unmarshal(env.Detail, &got); err != nil {
		t.Fatalf("detail is not an object (the worker reads detail.tenant_id): %v\n%s", err, bodies[0])
	}
	if !reflect.DeepEqual(got, map[string]any{"tenant_id": detail.TenantID}) {
		t.Errorf("detail = %v, want tenant_id %s", got, detail.TenantID)
	}

	// The sample worker event's shape 3 must be this envelope's shape, so that
	// `sam local invoke -e events/worker-batch.json` tests what EventBridge sends.
	var delivered map[string]any
	_ = json.Unmarshal([]byte(bodies[0]), &delivered)
	sample := sampleEnvelope(t)
	for _, k := range sortedKeys(delivered) {
		if _, ok := sample[k]; !ok {
			t.Errorf("events/worker-batch.json's EventBridge record lacks %q, which EventBridge delivers", k)
		}
	}
	// moto leaves out "account", which EventBridge itself sends; the sample may
	// hold any key of the real envelope.
	envelope := []string{"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
	for _, k := range sortedKeys(sample) {
		if !slices.Contains(envelope, k) {
			t.Errorf("events/worker-batch.json's EventBridge record has %q, which is not in an EventBridge event", k)
		}
	}

	// Only one message: the Tenant Deleted event did not match.
	if extra := receiveAll(ctx, t, sq, aws.ToString(q.QueueUrl), 0, 0); len(extra) != 0 {
		t.Errorf("the rule delivered events it should not match:\n%s", strings.Join(extra, "\n"))
	}
}

// receiveAll polls the queue until it holds want messages or the deadline
// passes, then takes what else arrives within one more short long-poll.
func receiveAll(ctx context.Context, t *testing.T, sq *sqs.Client, url string, want int, within time.Duration) []string {
	t.Helper()
	var bodies []string
	deadline := time.Now().Add(within)
	for {
		out, err := sq.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:            aws.String(url),
			MaxNumberOfMessages: 10,
			WaitTimeSeconds:     1,
		})
		if err != nil {
			t.Fatalf("ReceiveMessage: %v", err)
		}
		for _, m := range out.Messages {
			bodies = append(bodies, aws.ToString(m.Body))
		}
		if len(bodies) >= want && (want > 0 || len(out.Messages) == 0) {
			return bodies
		}
		if time.Now().After(deadline) {
			if want == 0 {
				return bodies
			}
			t.Fatalf("after %v the queue holds %d messages, want %d", within, len(bodies), want)
		}
	}
}

func sampleEnvelope(t *testing.T) map[string]any {
	t.Helper()
	for _, body := range workerSampleBodies(t) {
		var m map[string]any
		if json.Unmarshal([]byte(body), &m) == nil && m["detail-type"] != nil {
			return m
		}
	}
	t.Fatal("events/worker-batch.json has no EventBridge envelope record")
	return nil
}
