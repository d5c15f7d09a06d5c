package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"acronismfa/internal/acronis"
	"acronismfa/internal/enforce"
	"acronismfa/internal/policy"
	"acronismfa/internal/statestore"
	"acronismfa/internal/telemetry"
	"acronismfa/internal/tenant"
)

// Acronis is the part of the Acronis client the webhook uses beyond enforcement.
type Acronis interface {
	MFAStatus(ctx context.Context, id string) (tenant.MFAStatus, error)
	Stats() acronis.Stats
}

// Keys returns the signing keys; fresh asks for a re-read past any cache, for a
// signature that no cached key matches (a key added since the cache was filled).
type Keys func(ctx context.Context, fresh bool) ([][]byte, error)

// Handler serves GET and PUT /tenants/{tenant_id}/mfa (docs/reference.md, Webhook).
type Handler struct {
	Keys      Keys
	Acronis   Acronis
	Enforcer  *enforce.Enforcer
	Logger    *slog.Logger
	Namespace string    // of the EMF metrics
	Out       io.Writer // where the EMF document goes: stdout in Lambda
	Now       func() time.Time
	// Reserve is kept free before the invocation deadline to answer 504 rather
	// than be cut off by Lambda.
	Reserve time.Duration
	// Replays records every verified webhook-id across instances (with
	// STATE_TABLE); nil: each instance remembers its own.
	Replays Replays

	guard replayGuard
}

// Replays is the state table's side of the webhook: one record per verified
// webhook-id (docs/reference.md, Replay records).
type Replays interface {
	BeginReplay(ctx context.Context, r statestore.Replay) (*statestore.Replay, error)
	FinishReplay(ctx context.Context, r statestore.Replay, status int, body string) error
	ReleaseReplay(ctx context.Context, r statestore.Replay) error
}

// apiError is an answer other than 200.
type apiError struct {
	status     int
	code       string
	message    string
	retryAfter time.Duration
	cause      error // for the log line; the caller sees only message
}

// Handle answers one API Gateway HTTP API (payload 2.0) request.
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	start := h.Now()
	metrics := telemetry.NewMetrics(h.Namespace, telemetry.Webhook)
	before := h.Acronis.Stats()
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-h.Reserve))
		defer cancel()
	}

	resp, cause := h.answer(ctx, req, metrics)

	enforce.CountRequests(metrics, h.Acronis.Stats().Sub(before))
	if err := metrics.Write(h.Out, h.Now()); err != nil {
		h.Logger.ErrorContext(ctx, "write metrics", "error", err)
	}
	attrs := []any{"method", req.RequestContext.HTTP.Method, "path", req.RawPath,
		"status", resp.StatusCode, "duration_ms", h.Now().Sub(start).Milliseconds()}
	if cause != nil {
		// A GET has no audit line: this is where its failure's cause is told.
		attrs = append(attrs, "error", cause.Error())
	}
	h.Logger.InfoContext(ctx, "webhook request", attrs...)
	return resp, nil
}

// answer verifies the request, then serves it once per webhook-id: a repeat
// of a request already answered gets that answer again.
func (h *Handler) answer(ctx context.Context, req events.APIGatewayV2HTTPRequest, metrics *telemetry.Metrics) (events.APIGatewayV2HTTPResponse, error) {
	body, err := DecodeBody(req.Body, req.IsBase64Encoded)
	if err != nil {
		return respond(enforce.Status{}, badRequest(err))
	}
	if apiErr := h.verify(ctx, req.Headers, body); apiErr != nil {
		return respond(enforce.Status{}, apiErr)
	}
	if h.Replays == nil {
		return respond(h.serve(ctx, req, body, metrics))
	}
	sum := sha256.Sum256(body)
	now := h.Now()
	rec := statestore.Replay{ID: header(req.Headers, "webhook-id"), Method: req.RequestContext.HTTP.Method, Path: req.RawPath,
		BodySHA256: hex.EncodeToString(sum[:]), Deadline: now.Add(replayInProgress), Expires: now.Add(replayWindow)}
	if deadline, ok := ctx.Deadline(); ok {
		// Handle shortened ctx by the reserve; the record lapses with the
		// invocation itself.
		rec.Deadline = deadline.Add(h.Reserve)
	}
	found, err := h.Replays.BeginReplay(ctx, rec)
	switch {
	case err != nil:
		h.Logger.ErrorContext(ctx, "replay record not written", "error", err)
		return respond(enforce.Status{}, &apiError{http.StatusServiceUnavailable, "unavailable",
			"the webhook's state table could not be read or written; nothing was sent to Acronis", time.Second, err})
	case found != nil && !found.SameRequest(rec):
		h.Logger.WarnContext(ctx, "webhook signature rejected", "reason", "webhook-id already used for another request")
		return respond(enforce.Status{}, errUnauthorized)
	case found != nil && !found.Done:
		return respond(enforce.Status{}, &apiError{http.StatusConflict, "request_in_progress",
			"a request with this webhook-id is being answered right now; retry it later", time.Second, nil})
	case found != nil:
		return replayed(found.Status, found.Body), nil
	}
	resp, cause := respond(h.serve(ctx, req, body, metrics))
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		// An answer that asks for a retry is not kept: the retry is served afresh.
		err = h.Replays.ReleaseReplay(ctx, rec)
	} else {
		err = h.Replays.FinishReplay(ctx, rec, resp.StatusCode, resp.Body)
	}
	if err != nil {
		h.Logger.ErrorContext(ctx, "replay record not updated", "error", err)
	}
	return resp, cause
}

