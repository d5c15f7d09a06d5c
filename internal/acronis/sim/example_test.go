package sim_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"acronismfa/internal/acronis"
	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/testkit"
)

// A Server behind httptest.NewServer is an Acronis data center on loopback:
// the project's client talks to it with the simulated API client's credentials.
func ExampleServer() {
	s := sim.New(sim.Options{})
	s.Generate(sim.TreeSpec{Seed: 1, Size: 100})
	srv := httptest.NewServer(s)
	defer srv.Close()

	c := acronis.New(testkit.StaticCredentials{BaseURL: srv.URL, ClientID: s.ClientID(), ClientSecret: s.ClientSecret()}, acronis.Options{})
	status, err := c.MFAStatus(context.Background(), s.RootID())
	if err != nil {
		panic(err)
	}
	fmt.Println(len(s.All()), "tenants; own tenant MFA", status.MFAStatus)
	fmt.Println(s.Count("GET", "/mfa/status"), "MFA read,", s.TokensIssued(), "token")
	// Output:
	// 101 tenants; own tenant MFA enabled
	// 1 MFA read, 1 token
}
