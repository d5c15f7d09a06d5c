package acronis

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	apiPrefix = "/api/2"
	// maxAnswer bounds a success body. A page of 5000 tenants is a few MiB; the
	// bound only stops a runaway answer from exhausting a Lambda's memory.
	maxAnswer = 64 << 20
	// maxErrorAnswer bounds an error body, which is read only for its code and message.
	maxErrorAnswer = 64 << 10
	// maxRetryAfter caps the wait a server may ask for. It is longer than any
	// Lambda invocation, so it changes no outcome; it keeps absurd values from
	// overflowing a time.Duration.
	maxRetryAfter = time.Hour
)

// Options tune a Client. The zero value is ready for production.
type Options struct {
	HTTPClient  *http.Client                                     // default: a client with sane timeouts that does not follow redirects
	Now         func() time.Time                                 // default time.Now; used for token expiry and Retry-After dates
	Sleep       func(ctx context.Context, d time.Duration) error // default: a timer that returns ctx.Err() early
	MaxAttempts int                                              // per request, default 4 (1 + 3 retries)
	BaseDelay   time.Duration                                    // default 250ms, doubled per attempt, full jitter
	MaxDelay    time.Duration                                    // default 5s
	Logger      *slog.Logger                                     // default: discard; debug lines on retries only, never secrets
	// MaxInFlight bounds the HTTP requests sent at once, token calls included;
	// 0 means no bound. A sweep sets it to SWEEP_CONCURRENCY so that listing,
	// confirming and writing together never exceed what the operator allowed.
	MaxInFlight int
}

// Client talks to one Acronis data center on behalf of one API client. It is safe
// for concurrent use and meant to live across warm Lambda invocations, so that its
// access token is reused.
type Client struct {
	src         CredentialSource
	http        *http.Client
	now         func() time.Time
	sleep       func(context.Context, time.Duration) error
	maxAttempts int
	baseDelay   time.Duration
	maxDelay    time.Duration
	log         *slog.Logger

	requests  atomic.Int64
	throttled atomic.Int64
	failures  atomic.Int64

	// renewing is held by the one caller fetching a token. It is a channel rather
	// than a mutex so that callers waiting for that token can give up when their
	// own context ends.
	renewing chan struct{}
	// inflight holds a token per request being sent, nil without a bound.
	inflight chan struct{}

	mu        sync.Mutex // guards tok and ownTenant; never held across I/O
	tok       *token
	ownTenant string
}

