package sim_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/testkit"
)

func TestTokenRejections(t *testing.T) {
	a := newAPI(t, sim.Options{ClientID: "cid", ClientSecret: "s3cret-value"})
	tests := []struct {
		name, id, secret, ctype, body string
		status                        int
		oauthError                    string
	}{
		{"wrong secret", "cid", "wrong", form, "grant_type=client_credentials", 401, "invalid_client"},
		{"unknown client", "other", "s3cret-value", form, "grant_type=client_credentials", 401, "invalid_client"},
		{"no credentials", "", "", form, "grant_type=client_credentials", 401, "invalid_client"},
		{"password grant", "cid", "s3cret-value", form, "grant_type=password", 400, "unsupported_grant_type"},
		{"no grant", "cid", "s3cret-value", form, "", 400, "unsupported_grant_type"},
		{"JSON body", "cid", "s3cret-value", "application/json", `{"grant_type":"client_credentials"}`, 400, "invalid_request"},
	}
	for _, tt := range tests {
		status, body := a.requestToken(tt.id, tt.secret, tt.ctype, tt.body)
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		decode(t, body, &e)
		if status != tt.status || e.Error != tt.oauthError || e.Description == "" || strings.Contains(string(body), "s3cret-value") {
			t.Errorf("%s: status %d %s, want %d with OAuth error %q, a description and no secret", tt.name, status, body, tt.status, tt.oauthError)
		}
	}
	if got := a.sim.TokensIssued(); got != 1 {
		t.Errorf("TokensIssued = %d after rejections, want 1", got)
	}
	req, _ := http.NewRequest(http.MethodGet, a.url+"/api/2/idp/token", nil)
	if resp, body := a.send(req); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /idp/token: status %d, want 405: %s", resp.StatusCode, body)
	}

	// After a rotation only the new secret gets tokens; tokens issued before
	// stay valid until they expire, as with the real API.
	a.sim.SetClientSecret("rotated")
	if status, _ := a.requestToken("cid", "s3cret-value", form, "grant_type=client_credentials"); status != http.StatusUnauthorized {
		t.Errorf("old secret: status %d, want 401", status)
	}
	if status, _ := a.requestToken("cid", "rotated", form, "grant_type=client_credentials"); status != http.StatusOK {
		t.Errorf("new secret: status %d, want 200", status)
	}
	if status, body := a.get("/tenants/" + a.sim.RootID()); status != http.StatusOK {
		t.Errorf("token issued before rotation: status %d: %s", status, body)
	}
}

func TestBearerChecks(t *testing.T) {
	clock := testkit.NewClock()
	a := newAPI(t, sim.Options{Now: clock.Now, TokenTTL: time.Hour})
	good := a.token
	// A missing header is not stale; unknown, expired and revoked tokens are.
	for i, s := range []struct {
		token   string
		advance time.Duration
		stale   bool
	}{
		{"", 0, false}, {"not-a-token", 0, true}, {good, 0, false},
		{good, time.Hour - time.Second, false}, {good, time.Second, true}, // expired
		{"FRESH", 0, false}, {"REVOKED", 0, true},
	} {
		clock.Advance(s.advance)
		switch a.token = s.token; s.token {
		case "FRESH":
			a.token = a.newToken()
			good = a.token
		case "REVOKED":
			a.sim.ExpireTokens()
			a.token = good
		}
		status, body := a.get("/tenants/" + a.sim.RootID())
		if rejected := s.stale || s.token == ""; rejected {
			wantPlatformError(t, status, body, 401, 401)
		} else if status != 200 {
			t.Fatalf("step %d: status %d: %s", i, status, body)
		}
		if got := a.sim.Requests(); got[len(got)-1].Stale != s.stale {
			t.Errorf("step %d: Stale = %t, want %t", i, !s.stale, s.stale)
		}
	}
}
