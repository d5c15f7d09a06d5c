package faults_test

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"acronismfa/internal/acronis"
	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/config"
	"acronismfa/internal/testkit"
)

// transcript collects everything the functions hand back besides their stdout:
// response bodies and headers, batch responses, summaries and errors.
type transcript struct{ strings.Builder }

func (tr *transcript) add(v any, err error) {
	fmt.Fprintf(tr, "%+v\n", v)
	if b, jerr := json.Marshal(v); jerr == nil {
		tr.Write(b)
		tr.WriteByte('\n')
	}
	if err != nil {
		fmt.Fprintf(tr, "%v\n%+v\n%#v\n%s\n", err, err, err, err.Error())
	}
}

// TestNoSecretInAnyOutput runs the three functions, built through app.Init
// with their secrets in Secrets Manager, through throttling, 500s, revoked
// tokens, a credential rotation, rejected credentials, a malformed secret and
// badly signed webhook requests, and then looks for every credential, token and
// signing key in all they wrote or returned.
func TestNoSecretInAnyOutput(t *testing.T) {
	st := newStack(t, sim.Options{ClientSecret: "first-" + rand.Text()}, &sim.TreeSpec{Seed: 8, Size: 150})
	clientSecrets := []string{st.sim.ClientSecret()}
	ids := addCustomers(t, st.sim, 8, "disabled")
	victim := ids[7]
	name, _ := st.sim.Get(ids[6])
	wh, wk, sw := st.start(config.Webhook, nil), st.start(config.Worker, nil), st.start(config.Sweep, nil)
	var tr transcript
	ctx := t.Context()

	put := func(id string, key []byte) events.APIGatewayV2HTTPResponse {
		resp, err := wh.webhook().Handle(ctx, signed(key, http.MethodPut, id, `{"enabled": true}`))
		tr.add(resp, err)
		return resp
	}
	get := func(id string) events.APIGatewayV2HTTPResponse {
		resp, err := wh.webhook().Handle(ctx, signed(st.key, http.MethodGet, id, ""))
		tr.add(resp, err)
		return resp
	}
	work := func(bodies ...string) events.SQSEventResponse {
		resp, err := wk.worker().Handle(ctx, batch(bodies...))
		tr.add(resp, err)
		return resp
	}
	sweep := func() error {
		sum, err := sw.sweep().Handle(ctx, json.RawMessage(`{}`))
		tr.add(sum, err)
		return err
	}
	answers := map[int]int{}
	count := func(resp events.APIGatewayV2HTTPResponse) { answers[resp.StatusCode]++ }

	// Throttling and a tenant that always answers 500.
	st.sim.SetFaults(sim.Faults{ThrottleEvery: 3, UnavailableEvery: 5, FailTenants: map[string]int{victim: http.StatusInternalServerError}})
	count(put(ids[0], st.key))
	count(get(ids[1]))
	count(put(victim, st.key))
	work(enforceMessage(ids[1]), setMessage(victim, true), `{"tenant_name": "`+name.Name+`"}`)
	if err := sweep(); err != nil {
		t.Fatalf("sweep under throttling: %v", err)
	}
	st.sim.SetFaults(sim.Faults{})

	// Tokens revoked mid-flight.
	st.sim.ExpireTokens()
	count(get(ids[2]))
	st.sim.ExpireTokens()
	work(enforceMessage(ids[2]))
	st.sim.ExpireTokens()
	_ = sweep()

	// Credentials rotated in Secrets Manager and at Acronis.
	rotated := "rotated-" + rand.Text()
	clientSecrets = append(clientSecrets, rotated)
	st.putSecret(st.acronisSecret, st.credentialsJSON(rotated))
	st.sim.SetClientSecret(rotated)
	st.sim.ExpireTokens()
	count(put(ids[3], st.key))
	work(enforceMessage(ids[4]))
	_ = sweep()

	// Credentials rejected: Acronis has a secret that Secrets Manager lacks.
	unknown := "unknown-" + rand.Text()
	clientSecrets = append(clientSecrets, unknown)
	st.sim.SetClientSecret(unknown)
	st.sim.ExpireTokens()
	count(put(ids[5], st.key))
	work(enforceMessage(ids[5]))
	if err := sweep(); err == nil {
		t.Fatal("the sweep succeeded with rejected credentials")
	}

	// A malformed secret that holds a client secret.
	inMalformed := "malformed-" + rand.Text()
	clientSecrets = append(clientSecrets, inMalformed)
	st.createSecret("malformed", `{"base_url": "`+st.url+`", "client_id": "x", "client_secret": `+inMalformed+`}`)
	bad := st.start(config.Worker, map[string]string{"ACRONIS_SECRET_ID": "malformed"})
	resp, err := bad.worker().Handle(ctx, batch(enforceMessage(ids[5])))
	tr.add(resp, err)

	// Badly signed webhook requests. What a valid signature of each would have
	// been is as secret as the key: with it, anyone could send that request.
	wrongKey := []byte("wrong-" + rand.Text())
	forged := []string{}
	signedBad := func(mutate func(r *events.APIGatewayV2HTTPRequest)) {
		req := signed(st.key, http.MethodPut, ids[5], `{"enabled": true}`)
		mutate(&req)
		ts, _ := strconv.ParseInt(req.Headers["webhook-timestamp"], 10, 64)
		forged = append(forged, strings.TrimPrefix(testkit.Sign(st.key, req.Headers["webhook-id"], time.Unix(ts, 0), []byte(req.Body)), "v1,"))
		resp, err := wh.webhook().Handle(ctx, req)
		tr.add(resp, err)
		count(resp)
	}
	signedBad(func(r *events.APIGatewayV2HTTPRequest) { *r = signed(wrongKey, http.MethodPut, ids[5], r.Body) })
	signedBad(func(r *events.APIGatewayV2HTTPRequest) { r.Body = `{"enabled": false}` })
	signedBad(func(r *events.APIGatewayV2HTTPRequest) { r.Headers["webhook-id"] += "x" })
	signedBad(func(r *events.APIGatewayV2HTTPRequest) {
		old := time.Now().Add(-time.Hour)
		r.Headers["webhook-timestamp"] = strconv.FormatInt(old.Unix(), 10)
		r.Headers["webhook-signature"] = testkit.Sign(st.key, r.Headers["webhook-id"], old, []byte(r.Body))
	})
	signedBad(func(r *events.APIGatewayV2HTTPRequest) { r.Headers["webhook-signature"] = "v1,garbage v2,x" })
	signedBad(func(r *events.APIGatewayV2HTTPRequest) { delete(r.Headers, "webhook-signature") })

	// The run was as faulty as it claims.
	reqs := st.sim.Requests()
	codes := statuses(reqs)
	stale, refusedCreds := 0, 0
	for _, r := range reqs {
		if r.Stale {
			stale++
		}
		if strings.HasSuffix(r.Path, "/idp/token") && r.Status == http.StatusUnauthorized {
			refusedCreds++
		}
	}
	if codes[http.StatusTooManyRequests] == 0 || codes[http.StatusServiceUnavailable] == 0 || codes[http.StatusInternalServerError] == 0 ||
		stale == 0 || refusedCreds < 2 || answers[http.StatusUnauthorized] != 6 || answers[http.StatusBadGateway]+answers[http.StatusTooManyRequests] < 2 {
		t.Fatalf("the run was not faulty enough to prove anything: Acronis answers %v, %d stale tokens, %d refused credentials, webhook answers %v",
			codes, stale, refusedCreds, answers)
	}
	out := wh.out.String() + wk.out.String() + sw.out.String() + bad.out.String() + tr.String()
	if !strings.Contains(out, "acronis retry") || !strings.Contains(out, "HTTP 500") || !strings.Contains(out, "credentials rejected") {
		t.Fatal("the output lacks the retry, 500 and rejection lines: nothing was logged to leak")
	}

	// Everything that must never be written.
	type secret struct{ what, value string }
	var never []secret
	for _, s := range clientSecrets {
		never = append(never, secret{"a client secret", s})
	}
	for _, s := range st.spy.Secrets() {
		never = append(never, secret{"a token or Authorization header", s})
	}
	for _, key := range [][]byte{st.key, wrongKey} {
		never = append(never,
			secret{"a raw signing key", string(key)},
			secret{"a base64 signing key", base64.RawStdEncoding.EncodeToString(key)},
			secret{"a base64url signing key", base64.RawURLEncoding.EncodeToString(key)},
			secret{"a whsec_ signing key", whsec(key)},
			secret{"a hex signing key", fmt.Sprintf("%x", key)},
		)
	}
	for _, sig := range forged {
		never = append(never, secret{"the valid signature of a rejected request", sig})
	}
	never = append(never, secret{"the key-derived MAC", fmt.Sprintf("%x", hmac.New(sha256.New, st.key).Sum(nil))})
	if len(st.spy.Secrets()) < 6 {
		t.Fatalf("only %d tokens and headers seen on the wire", len(st.spy.Secrets()))
	}
	for _, s := range never {
		if strings.Contains(out, s.value) {
			i := strings.Index(out, s.value)
			t.Errorf("the output holds %s: ...%s...", s.what, out[max(i-120, 0):i])
		}
	}
	lower := strings.ToLower(out)
	for _, word := range []string{"authorization", "bearer", "basic "} {
		if i := strings.Index(lower, word); i >= 0 {
			t.Errorf("the output mentions %q, a request header: ...%s...", word, out[max(i-120, 0):min(i+60, len(out))])
		}
	}
}

