package webhook_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"acronismfa/internal/testkit"
	"acronismfa/internal/webhook"
)

// The published Standard Webhooks / Svix test vector: an independent check of
// the signed content's layout and of the key encoding.
func TestVerifySpecVector(t *testing.T) {
	key, err := base64.StdEncoding.DecodeString("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") // whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
	if err != nil {
		t.Fatal(err)
	}
	const (
		id   = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		want = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	body := []byte(`{"test": 2432232314}`)
	ts := time.Unix(1614265330, 0)
	if got := testkit.Sign(key, id, ts, body); got != want {
		t.Errorf("testkit.Sign = %s, want %s", got, want)
	}
	if err := webhook.Verify([][]byte{key}, id, "1614265330", want, body, ts.Add(time.Minute)); err != nil {
		t.Errorf("Verify of the spec vector: %v", err)
	}
}

func TestVerify(t *testing.T) {
	var (
		key     = []byte("0123456789abcdef0123456789abcdef")
		oldKey  = []byte("an older key still in rotation!!")
		other   = []byte("somebody else's key, not ours...")
		id      = "msg_2b8JtGgPo9pAPq3kTq6tqLgZ9Xr"
		now     = time.Unix(1_700_000_000, 0)
		tsNow   = strconv.FormatInt(now.Unix(), 10)
		body    = []byte(`{"enabled": true}`)
		good    = testkit.Sign(key, id, now, body)
		goodB64 = strings.TrimPrefix(good, "v1,")
	)
	at := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	mac := func() []byte { b, _ := base64.StdEncoding.DecodeString(goodB64); return b }()

	tests := []struct {
		name   string
		keys   [][]byte
		id     string
		ts     string
		sig    string
		body   []byte
		now    time.Time
		reason string // "" means the request verifies
	}{
		{name: "valid", sig: good},
		{name: "second of several matches", sig: testkit.Sign(other, id, now, body) + " v1,AAAA " + good},
		{name: "extra whitespace between entries", sig: "v1,AAAA   " + good + " "},
		{name: "garbage entries before a valid one", sig: "garbage v1,!!!not-base64!!! v1, " + good},
		{name: "second key in rotation", keys: [][]byte{oldKey, key}, sig: good},
		{name: "first key in rotation", keys: [][]byte{oldKey, key}, sig: testkit.Sign(oldKey, id, now, body)},
		{name: "v2 entry ignored, v1 matches", sig: "v2," + goodB64 + " " + good},
		{name: "empty body", body: []byte{}, sig: testkit.Sign(key, id, now, nil)},
		{name: "300s old", ts: at(-300 * time.Second), sig: testkit.Sign(key, id, now.Add(-300*time.Second), body)},
		{name: "300s ahead", ts: at(300 * time.Second), sig: testkit.Sign(key, id, now.Add(300*time.Second), body)},

		{name: "301s old", ts: at(-301 * time.Second), sig: testkit.Sign(key, id, now.Add(-301*time.Second), body), reason: "5m1s in the past"},
		{name: "301s ahead", ts: at(301 * time.Second), sig: testkit.Sign(key, id, now.Add(301*time.Second), body), reason: "5m1s in the future"},
		{name: "300.5s old", ts: tsNow, sig: good, now: now.Add(300*time.Second + 500*time.Millisecond), reason: "in the past"},
		{name: "epoch", ts: "0", sig: testkit.Sign(key, id, time.Unix(0, 0), body), reason: "in the past"},
		{name: "only v2 signature", sig: "v2," + goodB64, reason: "no v1 signature"},
		{name: "only v1a signature", sig: "v1a," + goodB64, reason: "no v1 signature"},
		{name: "whitespace-only header", sig: "   ", reason: "no v1 signature"},
		{name: "no comma", sig: goodB64, reason: "no v1 signature in webhook-signature; malformed entries: 1"},
		{name: "wrong key", sig: testkit.Sign(other, id, now, body), reason: "no matching signature"},
		{name: "tampered body", body: []byte(`{"enabled": false}`), reason: "no matching signature"},
		{name: "body with trailing newline", body: append(bytes.Clone(body), '\n'), reason: "no matching signature"},
		{name: "other id", id: "msg_other", reason: "no matching signature"},
		{name: "timestamp not the signed one", ts: at(time.Second), reason: "no matching signature"},
		{name: "garbage base64", sig: "v1,!!!!", reason: "v1 signatures: 1, keys: 1, malformed entries: 1"},
		{name: "unpadded base64", sig: "v1," + strings.TrimRight(goodB64, "="), reason: "malformed entries: 1"},
		{name: "truncated signature", sig: "v1," + base64.StdEncoding.EncodeToString(mac[:16]), reason: "no matching signature"},
		{name: "signature over empty body", sig: testkit.Sign(key, id, now, nil), reason: "no matching signature"},
		{name: "missing id", id: "-", reason: "missing webhook-id"},
		{name: "missing timestamp", ts: "-", reason: "missing webhook-timestamp"},
		{name: "missing signature", sig: "-", reason: "missing webhook-signature"},
		{name: "no keys", keys: [][]byte{}, reason: "no signing keys"},
		{name: "only an empty key", keys: [][]byte{{}}, sig: testkit.Sign(nil, id, now, body), reason: "no signing keys"},
		{name: "timestamp with plus", ts: "+" + tsNow, reason: "malformed webhook-timestamp"},
		{name: "negative timestamp", ts: "-1", reason: "malformed webhook-timestamp"},
		{name: "fractional timestamp", ts: tsNow + ".5", reason: "malformed webhook-timestamp"},
		{name: "timestamp in ms", ts: tsNow + "000", reason: "malformed webhook-timestamp"},
		{name: "timestamp with space", ts: " " + tsNow, reason: "malformed webhook-timestamp"},
		{name: "hex timestamp", ts: "0x6553f100", reason: "malformed webhook-timestamp"},
		{name: "absurdly long timestamp", ts: strings.Repeat("9", 400), reason: "malformed webhook-timestamp"},
		{name: "RFC 3339 timestamp", ts: now.Format(time.RFC3339), reason: "malformed webhook-timestamp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, rid, ts, sig, b, n := [][]byte{key}, id, tsNow, good, body, now
			if tt.keys != nil {
				keys = tt.keys
			}
			// "-" stands for an absent header, which API Gateway hands over as "".
			pick := func(v, def string) string {
				switch v {
				case "":
					return def
				case "-":
					return ""
				}
				return v
			}
			rid, ts, sig = pick(tt.id, rid), pick(tt.ts, ts), pick(tt.sig, sig)
			if tt.body != nil {
				b = tt.body
			}
			if !tt.now.IsZero() {
				n = tt.now
			}
			err := webhook.Verify(keys, rid, ts, sig, b, n)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, webhook.ErrUnauthorized) {
				t.Fatalf("Verify = %v, want ErrUnauthorized", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("Verify = %q, want the reason %q", err, tt.reason)
			}
			// The message goes to the log: no key, no expected signature.
			for _, secret := range append(keys, key, mac) {
				if len(secret) == 0 {
					continue
				}
				for _, form := range []string{string(secret), base64.StdEncoding.EncodeToString(secret), base64.RawStdEncoding.EncodeToString(secret)} {
					if strings.Contains(err.Error(), form) {
						t.Errorf("error %q leaks a key or the expected signature", err)
					}
				}
			}
		})
	}
}