// New returns a client that takes its credentials, and with them the data center
// URL, from src.
func New(src CredentialSource, opts Options) *Client {
	c := &Client{
		src:         src,
		http:        opts.HTTPClient,
		now:         opts.Now,
		sleep:       opts.Sleep,
		maxAttempts: opts.MaxAttempts,
		baseDelay:   opts.BaseDelay,
		maxDelay:    opts.MaxDelay,
		log:         opts.Logger,
		renewing:    make(chan struct{}, 1),
	}
	if opts.MaxInFlight > 0 {
		c.inflight = make(chan struct{}, opts.MaxInFlight)
	}
	if c.http == nil {
		c.http = defaultHTTPClient()
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.sleep == nil {
		c.sleep = sleep
	}
	if c.maxAttempts <= 0 {
		c.maxAttempts = 4
	}
	if c.baseDelay <= 0 {
		c.baseDelay = 250 * time.Millisecond
	}
	if c.maxDelay <= 0 {
		c.maxDelay = 5 * time.Second
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c
}

func defaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	// A sweep keeps several requests in flight to the one data center; with the
	// default of 2 idle connections per host most of them would be re-dialled.
	t.MaxIdleConnsPerHost = 64
	t.ResponseHeaderTimeout = 30 * time.Second
	return &http.Client{
		Transport: t,
		// Ends a stuck attempt, so that it is retried, even when the caller's
		// context has no deadline.
		Timeout: 2 * time.Minute,
		// The API never redirects; following one would replay a PUT or a token
		// request to wherever the redirect points.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Stats returns the traffic since the client was made.
func (c *Client) Stats() Stats {
	return Stats{Requests: c.requests.Load(), Throttled: c.throttled.Load(), Errors: c.failures.Load()}
}

// request is one API operation, rebuilt for every attempt.
type request struct {
	op          string // route template, for errors and logs
	tenantID    string
	method      string
	path        string // below /api/2, every id already escaped
	query       url.Values
	body        []byte
	contentType string
	emptyOK     bool // a 2xx without a body is a success
}

func (r request) fail(class error) *Error {
	return &Error{Op: r.op, TenantID: r.tenantID, Class: class}
}

// ended is the error of a request whose context ended; it wraps ctx.Err() so
// that callers can tell a deadline from a cancellation.
func (r request) ended(ctx context.Context, cause error) *Error {
	e := r.fail(ErrDeadline)
	e.Err = cause
	if err := ctx.Err(); err != nil {
		e.Err = err
	}
	return e
}

func (r request) build(ctx context.Context, base string) (*http.Request, error) {
	u := base + apiPrefix + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	return req, nil
}

// call runs an API request with the current access token and decodes its answer.
func call[T any](ctx context.Context, c *Client, r request) (T, error) {
	out, _, err := callMaybeEmpty[T](ctx, c, r)
	return out, err
}

// callMaybeEmpty is call for a request whose success may come without a body,
// which it reports as empty; for any other request an empty answer is an
// unreadable one. A 401 means the token was revoked or expired early: it is
// replaced once and the request sent once more.
func callMaybeEmpty[T any](ctx context.Context, c *Client, r request) (out T, empty bool, err error) {
	decode := func(body io.Reader) error {
		br := bufio.NewReader(body)
		if _, err := br.Peek(1); err == io.EOF && r.emptyOK {
			empty = true
			return nil
		}
		var v T
		if err := json.NewDecoder(br).Decode(&v); err != nil {
			return err
		}
		out, empty = v, false
		return nil
	}
	for renewed := false; ; renewed = true {
		t, err := c.token(ctx)
		if err != nil {
			return out, false, err
		}
		e := c.exchange(ctx, t.base, r, t.authorize, decode)
		if e == nil {
			return out, empty, nil
		}
		if e.Status != http.StatusUnauthorized || renewed {
			return out, false, e
		}
		c.log.DebugContext(ctx, "acronis token rejected, renewing it", "op", r.op)
		c.invalidate(t)
	}
}

// exchange sends r until it gets a final answer, the retry budget is spent, or
// the next wait would outlast ctx. decode reads a 2xx body; its failure is an
// unreadable answer and is retried like a 5xx.
func (c *Client) exchange(ctx context.Context, base string, r request, authorize func(*http.Request), decode func(io.Reader) error) *Error {
	for attempt := 1; ; attempt++ {
		e, retry, asked := c.attempt(ctx, base, r, authorize, decode)
		if e == nil || !retry || attempt >= c.maxAttempts {
			return e
		}
		// A server that names the wait, even "Retry-After: 0", knows better
		// than a guess.
		wait := e.RetryAfter
		if !asked {
			wait = c.backoff(attempt)
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return e
		}
		c.log.DebugContext(ctx, "acronis retry", "op", r.op, "tenant_id", r.tenantID,
			"attempt", attempt, "status", e.Status, "wait", wait, "error", e.Error())
		if wait == 0 {
			continue
		}
		if err := c.sleep(ctx, wait); err != nil {
			return r.ended(ctx, err)
		}
	}
}

// attempt sends r once and reports whether a failure is worth another attempt
// and whether the answer said when to make it (Retry-After, kept in RetryAfter).
func (c *Client) attempt(ctx context.Context, base string, r request, authorize func(*http.Request), decode func(io.Reader) error) (*Error, bool, bool) {
	req, err := r.build(ctx, base)
	if err != nil {
		e := r.fail(ErrUpstream)
		e.Err = err
		return e, false, false
	}
	authorize(req)
	if c.inflight != nil {
		select {
		case c.inflight <- struct{}{}:
		case <-ctx.Done():
			return r.ended(ctx, ctx.Err()), false, false
		}
		// Deferred before the body is discarded, so released after it: the
		// server is done with the request only once its answer is read.
		defer func() { <-c.inflight }()
	}
	c.requests.Add(1)
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return r.ended(ctx, err), false, false
		}
		c.failures.Add(1)
		e := r.fail(ErrUpstream)
		// The URL adds nothing to Op and TenantID and would only lengthen the message.
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err
		}
		e.Err = err
		return e, true, false
	}
	defer discard(resp.Body)

	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		err := decode(io.LimitReader(resp.Body, maxAnswer))
		if err == nil {
			return nil, false, false
		}
		if ctx.Err() != nil {
			return r.ended(ctx, err), false, false
		}
		c.failures.Add(1)
		e := r.fail(ErrUpstream)
		e.Status = resp.StatusCode
		e.Message = "unreadable answer"
		e.Err = err
		return e, true, false
	}

	e := r.fail(classify(resp.StatusCode))
	e.Status = resp.StatusCode
	e.Code, e.Message = parseErrorBody(io.LimitReader(resp.Body, maxErrorAnswer))
	ra, hasRA := parseRetryAfter(resp.Header.Get("Retry-After"), c.now())
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable && hasRA:
		c.throttled.Add(1)
		e.Class = ErrThrottled
		e.RetryAfter = ra
		return e, true, hasRA
	case resp.StatusCode >= 500:
		c.failures.Add(1)
		return e, true, false
	}
	return e, false, false
}

