package acronis

import (
	"errors"
	"fmt"
	"time"
)

// Error classes. Every error the client returns matches exactly one of them with
// errors.Is, and all triggers map them the same way (HTTP status, batch failure,
// sweep bucket).
var (
	// ErrNotFound: no such tenant, or no tenant of that name.
	ErrNotFound = errors.New("not found")
	// ErrNotAllowed: the API client may not do this (403), or the tenant kind
	// inherits its MFA setting.
	ErrNotAllowed = errors.New("not allowed")
	// ErrBadRequest: Acronis refused the request as malformed (400, 405, 409, 415),
	// or the caller asked for something that cannot be answered (ambiguous name).
	ErrBadRequest = errors.New("bad request")
	// ErrUnauthorized: Acronis rejected the credentials, even after a re-read.
	ErrUnauthorized = errors.New("credentials rejected")
	// ErrThrottled: 429 or 503 past the retry budget; see RetryAfter.
	ErrThrottled = errors.New("throttled")
	// ErrUpstream: 5xx, a transport failure or an unreadable answer past the retry budget.
	ErrUpstream = errors.New("upstream failure")
	// ErrDeadline: the context ended before Acronis answered.
	ErrDeadline = errors.New("deadline exceeded")
)

// Error is a classified failure of one API operation.
type Error struct {
	Op         string        // "GET /tenants/{id}/mfa/status": the route, never a full URL or header
	TenantID   string        // the tenant concerned, where there is one
	Status     int           // HTTP status, 0 when no answer came
	Code       string        // platform error code ("1005") or OAuth error ("invalid_client")
	Message    string        // the API's own message
	RetryAfter time.Duration // from Retry-After on 429/503
	Class      error         // one of the Err* classes above
	Err        error         // the cause, for transport failures
}

func (e *Error) Error() string {
	msg := "acronis " + e.Op
	if e.TenantID != "" {
		msg += " tenant " + e.TenantID
	}
	msg += ": " + e.Class.Error()
	if e.Status != 0 {
		msg += fmt.Sprintf(" (HTTP %d", e.Status)
		if e.Code != "" {
			msg += ", code " + e.Code
		}
		msg += ")"
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap lets errors.Is match both the class and the cause.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Class}
	}
	return []error{e.Class, e.Err}
}

// Retryable reports whether the same request may succeed later: throttling and
// upstream failures are; everything else is final.
func Retryable(err error) bool {
	return errors.Is(err, ErrThrottled) || errors.Is(err, ErrUpstream)
}

// RetryAfter returns the wait Acronis asked for, if it did.
func RetryAfter(err error) (time.Duration, bool) {
	var e *Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		return e.RetryAfter, true
	}
	return 0, false
}
