//go:build integration

package faults_test

import (
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
	t.Parallel()
	w := newWorld(t, testkit.AcronisOptions{Sim: sim.Options{ClientSecret: "first-" + rand.Text()}, Tree: &sim.TreeSpec{Seed: 8, Size: 150}})
	clientSecrets := []string{w.Sim.ClientSecret()}
	ids := []string{testkit.OffCustomer, testkit.Contoso, testkit.ContosoHoldings, testkit.Twin1, testkit.Twin2, testkit.Foldered}
	victim, key := testkit.Broken, w.key
	wh, wk, sw := w.start(t, config.Webhook, nil), w.start(t, config.Worker, nil), w.start(t, config.Sweep, nil)
	var tr transcript
	ctx := t.Context()

	answers := map[int]int{}
	call := func(req events.APIGatewayV2HTTPRequest) {
		resp, err := wh.webhook(ctx, req)
		tr.add(resp, err)
		answers[resp.StatusCode]++
	}
	put := func(id string) { call(w.request(http.MethodPut, id, `{"enabled": true}`)) }
	work := func(bodies ...string) {
		resp, err := wk.worker(ctx, testkit.SQSBatch(bodies...))
		tr.add(resp, err)
	}
	sweep := func() error {
		sum, err := sw.sweep(ctx, scheduled)
		tr.add(sum, err)
		return err
	}

	// Throttling and a tenant that always answers 500.
	w.Sim.SetFaults(sim.Faults{ThrottleEvery: 3, UnavailableEvery: 5, FailTenants: map[string]int{victim: http.StatusInternalServerError}})
	put(ids[0])
	call(w.request(http.MethodGet, ids[1], ""))
	put(victim)
	work(enforceMsg(ids[1]), enableMsg(victim), nameMsg("Excluded Child"))
	if err := sweep(); err != nil {
		t.Fatalf("sweep under throttling: %v", err)
	}
	w.Sim.SetFaults(sim.Faults{})

	// Tokens revoked mid-flight.
	w.Sim.ExpireTokens()
	call(w.request(http.MethodGet, ids[2], ""))
	w.Sim.ExpireTokens()
	work(enforceMsg(ids[2]))
	w.Sim.ExpireTokens()
	_ = sweep()

	// Credentials rotated in Secrets Manager and at Acronis.
	rotated := "rotated-" + rand.Text()
	clientSecrets = append(clientSecrets, rotated)
	putSecret(t, w.acronisSecret, testkit.CredentialsJSON(w.URL, w.Sim.ClientID(), rotated))
	w.Sim.SetClientSecret(rotated)
	w.Sim.ExpireTokens()
	put(ids[3])
	work(enforceMsg(ids[4]))
	_ = sweep()

	// Credentials rejected: Acronis has a secret that Secrets Manager lacks.
	unknown := "unknown-" + rand.Text()
	clientSecrets = append(clientSecrets, unknown)
	w.Sim.SetClientSecret(unknown)
	w.Sim.ExpireTokens()
	put(ids[5])
	work(enforceMsg(ids[5]))
	if err := sweep(); err == nil {
		t.Fatal("the sweep succeeded with rejected credentials")
	}

	// A malformed secret that holds a client secret.
	inMalformed := "malformed-" + rand.Text()
	clientSecrets = append(clientSecrets, inMalformed)
	createSecret(t, "malformed", `{"base_url": "`+w.URL+`", "client_id": "x", "client_secret": `+inMalformed+`}`)
	bad := w.start(t, config.Worker, map[string]string{"ACRONIS_SECRET_ID": "malformed"})
	resp, err := bad.worker(ctx, testkit.SQSBatch(enforceMsg(ids[5])))
	tr.add(resp, err)

	// Badly signed webhook requests. What a valid signature of each would have
	// been is as secret as the key: with it, anyone could send that request.
	wrongKey := []byte("wrong-" + rand.Text())
	var forged []string
	signedBad := func(mutate func(r *events.APIGatewayV2HTTPRequest)) {
		req := w.request(http.MethodPut, ids[5], `{"enabled": true}`)
		mutate(&req)
		ts, _ := strconv.ParseInt(req.Headers["webhook-timestamp"], 10, 64)
		forged = append(forged, strings.TrimPrefix(testkit.Sign(key, req.Headers["webhook-id"], time.Unix(ts, 0), []byte(req.Body)), "v1,"))
		call(req)
	}
	signedBad(func(r *events.APIGatewayV2HTTPRequest) {
		*r = testkit.WebhookRequest(wrongKey, time.Now(), http.MethodPut, ids[5], r.Body)
	})
	signedBad(func(r *events.APIGatewayV2HTTPRequest) { r.Body = `{"enabled": false}` })
	signedBad(func(r *events.APIGatewayV2HTTPRequest) { r.Headers["webhook-id"] += "x" })
	signedBad(func(r *events.APIGatewayV2HTTPRequest) {
		*r = testkit.WebhookRequest(key, time.Now().Add(-time.Hour), http.MethodPut, ids[5], r.Body)
	})
	signedBad(func(r *events.APIGatewayV2HTTPRequest) { r.Headers["webhook-signature"] = "v1,garbage v2,x" })
	signedBad(func(r *events.APIGatewayV2HTTPRequest) { delete(r.Headers, "webhook-signature") })

	// The run was as faulty as it claims.
	reqs := w.Sim.Requests()
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
	wire := w.Sim.Secrets()
	if len(wire) < 6 {
		t.Fatalf("only %d tokens and headers seen on the wire", len(wire))
	}
	for _, s := range wire {
		never = append(never, secret{"a token or Authorization header", s})
	}
	for _, k := range [][]byte{key, wrongKey} {
		never = append(never,
			secret{"a raw signing key", string(k)},
			secret{"a base64 signing key", base64.RawStdEncoding.EncodeToString(k)},
			secret{"a base64url signing key", base64.RawURLEncoding.EncodeToString(k)},
			secret{"a whsec_ signing key", testkit.WhSec(k)},
			secret{"a hex signing key", fmt.Sprintf("%x", k)},
		)
	}
	for _, sig := range forged {
		never = append(never, secret{"the valid signature of a rejected request", sig})
	}
	never = append(never, secret{"the key-derived MAC", fmt.Sprintf("%x", hmac.New(sha256.New, key).Sum(nil))})
	for _, s := range never {
		if i := strings.Index(out, s.value); i >= 0 {
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
