package webhook_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"acronismfa/internal/tenant"
	"acronismfa/internal/testkit"
	"acronismfa/internal/webhook"
)

// FuzzVerify feeds Verify arbitrary headers and checks what a success implies,
// then checks on the same inputs that a signature made by testkit.Sign verifies among
// arbitrary other entries, and stops verifying once one body byte changes.
func FuzzVerify(f *testing.F) {
	f.Add([]byte("key"), "msg_1", int64(1_700_000_000), []byte(`{"enabled": true}`), "v1,AAAA", uint(0), "1700000000", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	f.Fuzz(func(t *testing.T, key []byte, id string, ts int64, body []byte, noise string, flip uint, rawTS, rawSig string) {
		now := time.Unix(1_700_000_000, 0)
		err := webhook.Verify([][]byte{key}, id, rawTS, rawSig, body, now)
		if err != nil && !errors.Is(err, webhook.ErrUnauthorized) {
			t.Fatalf("Verify error %v does not wrap ErrUnauthorized", err)
		}
		if err == nil {
			n, perr := strconv.ParseInt(rawTS, 10, 64)
			if id == "" || len(key) == 0 || perr != nil || rawTS[0] == '+' || n < now.Unix()-300 || n > now.Unix()+300 {
				t.Fatalf("Verify accepted id %q, timestamp %q with key %q", id, rawTS, key)
			}
		}

		if len(key) == 0 || id == "" {
			return
		}
		// Any instant from 1970 to the year 5138 has a timestamp Verify accepts.
		signed := time.Unix((ts%1e11+1e11)%1e11, 0)
		tsHeader := strconv.FormatInt(signed.Unix(), 10)
		sig := testkit.Sign(key, id, signed, body)
		if err := webhook.Verify([][]byte{key}, id, tsHeader, noise+" "+sig+" "+noise, body, signed); err != nil {
			t.Fatalf("Verify of testkit.Sign's signature among %q: %v", noise, err)
		}
		if len(body) == 0 {
			return
		}
		tampered := bytes.Clone(body)
		mask := byte(flip >> 8)
		if mask == 0 {
			mask = 1
		}
		tampered[flip%uint(len(body))] ^= mask
		if err := webhook.Verify([][]byte{key}, id, tsHeader, sig, tampered, signed); !errors.Is(err, webhook.ErrUnauthorized) {
			t.Fatalf("Verify of a tampered body = %v, want ErrUnauthorized", err)
		}
	})
}

// FuzzParseRoute checks that whatever ParseRoute accepts is one of the two routes
// on a canonical UUID, spelled without traversal or encoding tricks.
func FuzzParseRoute(f *testing.F) {
	f.Add("GET", "/tenants/3fa85f64-5717-4562-b3fc-2c963f66afa6/mfa")
	f.Add("PUT", "/prod/tenants/3FA85F64-5717-4562-B3FC-2C963F66AFA6/mfa")
	f.Fuzz(func(t *testing.T, method, path string) {
		r, err := webhook.ParseRoute(method, path)
		if err != nil {
			if errors.Is(err, webhook.ErrInvalidRequest) == errors.Is(err, webhook.ErrInvalidTenantID) {
				t.Fatalf("ParseRoute error %v is not in exactly one class", err)
			}
			return
		}
		if method != "GET" && method != "PUT" || r.Set != (method == "PUT") {
			t.Fatalf("ParseRoute(%q) = %+v", method, r)
		}
		if !tenant.ValidID(r.TenantID) || r.TenantID != strings.ToLower(r.TenantID) {
			t.Fatalf("ParseRoute(%q) tenant id %q", path, r.TenantID)
		}
		rest, ok := strings.CutSuffix(path, "/mfa")
		i := strings.LastIndex(rest, "/tenants/")
		if !ok || i < 0 || !strings.EqualFold(rest[i+len("/tenants/"):], r.TenantID) || strings.Count(rest[:i], "/") > 1 {
			t.Fatalf("ParseRoute(%q) = %+v: not the path's tenant", path, r)
		}
		for _, bad := range []string{"..", "%", "//", "?", "#", "\\", "\x00"} {
			if strings.Contains(path, bad) {
				t.Fatalf("ParseRoute accepted %q, which holds %q", path, bad)
			}
		}
		if n := strings.Count(path, "/"); n != 3 && n != 4 {
			t.Fatalf("ParseRoute accepted %q with %d segments", path, n)
		}
	})
}

// FuzzParseSetBody checks that ParseSetBody accepts only bodies that
// encoding/json reads the same way, and fails only with ErrInvalidRequest.
func FuzzParseSetBody(f *testing.F) {
	f.Add([]byte(`{"enabled": true}`))
	f.Add([]byte(`{"enabled": false}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		enabled, err := webhook.ParseSetBody(body)
		if err != nil {
			if !errors.Is(err, webhook.ErrInvalidRequest) {
				t.Fatalf("ParseSetBody error %v does not wrap ErrInvalidRequest", err)
			}
			if len(err.Error()) > 300 {
				t.Fatalf("ParseSetBody error is %d bytes long", len(err.Error()))
			}
			return
		}
		var v struct {
			Enabled *bool `json:"enabled"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil || v.Enabled == nil || *v.Enabled != enabled || dec.More() {
			t.Fatalf("ParseSetBody(%q) = %v, but encoding/json reads %+v, %v", body, enabled, v, err)
		}
		if !json.Valid(body) {
			t.Fatalf("ParseSetBody accepted invalid JSON %q", body)
		}
	})
}
