//go:build integration

package faults_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/config"
	"acronismfa/internal/secrets"
	"acronismfa/internal/testkit"
)

// lambdaDeadline is the deadline these tests give an invocation: Lambda always
// sets one, and it bounds the AWS SDK's own retries of an unreachable endpoint.
const lambdaDeadline = 3 * time.Second

// getSecretValue is the one Secrets Manager action the functions may call.
const getSecretValue = "secretsmanager.GetSecretValue"

// TestSecretsManagerFailures cold-starts each function, through app.Init as
// functions/*/main.go does, with Secrets Manager down or holding no or a bad
// secret: the webhook answers 502 upstream_error, the worker lists every
// message of the batch, the sweep fails loudly, and nothing reaches Acronis.
func TestSecretsManagerFailures(t *testing.T) {
	w := newWorld(t, testkit.AcronisOptions{})
	ids := []string{testkit.OffCustomer, testkit.Contoso, testkit.Foldered}
	// Not JSON (a trailing comma), with the real secret inside: the error must
	// say what is wrong without quoting it.
	createSecret(t, "acronis-not-json", strings.Replace(w.CredentialsJSON(), "}", ",}", 1))
	createSecret(t, "acronis-no-client-secret", fmt.Sprintf(`{"base_url": %q, "client_id": %q}`, w.URL, w.Sim.ClientID()))
	createSecret(t, "webhook-bad-key", `{"signing_keys": ["whsec_short"]}`)

	all := []config.Function{config.Webhook, config.Worker, config.Sweep}
	tests := []struct {
		name      string
		vars      map[string]string
		down      bool
		functions []config.Function
		class     error  // of the sweep's error
		says      string // what the sweep's error must name
	}{
		{"Secrets Manager unreachable", nil, true, all, secrets.ErrSecretUnavailable, w.acronisSecret},
		{"Acronis secret missing", map[string]string{"ACRONIS_SECRET_ID": "no-such-secret"}, false, all, secrets.ErrSecretNotFound, "no-such-secret"},
		{"Acronis secret not JSON", map[string]string{"ACRONIS_SECRET_ID": "acronis-not-json"}, false, all, secrets.ErrSecretMalformed, "not valid JSON"},
		{"Acronis secret without client_secret", map[string]string{"ACRONIS_SECRET_ID": "acronis-no-client-secret"}, false, all, secrets.ErrSecretMalformed, "client_secret is missing"},
		{"webhook keys missing", map[string]string{"WEBHOOK_SECRET_ID": "no-such-keys"}, false, []config.Function{config.Webhook}, nil, ""},
		{"webhook key malformed", map[string]string{"WEBHOOK_SECRET_ID": "webhook-bad-key"}, false, []config.Function{config.Webhook}, nil, ""},
	}
	for _, tt := range tests {
		for _, fn := range tt.functions {
			t.Run(tt.name+"/"+string(fn), func(t *testing.T) {
				if tt.down {
					t.Setenv("AWS_ENDPOINT_URL", closedPort(t))
				}
				w.Sim.ResetRequests()
				f := w.start(t, fn, tt.vars)
				ctx, cancel := context.WithTimeout(t.Context(), lambdaDeadline)
				defer cancel()

				switch fn {
				case config.Webhook:
					for _, req := range []struct{ method, body string }{{http.MethodPut, `{"enabled": true}`}, {http.MethodGet, ""}} {
						resp, err := f.webhook(ctx, w.request(req.method, ids[0], req.body))
						if err != nil {
							t.Fatal(err)
						}
						if resp.StatusCode != http.StatusBadGateway || errorCode(resp) != "upstream_error" {
							t.Errorf("%s: answer %d %s, want 502 upstream_error", req.method, resp.StatusCode, resp.Body)
						}
					}
				case config.Worker:
					ev := testkit.SQSBatch(enforceMsg(ids[0]), enableMsg(ids[1]), createdMsg(ids[2]), nameMsg("Foldered"), `not a message`)
					resp, err := f.worker(ctx, ev)
					if err != nil {
						t.Fatal(err)
					}
					if got := failed(resp); len(got) != len(ev.Records) {
						t.Errorf("batch item failures %v, want all %d messages", got, len(ev.Records))
					}
					// One failed line per tenant named, by id or by name, whose
					// reason points at the credentials, not at Acronis.
					lines := audits(t, f)
					got := map[string]int{}
					for _, l := range lines {
						if l.get("action") == "failed" {
							got[l.get("tenant_id")+l.get("tenant_name")]++
						}
						if !strings.Contains(l.get("reason"), "credentials could not be read") {
							t.Errorf("audit reason %q does not say the credentials could not be read", l.get("reason"))
						}
					}
					want := map[string]int{ids[0]: 1, ids[1]: 1, ids[2]: 1, "Foldered": 1}
					if len(lines) != len(want) || fmt.Sprint(got) != fmt.Sprint(want) {
						t.Errorf("audit lines %v, want one failed line for each of %v", lines, want)
					}
				case config.Sweep:
					sum, err := f.sweep(ctx, scheduled)
					if err == nil {
						t.Fatalf("the sweep succeeded without credentials: %+v", sum)
					}
					if !errors.Is(err, tt.class) || !strings.Contains(err.Error(), tt.says) {
						t.Errorf("sweep error %q, want %v naming %q", err, tt.class, tt.says)
					}
				}
				if reqs := w.Sim.Requests(); len(reqs) != 0 {
					t.Errorf("%d requests reached Acronis, the first %s %s", len(reqs), reqs[0].Method, reqs[0].Path)
				}
				for _, id := range ids {
					if w.MFAOn(t, id) {
						t.Errorf("tenant %s changed", id)
					}
				}
				if strings.Contains(f.out.String(), w.Sim.ClientSecret()) {
					t.Error("the output holds the client secret")
				}
			})
		}
	}
}

