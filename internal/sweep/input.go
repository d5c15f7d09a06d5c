package sweep

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"acronismfa/internal/strictjson"
	"acronismfa/internal/tenant"
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
	// UpdatedWithin makes the run a watch run over the tenants created or
	// updated in the last so many minutes; 0 sweeps the whole tree.
	UpdatedWithin time.Duration
}

// maxWatchMinutes bounds updated_within_minutes: a day. A longer window is a
// full sweep's job.
const maxWatchMinutes = 1440

// ParseInput reads the sweep's invocation input: empty, null or {} for a plain
// run; the bare overrides object {"dry_run": true, "root_tenant_id": "<uuid>",
// "updated_within_minutes": 5} that EventBridge Scheduler sends as its Input; or a classic schedule rule's
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
	if s := strings.Trim(string(raw), strictjson.Space); s == "" || s == "null" {
		return Overrides{}, nil
	}
	obj, err := strictjson.DecodeObject(raw)
	if err != nil {
		return Overrides{}, invalidInput("input %v", err)
	}
	_, hasDetail := obj.Values["detail"]
	_, hasType := obj.Values["detail-type"]
	switch {
	case hasDetail && hasType:
		return parseEvent(obj)
	case hasDetail || hasType:
		return Overrides{}, invalidInput(`an EventBridge event needs both "detail" and "detail-type"`)
	}
	return parseOverrides(obj, "")
}

func parseEvent(obj strictjson.Object) (Overrides, error) {
	raw := obj.Values["detail-type"]
	if kind := strictjson.Kind(raw); kind != "a string" {
		return Overrides{}, invalidInput("detail-type must be a string, not %s", kind)
	}
	var detailType string
	// raw is a string token the decoder has already read, so this cannot fail.
	_ = json.Unmarshal(raw, &detailType)
	if detailType != scheduledEvent {
		return Overrides{}, invalidInput("detail-type %s is not %q: only a schedule should invoke the sweep", strictjson.Quote(detailType), scheduledEvent)
	}
	detail, err := strictjson.DecodeObject(obj.Values["detail"])
	if err != nil {
		return Overrides{}, invalidInput("detail %v", err)
	}
	return parseOverrides(detail, "detail.")
}

// parseOverrides reads the overrides from obj; prefix places the keys in the
// input for error text.
func parseOverrides(obj strictjson.Object, prefix string) (Overrides, error) {
	var o Overrides
	for _, k := range obj.Keys {
		raw := obj.Values[k]
		switch k {
		case "dry_run":
			if kind := strictjson.Kind(raw); kind != "a boolean" {
				return Overrides{}, invalidInput("%sdry_run must be a boolean, not %s", prefix, kind)
			}
			dryRun := string(raw) == "true"
			o.DryRun = &dryRun
		case "root_tenant_id":
			if kind := strictjson.Kind(raw); kind != "a string" {
				return Overrides{}, invalidInput("%sroot_tenant_id must be a string, not %s", prefix, kind)
			}
			var id string
			_ = json.Unmarshal(raw, &id) // a string token, as above
			var ok bool
			if o.RootTenantID, ok = tenant.ParseID(id); !ok {
				return Overrides{}, invalidInput("%sroot_tenant_id %s is not a UUID", prefix, strictjson.Quote(id))
			}
		case "updated_within_minutes":
			minutes, ok := wholeNumber(raw)
			if !ok || minutes < 1 || minutes > maxWatchMinutes {
				return Overrides{}, invalidInput("%supdated_within_minutes must be a whole number of minutes from 1 to %d, not %s",
					prefix, maxWatchMinutes, strictjson.Quote(string(raw)))
			}
			o.UpdatedWithin = time.Duration(minutes) * time.Minute
		default:
			return Overrides{}, invalidInput("unknown override %s: accepted are dry_run, root_tenant_id and updated_within_minutes", strictjson.Quote(prefix+k))
		}
	}
	return o, nil
}

// wholeNumber reads a JSON number written as digits alone: 5, not 5.0, 5e0
// or "5", so that what the operator wrote is what runs.
func wholeNumber(raw json.RawMessage) (int, bool) {
	if len(raw) == 0 || len(raw) > 4 {
		return 0, false
	}
	n := 0
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func invalidInput(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidInput, fmt.Sprintf(format, args...))
}
