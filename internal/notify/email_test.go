package notify_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"acronismfa/internal/notify"
)

// snsInputs keeps what would have gone to SNS.
type snsInputs []*sns.PublishInput

func (s *snsInputs) Publish(_ context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	*s = append(*s, in)
	return &sns.PublishOutput{}, nil
}

// A notice is one SNS message with MessageStructure json: the JSON document
// for machines under "default", plain text for people under "email", and the
// event as a message attribute for filter policies.
func TestPublishedMessageStructure(t *testing.T) {
	var sent snsInputs
	p := &notify.Publisher{SNS: &sent, TopicARN: "arn:aws:sns:eu-west-1:123456789012:notices"}
	notice := notify.GraceStarted{TenantID: "t-1", TenantName: "Acme", Deadline: time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC),
		UsersCount: 60, UsersWithoutTOTP: 58, Users: []notify.User{{ID: "u", Login: "ann", Email: "ann@example.com", Name: "Ann"}},
		UsersTruncated: true, UsersNotListed: 54, SweepID: "s"}
	if err := p.Publish(t.Context(), notice); err != nil {
		t.Fatal(err)
	}
	in := sent[0]
	var msg map[string]string
	if err := json.Unmarshal([]byte(aws.ToString(in.Message)), &msg); err != nil || len(msg) != 2 || aws.ToString(in.MessageStructure) != "json" {
		t.Fatalf("message %s (structure %q, %v): want exactly default and email", aws.ToString(in.Message), aws.ToString(in.MessageStructure), err)
	}
	doc, _ := json.Marshal(notice)
	if msg["default"] != string(doc) {
		t.Errorf("default %s, want the document %s", msg["default"], doc)
	}
	email := msg["email"]
	for _, want := range []string{"Acme", "06 Dec 2026 04:00:00 UTC", "ann (Ann) <ann@example.com>", "… and 54 more."} {
		if !strings.Contains(email, want) {
			t.Errorf("email text lacks %q:\n%s", want, email)
		}
	}
	if strings.HasPrefix(strings.TrimSpace(email), "{") {
		t.Errorf("email is JSON, want plain text: %s", email)
	}
	if ev := in.MessageAttributes["event"]; aws.ToString(ev.StringValue) != "grace_started" || aws.ToString(ev.DataType) != "String" {
		t.Errorf("event attribute %+v", ev)
	}
}
