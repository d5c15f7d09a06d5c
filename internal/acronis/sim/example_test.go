package sim_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"acronismfa/internal/acronis/sim"
)

// A Server behind httptest.NewServer is an Acronis data center on loopback:
// get a token with the client credentials, then call the API with it.
func ExampleServer() {
	s := sim.New(sim.Options{})
	s.Generate(sim.TreeSpec{Seed: 1, Size: 100})
	srv := httptest.NewServer(s)
	defer srv.Close()

	form := url.Values{"grant_type": {"client_credentials"}}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/2/idp/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(s.ClientID(), s.ClientSecret())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()

	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/api/2/tenants/"+s.RootID()+"/mfa/status", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	var status struct {
		MFAStatus string `json:"mfa_status"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&status)
	resp.Body.Close()

	fmt.Println(len(s.All()), "tenants; own tenant MFA", status.MFAStatus)
	fmt.Println(s.Count("GET", "/mfa/status"), "MFA read,", s.TokensIssued(), "token")
	// Output:
	// 101 tenants; own tenant MFA enabled
	// 1 MFA read, 1 token
}
