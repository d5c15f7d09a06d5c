//go:build integration

package webhook_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/app"
	"acronismfa/internal/config"
	"acronismfa/internal/testkit"
)

// replayStack is the webhook as production wires it, twice (two Lambda
// instances), sharing one state table in moto, which they reach through a
// proxy that counts their calls. An empty table leaves STATE_TABLE unset.
type replayStack struct {
	acr       *testkit.Acronis
	aws       *testkit.AWSProxy
	instances [2]app.Handler[events.APIGatewayV2HTTPRequest, events.APIGatewayV2HTTPResponse]
	outs      [2]*testkit.Output
}

func newReplayStack(t testing.TB, table string) *replayStack {
	t.Helper()
	s := &replayStack{acr: testkit.NewFixture(t, testkit.AcronisOptions{})}
	m := testkit.NewMoto(t)
	m.Setenv(t)
	s.aws = testkit.NewAWSProxy(t, m.Endpoint)
	t.Setenv("AWS_ENDPOINT_URL", s.aws.URL)
	st, err := testkit.NewStack(t.Context(), m, s.acr.CredentialsJSON(), keyA)
	if err != nil {
		t.Fatal(err)
	}
	if err := testkit.CreateStateTable(t.Context(), st.AWS, "state"); err != nil {
		t.Fatal(err)
	}
	env := st.Env("webhook", map[string]string{"STATE_TABLE": table})
	for i := range s.instances {
		s.outs[i] = testkit.NewOutput(nil)
		d, err := app.Init(t.Context(), config.Webhook, func(k string) string { return env[k] }, s.outs[i])
		if err != nil {
			t.Fatal(err)
		}
		s.instances[i] = app.Webhook(d)
	}
	return s
}

