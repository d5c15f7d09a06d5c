package sim_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"acronismfa/internal/acronis/sim"
)

// A caller that gives up on a slow request with a body must not leave the
// simulator serving it for the whole latency: the server could not close.
func TestAbandonedRequestWithBodyEndsBeforeItsLatency(t *testing.T) {
	s := sim.New(sim.Options{})
	srv := httptest.NewServer(s)
	s.SetFaults(sim.Faults{Latency: 10 * time.Minute})

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/api/2/idp/token",
		strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("the request was answered despite a ten-minute latency")
	}

	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("the server still serves the abandoned request")
	}
}
