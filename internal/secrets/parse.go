package secrets

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"acronismfa/internal/acronis"
)

// Reasons a secret is refused. Every parse error is one of these, so no error can
// carry a fragment of the secret: encoding/json's own syntax errors quote the
// offending character, which could be part of a client secret, and net/url's
// quote the whole URL, which could hold credentials.
const (
	reasonNotJSON    = "not valid JSON"
	reasonNotObject  = "not a JSON object"
	reasonMissing    = "is missing or empty"
	reasonNotString  = "must be a JSON string"
	reasonNotURL     = "is not a URL"
	reasonScheme     = "must use https:// (http:// only to a loopback host)"
	reasonNoHost     = "has no host"
	reasonBadHost    = "has a host that is not a DNS name or an IP address"
	reasonBadPort    = "has a port outside 1-65535"
	reasonExtras     = "must not carry credentials, a query or a fragment"
	reasonPath       = "must have no path other than /api/2"
	baseURLAccepts   = "accepts https://HOST[:PORT] with an optional trailing / or /api/2, or http:// to 127.0.0.0/8, localhost or [::1]"
	reasonNotArray   = "must be a JSON array of strings"
	reasonNoPrefix   = "does not start with " + keyPrefix
	reasonNotBase64  = "is not valid standard base64 after " + keyPrefix
	reasonShortKey   = "decodes to fewer than 16 bytes"
	keyPrefix        = "whsec_"
	minSigningKeyLen = 16 // bytes; Standard Webhooks recommends 24 to 64
)

// ParseAcronis reads the Acronis credentials secret of docs/reference.md, Secrets:
// {"base_url", "client_id", "client_secret"}. The base URL comes back
// normalised to scheme://host[:port], so the client can append /api/2/...
// Errors wrap ErrSecretMalformed and name the field, never its value.
func ParseAcronis(secretString string) (acronis.Credentials, error) {
	fields, err := object(secretString)
	if err != nil {
		return acronis.Credentials{}, err
	}
	var c acronis.Credentials
	for _, f := range []struct {
		name string
		dst  *string
	}{{"base_url", &c.BaseURL}, {"client_id", &c.ClientID}, {"client_secret", &c.ClientSecret}} {
		if *f.dst, err = stringField(fields, f.name); err != nil {
			return acronis.Credentials{}, err
		}
	}
	if c.BaseURL, err = NormaliseBaseURL(c.BaseURL); err != nil {
		return acronis.Credentials{}, malformed("base_url " + err.Error())
	}
	return c, nil
}

// ParseWebhookKeys reads the webhook signing keys secret of docs/reference.md,
// Secrets: {"signing_keys": ["whsec_<base64>", ...]}, and returns the raw key
// bytes. Errors wrap ErrSecretMalformed and name the index of a bad key, never
// the key.
func ParseWebhookKeys(secretString string) ([][]byte, error) {
	fields, err := object(secretString)
	if err != nil {
		return nil, err
	}
	raw, ok := fields["signing_keys"]
	if !ok || string(raw) == "null" {
		return nil, malformed("signing_keys " + reasonMissing)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, malformed("signing_keys " + reasonNotArray)
	}
	if len(items) == 0 {
		return nil, malformed("signing_keys " + reasonMissing)
	}
	keys := make([][]byte, 0, len(items))
	for i, item := range items {
		bad := func(reason string) error { return malformed(fmt.Sprintf("signing_keys[%d] %s", i, reason)) }
		var s string
		if err := json.Unmarshal(item, &s); err != nil || string(item) == "null" {
			return nil, bad(reasonNotString)
		}
		b64, ok := strings.CutPrefix(s, keyPrefix)
		if !ok {
			return nil, bad(reasonNoPrefix)
		}
		key, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return nil, bad(reasonNotBase64)
		}
		if len(key) < minSigningKeyLen {
			return nil, bad(reasonShortKey)
		}
		keys = append(keys, key)
	}
	return keys, nil
}

func malformed(reason string) error { return fmt.Errorf("%w: %s", ErrSecretMalformed, reason) }

// object decodes a JSON object into its members, keeping the keys exact (a
// struct would also match "Client_Secret").
func object(s string) (map[string]json.RawMessage, error) {
	if !json.Valid([]byte(s)) {
		return nil, malformed(reasonNotJSON)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &fields); err != nil || fields == nil {
		return nil, malformed(reasonNotObject)
	}
	return fields, nil
}

// stringField returns a non-blank string member.
func stringField(fields map[string]json.RawMessage, name string) (string, error) {
	raw, ok := fields[name]
	if !ok || string(raw) == "null" {
		return "", malformed(name + " " + reasonMissing)
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", malformed(name + " " + reasonNotString)
	}
	if strings.TrimSpace(v) == "" {
		return "", malformed(name + " " + reasonMissing)
	}
	return v, nil
}

// NormaliseBaseURL turns an operator's data center URL into scheme://host[:port].
// Only https leaves the machine: client credentials and tokens must not cross a
// network in clear text, so plain http is for local simulators alone. The
// error says what is wrong with the URL, never what it holds.
func NormaliseBaseURL(raw string) (string, error) {
	bad := func(reason string) error { return errors.New(reason + ": " + baseURLAccepts) }
	raw = strings.TrimSpace(raw)
	if strings.ContainsAny(raw, "?#") {
		return "", bad(reasonExtras)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", bad(reasonNotURL)
	}
	if u.User != nil {
		return "", bad(reasonExtras)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return "", bad(reasonScheme)
	}
	host := strings.ToLower(u.Hostname())
	if host == "" || u.Opaque != "" {
		return "", bad(reasonNoHost)
	}
	if !validHost(host) {
		return "", bad(reasonBadHost)
	}
	if u.Scheme == "http" && !loopback(host) {
		return "", bad(reasonScheme)
	}
	if p := strings.TrimRight(u.Path, "/"); p != "" && p != "/api/2" {
		return "", bad(reasonPath)
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", bad(reasonBadPort)
		}
		host += ":" + port
	}
	return u.Scheme + "://" + host, nil
}

// validHost accepts an ASCII DNS name, an IPv4 address or an IPv6 address
// without zone. url.Parse decodes percent-escapes in a host, so anything else
// ("%2F", a zone's "%") could change the URL's meaning once written back.
func validHost(host string) bool {
	if strings.Contains(host, ":") {
		return net.ParseIP(host) != nil
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// loopback reports whether host names this machine: localhost, 127.0.0.0/8 or ::1.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
