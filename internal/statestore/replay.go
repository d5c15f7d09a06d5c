package statestore

import (
	"context"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Replay is the record of one verified webhook request, by its webhook-id:
// what was asked, and once answered, the answer.
type Replay struct {
	ID         string // the webhook-id
	Method     string
	Path       string
	BodySHA256 string // hex
	// Deadline is when the invocation answering the request ends: a record
	// still in progress after it was left by an invocation that died.
	Deadline time.Time
	Expires  time.Time // when the record is forgotten
	Done     bool
	Status   int    // the answer, once Done
	Body     string // the answer's body, once Done
}

// SameRequest reports whether r and o record the same method, path and body.
func (r Replay) SameRequest(o Replay) bool {
	return r.Method == o.Method && r.Path == o.Path && r.BodySHA256 == o.BodySHA256
}

const (
	pkReplayPrefix = "webhook#"
	skReplay       = "replay"
	phaseProgress  = "in_progress"
	phaseDone      = "done"
	// maxReplayBody bounds a stored answer; the webhook's answers are a few
	// hundred bytes, and an item holds at most 400 KB.
	maxReplayBody = 64 << 10
)

func (t *Table) replayKey(id string) map[string]types.AttributeValue {
	return t.key(pkReplayPrefix+id, skReplay)
}

const (
	beginCondition = "attribute_not_exists(#pk) OR #exp < :now_s OR (#phase = :progress AND #deadline < :now_ms)"
	finishUpdate   = "SET #phase = :done, #status = :status, #body = :body"
	// ownRequest holds while the request this invocation began is in progress.
	ownRequest = "#phase = :progress AND #deadline = :deadline"
)

// BeginReplay records a verified request before it is answered. It returns
// nil when the request is the first with its webhook-id (or the record before
// it expired, or was left in progress by an invocation past its deadline), and
// otherwise the record found, for the caller to compare and answer from.
func (t *Table) BeginReplay(ctx context.Context, r Replay) (*Replay, error) {
	for attempt := 0; ; attempt++ {
		now := t.Now()
		m := t.replayKey(r.ID)
		m["method"], m["path"], m["body_sha256"] = str(r.Method), str(r.Path), str(r.BodySHA256)
		m["phase"], m["deadline"], m[attrExpires] = str(phaseProgress), millis(r.Deadline), epoch(r.Expires)
		_, err := t.DB.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:                aws.String(t.Name),
			Item:                     m,
			ConditionExpression:      aws.String(beginCondition),
			ExpressionAttributeNames: namesIn(beginCondition),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":now_s": epoch(now), ":now_ms": millis(now), ":progress": str(phaseProgress),
			},
		})
		if err == nil {
			return nil, nil
		}
		if !conditionFailed(err) {
			return nil, t.fail("PutItem", err)
		}
		found, err := t.get(ctx, pkReplayPrefix+r.ID, skReplay)
		if err != nil {
			return nil, err
		}
		if found != nil {
			rec, err := DecodeReplay(found)
			if err != nil {
				return nil, t.fail("GetItem", err)
			}
			return &rec, nil
		}
		// Released between the two calls: this request may go first after all.
		if attempt == 1 {
			return nil, t.fail("PutItem", fmt.Errorf("the record of webhook-id %q keeps changing", r.ID))
		}
	}
}

// FinishReplay stores the answer of a request this invocation began.
func (t *Table) FinishReplay(ctx context.Context, r Replay, status int, body string) error {
	_, err := t.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(t.Name),
		Key:                      t.replayKey(r.ID),
		UpdateExpression:         aws.String(finishUpdate),
		ConditionExpression:      aws.String(ownRequest),
		ExpressionAttributeNames: namesIn(finishUpdate, ownRequest),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":done": str(phaseDone), ":status": num(int64(status)), ":body": str(body),
			":progress": str(phaseProgress), ":deadline": millis(r.Deadline),
		},
	})
	if err != nil {
		return t.fail("UpdateItem", err)
	}
	return nil
}

// ReleaseReplay forgets a request this invocation began, so that a retry of
// it is served afresh: for answers that ask the sender to retry.
func (t *Table) ReleaseReplay(ctx context.Context, r Replay) error {
	return t.delete(ctx, pkReplayPrefix+r.ID, skReplay, ownRequest,
		map[string]types.AttributeValue{":progress": str(phaseProgress), ":deadline": millis(r.Deadline)})
}

// DecodeReplay reads a replay record. Anyone who may write the table may write
// one, so every field is checked: an answer replayed to a caller must be one
// the webhook could have given.
func DecodeReplay(m map[string]types.AttributeValue) (Replay, error) {
	it := item{m: m}
	pk := it.str(attrPK)
	r := Replay{
		Method:     it.str("method"),
		Path:       it.str("path"),
		BodySHA256: it.str("body_sha256"),
		Deadline:   it.millis("deadline"),
		Expires:    time.Unix(it.num(attrExpires), 0).UTC(),
	}
	phase := it.str("phase")
	if it.err == nil {
		switch phase {
		case phaseProgress:
		case phaseDone:
			r.Done = true
			r.Status = int(it.num("answer_status"))
			r.Body = it.str("answer_body")
		default:
			it.fail("phase", `"in_progress" or "done"`)
		}
	}
	switch {
	case it.err != nil:
	case len(pk) <= len(pkReplayPrefix) || pk[:len(pkReplayPrefix)] != pkReplayPrefix:
		it.fail(attrPK, "webhook#<webhook-id>")
	case r.Method != http.MethodGet && r.Method != http.MethodPut:
		it.fail("method", "GET or PUT")
	case r.Done && (r.Status < 200 || r.Status > 599):
		it.fail("status", "an HTTP status from 200 to 599")
	case r.Done && (len(r.Body) > maxReplayBody || !utf8.ValidString(r.Body)):
		it.fail("body", "UTF-8 text of at most 64 KiB")
	}
	if it.err != nil {
		return Replay{}, fmt.Errorf("replay record: %w", it.err)
	}
	r.ID = pk[len(pkReplayPrefix):]
	return r, nil
}