// TestRotatedCredentialsPickedUpWhileWarm rotates the Acronis client secret in
// Secrets Manager and at Acronis while each function's cache is warm: the next
// invocation's token call is refused, the secret is read once more, and the
// invocation succeeds with the new secret. No function calls any other
// Secrets Manager action than the IAM policy grants.
func TestRotatedCredentialsPickedUpWhileWarm(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testkit.AcronisOptions{Tree: &sim.TreeSpec{Seed: 4, Size: 50}})
	warm := testkit.OffCustomer
	ids := []string{testkit.Contoso, testkit.ContosoHoldings, testkit.Twin1, testkit.Twin2, testkit.Foldered}
	invoke := map[config.Function]func(t *testing.T, f *function, ids []string){
		config.Webhook: func(t *testing.T, f *function, ids []string) {
			for _, id := range ids {
				if resp, _ := f.webhook(t.Context(), w.request(http.MethodPut, id, `{"enabled": true}`)); resp.StatusCode != http.StatusOK {
					t.Fatalf("PUT: %d %s", resp.StatusCode, resp.Body)
				}
			}
		},
		config.Worker: func(t *testing.T, f *function, ids []string) {
			var bodies []string
			for _, id := range ids {
				bodies = append(bodies, enforceMsg(id))
			}
			resp, err := f.worker(t.Context(), testkit.SQSBatch(bodies...))
			if err != nil || len(resp.BatchItemFailures) != 0 {
				t.Fatalf("batch: %+v, %v", resp, err)
			}
		},
		config.Sweep: func(t *testing.T, f *function, _ []string) {
			sum, err := f.sweep(t.Context(), scheduled)
			if err != nil || sum.Failed != 0 {
				t.Fatalf("sweep: %+v, %v", sum, err)
			}
		},
	}
	for _, fn := range []config.Function{config.Webhook, config.Worker, config.Sweep} {
		t.Run(string(fn), func(t *testing.T) {
			for _, id := range append(ids, warm) {
				w.Sim.SetMFA(id, "disabled")
			}
			f := w.start(t, fn, nil)
			invoke[fn](t, f, []string{warm})
			reads := awsCalls.Count(getSecretValue, "SecretId", w.acronisSecret)
			keyReads := awsCalls.Count(getSecretValue, "SecretId", w.webhookSecret)

			rotated := "rotated-" + rand.Text()
			putSecret(t, w.acronisSecret, testkit.CredentialsJSON(w.URL, w.Sim.ClientID(), rotated))
			w.Sim.SetClientSecret(rotated)
			w.Sim.ExpireTokens() // so that the next invocation needs a token
			w.Sim.ResetRequests()
			invoke[fn](t, f, ids)

			for _, id := range ids {
				if !w.MFAOn(t, id) {
					t.Errorf("tenant %s not enabled after the rotation", id)
				}
			}
			if n := awsCalls.Count(getSecretValue, "SecretId", w.acronisSecret) - reads; n != 1 {
				t.Errorf("%d more reads of the credentials secret, want 1", n)
			}
			if n := awsCalls.Count(getSecretValue, "SecretId", w.webhookSecret) - keyReads; n != 0 {
				t.Errorf("%d more reads of the signing keys, want 0", n)
			}
			var tokenCalls []int
			for _, r := range w.Sim.Requests() {
				if strings.HasSuffix(r.Path, "/idp/token") {
					tokenCalls = append(tokenCalls, r.Status)
				}
			}
			if len(tokenCalls) != 2 || tokenCalls[0] != http.StatusUnauthorized || tokenCalls[1] != http.StatusOK {
				t.Errorf("token calls answered %v, want [401 200]: the cached secret refused, the rotated one accepted", tokenCalls)
			}
		})
	}
	// Contract section 9: the IAM policy grants exactly the actions used.
	for action := range awsCalls.Actions() {
		if action != getSecretValue {
			t.Errorf("the functions called %s", action)
		}
	}
}
