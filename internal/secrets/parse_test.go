package secrets

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"acronismfa/internal/acronis"
	"acronismfa/internal/testkit"
)

// clientSecret is distinctive enough that finding it in a message can only be a leak.
const clientSecret = "cs-9f2K!q7Zx0pLw"

// acronisJSON builds a credentials secret; a nil value leaves the field out.
func acronisJSON(baseURL, clientID, secret any) string {
	m := map[string]any{}
	for k, v := range map[string]any{"base_url": baseURL, "client_id": clientID, "client_secret": secret} {
		if v != nil {
			m[k] = v
		}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func TestParseAcronisAccepts(t *testing.T) {
	for in, want := range map[string]string{
		"https://eu2-cloud.acronis.com":        "https://eu2-cloud.acronis.com",
		"https://eu2-cloud.acronis.com/":       "https://eu2-cloud.acronis.com",
		"https://eu2-cloud.acronis.com/api/2":  "https://eu2-cloud.acronis.com",
		"https://eu2-cloud.acronis.com/api/2/": "https://eu2-cloud.acronis.com",
		"https://eu2-cloud.acronis.com//":      "https://eu2-cloud.acronis.com",
		"  https://eu2-cloud.acronis.com/\n":   "https://eu2-cloud.acronis.com",
		"HTTPS://EU2-Cloud.Acronis.COM:443/":   "https://eu2-cloud.acronis.com:443",
		"https://10.0.0.5:8443":                "https://10.0.0.5:8443",
		"https://[2001:db8::1]/api/2":          "https://[2001:db8::1]",
		"http://127.0.0.1:8080/api/2/":         "http://127.0.0.1:8080",
		"http://127.8.9.10":                    "http://127.8.9.10",
		"http://localhost":                     "http://localhost",
		"http://LOCALHOST:3000/":               "http://localhost:3000",
		"http://[::1]:9":                       "http://[::1]:9",
		"http://localhost:/":                   "http://localhost",
	} {
		got, err := ParseAcronis(acronisJSON(in, "client-1", clientSecret))
		if err != nil || got != (acronis.Credentials{BaseURL: want, ClientID: "client-1", ClientSecret: clientSecret}) {
			t.Errorf("base_url %q: got %v, %v; want %s", in, got, err, want)
		}
	}
	// Members besides the three are the operator's notes.
	got, err := ParseAcronis(`{"base_url":"https://dc.example","client_id":"id","client_secret":"s","note":"rotated 2024-05","version":3}`)
	if err != nil || got != (acronis.Credentials{BaseURL: "https://dc.example", ClientID: "id", ClientSecret: "s"}) {
		t.Errorf("with other members: got %v, %v", got, err)
	}
}

func TestParseAcronisRejects(t *testing.T) {
	const good = "https://eu2-cloud.acronis.com"
	tests := []struct {
		name   string
		secret string
		want   []string // substrings of the error
		never  string   // must not appear (besides the client secret)
	}{
		{"not JSON", "client_secret=" + clientSecret, []string{"not valid JSON"}, ""},
		{"empty", "", []string{"not valid JSON"}, ""},
		{"truncated JSON", `{"client_secret":"` + clientSecret + `"`, []string{"not valid JSON"}, ""},
		{"unquoted value", `{"client_secret":` + clientSecret + `}`, []string{"not valid JSON"}, ""},
		{"array", `["` + clientSecret + `"]`, []string{"not a JSON object"}, ""},
		{"string", `"` + clientSecret + `"`, []string{"not a JSON object"}, ""},
		{"null", `null`, []string{"not a JSON object"}, ""},
		{"base_url missing", acronisJSON(nil, "id", clientSecret), []string{"base_url is missing or empty"}, ""},
		{"base_url empty", acronisJSON("", "id", clientSecret), []string{"base_url is missing or empty"}, ""},
		{"base_url number", acronisJSON(443, "id", clientSecret), []string{"base_url must be a JSON string"}, ""},
		{"client_id missing", acronisJSON(good, nil, clientSecret), []string{"client_id is missing or empty"}, ""},
		{"client_id blank", acronisJSON(good, "  ", clientSecret), []string{"client_id is missing or empty"}, ""},
		{"client_id null", `{"base_url":"` + good + `","client_id":null,"client_secret":"` + clientSecret + `"}`, []string{"client_id is missing or empty"}, ""},
		{"client_id wrong case", `{"base_url":"` + good + `","Client_ID":"id","client_secret":"` + clientSecret + `"}`, []string{"client_id is missing or empty"}, ""},
		{"client_secret missing", acronisJSON(good, "id", nil), []string{"client_secret is missing or empty"}, ""},
		{"client_secret empty", acronisJSON(good, "id", ""), []string{"client_secret is missing or empty"}, ""},
		{"client_secret object", acronisJSON(good, "id", map[string]string{"v": clientSecret}), []string{"client_secret must be a JSON string"}, ""},
		{"http to a remote host", acronisJSON("http://example.com", "id", clientSecret), []string{"base_url must use https://", "accepts"}, ""},
		{"http to a lookalike of localhost", acronisJSON("http://localhost.example.com", "id", clientSecret), []string{"base_url must use https://"}, ""},
		{"http to a lookalike of 127.0.0.1", acronisJSON("http://127.0.0.1.nip.io", "id", clientSecret), []string{"base_url must use https://"}, ""},
		{"http to any address", acronisJSON("http://0.0.0.0:8080", "id", clientSecret), []string{"base_url must use https://"}, ""},
		{"http to another ipv6", acronisJSON("http://[::2]", "id", clientSecret), []string{"base_url must use https://"}, ""},
		{"no scheme", acronisJSON("eu2-cloud.acronis.com", "id", clientSecret), []string{"base_url must use https://"}, ""},
		{"ftp", acronisJSON("ftp://eu2-cloud.acronis.com", "id", clientSecret), []string{"base_url must use https://"}, ""},
		{"no host", acronisJSON("https://", "id", clientSecret), []string{"base_url has no host"}, ""},
		{"opaque", acronisJSON("https:eu2-cloud.acronis.com", "id", clientSecret), []string{"base_url has no host"}, ""},
		{"ipv6 zone", acronisJSON("http://[fe80::1%25lo0]", "id", clientSecret), []string{"base_url has a host that is not"}, ""},
		{"escaped non-ASCII host", acronisJSON("https://b%C3%BCcher.example", "id", clientSecret), []string{"base_url has a host that is not"}, ""},
		{"unicode host", acronisJSON("https://bücher.example", "id", clientSecret), []string{"base_url has a host that is not"}, ""},
		{"credentials", acronisJSON("https://admin:hunter2-pw@eu2-cloud.acronis.com", "id", clientSecret), []string{"base_url must not carry credentials"}, "hunter2-pw"},
		{"query", acronisJSON("https://eu2-cloud.acronis.com/?token=tok-77aa", "id", clientSecret), []string{"base_url must not carry credentials, a query or a fragment"}, "tok-77aa"},
		{"empty query", acronisJSON("https://eu2-cloud.acronis.com/?", "id", clientSecret), []string{"base_url must not carry"}, ""},
		{"fragment", acronisJSON("https://eu2-cloud.acronis.com#x", "id", clientSecret), []string{"base_url must not carry"}, ""},
		{"other path", acronisJSON("https://eu2-cloud.acronis.com/api", "id", clientSecret), []string{"base_url must have no path other than /api/2"}, ""},
		{"endpoint path", acronisJSON("https://eu2-cloud.acronis.com/api/2/tenants", "id", clientSecret), []string{"base_url must have no path other than /api/2"}, ""},
		{"port too big", acronisJSON("https://eu2-cloud.acronis.com:99999", "id", clientSecret), []string{"base_url has a port outside 1-65535"}, ""},
		{"port zero", acronisJSON("http://localhost:0", "id", clientSecret), []string{"base_url has a port outside 1-65535"}, ""},
		{"not a URL", acronisJSON("https://eu2 cloud.acronis.com", "id", clientSecret), []string{"base_url is not a URL"}, "eu2 cloud"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseAcronis(tt.secret)
			if err == nil {
				t.Fatalf("accepted: %v", c)
			}
			if !errors.Is(err, ErrSecretMalformed) {
				t.Errorf("error %q is not ErrSecretMalformed", err)
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if strings.Contains(msg, clientSecret) || tt.never != "" && strings.Contains(msg, tt.never) {
				t.Errorf("error leaks the secret's content: %q", msg)
			}
		})
	}
}

func keysJSON(keys ...any) string {
	b, _ := json.Marshal(map[string]any{"signing_keys": keys})
	return string(b)
}

func TestParseWebhookKeysAccepts(t *testing.T) {
	k16 := bytes.Repeat([]byte{0xa1}, 16)
	k24 := []byte("0123456789abcdefghijklmn")
	k64 := bytes.Repeat([]byte{0x00, 0xff}, 32)
	for secret, want := range map[string][][]byte{
		testkit.WebhookKeysJSON(k24):                                    {k24},
		testkit.WebhookKeysJSON(k24, k64):                               {k24, k64}, // a rotation's overlap
		testkit.WebhookKeysJSON(k16):                                    {k16},      // 16 bytes is enough
		`{"comment":"x","signing_keys":["` + testkit.WhSec(k24) + `"]}`: {k24},
	} {
		got, err := ParseWebhookKeys(secret)
		if err != nil || !slices.EqualFunc(got, want, bytes.Equal) {
			t.Errorf("%s: got %x, %v; want %x", secret, got, err, want)
		}
	}
}

func TestParseWebhookKeysRejects(t *testing.T) {
	good := testkit.WhSec([]byte("a-good-key-of-24-bytes!!"))
	short := testkit.WhSec([]byte("fifteen bytes!!"))
	urlSafe := "whsec_" + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb, 0xff}, 12))
	unpadded := "whsec_" + base64.RawStdEncoding.EncodeToString([]byte("a-key-of-20-bytes!!!"))
	tests := []struct {
		name   string
		secret string
		want   string
		keys   []string // must not appear in the error
	}{
		{"not JSON", "whsec_" + good, "not valid JSON", []string{good}},
		{"array", `["` + good + `"]`, "not a JSON object", []string{good}},
		{"missing", `{"keys":["` + good + `"]}`, "signing_keys is missing or empty", []string{good}},
		{"null", `{"signing_keys":null}`, "signing_keys is missing or empty", nil},
		{"empty list", `{"signing_keys":[]}`, "signing_keys is missing or empty", nil},
		{"a string, not a list", `{"signing_keys":"` + good + `"}`, "signing_keys must be a JSON array of strings", []string{good}},
		{"number item", keysJSON(good, 7), "signing_keys[1] must be a JSON string", []string{good}},
		{"null item", `{"signing_keys":[null]}`, "signing_keys[0] must be a JSON string", nil},
		{"no prefix", keysJSON(strings.TrimPrefix(good, "whsec_")), "signing_keys[0] does not start with whsec_", []string{strings.TrimPrefix(good, "whsec_")}},
		{"prefix in capitals", keysJSON("WHSEC_" + strings.TrimPrefix(good, "whsec_")), "signing_keys[0] does not start with whsec_", []string{strings.TrimPrefix(good, "whsec_")}},
		{"not base64", keysJSON(good, "whsec_not*base64*at-all"), "signing_keys[1] is not valid standard base64", []string{"not*base64*at-all"}},
		{"url-safe base64", keysJSON(urlSafe), "signing_keys[0] is not valid standard base64", []string{urlSafe}},
		{"unpadded base64", keysJSON(unpadded), "signing_keys[0] is not valid standard base64", []string{unpadded}},
		{"empty key", keysJSON(good, "whsec_"), "signing_keys[1] decodes to fewer than 16 bytes", nil},
		{"short key", keysJSON(good, good, short), "signing_keys[2] decodes to fewer than 16 bytes", []string{short, strings.TrimPrefix(short, "whsec_")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := ParseWebhookKeys(tt.secret)
			if err == nil {
				t.Fatalf("accepted %d keys", len(keys))
			}
			if !errors.Is(err, ErrSecretMalformed) {
				t.Errorf("error %q is not ErrSecretMalformed", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			for _, k := range append(tt.keys, good) {
				if strings.Contains(err.Error(), k) {
					t.Errorf("error %q leaks a key", err)
				}
			}
		})
	}
}