func (h *Handler) serve(ctx context.Context, req events.APIGatewayV2HTTPRequest, body []byte, metrics *telemetry.Metrics) (enforce.Status, *apiError) {
	method := req.RequestContext.HTTP.Method
	route, err := ParseRoute(method, req.RawPath)
	if err != nil {
		return enforce.Status{}, badRequest(err)
	}
	if h.Replays == nil && !h.guard.admit(header(req.Headers, "webhook-id"), method+" "+route.TenantID, h.Now()) {
		h.Logger.WarnContext(ctx, "webhook signature rejected", "reason", "webhook-id already used for another route")
		return enforce.Status{}, errUnauthorized
	}
	if !route.Set {
		if len(strings.TrimSpace(string(body))) != 0 {
			return enforce.Status{}, &apiError{http.StatusBadRequest, "invalid_request", "GET takes no body", 0, nil}
		}
		st, err := h.Acronis.MFAStatus(ctx, route.TenantID)
		if err != nil {
			return enforce.Status{}, acronisError(err)
		}
		return enforce.StatusOf(route.TenantID, st), nil
	}

	enabled, err := ParseSetBody(body)
	if err != nil {
		return enforce.Status{}, badRequest(err)
	}
	intent := policy.Intent{Enable: enabled, Origin: policy.ByCaller}
	_, refused := h.Enforcer.Rules.Preflight(intent)
	res := h.Enforcer.EnforceID(ctx, enforce.IDRequest{ID: route.TenantID, Intent: intent})
	enforce.Audit(ctx, h.Logger, res, "", h.Enforcer.Rules.DryRun)
	enforce.Count(metrics, res)
	switch {
	case refused:
		return enforce.Status{}, &apiError{http.StatusForbidden, "disable_not_allowed",
			"disabling MFA is not allowed: the operator has not set MFA_ALLOW_DISABLE=true", 0, nil}
	case res.Err != nil:
		return enforce.Status{}, acronisError(res.Err)
	}
	switch res.Decision.Outcome {
	case policy.Change, policy.WouldChange, policy.Compliant:
	default:
		return enforce.Status{}, &apiError{http.StatusConflict, "update_not_allowed", res.Decision.Reason, 0, nil}
	}
	return res.Answer(h.Enforcer.Rules.DryRun), nil
}

// respond makes the response of a status or an error, and what caused the error.
func respond(st enforce.Status, apiErr *apiError) (events.APIGatewayV2HTTPResponse, error) {
	if apiErr != nil {
		return errorResponse(apiErr), apiErr.cause
	}
	return jsonResponse(http.StatusOK, st), nil
}

