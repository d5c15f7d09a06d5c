//go:build integration

package stack

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"acronismfa/internal/tenant"
	"acronismfa/internal/testkit"
)

// TestTenantCreatedReachesQueue runs the template's rule on moto's EventBridge
// with events/tenant-created-entry.json, the entry an operator hands to `aws
// events put-events --entries file://...`: put on a bus, it arrives on the
// queue as the EventBridge envelope the worker parses (docs/reference.md,
// Worker messages), the envelope events/worker-batch.json holds; an event of
// another detail-type does not arrive.
func TestTenantCreatedReachesQueue(t *testing.T) {
	var entries []struct{ EventBusName, Source, DetailType, Detail string }
	data, err := testkit.ReadEvent("tenant-created-entry.json")
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&entries); err != nil || len(entries) != 1 {
		t.Fatalf("events/tenant-created-entry.json: %v; want one entry", err)
	}
	entry := entries[0]
	var detail map[string]any
	if err := json.Unmarshal([]byte(entry.Detail), &detail); err != nil || len(detail) != 1 || !tenant.ValidID(str(detail["tenant_id"])) {
		t.Fatalf("events/tenant-created-entry.json Detail %q: want {\"tenant_id\": \"<uuid>\"} (%v)", entry.Detail, err)
	}
	if entry.Source != "provisioning.example" || entry.EventBusName == "" {
		t.Errorf("entry %+v: want Source provisioning.example and an EventBusName placeholder", entry)
	}
	tpl, err := loadTemplate(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	pattern, err := json.Marshal(tpl.Resources["TenantCreatedRule"].Properties["EventPattern"])
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cfg, err := testkit.NewMoto(t).Config(ctx)
	if err != nil {
		t.Fatal(err)
	}
	eb, sq := eventbridge.NewFromConfig(cfg), sqs.NewFromConfig(cfg)
	const bus, rule = "acronis-mfa-tenants", "tenant-created"
	if _, err := eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String(bus)}); err != nil {
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
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(rule), EventBusName: aws.String(bus),
		EventPattern: aws.String(string(pattern)), State: ebtypes.RuleStateEnabled}); err != nil {
		t.Fatalf("PutRule with the template's EventPattern %s: %v", pattern, err)
	}
	if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(rule), EventBusName: aws.String(bus),
		Targets: []ebtypes.Target{{Id: aws.String("EnforceQueue"), Arn: aws.String(attrs.Attributes["QueueArn"])}}}); err != nil {
		t.Fatalf("PutTargets: %v", err)
	}
	var reqs []ebtypes.PutEventsRequestEntry
	for _, detailType := range []string{"Tenant Deleted", entry.DetailType} {
		reqs = append(reqs, ebtypes.PutEventsRequestEntry{ // the sample's bus is a placeholder for the stack's output
			EventBusName: aws.String(bus), Source: aws.String(entry.Source), DetailType: aws.String(detailType), Detail: aws.String(entry.Detail)})
	}
	if put, err := eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: reqs}); err != nil || put.FailedEntryCount != 0 {
		t.Fatalf("PutEvents: %v (failed entries: %+v)", err, put)
	}

	// Poll until the matching event arrives; then one more long poll finds
	// nothing else, since the Tenant Deleted event does not match.
	var bodies []string
	for empty := 0; empty < 1 || len(bodies) == 0; {
		out, err := sq.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatalf("ReceiveMessage with %d messages received: %v", len(bodies), err)
		}
		for _, m := range out.Messages {
			bodies = append(bodies, aws.ToString(m.Body))
		}
		if len(out.Messages) == 0 && len(bodies) > 0 {
			empty++
		}
	}
	if len(bodies) != 1 {
		t.Fatalf("the rule delivered %d events, want only the Tenant Created one:\n%s", len(bodies), strings.Join(bodies, "\n"))
	}
	var delivered map[string]any
	if err := json.Unmarshal([]byte(bodies[0]), &delivered); err != nil {
		t.Fatalf("queue body is not JSON: %v\n%s", err, bodies[0])
	}
	if delivered["version"] != "0" || str(delivered["id"]) == "" || delivered["detail-type"] != "Tenant Created" ||
		delivered["source"] != entry.Source || !maps.Equal(asMap(delivered["detail"]), detail) {
		t.Errorf("queue body is not the EventBridge envelope of the Tenant Created event with detail %v:\n%s", detail, bodies[0])
	}

	// The sample worker event's envelope must be this one's shape, so that
	// `sam local invoke -e events/worker-batch.json` tests what EventBridge
	// sends. moto leaves out "account", which EventBridge itself sends.
	var batch struct{ Records []struct{ Body string } }
	if data, err = testkit.ReadEvent("worker-batch.json"); err == nil {
		err = json.Unmarshal(data, &batch)
	}
	if err != nil {
		t.Fatalf("events/worker-batch.json: %v", err)
	}
	sample := map[string]any{}
	for _, r := range batch.Records {
		if m := map[string]any{}; json.Unmarshal([]byte(r.Body), &m) == nil && m["detail-type"] != nil {
			sample = m
		}
	}
	for _, k := range slices.Sorted(maps.Keys(delivered)) {
		if _, ok := sample[k]; !ok {
			t.Errorf("events/worker-batch.json's EventBridge record lacks %q, which EventBridge delivers", k)
		}
	}
	envelope := []string{"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
	for _, k := range slices.Sorted(maps.Keys(sample)) {
		if !slices.Contains(envelope, k) {
			t.Errorf("events/worker-batch.json's EventBridge record has %q, which is not in an EventBridge event", k)
		}
	}
}