// backoff is exponential with full jitter, so that callers throttled together do
// not come back together.
func (c *Client) backoff(attempt int) time.Duration {
	limit := c.maxDelay
	if attempt <= 32 {
		if d := c.baseDelay << (attempt - 1); d > 0 && d < limit {
			limit = d
		}
	}
	return rand.N(limit + 1)
}

// discard drains what is left of a body, within reason, so that the connection
// can be reused.
func discard(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxErrorAnswer))
	_ = body.Close()
}

func classify(status int) error {
	switch status {
	case http.StatusUnauthorized:
		return ErrUnauthorized
	case http.StatusForbidden:
		return ErrNotAllowed
	case http.StatusNotFound, http.StatusGone:
		return ErrNotFound
	case http.StatusTooManyRequests:
		return ErrThrottled
	}
	switch {
	case status >= 500:
		return ErrUpstream
	case status >= 400:
		// 400, 405, 409, 415, 422 and any other refusal of the request itself.
		return ErrBadRequest
	default:
		// 1xx and 3xx are no answer this client can use.
		return ErrUpstream
	}
}

// parseErrorBody reads the platform shape {"error": {"code": 1005, "message": …}}
// and the OAuth shape {"error": "invalid_client", "error_description": …}.
func parseErrorBody(r io.Reader) (code, message string) {
	var body struct {
		Error       json.RawMessage `json:"error"`
		Description string          `json:"error_description"`
	}
	if json.NewDecoder(r).Decode(&body) != nil || len(body.Error) == 0 {
		return "", ""
	}
	var oauth string
	if json.Unmarshal(body.Error, &oauth) == nil {
		return oauth, body.Description
	}
	var platform struct {
		Code    any    `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body.Error, &platform) != nil {
		return "", ""
	}
	switch v := platform.Code.(type) {
	case float64:
		code = strconv.FormatFloat(v, 'f', -1, 64)
	case string:
		code = v
	}
	return code, platform.Message
}

// parseRetryAfter reads delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		return time.Duration(min(s, int64(maxRetryAfter/time.Second))) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter), true
	}
	return 0, false
}
