package faults_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/config"
	"acronismfa/internal/secrets"
)

// lambdaDeadline is the deadline these tests give an invocation: Lambda always
// sets one, and it bounds the AWS SDK's own retries of an unreachable endpoint.
const lambdaDeadline = 3 * time.Second

// TestSecretsManagerFailures cold-starts each function, through app.Init as
// functions/*/main.go does, with Secrets Manager down or holding no or a bad
// secret: the webhook answers 502 upstream_error, the worker lists every
// message of the batch, the sweep fails loudly, and nothing reaches Acronis.
func TestSecretsManagerFailures(t *testing.T) {
	st := newStack(t, sim.Options{}, nil)
	ids := addCustomers(t, st.sim, 3, "disabled")
	// Not JSON (a trailing comma), with the real secret inside: the error must
	// say what is wrong without quoting it.
	st.createSecret("acronis-not-json", strings.Replace(st.credentialsJSON(st.sim.ClientSecret()), "}", ",}", 1))
	noSecret := map[string]string{}
	_ = json.Unmarshal([]byte(st.credentialsJSON("")), &noSecret)
	delete(noSecret, "client_secret")
	b, _ := json.Marshal(noSecret)
	st.createSecret("acronis-no-client-secret", string(b))
	st.createSecret("webhook-bad-key", `{"signing_keys": ["whsec_short"]}`)

	all := []config.Function{config.Webhook, config.Worker, config.Sweep}
	tests := []struct {
		name      string
		vars      map[string]string
		down      bool
		functions []config.Function
		class     error  // of the sweep's error
		says      string // what the sweep's error must name
	}{
		{"Secrets Manager unreachable", nil, true, all, secrets.ErrSecretUnavailable, st.acronisSecret},
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
				st.sim.ResetRequests()
				f := st.start(fn, tt.vars)
				ctx, cancel := context.WithTimeout(t.Context(), lambdaDeadline)
				defer cancel()

				switch fn {
				case config.Webhook:
					for _, req := range []struct{ method, body string }{{http.MethodPut, `{"enabled": true}`}, {http.MethodGet, ""}} {
						resp, err := f.webhook().Handle(ctx, signed(st.key, req.method, ids[0], req.body))
						if err != nil {
							t.Fatal(err)
						}
						if resp.StatusCode != http.StatusBadGateway || errorCode(t, resp) != "upstream_error" {
							t.Errorf("%s: answer %d %s, want 502 upstream_error", req.method, resp.StatusCode, resp.Body)
						}
					}
				case config.Worker:
					name, _ := st.sim.Get(ids[2])
					ev := batch(enforceMessage(ids[0]), setMessage(ids[1], true), eventMessage(ids[2]),
						`{"tenant_name": "`+name.Name+`"}`, `not a message`)
					resp, err := f.worker().Handle(ctx, ev)
					if err != nil {
						t.Fatal(err)
					}
					if got := failedIDs(resp); len(got) != len(ev.Records) {
						t.Errorf("batch item failures %v, want all %d messages", got, len(ev.Records))
					}
					// One failed line per tenant named, by id or by name.
					lines := audits(t, f.out.String())
					got := map[string]int{}
					for _, l := range lines {
						if l.Action == "failed" {
							got[l.TenantID+l.TenantName]++
						}
						// The reason points at the credentials, not at Acronis.
						if !strings.Contains(l.Reason, "credentials could not be read") {
							t.Errorf("audit reason %q does not say the credentials could not be read", l.Reason)
						}
					}
					want := map[string]int{ids[0]: 1, ids[1]: 1, ids[2]: 1, name.Name: 1}
					if len(lines) != len(want) || fmt.Sprint(got) != fmt.Sprint(want) {
						t.Errorf("audit lines %+v, want one failed line for each of %v", lines, want)
					}
				case config.Sweep:
					sum, err := f.sweep().Handle(ctx, json.RawMessage(`{}`))
					if err == nil {
						t.Fatalf("the sweep succeeded without credentials: %+v", sum)
					}
					if !errors.Is(err, tt.class) || !strings.Contains(err.Error(), tt.says) {
						t.Errorf("sweep error %q, want %v naming %q", err, tt.class, tt.says)
					}
				}
				if reqs := st.sim.Requests(); len(reqs) != 0 {
					t.Errorf("%d requests reached Acronis, the first %s %s", len(reqs), reqs[0].Method, reqs[0].Path)
				}
				for _, id := range ids {
					if mfaOn(t, st.sim, id) {
						t.Errorf("tenant %s changed", id)
					}
				}
				if strings.Contains(f.out.String(), st.sim.ClientSecret()) {
					t.Error("the output holds the client secret")
				}
			})
		}
	}
}