func (s *replayStack) call(t testing.TB, instance int, req events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	t.Helper()
	resp, err := s.instances[instance](t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestReplayRecordsAcrossInstances(t *testing.T) {
	s := newReplayStack(t, "state")
	req := testkit.WebhookRequest(keyA, time.Now(), http.MethodPut, testkit.OffCustomer, `{"enabled": true}`)
	first := s.call(t, 0, req)
	if first.StatusCode != http.StatusOK {
		t.Fatalf("first: %d %s", first.StatusCode, first.Body)
	}
	sent := len(s.acr.Sim.Requests())

	retry := s.call(t, 1, req)
	if retry.StatusCode != first.StatusCode || retry.Body != first.Body || len(s.acr.Sim.Requests()) != sent {
		t.Errorf("retry on the other instance: %d %s, %d Acronis requests; want the first answer again and none",
			retry.StatusCode, retry.Body, len(s.acr.Sim.Requests())-sent)
	}

	// The signature does not cover the path: the captured request, replayed
	// on another tenant's route, on an instance that never saw it. The
	// method and the body differ under the same webhook-id too.
	ts, _ := strconv.ParseInt(req.Headers["webhook-timestamp"], 10, 64)
	for name, replay := range map[string]events.APIGatewayV2HTTPRequest{
		"another route":  testkit.Reroute(req, testkit.Contoso),
		"another method": with(req, func(r *events.APIGatewayV2HTTPRequest) { r.RequestContext.HTTP.Method = http.MethodGet }),
		"another body, signed": with(req, func(r *events.APIGatewayV2HTTPRequest) {
			r.Body = `{"enabled": true }`
			r.Headers["webhook-signature"] = testkit.Sign(keyA, r.Headers["webhook-id"], time.Unix(ts, 0), []byte(r.Body))
		}),
	} {
		wantError(t, result{resp: s.call(t, 1, replay)}, http.StatusUnauthorized, "unauthorized")
		if n := len(s.acr.Sim.Requests()) - sent; n != 0 {
			t.Errorf("replay with %s: %d Acronis requests", name, n)
		}
	}
}

// Concurrent duplicates of one request, on both instances: exactly one
// reaches Acronis; the others get 409 request_in_progress or the first answer.
func TestReplayConcurrentDuplicates(t *testing.T) {
	s := newReplayStack(t, "state")
	req := testkit.WebhookRequest(keyA, time.Now(), http.MethodPut, testkit.Contoso, `{"enabled": true}`)
	const n = 8
	answers := make([]events.APIGatewayV2HTTPResponse, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { answers[i] = s.call(t, i%2, req) })
	}
	wg.Wait()
	if puts := s.acr.Sim.Count(http.MethodPut, "/mfa/status"); puts != 1 {
		t.Errorf("%d PUTs reached Acronis, want exactly 1", puts)
	}
	ok := 0
	for _, a := range answers {
		if a.StatusCode == http.StatusOK {
			ok++
		} else {
			wantError(t, result{resp: a}, http.StatusConflict, "request_in_progress")
		}
	}
	if ok == 0 {
		t.Errorf("nobody got the answer: %v", answers)
	}
}

// The table unreachable: 503 unavailable, nothing sent to Acronis.
func TestReplayTableDownFailsClosed(t *testing.T) {
	s := newReplayStack(t, "missing-table")
	resp := s.call(t, 0, testkit.WebhookRequest(keyA, time.Now(), http.MethodPut, testkit.OffCustomer, `{"enabled": true}`))
	var body struct{ Error struct{ Code string } }
	_ = json.Unmarshal([]byte(resp.Body), &body)
	if resp.StatusCode != http.StatusServiceUnavailable || body.Error.Code != "unavailable" || resp.Headers["Retry-After"] == "" {
		t.Errorf("%d %s %v", resp.StatusCode, resp.Body, resp.Headers)
	}
	if n := s.acr.Sim.Count(http.MethodPut, "/mfa/status") + s.acr.Sim.Count(http.MethodGet, "/mfa/status"); n != 0 {
		t.Errorf("%d requests reached Acronis", n)
	}
}

// An answer that asks for a retry is not kept: the retry is served afresh.
func TestReplayRetryableAnswerIsNotKept(t *testing.T) {
	s := newReplayStack(t, "state")
	req := testkit.WebhookRequest(keyA, time.Now(), http.MethodGet, testkit.OffCustomer, "")
	s.acr.Sim.SetFaults(sim.Faults{FailTenants: map[string]int{testkit.OffCustomer: http.StatusInternalServerError}})
	if resp := s.call(t, 0, req); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("first: %d %s", resp.StatusCode, resp.Body)
	}
	s.acr.Sim.SetFaults(sim.Faults{})
	if resp := s.call(t, 1, req); resp.StatusCode != http.StatusOK {
		t.Fatalf("retry: %d %s", resp.StatusCode, resp.Body)
	}
}

// A record that cannot be completed once the request is answered: the caller
// gets the answer all the same, an ERROR line says the record was not
// updated, and the record, left in progress until the invocation's deadline
// has passed, answers a retry 409, never a second change.
func TestReplayRecordNotCompleted(t *testing.T) {
	s := newReplayStack(t, "state")
	s.aws.Fail("DynamoDB_20120810.UpdateItem", testkit.AWSError{Status: http.StatusInternalServerError, Code: "InternalServerError"})
	req := testkit.WebhookRequest(keyA, time.Now(), http.MethodPut, testkit.OffCustomer, `{"enabled": true}`)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	first, err := s.instances[0](ctx, req)
	if err != nil || first.StatusCode != http.StatusOK {
		t.Fatalf("first: %d %s, %v", first.StatusCode, first.Body, err)
	}
	logged := false
	for _, l := range s.outs[0].JSON(0) {
		logged = logged || l["message"] == "replay record not updated" && l["level"] == "ERROR"
	}
	if !logged {
		t.Error("no ERROR line for the record not updated")
	}
	wantError(t, result{resp: s.call(t, 1, req)}, http.StatusConflict, "request_in_progress")
	if n := s.acr.Sim.Count(http.MethodPut, "/mfa/status"); n != 1 {
		t.Errorf("%d PUTs after the retry, want the first one only", n)
	}
}
