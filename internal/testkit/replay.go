package testkit

import "github.com/aws/aws-lambda-go/events"

// Reroute is a captured webhook request sent on to another tenant's route:
// the signature, which does not cover the path, still verifies
// (docs/reference.md, Replay records).
func Reroute(req events.APIGatewayV2HTTPRequest, tenantID string) events.APIGatewayV2HTTPRequest {
	path := "/tenants/" + tenantID + "/mfa"
	req.RawPath, req.RequestContext.HTTP.Path = path, path
	req.PathParameters = map[string]string{"tenant_id": tenantID}
	return req
}
