package statestore_test

import (
	"net/http"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"acronismfa/internal/statestore"
)

// FuzzDecodeReplay: whatever a replay item holds, DecodeReplay either refuses
// it or returns an answer the webhook could have given.
func FuzzDecodeReplay(f *testing.F) {
	f.Add("webhook#msg_1", "PUT", "/tenants/x/mfa", "done", "1767225600000", "1767226200", "200", `{"changed":true}`, true)
	f.Add("webhook#msg_1", "GET", "/tenants/x/mfa", "in_progress", "1767225600000", "1767226200", "", "", false)
	f.Add("notice", "DELETE", "", "done", "-1", "x", "99", "\xff", true)
	f.Add("webhook#", "PUT", "/", "done", "1e3", "0", "600", "", true)
	f.Fuzz(func(t *testing.T, pk, method, path, phase, deadline, expires, status, body string, withAnswer bool) {
		m := map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: "replay"},
			"method": &types.AttributeValueMemberS{Value: method}, "path": &types.AttributeValueMemberS{Value: path},
			"body_sha256": &types.AttributeValueMemberS{Value: "ab"}, "phase": &types.AttributeValueMemberS{Value: phase},
			"deadline": &types.AttributeValueMemberN{Value: deadline}, "expires_at": &types.AttributeValueMemberN{Value: expires},
		}
		if withAnswer {
			m["answer_status"] = &types.AttributeValueMemberN{Value: status}
			m["answer_body"] = &types.AttributeValueMemberS{Value: body}
		}
		r, err := statestore.DecodeReplay(m)
		if err != nil {
			return
		}
		switch {
		case r.ID == "" || "webhook#"+r.ID != pk:
			t.Fatalf("id %q from pk %q", r.ID, pk)
		case r.Method != http.MethodGet && r.Method != http.MethodPut:
			t.Fatalf("method %q accepted", r.Method)
		case r.Done && (r.Status < 200 || r.Status > 599 || !utf8.ValidString(r.Body)):
			t.Fatalf("answer %d %q accepted", r.Status, r.Body)
		case !r.Done && phase != "in_progress":
			t.Fatalf("phase %q read as in progress", phase)
		}
	})
}

func TestDecodeReplayNamesTheBadAttribute(t *testing.T) {
	_, err := statestore.DecodeReplay(map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "webhook#m"}, "method": &types.AttributeValueMemberS{Value: "PUT"},
		"path": &types.AttributeValueMemberS{Value: "/"}, "body_sha256": &types.AttributeValueMemberS{Value: ""},
		"phase": &types.AttributeValueMemberS{Value: "done"}, "deadline": &types.AttributeValueMemberN{Value: "1"},
		"expires_at": &types.AttributeValueMemberN{Value: "1"}, "answer_status": &types.AttributeValueMemberS{Value: "200"},
	})
	if err == nil || err.Error() != "replay record: attribute answer_status: want a number" {
		t.Fatalf("err = %v", err)
	}
}
