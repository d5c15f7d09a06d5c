package sweep

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"acronismfa/internal/acronis"
)

// ErrInvalidInput is wrapped by every failure to parse the invocation input;
// the wrapping message names the problem.
var ErrInvalidInput = errors.New("invalid sweep input")

// scheduledEvent is the detail-type of a classic EventBridge schedule rule.
const scheduledEvent = "Scheduled Event"

// Overrides are an ad-hoc run's changes to the configured sweep.
type Overrides struct {
	DryRun       *bool  // nil: DRY_RUN decides
	RootTenantID string // lowercased UUID; "": ROOT_TENANT_ID decides
}

// ParseInput reads the sweep's invocation input: empty, null or {} for a plain
// run; the bare overrides object {"dry_run": true, "root_tenant_id": "<uuid>"}
// that EventBridge Scheduler sends as its Input; or a classic schedule rule's
// event, recognised by "detail" and "detail-type", whose detail carries the
// overrides.
//
// Overrides are strict: an unknown key fails the invocation, because a typo
// such as "dryrun" would otherwise run a real sweep where a dry one was meant.
// So does an event whose detail-type is not "Scheduled Event": only a schedule
// rule should target the sweep, and another event routed here by mistake (say,
// every Tenant Created) must fail loudly rather than start a sweep of the whole
// tree each time. The envelope itself is AWS's, and nothing else in it is read.
func ParseInput(raw []byte) (Overrides, error) {
	if s := strings.Trim(string(raw), jsonSpace); s == "" || s == "null" {
		return Overrides{}, nil
	}
	obj, err := decodeObject(raw)
	if err != nil {
		return Overrides{}, invalidInput("input %v", err)
	}
	_, hasDetail := obj.values["detail"]
	_, hasType := obj.values["detail-type"]
	switch {
	case hasDetail && hasType:
		return parseEvent(obj)
	case hasDetail || hasType:
		return Overrides{}, invalidInput(`an EventBridge event needs both "detail" and "detail-type"`)
	}
	return parseOverrides(obj, "")
}

func parseEvent(obj jsonObject) (Overrides, error) {
	raw := obj.values["detail-type"]
	if kind := jsonKind(raw); kind != "a string" {
		return Overrides{}, invalidInput("detail-type must be a string, not %s", kind)
	}
	var detailType string
	// raw is a string token the decoder has already read, so this cannot fail.
	_ = json.Unmarshal(raw, &detailType)
	if detailType != scheduledEvent {
		return Overrides{}, invalidInput("detail-type %s is not %q: only a schedule should invoke the sweep", quoteShort(detailType), scheduledEvent)
	}
	detail, err := decodeObject(obj.values["detail"])
	if err != nil {
		return Overrides{}, invalidInput("detail %v", err)
	}
	return parseOverrides(detail, "detail.")
}

// parseOverrides reads the overrides from obj; prefix places the keys in the
// input for error text.
func parseOverrides(obj jsonObject, prefix string) (Overrides, error) {
	var o Overrides
	for _, k := range obj.keys {
		raw := obj.values[k]
		switch k {
		case "dry_run":
			if kind := jsonKind(raw); kind != "a boolean" {
				return Overrides{}, invalidInput("%sdry_run must be a boolean, not %s", prefix, kind)
			}
			dryRun := string(raw) == "true"
			o.DryRun = &dryRun
		case "root_tenant_id":
			if kind := jsonKind(raw); kind != "a string" {
				return Overrides{}, invalidInput("%sroot_tenant_id must be a string, not %s", prefix, kind)
			}
			var id string
			_ = json.Unmarshal(raw, &id) // a string token, as above
			if !acronis.ValidTenantID(id) {
				return Overrides{}, invalidInput("%sroot_tenant_id %s is not a UUID", prefix, quoteShort(id))
			}
			o.RootTenantID = strings.ToLower(id)
		default:
			return Overrides{}, invalidInput("unknown override %s: accepted are dry_run and root_tenant_id", quoteShort(prefix+k))
		}
	}
	return o, nil
}

func invalidInput(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidInput, fmt.Sprintf(format, args...))
}

// jsonSpace is the whitespace JSON allows between tokens.
const jsonSpace = " \t\r\n"

// jsonObject is a decoded JSON object: its members' raw values by key, and the keys
// in document order so that errors about them come out the same every time.
type jsonObject struct {
	keys   []string
	values map[string]json.RawMessage
}

// decodeObject decodes data as exactly one JSON object whose keys are all
// distinct, with nothing but whitespace after it. encoding/json's Unmarshal
// would quietly keep the last duplicate, so the members are walked with the
// decoder's token stream instead.
func decodeObject(data []byte) (jsonObject, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // a number is only ever named in an error; don't let 1e999 fail as a float
	tok, err := dec.Token()
	if err != nil {
		return jsonObject{}, syntaxError(err)
	}
	if tok != json.Delim('{') {
		return jsonObject{}, fmt.Errorf("must be a JSON object, not %s", tokenKind(tok))
	}
	obj := jsonObject{values: map[string]json.RawMessage{}}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return jsonObject{}, syntaxError(err)
		}
		// The decoder only yields a string in key position; anything else is an
		// error above. The check keeps a surprise from becoming a panic.
		key, ok := tok.(string)
		if !ok {
			return jsonObject{}, fmt.Errorf("is not valid JSON: %s where a key belongs", tokenKind(tok))
		}
		if _, dup := obj.values[key]; dup {
			return jsonObject{}, fmt.Errorf("has the key %s more than once", quoteShort(key))
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return jsonObject{}, syntaxError(err)
		}
		obj.keys = append(obj.keys, key)
		obj.values[key] = raw
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return jsonObject{}, syntaxError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return jsonObject{}, errors.New("has data after the JSON object")
	}
	return obj, nil
}

func syntaxError(err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("is not valid JSON: %v", err)
}

// tokenKind names the JSON type of a token from a decoder that uses UseNumber.
func tokenKind(tok json.Token) string {
	switch tok.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	}
	if tok == json.Delim('[') {
		return "an array"
	}
	return "an object"
}

// jsonKind names the JSON type of a raw value as the decoder produced it: valid
// JSON, starting at its first byte.
func jsonKind(raw json.RawMessage) string {
	switch raw[0] {
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	case '"':
		return "a string"
	case '[':
		return "an array"
	case '{':
		return "an object"
	}
	return "a number"
}

// quoteShort quotes untrusted text for an error message, cut so that a pasted blob
// cannot flood the log line.
func quoteShort(s string) string {
	const limit = 64
	if len(s) > limit {
		return fmt.Sprintf("%q...", s[:limit])
	}
	return fmt.Sprintf("%q", s)
}
