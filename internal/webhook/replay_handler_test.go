package webhook_test

import (
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"acronismfa/internal/policy"
)

// A signed request captured in flight cannot be replayed against another
// tenant: the signature does not cover the path, the guard does.
func TestHandleRefusesReplayOnAnotherRoute(t *testing.T) {
	k := newHook(t, policy.Rules{})
	captured := put(whOff, `{"enabled": true}`)
	if r := k.serve(t, t.Context(), captured); r.resp.StatusCode != 200 {
		t.Fatalf("the original request: %d %s", r.resp.StatusCode, r.resp.Body)
	}

	k.env.Sim.ResetRequests()
	replayed := with(captured, func(r *events.APIGatewayV2HTTPRequest) {
		r.RawPath = "/tenants/" + whLocked + "/mfa"
		r.RequestContext.HTTP.Path = r.RawPath
	})
	r := k.serve(t, t.Context(), replayed)
	if r.resp.StatusCode != 401 {
		t.Fatalf("a replay on another tenant answered %d %s, want 401", r.resp.StatusCode, r.resp.Body)
	}
	if n := len(k.env.Sim.Requests()); n != 0 {
		t.Fatalf("the replay reached Acronis with %d requests", n)
	}

	// The sender's own retry of the message is the same route: accepted.
	if r := k.serve(t, t.Context(), captured); r.resp.StatusCode != 200 {
		t.Fatalf("a retry of the same message answered %d %s", r.resp.StatusCode, r.resp.Body)
	}

	// A GET's signature covers an empty body: it must not read another tenant either.
	read := get(whOn)
	if r := k.serve(t, t.Context(), read); r.resp.StatusCode != 200 {
		t.Fatalf("GET: %d", r.resp.StatusCode)
	}
	other := with(read, func(r *events.APIGatewayV2HTTPRequest) { r.RawPath = "/tenants/" + whOff + "/mfa" })
	if r := k.serve(t, t.Context(), other); r.resp.StatusCode != 401 {
		t.Fatalf("a replayed GET on another tenant answered %d", r.resp.StatusCode)
	}
}