// verify checks the signature with the cached keys, and once more with freshly
// read keys when that fails, so that a key added by rotation works at once (the
// key source limits how often a fresh read really reaches Secrets Manager).
func (h *Handler) verify(ctx context.Context, headers map[string]string, body []byte) *apiError {
	id, ts, sig := header(headers, "webhook-id"), header(headers, "webhook-timestamp"), header(headers, "webhook-signature")
	var err error
	for _, fresh := range []bool{false, true} {
		keys, keyErr := h.Keys(ctx, fresh)
		if keyErr != nil {
			h.Logger.ErrorContext(ctx, "read webhook signing keys", "error", keyErr)
			if ctx.Err() != nil {
				return &apiError{http.StatusGatewayTimeout, "upstream_timeout", "the webhook signing keys were not read in time", 0, keyErr}
			}
			return &apiError{http.StatusBadGateway, "upstream_error", "the webhook signing keys could not be read", 0, keyErr}
		}
		if err = Verify(keys, id, ts, sig, body, h.Now()); err == nil {
			return nil
		}
	}
	h.Logger.WarnContext(ctx, "webhook signature rejected", "reason", err.Error())
	return errUnauthorized
}

var errUnauthorized = &apiError{http.StatusUnauthorized, "unauthorized", "the request signature could not be verified", 0, nil}

// header finds a header by name whatever its case: API Gateway lowercases them,
// but sam local and tests may not.
func header(headers map[string]string, name string) string {
	if v, ok := headers[name]; ok {
		return v
	}
	for k, v := range headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

func badRequest(err error) *apiError {
	code := "invalid_request"
	if errors.Is(err, ErrInvalidTenantID) {
		code = "invalid_tenant_id"
	}
	return &apiError{http.StatusBadRequest, code, err.Error(), 0, nil}
}

// acronisError maps an Acronis failure to the status and code of docs/reference.md, Webhook.
func acronisError(err error) *apiError {
	var ae *acronis.Error
	errors.As(err, &ae)
	switch {
	case errors.Is(err, enforce.ErrBusy):
		return &apiError{http.StatusServiceUnavailable, "unavailable", "another run is changing this tenant's MFA right now; retry shortly", time.Second, err}
	case errors.Is(err, statestore.ErrUnavailable):
		return &apiError{http.StatusServiceUnavailable, "unavailable", "the state table could not be read or written; nothing was changed", time.Second, err}
	case errors.Is(err, acronis.ErrNotFound):
		return &apiError{http.StatusNotFound, "tenant_not_found", "Acronis has no such tenant, or the API client cannot see it", 0, err}
	case errors.Is(err, acronis.ErrNotAllowed) && ae != nil && strings.HasPrefix(ae.Op, http.MethodPut+" "):
		return &apiError{http.StatusConflict, "update_not_allowed", "Acronis refused to change MFA for this tenant", 0, err}
	case errors.Is(err, acronis.ErrNotAllowed):
		return &apiError{http.StatusNotFound, "tenant_not_found", "Acronis has no such tenant, or the API client cannot see it", 0, err}
	case errors.Is(err, acronis.ErrThrottled):
		wait, _ := acronis.RetryAfter(err)
		return &apiError{http.StatusTooManyRequests, "rate_limited", "Acronis is throttling requests; retry later", max(wait, time.Second), err}
	case errors.Is(err, acronis.ErrDeadline):
		return &apiError{http.StatusGatewayTimeout, "upstream_timeout", "Acronis did not answer in time", 0, err}
	default:
		return &apiError{http.StatusBadGateway, "upstream_error", "Acronis failed: " + upstreamReason(err), 0, err}
	}
}

// upstreamReason says which kind of upstream failure without echoing details a
// caller should not see.
func upstreamReason(err error) string {
	switch {
	case errors.Is(err, acronis.ErrUnauthorized):
		return "the API client's credentials were rejected"
	case errors.Is(err, acronis.ErrBadRequest):
		return "the request was refused"
	default:
		return "error or unreadable answer"
	}
}

// replayed is a recorded answer, given again.
func replayed(status int, body string) events.APIGatewayV2HTTPResponse {
	return events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: map[string]string{"Content-Type": "application/json"}, Body: body}
}

func jsonResponse(status int, v any) events.APIGatewayV2HTTPResponse {
	body, _ := json.Marshal(v)
	return events.APIGatewayV2HTTPResponse{
		StatusCode: status,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       string(body),
	}
}

func errorResponse(e *apiError) events.APIGatewayV2HTTPResponse {
	type detail struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	resp := jsonResponse(e.status, struct {
		Error detail `json:"error"`
	}{detail{e.code, e.message}})
	if e.retryAfter > 0 {
		resp.Headers["Retry-After"] = strconv.Itoa(int((e.retryAfter + time.Second - 1) / time.Second))
	}
	return resp
}
