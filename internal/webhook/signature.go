package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrUnauthorized is wrapped by every verification failure. The wrapping message
// says why for the log; it never holds a key or an expected signature, and the
// caller learns nothing beyond the 401.
var ErrUnauthorized = errors.New("unauthorized")

// Tolerance is how far webhook-timestamp may be from now, either way, as the
// Standard Webhooks spec recommends: it bounds how long a captured request can
// be replayed.
const Tolerance = 5 * time.Minute

// maxTimestampDigits bounds webhook-timestamp: unix seconds have ten digits until
// the year 2286, so anything much longer is garbage, and the bound keeps the
// parse free of overflow.
const maxTimestampDigits = 12

// Verify checks a request against the Standard Webhooks scheme: one of the
// space-separated "v1,<base64>" entries of signatureHeader must be
// HMAC-SHA256(key, id + "." + timestamp + "." + body) for one of keys, and
// timestamp (unix seconds) must be within Tolerance of now. Entries of other
// versions are ignored, so a sender may add asymmetric signatures next to v1.
// Empty keys are skipped: an empty HMAC key would let anyone sign.
func Verify(keys [][]byte, id, timestamp, signatureHeader string, body []byte, now time.Time) error {
	switch {
	case id == "":
		return unauthorized("missing webhook-id header")
	case timestamp == "":
		return unauthorized("missing webhook-timestamp header")
	case signatureHeader == "":
		return unauthorized("missing webhook-signature header")
	}
	ts, ok := parseTimestamp(timestamp)
	if !ok {
		return unauthorized("malformed webhook-timestamp: want unix seconds")
	}
	if skew := now.Sub(time.Unix(ts, 0)); skew.Abs() > Tolerance {
		when := "in the past"
		if skew < 0 {
			when = "in the future"
		}
		return unauthorized(fmt.Sprintf("webhook-timestamp is %s %s, over the %s tolerance", skew.Abs().Truncate(time.Second), when, Tolerance))
	}

	// The expected MAC is computed once per key, not once per key and entry, so
	// a header stuffed with entries costs comparisons of 32 bytes, not hashes of
	// the body.
	var expected [][]byte
	for _, key := range keys {
		if len(key) > 0 {
			expected = append(expected, mac(key, id, timestamp, body))
		}
	}
	if len(expected) == 0 {
		return unauthorized("no signing keys configured")
	}
	var v1, malformed int
	for _, entry := range strings.Fields(signatureHeader) {
		version, sig, ok := strings.Cut(entry, ",")
		if !ok {
			malformed++
			continue
		}
		if version != "v1" {
			continue
		}
		v1++
		got, err := base64.StdEncoding.DecodeString(sig)
		if err != nil {
			malformed++
			continue
		}
		for _, want := range expected {
			if hmac.Equal(got, want) {
				return nil
			}
		}
	}
	if v1 == 0 {
		return unauthorized(fmt.Sprintf("no v1 signature in webhook-signature; malformed entries: %d", malformed))
	}
	return unauthorized(fmt.Sprintf("no matching signature: v1 signatures: %d, keys: %d, malformed entries: %d", v1, len(expected), malformed))
}

func mac(key []byte, id, timestamp string, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write([]byte(timestamp))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// parseTimestamp accepts decimal digits only, as senders write unix seconds;
// strconv alone would also take a leading sign.
func parseTimestamp(s string) (int64, bool) {
	if len(s) > maxTimestampDigits {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	ts, err := strconv.ParseInt(s, 10, 64)
	return ts, err == nil
}

func unauthorized(reason string) error {
	return fmt.Errorf("%w: %s", ErrUnauthorized, reason)
}
