//go:build integration

package secrets

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"acronismfa/internal/acronis"
	"acronismfa/internal/testkit"
)

// TestStoreAgainstMoto reads secrets from a real Secrets Manager emulator
// through the client production builds, configured only by the environment.
func TestStoreAgainstMoto(t *testing.T) {
	moto := testkit.NewMoto(t)
	moto.Setenv(t)
	admin := secretsmanager.NewFromConfig(testkit.MotoConfig(t, moto.Endpoint))
	create := func(t *testing.T, name, value string) string {
		t.Helper()
		out, err := admin.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)})
		if err != nil {
			t.Fatalf("create secret %s: %v", name, err)
		}
		return aws.ToString(out.ARN)
	}
	put := func(t *testing.T, id, value string) {
		t.Helper()
		if _, err := admin.PutSecretValue(t.Context(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(id), SecretString: aws.String(value)}); err != nil {
			t.Fatalf("put secret value: %v", err)
		}
	}
	// newStore builds the client as app.Init does, from the standard AWS
	// configuration under the environment the test set, so that AWS_REGION,
	// AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_SECRETS_MANAGER work as operators
	// expect.
	newStore := func(t *testing.T, clk *testkit.Clock) *Store {
		t.Helper()
		cfg, err := config.LoadDefaultConfig(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return NewStore(secretsmanager.NewFromConfig(cfg), time.Minute, clk.Now)
	}
	creds := func(base, secret string) string { return testkit.CredentialsJSON(base, "client-1", secret) }

	t.Run("endpoint from the environment", func(t *testing.T) {
		arn := create(t, "endpoints", creds("https://eu2-cloud.acronis.com/api/2/", clientSecret))
		tests := []struct {
			name string
			env  map[string]string
		}{
			{"AWS_ENDPOINT_URL", map[string]string{"AWS_ENDPOINT_URL": moto.Endpoint, "AWS_ENDPOINT_URL_SECRETS_MANAGER": ""}},
			// The generic endpoint leads nowhere: only the service's own variable can work.
			{"AWS_ENDPOINT_URL_SECRETS_MANAGER", map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_ENDPOINT_URL_SECRETS_MANAGER": moto.Endpoint}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				for k, v := range tt.env {
					t.Setenv(k, v)
				}
				for _, id := range []string{"endpoints", arn} {
					got, err := newStore(t, testkit.NewClock()).Acronis(id).Credentials(t.Context())
					if err != nil {
						t.Fatalf("read %s: %v", id, err)
					}
					want := acronis.Credentials{BaseURL: "https://eu2-cloud.acronis.com", ClientID: "client-1", ClientSecret: clientSecret}
					if got != want {
						t.Fatalf("read %s: got %v, want %v", id, got, want)
					}
				}
			})
		}
	})

	t.Run("missing or malformed secret", func(t *testing.T) {
		create(t, "malformed", `{"base_url": "https://eu2-cloud.acronis.com", "client_id": "client-1", "client_secret": `+clientSecret+`}`)
		for id, want := range map[string]error{"no-such-secret": ErrSecretNotFound, "malformed": ErrSecretMalformed} {
			_, err := newStore(t, testkit.NewClock()).Acronis(id).Credentials(t.Context())
			if !errors.Is(err, want) || !strings.Contains(err.Error(), id) || strings.Contains(err.Error(), clientSecret) {
				t.Errorf("got %v, want %v naming the secret and not leaking it", err, want)
			}
		}
	})

	t.Run("rotation", func(t *testing.T) {
		create(t, "rotated", creds("https://dc-1.example", "first"))
		clk := testkit.NewClock()
		src := newStore(t, clk).Acronis("rotated")
		read := func(t *testing.T, f func(context.Context) (acronis.Credentials, error)) string {
			t.Helper()
			c, err := f(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			return c.ClientSecret
		}
		steps := []struct {
			name    string
			put     string // a new client_secret to store first, if any
			advance time.Duration
			refresh bool
			want    string
		}{
			{"cold read", "", 0, false, "first"},
			{"update unseen while warm", "second", 59 * time.Second, false, "first"},
			{"seen once the TTL passed", "", time.Second, false, "second"},
			{"update unseen again", "third", 0, false, "second"},
			{"refresh re-reads", "", 0, true, "third"},
			{"refresh refilled the cache", "fourth", 0, false, "third"},
		}
		for _, st := range steps {
			if st.put != "" {
				put(t, "rotated", creds("https://dc-1.example", st.put))
			}
			clk.Advance(st.advance)
			f := src.Credentials
			if st.refresh {
				f = src.Refresh
			}
			if got := read(t, f); got != st.want {
				t.Fatalf("%s: got client_secret %q, want %q", st.name, got, st.want)
			}
		}
	})

	t.Run("webhook keys", func(t *testing.T) {
		k1, k2 := []byte("first-key-of-24-bytes!!!"), []byte("second-key-of-24-bytes!!")
		create(t, "hooks", testkit.WebhookKeysJSON(k1))
		clk := testkit.NewClock()
		s := newStore(t, clk)
		keys, err := s.WebhookKeys(t.Context(), "hooks")
		if err != nil || len(keys) != 1 || string(keys[0]) != string(k1) {
			t.Fatalf("got %q, %v", keys, err)
		}
		put(t, "hooks", testkit.WebhookKeysJSON(k1, k2))
		clk.Advance(time.Minute)
		keys, err = s.WebhookKeysFresh(t.Context(), "hooks")
		if err != nil || len(keys) != 2 || string(keys[1]) != string(k2) {
			t.Fatalf("after adding a key: got %q, %v", keys, err)
		}
	})
}
