//go:build integration

package stack

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"acronismfa/internal/testkit"
)

// TestDashboardBodyIsAccepted puts the template's dashboard, as CloudFormation
// would after substitution, to CloudWatch in moto, which validates the body.
// The request is CloudWatch's query protocol by hand: the Go SDK speaks a
// newer protocol that moto does not serve.
func TestDashboardBodyIsAccepted(t *testing.T) {
	e := evaluate(t)
	body := str(asMap(e.Eval(e.t.Resources["Dashboard"].Properties))["DashboardBody"])
	m := testkit.NewMoto(t)
	form := url.Values{"Action": {"PutDashboard"}, "Version": {"2010-08-01"}, "DashboardName": {"acronis-mfa"}, "DashboardBody": {body}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, m.Endpoint+"/", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// moto finds the service in the credential scope; it checks no signature.
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=testing/20260101/"+testkit.MotoRegion+"/monitoring/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(answer), "<DashboardValidationMessages/>") {
		t.Fatalf("PutDashboard: %d %s", resp.StatusCode, answer)
	}
}