// TestErrorsDoNotEchoRequestHeaders checks that an Acronis failure surfaced by
// each trigger wraps the API's answer, not the request that caused it.
func TestErrorsDoNotEchoRequestHeaders(t *testing.T) {
	r := newRig(t, sim.Options{}, nil)
	id := addCustomers(t, r.sim, 1, "disabled")[0]
	r.sim.SetFaults(sim.Faults{FailTenants: map[string]int{id: http.StatusBadGateway}})
	f := r.direct(config.Sweep, nil, acronis.Options{})
	sum, err := f.sweep().Handle(context.Background(), json.RawMessage(`{}`))
	if err != nil || sum.Failed != 1 {
		t.Fatalf("sweep: %+v, %v", sum, err)
	}
	lines := byTenant(audits(t, f.out.String()))[id]
	if len(lines) != 1 || !strings.Contains(lines[0].Error, "HTTP 502") || !strings.Contains(lines[0].Error, "/mfa/status") {
		t.Fatalf("the failure's audit line does not carry the API's answer: %+v", lines)
	}
	for _, word := range []string{"Authorization", "Bearer", "Accept", "Content-Type", "127.0.0.1"} {
		if strings.Contains(lines[0].Error, word) {
			t.Errorf("the error %q echoes the request (%s)", lines[0].Error, word)
		}
	}
}