// TestRotatedCredentialsPickedUpWhileWarm rotates the Acronis client secret in
// Secrets Manager and at Acronis while each function's cache is warm: the next
// invocation's token call is refused, the secret is read once more, and the
// invocation succeeds with the new secret.
func TestRotatedCredentialsPickedUpWhileWarm(t *testing.T) {
	st := newStack(t, sim.Options{}, &sim.TreeSpec{Seed: 4, Size: 50})
	invoke := map[config.Function]func(t *testing.T, f *function, ids []string){
		config.Webhook: func(t *testing.T, f *function, ids []string) {
			for _, id := range ids {
				if resp, _ := f.webhook().Handle(t.Context(), signed(st.key, http.MethodPut, id, `{"enabled": true}`)); resp.StatusCode != http.StatusOK {
					t.Fatalf("PUT: %d %s", resp.StatusCode, resp.Body)
				}
			}
		},
		config.Worker: func(t *testing.T, f *function, ids []string) {
			var bodies []string
			for _, id := range ids {
				bodies = append(bodies, enforceMessage(id))
			}
			resp, err := f.worker().Handle(t.Context(), batch(bodies...))
			if err != nil || len(resp.BatchItemFailures) != 0 {
				t.Fatalf("batch: %+v, %v", resp, err)
			}
		},
		config.Sweep: func(t *testing.T, f *function, _ []string) {
			sum, err := f.sweep().Handle(t.Context(), json.RawMessage(`{}`))
			if err != nil || sum.Failed != 0 {
				t.Fatalf("sweep: %+v, %v", sum, err)
			}
		},
	}
	for _, fn := range []config.Function{config.Webhook, config.Worker, config.Sweep} {
		t.Run(string(fn), func(t *testing.T) {
			f := st.start(fn, nil)
			invoke[fn](t, f, addCustomers(t, st.sim, 1, "disabled"))
			reads := st.getSecretValues(st.acronisSecret)
			keyReads := st.getSecretValues(st.webhookSecret)

			rotated := "rotated-" + rand.Text()
			st.putSecret(st.acronisSecret, st.credentialsJSON(rotated))
			st.sim.SetClientSecret(rotated)
			st.sim.ExpireTokens() // so that the next invocation needs a token
			st.sim.ResetRequests()
			ids := addCustomers(t, st.sim, 5, "disabled")
			invoke[fn](t, f, ids)

			for _, id := range ids {
				if !mfaOn(t, st.sim, id) {
					t.Errorf("tenant %s not enabled after the rotation", id)
				}
			}
			if n := st.getSecretValues(st.acronisSecret) - reads; n != 1 {
				t.Errorf("%d more reads of the credentials secret, want 1", n)
			}
			if n := st.getSecretValues(st.webhookSecret) - keyReads; n != 0 {
				t.Errorf("%d more reads of the signing keys, want 0", n)
			}
			var tokenCalls []int
			for _, r := range st.sim.Requests() {
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
	for action := range st.aws.Actions() {
		if action != "secretsmanager.GetSecretValue" {
			t.Errorf("the functions called %s", action)
		}
	}
}
