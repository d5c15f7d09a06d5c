package webhook_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"acronismfa/internal/policy"
)

// A GET has no audit line, so its request line is where an operator reads why
// it failed.
func TestHandleLogsTheCauseOfAFailedRead(t *testing.T) {
	k := newHook(t, policy.Rules{})
	r := k.serve(t, t.Context(), get("20000000-0000-4000-8000-0000000000ff"))
	if r.resp.StatusCode != 404 {
		t.Fatalf("status %d", r.resp.StatusCode)
	}
	for _, l := range r.logs {
		if l["message"] == "webhook request" {
			if e, _ := l["error"].(string); !strings.Contains(e, "not found") || !strings.Contains(e, "1005") {
				t.Fatalf("the request line's error %q does not say Acronis had no such tenant", e)
			}
			return
		}
	}
	t.Fatalf("no request line in %v", r.logs)
}

// Signing keys not read before the deadline are a timeout, not an upstream error.
func TestHandleKeysReadPastTheDeadline(t *testing.T) {
	k := newHook(t, policy.Rules{})
	k.h.Keys = func(ctx context.Context, _ bool) ([][]byte, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	r := k.serve(t, ctx, get(whOn))
	if r.resp.StatusCode != 504 || !strings.Contains(r.resp.Body, "upstream_timeout") {
		t.Fatalf("answer %d %s, want 504 upstream_timeout", r.resp.StatusCode, r.resp.Body)
	}
}
