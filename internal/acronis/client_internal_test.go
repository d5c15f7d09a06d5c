package acronis

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestBackoffGrowsWithFullJitterUpToTheCap(t *testing.T) {
	c := New(nil, Options{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second})
	for attempt, limit := range map[int]time.Duration{
		1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond,
		4: 800 * time.Millisecond, 5: time.Second, 40: time.Second, 70: time.Second,
	} {
		var longest time.Duration
		for range 500 {
			d := c.backoff(attempt)
			if d < 0 || d > limit {
				t.Fatalf("attempt %d: wait %v outside [0, %v]", attempt, d, limit)
			}
			longest = max(longest, d)
		}
		// Full jitter spreads waits over the whole range; 500 draws all in the
		// lower half would mean the range is not what it should be.
		if longest <= limit/2 {
			t.Errorf("attempt %d: longest of 500 waits %v, want some above %v", attempt, longest, limit/2)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"7", 7 * time.Second, true},
		{" 0 ", 0, true},
		{"-3", 0, false},
		{"soon", 0, false},
		{"99999999999999", time.Hour, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseRetryAfter(%q) = %v, %t; want %v, %t", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestParseErrorBody(t *testing.T) {
	tests := []struct {
		body, code, message string
	}{
		{`{"error":{"code":1005,"domain":"PlatformAccountServer","message":"Tenant not found"}}`, "1005", "Tenant not found"},
		{`{"error":{"code":"1012","message":"locked"}}`, "1012", "locked"},
		{`{"error":"invalid_client","error_description":"bad secret"}`, "invalid_client", "bad secret"},
		{`<html>502</html>`, "", ""},
		{``, "", ""},
		{`{"error":[1]}`, "", ""},
	}
	for _, tt := range tests {
		code, message := parseErrorBody(strings.NewReader(tt.body))
		if code != tt.code || message != tt.message {
			t.Errorf("parseErrorBody(%s) = %q, %q; want %q, %q", tt.body, code, message, tt.code, tt.message)
		}
	}
}

func TestExactTenantsKeepsTenantsOfExactlyThatName(t *testing.T) {
	hits := []searchHit{
		{ObjType: "tenant", ID: "1", Name: "Acme Ltd"}, {ObjType: "user", ID: "2", Name: "Acme"},
		{ObjType: "tenant", ID: "3", Name: "Acme", Kind: "customer", ParentID: "p"}, {ObjType: "tenant", ID: "4", Name: "acme"},
	}
	if got := exactTenants(hits, "Acme"); len(got) != 1 || got[0].ID != "3" || got[0].Kind != "customer" || got[0].ParentID != "p" {
		t.Errorf("exact matches %+v, want tenant 3 alone", got)
	}
}

func TestIDSetYieldsEachIDOnce(t *testing.T) {
	var s idSet
	for i, tt := range []struct {
		id  string
		new bool
	}{
		{"f0000000-0000-4000-8000-00000000000a", true},
		{"F0000000-0000-4000-8000-00000000000A", false}, // one tenant, two spellings
		{"f0000000-0000-4000-8000-00000000000b", true},
		{"cust", true},
		{"cust", false},
		{"f0000000-0000-4000-8000-00000000000a", false},
	} {
		if got := s.add(tt.id); got != tt.new {
			t.Errorf("add %d (%s) = %t, want %t", i, tt.id, got, tt.new)
		}
	}
}

// A sweep lists up to 100,000 tenants; the set of their ids must stay small.
func TestIDSetOf100kTenantsIsSmall(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var s idSet
	for i := range 100_000 {
		s.add(fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(&s)
	if mb := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / (1 << 20); mb > 8 {
		t.Errorf("the ids of 100,000 tenants take %.1f MB, want at most 8", mb)
	} else {
		t.Logf("the ids of 100,000 tenants take %.1f MB", mb)
	}
}
