package secrets

import (
	"errors"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"acronismfa/internal/testkit"
)

// alt is a regexp alternation of literal strings.
func alt(literals ...string) string {
	for i, l := range literals {
		literals[i] = regexp.QuoteMeta(l)
	}
	return "(" + strings.Join(literals, "|") + ")"
}

// An error message may be nothing but one of the parser's own sentences, so it
// cannot carry any fragment of the secret whatever the input.
var (
	acronisErrorText = regexp.MustCompile(`^secret malformed: (` +
		alt(reasonNotJSON, reasonNotObject) +
		`|(base_url|client_id|client_secret) ` + alt(reasonMissing, reasonNotString) +
		`|base_url ` + alt(reasonNotURL, reasonScheme, reasonNoHost, reasonBadHost, reasonBadPort, reasonExtras, reasonPath) + `: ` + regexp.QuoteMeta(baseURLAccepts) +
		`)$`)
	webhookErrorText = regexp.MustCompile(`^secret malformed: (` +
		alt(reasonNotJSON, reasonNotObject) +
		`|signing_keys ` + alt(reasonMissing, reasonNotArray) +
		`|signing_keys\[(0|[1-9][0-9]*)\] ` + alt(reasonNotString, reasonNoPrefix, reasonNotBase64, reasonShortKey) +
		`)$`)
)

func FuzzParseAcronis(f *testing.F) {
	f.Fuzz(func(t *testing.T, secret string) {
		c, err := ParseAcronis(secret)
		if err != nil {
			if !errors.Is(err, ErrSecretMalformed) || !acronisErrorText.MatchString(err.Error()) {
				t.Fatalf("error %q is not one of the parser's own messages", err)
			}
			return
		}
		if strings.TrimSpace(c.ClientID) == "" || strings.TrimSpace(c.ClientSecret) == "" {
			t.Fatalf("accepted blank credentials: %v", c)
		}
		u, err := url.Parse(c.BaseURL)
		if err != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || u.Host == "" {
			t.Fatalf("base URL %q is not scheme://host[:port]", c.BaseURL)
		}
		if u.Scheme != "https" && !(u.Scheme == "http" && loopback(u.Hostname())) {
			t.Fatalf("base URL %q would send credentials in clear text off this machine", c.BaseURL)
		}
		// Normalising is idempotent: the stored form parses to itself.
		again, err := ParseAcronis(acronisJSON(c.BaseURL, c.ClientID, c.ClientSecret))
		if err != nil || again != c {
			t.Fatalf("normalised %v parses to %v, %v", c, again, err)
		}
	})
}

func FuzzParseWebhookKeys(f *testing.F) {
	f.Fuzz(func(t *testing.T, secret string) {
		keys, err := ParseWebhookKeys(secret)
		if err != nil {
			if !errors.Is(err, ErrSecretMalformed) || !webhookErrorText.MatchString(err.Error()) {
				t.Fatalf("error %q is not one of the parser's own messages", err)
			}
			return
		}
		if len(keys) == 0 {
			t.Fatal("accepted no keys")
		}
		for _, k := range keys {
			if len(k) < minSigningKeyLen {
				t.Fatalf("accepted a %d-byte key", len(k))
			}
		}
		again, err := ParseWebhookKeys(testkit.WebhookKeysJSON(keys...))
		if err != nil || len(again) != len(keys) {
			t.Fatalf("re-encoded keys do not parse: %v", err)
		}
		for i := range keys {
			if string(again[i]) != string(keys[i]) {
				t.Fatalf("key %d changed in a round trip", i)
			}
		}
	})
}
