package sim_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"acronismfa/internal/acronis/sim"
)

func TestTokenIssuance(t *testing.T) {
	clk := newClock()
	a := newAPI(t, sim.Options{Now: clk.Now})
	status, body := a.requestToken("sim-client", "sim-secret", "application/x-www-form-urlencoded", "grant_type=client_credentials")
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresOn   int64  `json:"expires_on"`
		ExpiresIn   int64  `json:"expires_in"`
		IDToken     string `json:"id_token"`
	}
	decode(t, body, &tok)
	if tok.AccessToken == "" || tok.AccessToken == a.token || tok.IDToken == "" || tok.TokenType != "bearer" {
		t.Errorf("token answer %s: want a fresh bearer access token and an id_token", body)
	}
	if want := clk.Now().Add(2 * time.Hour).Unix(); tok.ExpiresOn != want || tok.ExpiresIn != 7200 {
		t.Errorf("expires_on %d, expires_in %d; want %d and 7200 (two hours)", tok.ExpiresOn, tok.ExpiresIn, want)
	}
	if got := a.sim.TokensIssued(); got != 2 {
		t.Errorf("TokensIssued = %d, want 2", got)
	}
}

func TestTokenRejections(t *testing.T) {
	a := newAPI(t, sim.Options{ClientID: "cid", ClientSecret: "s3cret-value"})
	const form = "application/x-www-form-urlencoded"
	tests := []struct {
		name              string
		id, secret, ctype string
		body              string
		status            int
		oauthError        string
	}{
		{"wrong secret", "cid", "wrong", form, "grant_type=client_credentials", 401, "invalid_client"},
		{"unknown client", "other", "s3cret-value", form, "grant_type=client_credentials", 401, "invalid_client"},
		{"no credentials", "", "", form, "grant_type=client_credentials", 401, "invalid_client"},
		{"password grant", "cid", "s3cret-value", form, "grant_type=password", 400, "unsupported_grant_type"},
		{"no grant", "cid", "s3cret-value", form, "", 400, "unsupported_grant_type"},
		{"JSON body", "cid", "s3cret-value", "application/json", `{"grant_type":"client_credentials"}`, 400, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := a.requestToken(tt.id, tt.secret, tt.ctype, tt.body)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %s", status, tt.status, body)
			}
			var e struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			decode(t, body, &e)
			if e.Error != tt.oauthError || e.Description == "" {
				t.Errorf("body %s, want OAuth error %q with a description", body, tt.oauthError)
			}
			if strings.Contains(string(body), "s3cret-value") {
				t.Errorf("body echoes the client secret: %s", body)
			}
		})
	}
	if got := a.sim.TokensIssued(); got != 1 {
		t.Errorf("TokensIssued = %d after rejections, want 1", got)
	}
	req, _ := http.NewRequest(http.MethodGet, a.url+"/api/2/idp/token", nil)
	if status, body := a.send(req); status != http.StatusMethodNotAllowed {
		t.Errorf("GET /idp/token: status %d, want 405: %s", status, body)
	}
}

func TestSecretRotation(t *testing.T) {
	a := newAPI(t, sim.Options{})
	old := a.sim.ClientSecret()
	a.sim.SetClientSecret("rotated")

	if status, body := a.requestToken(a.sim.ClientID(), old, "application/x-www-form-urlencoded", "grant_type=client_credentials"); status != http.StatusUnauthorized || !strings.Contains(string(body), `"invalid_client"`) {
		t.Errorf("old secret: status %d body %s, want 401 invalid_client", status, body)
	}
	if status, _ := a.requestToken(a.sim.ClientID(), "rotated", "application/x-www-form-urlencoded", "grant_type=client_credentials"); status != http.StatusOK {
		t.Errorf("new secret: status %d, want 200", status)
	}
	if status, body := a.get("/tenants/" + a.sim.RootID()); status != http.StatusOK {
		t.Errorf("token issued before rotation: status %d, want 200 until it expires: %s", status, body)
	}
}

func TestBearerChecks(t *testing.T) {
	clk := newClock()
	a := newAPI(t, sim.Options{Now: clk.Now, TokenTTL: time.Hour})
	path := "/tenants/" + a.sim.RootID()

	good := a.token
	try := func(token string) (int, []byte) {
		t.Helper()
		a.token = token
		return a.get(path)
	}

	status, body := try("")
	wantPlatformError(t, status, body, 401, 401)
	status, body = try("not-a-token")
	wantPlatformError(t, status, body, 401, 401)
	if status, body := try(good); status != http.StatusOK {
		t.Fatalf("valid token: status %d: %s", status, body)
	}

	clk.Advance(time.Hour - time.Second)
	if status, _ := try(good); status != http.StatusOK {
		t.Fatalf("token one second before expiry: status %d, want 200", status)
	}
	clk.Advance(time.Second)
	status, body = try(good)
	wantPlatformError(t, status, body, 401, 401)

	fresh := a.newToken()
	if status, _ := try(fresh); status != http.StatusOK {
		t.Fatalf("fresh token after expiry: status %d, want 200", status)
	}
	a.sim.ExpireTokens()
	status, body = try(fresh)
	wantPlatformError(t, status, body, 401, 401)

	var stale []bool
	for _, r := range a.sim.Requests() {
		if r.Method == http.MethodGet {
			stale = append(stale, r.Stale)
		}
	}
	want := []bool{false, true, false, false, true, false, true}
	if len(stale) != len(want) {
		t.Fatalf("recorded %d GETs, want %d", len(stale), len(want))
	}
	for i := range want {
		if stale[i] != want[i] {
			t.Errorf("GET %d: Stale = %v, want %v (missing header is not stale; unknown, expired and revoked tokens are)", i, stale[i], want[i])
		}
	}
}

func TestGetClient(t *testing.T) {
	a := newAPI(t, sim.Options{ClientID: "my-client"})
	status, body := a.get("/clients/my-client")
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	var c struct {
		ID       string `json:"id"`
		TenantID string `json:"tenant_id"`
	}
	decode(t, body, &c)
	if c.ID != "my-client" || c.TenantID != a.sim.RootID() {
		t.Errorf("client %s, want id my-client and tenant_id %s", body, a.sim.RootID())
	}
	status, body = a.get("/clients/someone-else")
	wantPlatformError(t, status, body, 404, 404)
}
