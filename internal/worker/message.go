package worker

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"acronismfa/internal/strictjson"
	"acronismfa/internal/tenant"
)

// ErrInvalidMessage is wrapped by every parse failure; the wrapping message
// names the problem. Such a message can never succeed, but it is still reported
// as a batch item failure, so that it ends in the dead-letter queue rather than
// being dropped.
var ErrInvalidMessage = errors.New("invalid message")

// Message kinds.
const (
	KindSet     = "set"     // {"tenant_id", "enabled"}: set that state
	KindEnforce = "enforce" // {"tenant_id"}: enforce MFA_DESIRED_STATE
	KindEvent   = "event"   // an EventBridge event; its detail may carry enabled
)

// Length limits: tenant_name in characters, sweep_id in bytes.
const (
	maxNameLength    = 255
	maxSweepIDLength = 128
)

// Message is one parsed queue message: which tenant, and what to do with it.
type Message struct {
	TenantID   string // lowercased UUID; "" when the message names the tenant by TenantName only
	TenantName string // exact tenant name: resolved under the root tenant, or checked against TenantID
	Enabled    *bool  // nil: enforce MFA_DESIRED_STATE
	Kind       string // KindSet, KindEnforce or KindEvent
	EventID    string // the EventBridge event's id, logged when the message fails
	DetailType string // the EventBridge event's detail-type
	SweepID    string // the sweep that fanned this message out, if one did
}

// ParseMessage parses an SQS message body in one of the three shapes of
// docs/reference.md, Worker messages:
//
//	{"tenant_id": "<uuid>", "enabled": true|false}
//	{"tenant_id": "<uuid>"}
//	{"version": "0", "id": "…", "detail-type": "…", "source": "…", "detail": {"tenant_id": "…"}}
//
// tenant_name may stand for tenant_id anywhere; with both, the id decides and
// the name must be that tenant's. An object with both "detail" and "detail-type" is an EventBridge event,
// of any detail-type, since an operator may route more rules to the queue.
//
// The first two shapes are written by operators and by the sweep's fan-out, so
// they are strict: besides tenant_id, tenant_name and enabled only sweep_id is
// allowed, and any other key (a typo of "enabled" would otherwise quietly
// enforce the default) fails the message. An event's detail belongs to whoever
// publishes the event, for every consumer of it, so keys this worker does not
// read are ignored there; the ones it reads are checked just as strictly. The
// envelope is AWS's, and only id and detail-type are read from it. Duplicate
// keys fail the message at both levels, since parsers disagree on which wins.
func ParseMessage(body string) (Message, error) {
	if strings.Trim(body, strictjson.Space) == "" {
		return Message{}, invalidMessage("empty body")
	}
	obj, err := strictjson.DecodeObject([]byte(body))
	if err != nil {
		return Message{}, invalidMessage("body %v", err)
	}
	_, hasDetail := obj.Values["detail"]
	_, hasType := obj.Values["detail-type"]
	switch {
	case hasDetail && hasType:
		return parseEvent(obj)
	case hasDetail || hasType:
		return Message{}, invalidMessage(`an EventBridge event needs both "detail" and "detail-type"`)
	}
	for _, k := range obj.Keys {
		switch k {
		case "tenant_id", "tenant_name", "enabled", "sweep_id":
		default:
			return Message{}, invalidMessage("unknown field %s: accepted are tenant_id, tenant_name, enabled and sweep_id", strictjson.Quote(k))
		}
	}
	m, err := parseTarget(obj, "")
	if err != nil {
		return Message{}, err
	}
	m.Kind = KindEnforce
	if m.Enabled != nil {
		m.Kind = KindSet
	}
	if raw, ok := obj.Values["sweep_id"]; ok {
		if m.SweepID, err = parseString("sweep_id", raw); err != nil {
			return Message{}, err
		}
		// The id rides along on every audit line of the message, so it is bounded;
		// a sweep id is a short identifier such as an invocation's request id.
		if m.SweepID == "" || len(m.SweepID) > maxSweepIDLength {
			return Message{}, invalidMessage("sweep_id must be 1 to %d bytes long", maxSweepIDLength)
		}
	}
	return m, nil
}

func parseEvent(obj strictjson.Object) (Message, error) {
	var (
		m   Message
		err error
	)
	if m.DetailType, err = parseString("detail-type", obj.Values["detail-type"]); err != nil {
		return Message{}, err
	}
	if m.DetailType == "" {
		return Message{}, invalidMessage("detail-type is empty")
	}
	if raw, ok := obj.Values["id"]; ok {
		if m.EventID, err = parseString("id", raw); err != nil {
			return Message{}, err
		}
	}
	detail, err := strictjson.DecodeObject(obj.Values["detail"])
	if err != nil {
		return Message{}, invalidMessage("detail %v", err)
	}
	t, err := parseTarget(detail, "detail.")
	if err != nil {
		return Message{}, err
	}
	m.TenantID, m.TenantName, m.Enabled, m.Kind = t.TenantID, t.TenantName, t.Enabled, KindEvent
	return m, nil
}

// parseTarget reads tenant_id or tenant_name, and enabled, from obj; prefix
// places the keys in the message for error text.
func parseTarget(obj strictjson.Object, prefix string) (Message, error) {
	var m Message
	rawID, hasID := obj.Values["tenant_id"]
	rawName, hasName := obj.Values["tenant_name"]
	if !hasID && !hasName {
		return Message{}, invalidMessage("%stenant_id or %stenant_name is required", prefix, prefix)
	}
	// With both, the id decides and the name is checked against that tenant:
	// provisioning systems often send both.
	if hasID {
		id, err := parseString(prefix+"tenant_id", rawID)
		if err != nil {
			return Message{}, err
		}
		var ok bool
		if m.TenantID, ok = tenant.ParseID(id); !ok {
			return Message{}, invalidMessage("%stenant_id %s is not a UUID", prefix, strictjson.Quote(id))
		}
	}
	if hasName {
		name, err := parseString(prefix+"tenant_name", rawName)
		if err != nil {
			return Message{}, err
		}
		// The name is matched exactly, so it is not trimmed; a name of nothing
		// but spaces can only be a mistake.
		if strings.TrimSpace(name) == "" {
			return Message{}, invalidMessage("%stenant_name is empty", prefix)
		}
		if n := utf8.RuneCountInString(name); n > maxNameLength {
			return Message{}, invalidMessage("%stenant_name is %d characters long, over %d", prefix, n, maxNameLength)
		}
		m.TenantName = name
	}
	if raw, ok := obj.Values["enabled"]; ok {
		if kind := strictjson.Kind(raw); kind != "a boolean" {
			return Message{}, invalidMessage("%senabled must be a boolean, not %s", prefix, kind)
		}
		enabled := string(raw) == "true"
		m.Enabled = &enabled
	}
	return m, nil
}

func parseString(name string, raw json.RawMessage) (string, error) {
	if kind := strictjson.Kind(raw); kind != "a string" {
		return "", invalidMessage("%s must be a string, not %s", name, kind)
	}
	var s string
	// raw is a string token the decoder has already read, so this cannot fail.
	_ = json.Unmarshal(raw, &s)
	return s, nil
}

func invalidMessage(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidMessage, fmt.Sprintf(format, args...))
}
