package testkit

// This file reads what a rollout leaves behind: the notices a subscriber of
// the topic receives and the notices recorded in the state table.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Notice is a notice document (docs/reference.md, Notices).
type Notice struct {
	Event            string          `json:"event"`
	TenantID         string          `json:"tenant_id"`
	TenantName       string          `json:"tenant_name"`
	Deadline         time.Time       `json:"deadline"`
	NotifiedAt       time.Time       `json:"notified_at"`
	UsersCount       int             `json:"users_count"`
	UsersWithoutTOTP int             `json:"users_without_totp"`
	Users            []NoticeUser    `json:"users"`
	UsersTruncated   bool            `json:"users_truncated"`
	Summary          json.RawMessage `json:"summary"`
	SweepID          string          `json:"sweep_id"`
	Subject          string          `json:"-"`
	Doc              string          `json:"-"` // the document as published
}

// NoticeUser is a user a grace_started notice names.
type NoticeUser struct {
	ID    string `json:"id"`
	Login string `json:"login"`
	Email string `json:"email"`
	Name  string `json:"name"`
}

// noticeFields are the fields of each notice document.
var noticeFields = map[string][]string{
	"grace_started":   {"event", "tenant_id", "tenant_name", "deadline", "users_count", "users_without_totp", "users", "users_truncated", "sweep_id"},
	"enforced":        {"event", "tenant_id", "tenant_name", "notified_at", "users_without_totp", "sweep_id"},
	"sweep_completed": {"event", "summary", "sweep_id"},
}

// Notices decodes what the topic's subscriber received and checks each against
// docs/reference.md, Notices: exactly the fields of its event, the message
// attribute event naming it, a printable ASCII subject under 100 characters.
// It returns them by event, in the order received.
func Notices(published []Published) (map[string][]Notice, error) {
	out := map[string][]Notice{}
	for _, p := range published {
		var fields map[string]json.RawMessage
		n := Notice{Subject: p.Subject, Doc: p.Message}
		if err := json.Unmarshal([]byte(p.Message), &fields); err != nil {
			return out, fmt.Errorf("notice %q is not a JSON object: %w", p.Message, err)
		}
		if err := json.Unmarshal([]byte(p.Message), &n); err != nil {
			return out, fmt.Errorf("notice %s: %w", p.Message, err)
		}
		want, known := noticeFields[n.Event]
		if got := slices.Sorted(maps.Keys(fields)); !known || !slices.Equal(got, slices.Sorted(slices.Values(want))) {
			return out, fmt.Errorf("notice fields %v, want those of its event %q (%v): %s", got, n.Event, want, p.Message)
		}
		if p.Event != n.Event {
			return out, fmt.Errorf("message attribute event %q on a %s notice", p.Event, n.Event)
		}
		if len(p.Subject) == 0 || len(p.Subject) >= 100 || !printableASCII(p.Subject) {
			return out, fmt.Errorf("subject %q is not printable ASCII under 100 characters", p.Subject)
		}
		out[n.Event] = append(out[n.Event], n)
	}
	return out, nil
}

// ReceiveNotices takes n notices off the topic's subscriber and decodes them
// with Notices.
func (s *Stack) ReceiveNotices(ctx context.Context, n int) (map[string][]Notice, error) {
	published, err := s.Topic.Receive(ctx, n, 10*time.Second)
	if err != nil {
		return nil, err
	}
	return Notices(published)
}

// CheckDigest checks that byEvent holds one sweep_completed digest, of the
// sweep s, whose summary is s's answer.
func CheckDigest(byEvent map[string][]Notice, s SweepSummary) error {
	d := byEvent["sweep_completed"]
	var got, want bytes.Buffer
	if len(d) != 1 || d[0].SweepID != s.SweepID || json.Compact(&got, d[0].Summary) != nil || json.Compact(&want, s.JSON) != nil ||
		got.String() != want.String() {
		return fmt.Errorf("%d sweep_completed notices (%v), want one of sweep %s with its summary %s", len(d), d, s.SweepID, s.JSON)
	}
	return nil
}

func printableASCII(s string) bool {
	for _, c := range []byte(s) {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// TenantIDs are the tenants of notices, sorted.
func TenantIDs(notices []Notice) []string {
	var ids []string
	for _, n := range notices {
		ids = append(ids, n.TenantID)
	}
	slices.Sort(ids)
	return ids
}

// StoredNotices reads the rollout notices in the state table: when each was
// given, by tenant id (zero while a run still holds the claim).
func (s *Stack) StoredNotices(ctx context.Context) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	p := dynamodb.NewQueryPaginator(dynamodb.NewFromConfig(s.AWS), &dynamodb.QueryInput{
		TableName:                 aws.String(StateTableName),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "notice"}},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("query the notices in %s: %w", StateTableName, err)
		}
		for _, item := range page.Items {
			sk, _ := item["sk"].(*types.AttributeValueMemberS)
			if sk == nil {
				return nil, fmt.Errorf("notice item without a string sk: %v", item)
			}
			var at time.Time
			if ms, ok := item["noticed_at"].(*types.AttributeValueMemberN); ok {
				n, err := strconv.ParseInt(ms.Value, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("notice %s: noticed_at %q: %w", sk.Value, ms.Value, err)
				}
				at = time.UnixMilli(n)
			}
			out[sk.Value] = at
		}
	}
	return out, nil
}
