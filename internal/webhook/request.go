package webhook

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"acronismfa/internal/strictjson"
	"acronismfa/internal/tenant"
)

// MaxBodyBytes is the largest request body accepted, counted after base64
// decoding: {"enabled": true} needs seventeen bytes, so anything near this is not
// a request of ours.
const MaxBodyBytes = 64 << 10

// Request errors: ErrInvalidTenantID for a route whose tenant id is not a UUID,
// ErrInvalidRequest for everything else the caller got wrong. The wrapping
// message names the problem and is safe to return to the caller: it never
// echoes more than a short, quoted piece of the input.
var (
	ErrInvalidRequest  = errors.New("invalid request")
	ErrInvalidTenantID = errors.New("invalid tenant id")
)

// Route is a request's place in the API.
type Route struct {
	TenantID string // lowercased UUID
	Set      bool   // PUT: set the state from the body; otherwise GET: report it
}

// ParseRoute maps a request to GET or PUT /tenants/{tenant_id}/mfa.
//
// rawPath is API Gateway's rawPath, which carries the stage name when the API is
// not on the $default stage, and a custom domain's API mapping key; so one
// leading segment that is a valid stage name is allowed before /tenants. The
// rest must match exactly, case and all: no trailing slash, no empty segment, no
// percent-encoding anywhere (the id is hex and dashes, the other segments are
// fixed words), so ".." or "%2F" tricks can never reach a tenant id. A trailing
// slash is refused rather than tolerated so that logs, metrics and any path rule
// in front of the function see one spelling per route.
func ParseRoute(method, rawPath string) (Route, error) {
	var set bool
	switch method {
	case http.MethodGet:
	case http.MethodPut:
		set = true
	default:
		return Route{}, errNoRoute
	}
	path, ok := strings.CutPrefix(rawPath, "/")
	if !ok {
		return Route{}, errNoRoute
	}
	// Five parts are enough to tell a too-long path from a valid one, however
	// many slashes the path holds.
	segs := strings.SplitN(path, "/", 5)
	if len(segs) == 4 && validStage(segs[0]) {
		segs = segs[1:]
	}
	if len(segs) != 3 || segs[0] != "tenants" || segs[2] != "mfa" {
		return Route{}, errNoRoute
	}
	id, ok := tenant.ParseID(segs[1])
	if !ok {
		return Route{}, fmt.Errorf("%w: tenant_id in the path must be a UUID", ErrInvalidTenantID)
	}
	return Route{TenantID: id, Set: set}, nil
}

var errNoRoute = fmt.Errorf("%w: unknown route: the API has GET and PUT /tenants/{tenant_id}/mfa", ErrInvalidRequest)

// validStage reports whether s is a name API Gateway allows for a stage:
// 1 to 128 letters, digits, hyphens and underscores.
func validStage(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// DecodeBody returns the raw request body, base64-decoding it when API Gateway
// says it is encoded (it does so for content types it deems binary). The raw
// bytes are what the signature covers.
func DecodeBody(body string, isBase64 bool) ([]byte, error) {
	if !isBase64 {
		if len(body) > MaxBodyBytes {
			return nil, errTooLarge
		}
		return []byte(body), nil
	}
	// The encoded length is checked first so that an oversized body is refused
	// before anything is allocated for it; the padding of the last group lets a
	// body within that length still decode to a byte or two too many.
	if len(body) > base64.StdEncoding.EncodedLen(MaxBodyBytes) {
		return nil, errTooLarge
	}
	raw, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		return nil, fmt.Errorf("%w: body is marked base64 but is not valid base64", ErrInvalidRequest)
	}
	if len(raw) > MaxBodyBytes {
		return nil, errTooLarge
	}
	return raw, nil
}

var errTooLarge = fmt.Errorf("%w: body over 64 KiB", ErrInvalidRequest)

// ParseSetBody reads a PUT body: exactly one JSON object whose only member is
// "enabled", a boolean. It is stricter than encoding/json's Unmarshal, which
// takes the last of duplicate keys, matches keys case-insensitively and ignores
// unknown ones: a body that a proxy, a log reader or a later version of this code
// could read differently, or that holds a typo, is refused instead of guessed at.
func ParseSetBody(body []byte) (enabled bool, err error) {
	if strictjson.Blank(body) {
		return false, fmt.Errorf("%w: body required: {\"enabled\": true} or {\"enabled\": false}", ErrInvalidRequest)
	}
	obj, err := strictjson.DecodeObject(body)
	if err != nil {
		return false, fmt.Errorf("%w: body %v", ErrInvalidRequest, err)
	}
	for _, k := range obj.Keys {
		if k != "enabled" {
			return false, fmt.Errorf("%w: unknown field %s: the body has only \"enabled\"", ErrInvalidRequest, strictjson.Quote(k))
		}
	}
	raw, ok := obj.Values["enabled"]
	if !ok {
		return false, fmt.Errorf("%w: \"enabled\" is required", ErrInvalidRequest)
	}
	if kind := strictjson.Kind(raw); kind != "a boolean" {
		return false, fmt.Errorf("%w: \"enabled\" must be a boolean, not %s", ErrInvalidRequest, kind)
	}
	return string(raw) == "true", nil
}
