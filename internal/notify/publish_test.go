//go:build integration

package notify_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sns"

	"acronismfa/internal/notify"
	"acronismfa/internal/testkit"
)

// TestPublishReachesASubscriber publishes through moto's SNS to a subscribed
// queue, as an email or PSA subscription would receive it.
func TestPublishReachesASubscriber(t *testing.T) {
	m := testkit.NewMoto(t)
	cfg := testkit.MotoConfig(t, m.Endpoint)
	topic, err := testkit.NewTopic(t.Context(), cfg, "notices")
	if err != nil {
		t.Fatal(err)
	}
	p := &notify.Publisher{SNS: sns.NewFromConfig(cfg), TopicARN: topic.ARN}
	notice := notify.GraceStarted{TenantID: "t-1", TenantName: "Ünïcødé\nLtd", Deadline: time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC),
		UsersCount: 3, UsersWithoutTOTP: 2, Users: []notify.User{{ID: "u", Login: "ann", Email: "ann@example.com", Name: "Ann"}}, SweepID: "s"}
	if err := p.Publish(t.Context(), notice); err != nil {
		t.Fatal(err)
	}
	got, err := topic.Receive(t.Context(), 1, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(got[0].Message), &doc); err != nil {
		t.Fatalf("the subscriber's message is not the JSON document: %q", got[0].Message)
	}
	if doc["event"] != "grace_started" || doc["tenant_name"] != "Ünïcødé\nLtd" || got[0].Event != "grace_started" {
		t.Errorf("received %+v, document %v", got[0], doc)
	}
	if got[0].Subject != "MFA on ?n?c?d? Ltd from 2026-12-06: 2 users must set up TOTP" {
		t.Errorf("subject %q", got[0].Subject)
	}

	p.TopicARN = topic.ARN + "-gone"
	if err := p.Publish(t.Context(), notice); err == nil {
		t.Error("a publish to a topic that does not exist reported success")
	}
}
