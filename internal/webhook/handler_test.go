package webhook_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/policy"
	"acronismfa/internal/telemetry"
	"acronismfa/internal/tenant"
	"acronismfa/internal/testkit"
	"acronismfa/internal/webhook"
)

// Fixed ids of the handler tests' tree below the API client's own tenant:
//
//	own ─┬─ partner ─┬─ off (customer, MFA off, 5 users, 2 with TOTP) ── unit
//	     │           ├─ on (customer, MFA on, 3 users, 3 with TOTP)
//	     │           ├─ locked (customer, MFA off, update_allowed false)
//	     │           ├─ suspended (customer, enabled false, MFA off)
//	     │           └─ folder
//	     └─ xPartner ── xChild (MFA off)
//
// and outsider, a customer beside own that the API client may not see.
const (
	whPartner   = "20000000-0000-4000-8000-000000000001"
	whOff       = "20000000-0000-4000-8000-000000000002"
	whUnit      = "20000000-0000-4000-8000-000000000003"
	whOn        = "20000000-0000-4000-8000-000000000004"
	whLocked    = "20000000-0000-4000-8000-000000000005"
	whSuspended = "20000000-0000-4000-8000-000000000006"
	whFolder    = "20000000-0000-4000-8000-000000000007"
	whXPartner  = "20000000-0000-4000-8000-000000000008"
	whXChild    = "20000000-0000-4000-8000-000000000009"
	whOutsider  = "20000000-0000-4000-8000-00000000000a"
	whUnknown   = "20000000-0000-4000-8000-0000000000ff"
)

// whClock is the handlers' fake now; signatures are timestamped relative to it.
var whClock = time.Unix(1_767_225_600, 0)

const whNamespace = "AcronisMFA/Test"

var (
	keyA = []byte("webhook-test-key-a-0123456789abcdef")
	keyB = []byte("webhook-test-key-b-fedcba9876543210")
)

// lockedBuffer is a bytes.Buffer safe for the concurrent writes of a handler.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// take returns what was written so far and empties the buffer.
func (b *lockedBuffer) take() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := bytes.Clone(b.buf.Bytes())
	b.buf.Reset()
	return out
}

type hook struct {
	env  *testkit.Acronis
	h    *webhook.Handler
	logs lockedBuffer
	out  lockedBuffer
}

func whFixture(t *testing.T) *testkit.Acronis {
	t.Helper()
	env := testkit.NewAcronis(t, testkit.AcronisOptions{})
	own := env.Sim.RootID()
	ownTenant, _ := env.Sim.Get(own)
	for _, tn := range []sim.Tenant{
		{ID: whPartner, Name: "Partner", Kind: "partner", ParentID: own, Enabled: true, MFAStatus: "enabled", UpdateAllowed: true},
		{ID: whOff, Name: "Off", Kind: "customer", ParentID: whPartner, Enabled: true, MFAStatus: "disabled", UsersCount: 5, UsersWithTOTP: 2, UpdateAllowed: true},
		{ID: whUnit, Name: "Unit", Kind: "unit", ParentID: whOff, Enabled: true, UpdateAllowed: true},
		{ID: whOn, Name: "On", Kind: "customer", ParentID: whPartner, Enabled: true, MFAStatus: "enabled", UsersCount: 3, UsersWithTOTP: 3, UpdateAllowed: true},
		{ID: whLocked, Name: "Locked", Kind: "customer", ParentID: whPartner, Enabled: true, MFAStatus: "disabled", UpdateAllowed: false},
		{ID: whSuspended, Name: "Suspended", Kind: "customer", ParentID: whPartner, Enabled: false, MFAStatus: "disabled", UsersCount: 1, UpdateAllowed: true},
		{ID: whFolder, Name: "Folder", Kind: "folder", ParentID: whPartner, Enabled: true, UpdateAllowed: true},
		{ID: whXPartner, Name: "Excluded Partner", Kind: "partner", ParentID: own, Enabled: true, MFAStatus: "disabled", UpdateAllowed: true},
		{ID: whXChild, Name: "Excluded Child", Kind: "customer", ParentID: whXPartner, Enabled: true, MFAStatus: "disabled", UpdateAllowed: true},
		{ID: whOutsider, Name: "Outsider", Kind: "customer", ParentID: ownTenant.ParentID, Enabled: true, MFAStatus: "disabled", UpdateAllowed: true},
	} {
		if err := env.Sim.Add(tn); err != nil {
			t.Fatal(err)
		}
	}
	return env
}

// newHook builds the handler over a fresh fixture, with keyA as the one signing key.
func newHook(t *testing.T, rules policy.Rules) *hook {
	t.Helper()
	return newHookOn(t, whFixture(t), rules)
}

func newHookOn(t *testing.T, env *testkit.Acronis, rules policy.Rules) *hook {
	t.Helper()
	k := &hook{env: env}
	k.h = &webhook.Handler{
		Keys:      func(context.Context, bool) ([][]byte, error) { return [][]byte{keyA}, nil },
		Acronis:   env.Client,
		Rules:     rules,
		Logger:    telemetry.NewLogger(&k.logs, "webhook", "http", slog.LevelDebug),
		Namespace: whNamespace,
		Out:       &k.out,
		Now:       func() time.Time { return whClock },
	}
	return k
}

// signV1 computes a Standard Webhooks v1 signature with crypto/hmac directly.
func signV1(key []byte, id, ts string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

var messages atomic.Int64

// request builds an API Gateway HTTP API (payload 2.0) request signed with key
// at ts over body, as a caller's provisioning system sends it.
func request(key []byte, ts time.Time, method, path, body string) events.APIGatewayV2HTTPRequest {
	// Every message has its own id, as Standard Webhooks senders make them.
	id := "msg_" + strconv.FormatInt(ts.UnixNano(), 36) + "_" + strconv.FormatInt(messages.Add(1), 36)
	stamp := strconv.FormatInt(ts.Unix(), 10)
	return events.APIGatewayV2HTTPRequest{
		Version:  "2.0",
		RouteKey: "$default",
		RawPath:  path,
		Headers: map[string]string{
			"content-type":      "application/json",
			"webhook-id":        id,
			"webhook-timestamp": stamp,
			"webhook-signature": signV1(key, id, stamp, []byte(body)),
		},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path, Protocol: "HTTP/1.1"},
		},
		Body: body,
	}
}

// put and get are requests signed correctly with keyA, now.
func put(tenantID, body string) events.APIGatewayV2HTTPRequest {
	return request(keyA, whClock, http.MethodPut, "/tenants/"+tenantID+"/mfa", body)
}

func get(tenantID string) events.APIGatewayV2HTTPRequest {
	return request(keyA, whClock, http.MethodGet, "/tenants/"+tenantID+"/mfa", "")
}

// with returns req changed by f, leaving req as it was.
func with(req events.APIGatewayV2HTTPRequest, f func(*events.APIGatewayV2HTTPRequest)) events.APIGatewayV2HTTPRequest {
	req.Headers = maps.Clone(req.Headers)
	f(&req)
	return req
}

// result is one invocation as the outside world sees it.
type result struct {
	resp   events.APIGatewayV2HTTPResponse
	logs   []map[string]any
	audits []map[string]any
	emf    map[string]any
}

// serve invokes the handler and checks what every invocation must produce: no
// Go error (API Gateway would answer 500), a JSON answer, and exactly one EMF
// document for the webhook.
func (k *hook) serve(t *testing.T, ctx context.Context, req events.APIGatewayV2HTTPRequest) result {
	t.Helper()
	resp, err := k.h.Handle(ctx, req)
	if err != nil {
		t.Fatalf("Handle returned error %v: API Gateway would answer 500", err)
	}
	r := result{resp: resp, logs: jsonLines(t, k.logs.take())}
	for _, l := range r.logs {
		if l["audit"] == true {
			r.audits = append(r.audits, l)
		}
	}
	docs := jsonLines(t, k.out.take())
	if len(docs) != 1 {
		t.Fatalf("%d EMF documents, want one per invocation", len(docs))
	}
	r.emf = docs[0]
	checkEMF(t, r.emf, "webhook", "http")
	if ct := resp.Headers["Content-Type"]; ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	for _, line := range r.logs {
		raw, _ := json.Marshal(line)
		for _, secret := range []string{string(keyA), string(keyB), k.env.Creds.ClientSecret} {
			if strings.Contains(string(raw), secret) {
				t.Fatalf("a log line holds a secret: %s", raw)
			}
		}
	}
	return r
}

func jsonLines(t *testing.T, out []byte) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not a JSON object: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	return lines
}

// checkEMF checks an Embedded Metric Format document's shape and dimensions.
func checkEMF(t *testing.T, doc map[string]any, function, trigger string) {
	t.Helper()
	if doc["Function"] != function || doc["Trigger"] != trigger {
		t.Fatalf("EMF dimensions Function=%v Trigger=%v, want %s and %s", doc["Function"], doc["Trigger"], function, trigger)
	}
	meta, _ := doc["_aws"].(map[string]any)
	cwm, _ := meta["CloudWatchMetrics"].([]any)
	if len(cwm) != 1 {
		t.Fatalf("EMF _aws.CloudWatchMetrics %v, want one directive", meta["CloudWatchMetrics"])
	}
	dir := cwm[0].(map[string]any)
	if dir["Namespace"] != whNamespace {
		t.Errorf("EMF namespace %v, want %s", dir["Namespace"], whNamespace)
	}
	if dims, _ := json.Marshal(dir["Dimensions"]); string(dims) != `[["Function","Trigger"]]` {
		t.Errorf("EMF dimensions %s", dims)
	}
}

// metric reads a count from an EMF document.
func metric(t *testing.T, doc map[string]any, name string) int {
	t.Helper()
	v, ok := doc[name].(float64)
	if !ok {
		t.Fatalf("EMF document has no metric %s: %v", name, doc)
	}
	return int(v)
}

// apiError decodes an error answer, insisting on exactly {"error": {"code", "message"}}.
func apiError(t *testing.T, resp events.APIGatewayV2HTTPResponse) (code, message string) {
	t.Helper()
	var body map[string]map[string]any
	dec := json.NewDecoder(strings.NewReader(resp.Body))
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("error body %q is not {\"error\": {...}}: %v", resp.Body, err)
	}
	e, ok := body["error"]
	if !ok || len(body) != 1 {
		t.Fatalf("error body %s: want exactly the member \"error\"", resp.Body)
	}
	if keys := slices.Sorted(maps.Keys(e)); !slices.Equal(keys, []string{"code", "message"}) {
		t.Fatalf("error body %s: error has %v, want code and message", resp.Body, keys)
	}
	code, _ = e["code"].(string)
	message, _ = e["message"].(string)
	if code == "" || message == "" {
		t.Fatalf("error body %s: code and message must be non-empty strings", resp.Body)
	}
	return code, message
}

func wantError(t *testing.T, r result, status int, code string) string {
	t.Helper()
	if r.resp.StatusCode != status {
		t.Fatalf("status %d (%s), want %d %s", r.resp.StatusCode, r.resp.Body, status, code)
	}
	got, msg := apiError(t, r.resp)
	if got != code {
		t.Fatalf("code %q (%s), want %q", got, msg, code)
	}
	return msg
}

// status decodes a 200 answer into its members.
func status(t *testing.T, r result) map[string]any {
	t.Helper()
	if r.resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d (%s), want 200", r.resp.StatusCode, r.resp.Body)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(r.resp.Body), &m); err != nil {
		t.Fatalf("body %q: %v", r.resp.Body, err)
	}
	return m
}

// wantAudit checks that the invocation wrote exactly one audit line, for tenant.
func wantAudit(t *testing.T, r result, tenantID, action string) map[string]any {
	t.Helper()
	if len(r.audits) != 1 {
		t.Fatalf("%d audit lines, want 1: %v", len(r.audits), r.audits)
	}
	a := r.audits[0]
	if a["tenant_id"] != tenantID || a["action"] != action {
		t.Fatalf("audit line for %v with action %v, want %s and %s: %v", a["tenant_id"], a["action"], tenantID, action, a)
	}
	for _, k := range []string{"reason", "previous", "current"} {
		if _, ok := a[k].(string); !ok {
			t.Fatalf("audit line lacks %s: %v", k, a)
		}
	}
	return a
}

// warmToken has the client fetch its access token before a test slows the
// simulator down. The simulator waits out its latency before reading a request
// body, and net/http only notices a caller hanging up once the body is read, so
// a token POST abandoned by its caller would keep the server (and the test's
// cleanup) waiting the full latency; a GET without a body ends at once.
func warmToken(t *testing.T, env *testkit.Acronis) {
	t.Helper()
	if _, err := env.Client.OwnTenantID(t.Context()); err != nil {
		t.Fatal(err)
	}
	env.Sim.ResetRequests()
}

func simState(t *testing.T, env *testkit.Acronis, id string) bool {
	t.Helper()
	tn, ok := env.Sim.Get(id)
	if !ok {
		t.Fatalf("tenant %s gone", id)
	}
	return tenant.MFAOn(tn.MFAStatus)
}

// Signed or not, a request the API cannot take is refused with 400 or 401
// before anything reaches Acronis, and is no tenant decision to audit.
func TestHandleRefusesHostileInputWithoutAskingAcronis(t *testing.T) {
	path := "/tenants/" + whOff + "/mfa"
	on := `{"enabled": true}`
	big := `{"enabled": true, "pad": "` + strings.Repeat("x", webhook.MaxBodyBytes) + `"}`
	b64 := base64.StdEncoding.EncodeToString([]byte(on))
	valid := put(whOff, on)
	tests := []struct {
		name   string
		req    events.APIGatewayV2HTTPRequest
		status int
		code   string
	}{
		// 400 invalid_tenant_id: the path id is not a UUID.
		{"id not a UUID", get("not-a-uuid"), 400, "invalid_tenant_id"},
		{"id without dashes", put(strings.ReplaceAll(whOff, "-", ""), on), 400, "invalid_tenant_id"},
		{"id with a trailing character", put(whOff+"0", on), 400, "invalid_tenant_id"},
		{"dot-dot encoded", get("%2e%2e"), 400, "invalid_tenant_id"},
		{"dot-dot slash encoded", put("..%2F..%2Fclients", on), 400, "invalid_tenant_id"},
		{"encoded slashes after a valid id", put(whOff+"%2Fmfa%2Fstatus", on), 400, "invalid_tenant_id"},
		{"encoded id", put(strings.ReplaceAll(whOff, "-", "%2D"), on), 400, "invalid_tenant_id"},

		// 400 invalid_request: the route.
		{"dot-dot segments", request(keyA, whClock, "PUT", "/tenants/../../mfa", on), 400, "invalid_request"},
		{"dot-dot after the id", request(keyA, whClock, "PUT", "/tenants/"+whOff+"/../mfa", on), 400, "invalid_request"},
		{"id of another tenant through dot-dot", request(keyA, whClock, "GET", "/tenants/"+whOn+"/../"+whOff+"/mfa", ""), 400, "invalid_request"},
		{"unknown route: the Acronis path", request(keyA, whClock, "GET", "/tenants/"+whOff+"/mfa/status", ""), 400, "invalid_request"},
		{"unknown route: the tenant", request(keyA, whClock, "GET", "/tenants/"+whOff, ""), 400, "invalid_request"},
		{"unknown route: root", request(keyA, whClock, "GET", "/", ""), 400, "invalid_request"},
		{"unknown route: trailing slash", request(keyA, whClock, "PUT", path+"/", on), 400, "invalid_request"},
		{"unknown route: double slash", request(keyA, whClock, "PUT", "/tenants//"+whOff+"/mfa", on), 400, "invalid_request"},
		{"wrong method POST", request(keyA, whClock, "POST", path, on), 400, "invalid_request"},
		{"wrong method DELETE", request(keyA, whClock, "DELETE", path, ""), 400, "invalid_request"},
		{"wrong method PATCH", request(keyA, whClock, "PATCH", path, on), 400, "invalid_request"},

		// 400 invalid_request: the body.
		{"body not JSON", put(whOff, `{enabled: true}`), 400, "invalid_request"},
		{"body truncated", put(whOff, `{"enabled": true`), 400, "invalid_request"},
		{"enabled missing", put(whOff, `{}`), 400, "invalid_request"},
		{"enabled as string", put(whOff, `{"enabled": "true"}`), 400, "invalid_request"},
		{"enabled as number", put(whOff, `{"enabled": 1}`), 400, "invalid_request"},
		{"enabled null", put(whOff, `{"enabled": null}`), 400, "invalid_request"},
		{"extra field", put(whOff, `{"enabled": true, "force": true}`), 400, "invalid_request"},
		{"key in other case", put(whOff, `{"Enabled": true}`), 400, "invalid_request"},
		{"duplicated enabled", put(whOff, `{"enabled": false, "enabled": true}`), 400, "invalid_request"},
		{"two objects", put(whOff, `{"enabled": true}{"enabled": false}`), 400, "invalid_request"},
		{"array", put(whOff, `[{"enabled": true}]`), 400, "invalid_request"},
		{"empty body on PUT", put(whOff, ""), 400, "invalid_request"},
		{"blank body on PUT", put(whOff, " \n"), 400, "invalid_request"},
		{"body on GET", request(keyA, whClock, "GET", path, on), 400, "invalid_request"},
		{"body over 64 KiB", put(whOff, big), 400, "invalid_request"},
		{"body over 64 KiB unsigned", with(put(whOff, big), func(r *events.APIGatewayV2HTTPRequest) { delete(r.Headers, "webhook-signature") }), 400, "invalid_request"},
		{"base64 body over 64 KiB", with(put(whOff, big), func(r *events.APIGatewayV2HTTPRequest) {
			r.Body, r.IsBase64Encoded = base64.StdEncoding.EncodeToString([]byte(big)), true
		}), 400, "invalid_request"},
		{"base64 flag on a body that is not base64", with(put(whOff, on), func(r *events.APIGatewayV2HTTPRequest) { r.IsBase64Encoded = true }), 400, "invalid_request"},

		// 401 unauthorized: the signature check failed. The body is verified
		// before it is parsed, and the route before it is read.
		{"no webhook-id", with(valid, func(r *events.APIGatewayV2HTTPRequest) { delete(r.Headers, "webhook-id") }), 401, "unauthorized"},
		{"no webhook-timestamp", with(valid, func(r *events.APIGatewayV2HTTPRequest) { delete(r.Headers, "webhook-timestamp") }), 401, "unauthorized"},
		{"no webhook-signature", with(valid, func(r *events.APIGatewayV2HTTPRequest) { delete(r.Headers, "webhook-signature") }), 401, "unauthorized"},
		{"no headers at all", with(valid, func(r *events.APIGatewayV2HTTPRequest) { r.Headers = nil }), 401, "unauthorized"},
		{"empty webhook-signature", with(valid, func(r *events.APIGatewayV2HTTPRequest) { r.Headers["webhook-signature"] = "" }), 401, "unauthorized"},
		{"garbage signature", with(valid, func(r *events.APIGatewayV2HTTPRequest) { r.Headers["webhook-signature"] = "v1,!!not base64!!" }), 401, "unauthorized"},
		{"signature without version", with(valid, func(r *events.APIGatewayV2HTTPRequest) {
			r.Headers["webhook-signature"] = strings.TrimPrefix(r.Headers["webhook-signature"], "v1,")
		}), 401, "unauthorized"},
		{"signature of another version", with(valid, func(r *events.APIGatewayV2HTTPRequest) {
			r.Headers["webhook-signature"] = "v2," + strings.TrimPrefix(r.Headers["webhook-signature"], "v1,")
		}), 401, "unauthorized"},
		{"duplicated signature header, joined by API Gateway", with(valid, func(r *events.APIGatewayV2HTTPRequest) {
			r.Headers["webhook-signature"] += "," + r.Headers["webhook-signature"]
		}), 401, "unauthorized"},
		{"signature truncated", with(valid, func(r *events.APIGatewayV2HTTPRequest) {
			s := r.Headers["webhook-signature"]
			r.Headers["webhook-signature"] = s[:len(s)-4]
		}), 401, "unauthorized"},
		{"wrong key", request(keyB, whClock, "PUT", path, on), 401, "unauthorized"},
		{"empty key", request(nil, whClock, "PUT", path, on), 401, "unauthorized"},
		{"stale timestamp", request(keyA, whClock.Add(-webhook.Tolerance-time.Second), "PUT", path, on), 401, "unauthorized"},
		{"day-old timestamp", request(keyA, whClock.Add(-24*time.Hour), "PUT", path, on), 401, "unauthorized"},
		{"future timestamp", request(keyA, whClock.Add(webhook.Tolerance+time.Second), "PUT", path, on), 401, "unauthorized"},
		{"timestamp in milliseconds", with(valid, func(r *events.APIGatewayV2HTTPRequest) {
			r.Headers["webhook-timestamp"] += "000"
		}), 401, "unauthorized"},
		{"timestamp not a number", with(valid, func(r *events.APIGatewayV2HTTPRequest) { r.Headers["webhook-timestamp"] = "now" }), 401, "unauthorized"},
		{"timestamp changed after signing", with(valid, func(r *events.APIGatewayV2HTTPRequest) {
			r.Headers["webhook-timestamp"] = strconv.FormatInt(whClock.Unix()-1, 10)
		}), 401, "unauthorized"},
		{"id changed after signing", with(valid, func(r *events.APIGatewayV2HTTPRequest) { r.Headers["webhook-id"] += "x" }), 401, "unauthorized"},
		{"tampered body", with(put(whOff, `{"enabled": false}`), func(r *events.APIGatewayV2HTTPRequest) { r.Body = on }), 401, "unauthorized"},
		{"body with trailing space added", with(valid, func(r *events.APIGatewayV2HTTPRequest) { r.Body += " " }), 401, "unauthorized"},
		{"base64 body signed over the encoded text", with(put(whOff, b64), func(r *events.APIGatewayV2HTTPRequest) { r.IsBase64Encoded = true }), 401, "unauthorized"},
		{"unsigned bad body", with(put(whOff, `{enabled`), func(r *events.APIGatewayV2HTTPRequest) { delete(r.Headers, "webhook-signature") }), 401, "unauthorized"},
		{"unsigned bad path", with(put("..%2F..", on), func(r *events.APIGatewayV2HTTPRequest) { delete(r.Headers, "webhook-signature") }), 401, "unauthorized"},
		{"unsigned disable", with(put(whOn, `{"enabled": false}`), func(r *events.APIGatewayV2HTTPRequest) { delete(r.Headers, "webhook-signature") }), 401, "unauthorized"},
	}
	k := newHook(t, policy.Rules{AllowDisable: true})
	before := k.env.Sim.All()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := k.serve(t, t.Context(), tt.req)
			msg := wantError(t, r, tt.status, tt.code)
			if tt.status == 401 && msg != "the request signature could not be verified" {
				// The caller learns nothing about why: no key, no expected value.
				t.Errorf("401 message %q says more than that the signature failed", msg)
			}
			if len(msg) > 300 {
				t.Errorf("message of %d bytes echoes the input", len(msg))
			}
			if n := len(k.env.Sim.Requests()); n != 0 {
				t.Fatalf("%d requests reached Acronis: %v", n, k.env.Sim.Requests())
			}
			if len(r.audits) != 0 {
				t.Errorf("audit lines for a refused request: %v", r.audits)
			}
			if n := metric(t, r.emf, telemetry.MetricAcronisRequests); n != 0 {
				t.Errorf("EMF AcronisRequests %d, want 0", n)
			}
		})
	}
	if after := k.env.Sim.All(); !slices.Equal(before, after) {
		t.Fatal("the tree changed")
	}
}

// A signature made with any configured key, at any time within the tolerance,
// over the decoded body, among other entries, is accepted.
func TestHandleAcceptsEveryValidSignature(t *testing.T) {
	path := "/tenants/" + whOn + "/mfa"
	on := `{"enabled": true}`
	valid := put(whOn, on)
	tests := []struct {
		name string
		req  events.APIGatewayV2HTTPRequest
	}{
		{"key A", valid},
		{"key B", request(keyB, whClock, "PUT", path, on)},
		{"4m59s old", request(keyA, whClock.Add(-webhook.Tolerance+time.Second), "PUT", path, on)},
		{"4m59s ahead", request(keyA, whClock.Add(webhook.Tolerance-time.Second), "PUT", path, on)},
		{"base64 body signed over the decoded bytes", with(valid, func(r *events.APIGatewayV2HTTPRequest) {
			r.Body, r.IsBase64Encoded = base64.StdEncoding.EncodeToString([]byte(on)), true
		})},
		{"valid entry after a garbage and a v2 entry", with(valid, func(r *events.APIGatewayV2HTTPRequest) {
			r.Headers["webhook-signature"] = "v1,AAAA v2,Zm9v " + r.Headers["webhook-signature"]
		})},
		{"headers not lowercased", with(valid, func(r *events.APIGatewayV2HTTPRequest) {
			for _, h := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
				r.Headers[strings.ToUpper(h[:1])+h[1:]] = r.Headers[h]
				delete(r.Headers, h)
			}
		})},
		{"stage prefix", request(keyA, whClock, "PUT", "/prod"+path, on)},
		{"upper-case id", request(keyA, whClock, "PUT", "/tenants/"+strings.ToUpper(whOn)+"/mfa", on)},
	}
	k := newHook(t, policy.Rules{})
	k.h.Keys = func(context.Context, bool) ([][]byte, error) { return [][]byte{keyA, keyB}, nil }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := k.serve(t, t.Context(), tt.req)
			st := status(t, r)
			if st["tenant_id"] != whOn || st["changed"] != false {
				t.Fatalf("status %v", st)
			}
			wantAudit(t, r, whOn, "unchanged")
		})
	}
}

// A key added by rotation works before the cached keys expire: the handler asks
// for a fresh read once the cached ones fail, and only then.
func TestHandleKeyRotation(t *testing.T) {
	k := newHook(t, policy.Rules{})
	var cached, fresh int
	k.h.Keys = func(_ context.Context, f bool) ([][]byte, error) {
		if f {
			fresh++
			return [][]byte{keyA, keyB}, nil
		}
		cached++
		return [][]byte{keyA}, nil
	}
	path := "/tenants/" + whOn + "/mfa"

	r := k.serve(t, t.Context(), request(keyA, whClock, "GET", path, ""))
	status(t, r)
	if cached != 1 || fresh != 0 {
		t.Fatalf("a cached key's request read the keys %d times cached and %d fresh, want 1 and 0", cached, fresh)
	}

	r = k.serve(t, t.Context(), request(keyB, whClock, "GET", path, ""))
	status(t, r)
	if fresh != 1 {
		t.Fatalf("a new key's request read fresh keys %d times, want 1", fresh)
	}

	third := []byte("never-configured-key-0123456789")
	r = k.serve(t, t.Context(), request(third, whClock, "GET", path, ""))
	wantError(t, r, 401, "unauthorized")
	if fresh != 2 {
		t.Fatalf("an unknown key's request read fresh keys %d times in all, want 2", fresh)
	}
	if n := k.env.Sim.Count("GET", "/mfa/status"); n != 2 {
		t.Fatalf("%d status reads, want 2 (none for the refused request)", n)
	}
}

func TestHandleKeysUnreadable(t *testing.T) {
	k := newHook(t, policy.Rules{})
	k.h.Keys = func(context.Context, bool) ([][]byte, error) {
		return nil, errors.New("secrets manager: access denied")
	}
	r := k.serve(t, t.Context(), put(whOff, `{"enabled": true}`))
	msg := wantError(t, r, 502, "upstream_error")
	if strings.Contains(msg, "access denied") {
		t.Errorf("message %q leaks the internal error", msg)
	}
	if n := len(k.env.Sim.Requests()); n != 0 {
		t.Fatalf("%d requests reached Acronis without a verified signature", n)
	}
}

func TestHandleGet(t *testing.T) {
	tests := []struct {
		tenant string
		want   map[string]any
	}{
		{whOn, map[string]any{"tenant_id": whOn, "mfa_status": "enabled", "users_count": 3.0, "users_with_totp_enabled_count": 3.0, "update_allowed": true}},
		{whOff, map[string]any{"tenant_id": whOff, "mfa_status": "disabled", "users_count": 5.0, "users_with_totp_enabled_count": 2.0, "update_allowed": true}},
		{whLocked, map[string]any{"tenant_id": whLocked, "mfa_status": "disabled", "users_count": 0.0, "users_with_totp_enabled_count": 0.0, "update_allowed": false}},
		{strings.ToUpper(whOn), map[string]any{"tenant_id": whOn, "mfa_status": "enabled", "users_count": 3.0, "users_with_totp_enabled_count": 3.0, "update_allowed": true}},
	}
	k := newHook(t, policy.Rules{})
	for _, tt := range tests {
		t.Run(tt.tenant, func(t *testing.T) {
			k.env.Sim.ResetRequests()
			r := k.serve(t, t.Context(), get(tt.tenant))
			got := status(t, r)
			if !maps.Equal(got, tt.want) {
				t.Fatalf("GET answered %v\nwant %v", got, tt.want)
			}
			if len(r.audits) != 0 {
				t.Errorf("a read wrote audit lines: %v", r.audits)
			}
			if n := k.env.Sim.Count("PUT", "/mfa/status"); n != 0 {
				t.Fatalf("a GET wrote %d times", n)
			}
		})
	}
}

func TestHandlePut(t *testing.T) {
	tests := []struct {
		name    string
		rules   policy.Rules
		tenant  string
		body    string
		status  string // mfa_status answered
		changed bool
		dryRun  bool
		puts    int
		after   bool // the tenant's MFA afterwards
		action  string
		metric  string
		users   int // users_without_totp in the audit line
	}{
		{"enable", policy.Rules{}, whOff, `{"enabled": true}`, "enabled", true, false, 1, true, "enable", telemetry.MetricTenantsChanged, 3},
		{"enable a suspended tenant when asked", policy.Rules{}, whSuspended, `{"enabled": true}`, "enabled", true, false, 1, true, "enable", telemetry.MetricTenantsChanged, 1},
		{"already enabled", policy.Rules{}, whOn, `{"enabled": true}`, "enabled", false, false, 0, true, "unchanged", telemetry.MetricTenantsCompliant, 0},
		{"already disabled", policy.Rules{AllowDisable: true}, whOff, `{"enabled": false}`, "disabled", false, false, 0, false, "unchanged", telemetry.MetricTenantsCompliant, 0},
		{"already enabled, body with spaces", policy.Rules{}, whOn, "\t{ \"enabled\" : true }\n", "enabled", false, false, 0, true, "unchanged", telemetry.MetricTenantsCompliant, 0},
		{"disable allowed", policy.Rules{AllowDisable: true}, whOn, `{"enabled": false}`, "disabled", true, false, 1, false, "disable", telemetry.MetricTenantsChanged, 0},
		{"dry run enable", policy.Rules{DryRun: true}, whOff, `{"enabled": true}`, "disabled", false, true, 0, false, "would_enable", telemetry.MetricTenantsWouldChange, 3},
		{"dry run disable", policy.Rules{DryRun: true, AllowDisable: true}, whOn, `{"enabled": false}`, "enabled", false, true, 0, true, "would_disable", telemetry.MetricTenantsWouldChange, 0},
		{"dry run already enabled", policy.Rules{DryRun: true}, whOn, `{"enabled": true}`, "enabled", false, true, 0, true, "unchanged", telemetry.MetricTenantsCompliant, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newHook(t, tt.rules)
			initial, _ := k.env.Sim.Get(tt.tenant)
			r := k.serve(t, t.Context(), put(tt.tenant, tt.body))
			got := status(t, r)
			want := map[string]any{"tenant_id": tt.tenant, "mfa_status": tt.status,
				"users_count": float64(initial.UsersCount), "users_with_totp_enabled_count": float64(initial.UsersWithTOTP),
				"update_allowed": true, "changed": tt.changed, "dry_run": tt.dryRun}
			if !maps.Equal(got, want) {
				t.Fatalf("PUT answered %v\nwant %v", got, want)
			}
			if n := k.env.Sim.Count("PUT", "/mfa/status"); n != tt.puts {
				t.Fatalf("%d PUTs reached Acronis, want %d", n, tt.puts)
			}
			if on := simState(t, k.env, tt.tenant); on != tt.after {
				t.Fatalf("MFA on = %v in Acronis afterwards, want %v", on, tt.after)
			}
			a := wantAudit(t, r, tt.tenant, tt.action)
			if a["previous"] != tenant.MFAState(tenant.MFAOn(initial.MFAStatus)) || a["current"] != tt.status {
				t.Errorf("audit previous %v current %v, want %s and %s", a["previous"], a["current"], tenant.MFAState(tenant.MFAOn(initial.MFAStatus)), tt.status)
			}
			if n, _ := a["users_without_totp"].(float64); int(n) != tt.users {
				t.Errorf("audit users_without_totp %v, want %d", a["users_without_totp"], tt.users)
			}
			if (a["dry_run"] == true) != tt.dryRun {
				t.Errorf("audit dry_run %v, want %v", a["dry_run"], tt.dryRun)
			}
			for _, name := range []string{telemetry.MetricTenantsChanged, telemetry.MetricTenantsWouldChange, telemetry.MetricTenantsCompliant,
				telemetry.MetricTenantsSkipped, telemetry.MetricTenantsFailed} {
				want := 0
				if name == tt.metric {
					want = 1
				}
				if n := metric(t, r.emf, name); n != want {
					t.Errorf("EMF %s %d, want %d", name, n, want)
				}
			}
			if n := metric(t, r.emf, telemetry.MetricTenantsChecked); n != 1 {
				t.Errorf("EMF TenantsChecked %d, want 1", n)
			}
			if n := metric(t, r.emf, telemetry.MetricUsersWithoutTotp); n != tt.users {
				t.Errorf("EMF UsersWithoutTotp %d, want %d", n, tt.users)
			}
			if n := metric(t, r.emf, telemetry.MetricAcronisRequests); n != len(k.env.Sim.Requests()) {
				t.Errorf("EMF AcronisRequests %d, but %d reached the simulator", n, len(k.env.Sim.Requests()))
			}
		})
	}
}

// A disable the operator has not allowed is refused before Acronis is asked
// anything, and audited as a refusal.
func TestHandleDisableNotAllowed(t *testing.T) {
	for _, tenant := range []string{whOn, whOff, whUnknown} {
		k := newHook(t, policy.Rules{})
		r := k.serve(t, t.Context(), put(tenant, `{"enabled": false}`))
		msg := wantError(t, r, 403, "disable_not_allowed")
		if !strings.Contains(msg, "MFA_ALLOW_DISABLE") {
			t.Errorf("message %q does not say how to allow it", msg)
		}
		if n := len(k.env.Sim.Requests()); n != 0 {
			t.Fatalf("%d requests reached Acronis: %v", n, k.env.Sim.Requests())
		}
		a := wantAudit(t, r, tenant, "skipped")
		if !strings.Contains(a["reason"].(string), "MFA_ALLOW_DISABLE") {
			t.Errorf("audit reason %q", a["reason"])
		}
		if n := metric(t, r.emf, telemetry.MetricTenantsSkipped); n != 1 {
			t.Errorf("EMF TenantsSkipped %d, want 1", n)
		}
	}
}

// Every failure row of the contract's table that Acronis or policy causes.
func TestHandleErrors(t *testing.T) {
	on := `{"enabled": true}`
	tests := []struct {
		name    string
		rules   policy.Rules
		faults  *sim.Faults
		secret  string // rotate the API client's secret away first
		timeout time.Duration
		req     events.APIGatewayV2HTTPRequest
		status  int
		code    string
		action  string // of the one audit line; "" for a GET, which has none
		reason  string // in the audit reason
	}{
		{name: "GET unknown tenant", req: get(whUnknown), status: 404, code: "tenant_not_found"},
		{name: "PUT unknown tenant", req: put(whUnknown, on), status: 404, code: "tenant_not_found", action: "failed", reason: "not found"},
		{name: "GET tenant outside the client's tree", req: get(whOutsider), status: 404, code: "tenant_not_found"},
		{name: "PUT tenant outside the client's tree", req: put(whOutsider, on), status: 404, code: "tenant_not_found", action: "failed", reason: "not allowed"},

		{name: "unit", req: put(whUnit, on), status: 409, code: "update_not_allowed", action: "skipped", reason: "inherit"},
		{name: "folder", req: put(whFolder, on), status: 409, code: "update_not_allowed", action: "skipped", reason: "inherit"},
		{name: "update_allowed false", req: put(whLocked, on), status: 409, code: "update_not_allowed", action: "skipped", reason: "update_allowed"},
		{name: "excluded", rules: policy.Rules{Excluded: policy.NewExclusions([]string{whOff})}, req: put(whOff, on),
			status: 409, code: "update_not_allowed", action: "skipped", reason: "EXCLUDED_TENANT_IDS"},
		{name: "excluded in upper case", rules: policy.Rules{Excluded: policy.NewExclusions([]string{strings.ToUpper(whOff)})}, req: put(whOff, on),
			status: 409, code: "update_not_allowed", action: "skipped", reason: "EXCLUDED_TENANT_IDS"},
		{name: "excluded parent", rules: policy.Rules{Excluded: policy.NewExclusions([]string{whXPartner})}, req: put(whXChild, on),
			status: 409, code: "update_not_allowed", action: "skipped", reason: "EXCLUDED_TENANT_IDS"},
		{name: "excluded grandparent", rules: policy.Rules{Excluded: policy.NewExclusions([]string{whPartner})}, req: put(whOff, on),
			status: 409, code: "update_not_allowed", action: "skipped", reason: "EXCLUDED_TENANT_IDS"},
		{name: "excluded grandparent, disable", rules: policy.Rules{AllowDisable: true, Excluded: policy.NewExclusions([]string{whPartner})}, req: put(whOn, `{"enabled": false}`),
			status: 409, code: "update_not_allowed", action: "skipped", reason: "EXCLUDED_TENANT_IDS"},

		{name: "GET throttled", faults: &sim.Faults{ThrottleEvery: 1, RetryAfter: 7}, req: get(whOff), status: 429, code: "rate_limited"},
		{name: "PUT throttled", faults: &sim.Faults{ThrottleEvery: 1, RetryAfter: 7}, req: put(whOff, on), status: 429, code: "rate_limited", action: "failed", reason: "throttled"},

		{name: "GET Acronis 500", faults: &sim.Faults{FailTenants: map[string]int{whOff: 500}}, req: get(whOff), status: 502, code: "upstream_error"},
		{name: "PUT Acronis 500", faults: &sim.Faults{FailTenants: map[string]int{whOff: 500}}, req: put(whOff, on), status: 502, code: "upstream_error", action: "failed", reason: "upstream"},
		{name: "GET credentials rejected", secret: "rotated-elsewhere", req: get(whOff), status: 502, code: "upstream_error"},
		{name: "PUT credentials rejected", secret: "rotated-elsewhere", req: put(whOff, on), status: 502, code: "upstream_error", action: "failed", reason: "credentials rejected"},

		{name: "GET deadline", faults: &sim.Faults{Latency: 10 * time.Second}, timeout: 100 * time.Millisecond, req: get(whOff), status: 504, code: "upstream_timeout"},
		{name: "PUT deadline", faults: &sim.Faults{Latency: 10 * time.Second}, timeout: 100 * time.Millisecond, req: put(whOff, on), status: 504, code: "upstream_timeout", action: "failed", reason: "deadline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newHook(t, tt.rules)
			before := k.env.Sim.All()
			if tt.timeout > 0 {
				warmToken(t, k.env)
			}
			if tt.faults != nil {
				k.env.Sim.SetFaults(*tt.faults)
			}
			if tt.secret != "" {
				k.env.Sim.SetClientSecret(tt.secret)
			}
			ctx := t.Context()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			r := k.serve(t, ctx, tt.req)
			msg := wantError(t, r, tt.status, tt.code)
			for _, leak := range []string{"HTTP", "/api/2", k.env.URL, tt.secret, "sim-secret"} {
				if leak != "" && strings.Contains(msg, leak) {
					t.Errorf("message %q shows the caller %q", msg, leak)
				}
			}
			if n := k.env.Sim.Count("PUT", "/mfa/status"); n != 0 {
				t.Errorf("%d PUTs reached Acronis", n)
			}
			if !slices.Equal(before, k.env.Sim.All()) {
				t.Error("the tree changed")
			}
			switch tt.status {
			case 429:
				if got := r.resp.Headers["Retry-After"]; got != "7" {
					t.Errorf("Retry-After %q, want the 7 seconds Acronis asked for", got)
				}
				throttled := 0
				for _, req := range k.env.Sim.Requests() {
					if req.Status == 429 {
						throttled++
					}
				}
				if n := metric(t, r.emf, telemetry.MetricAcronisThrottled); n != throttled || n == 0 {
					t.Errorf("EMF AcronisThrottled %d, %d throttled answers reached the client", n, throttled)
				}
			case 502:
				if tt.secret != "" && !strings.Contains(msg, "credentials") {
					t.Errorf("message %q does not say the credentials were rejected", msg)
				}
			}
			if tt.status != 429 {
				if _, ok := r.resp.Headers["Retry-After"]; ok {
					t.Errorf("Retry-After on a %d", tt.status)
				}
			}
			if tt.action == "" {
				return
			}
			tenant := strings.Split(tt.req.RawPath, "/")[2]
			a := wantAudit(t, r, tenant, tt.action)
			if reason, _ := a["reason"].(string); !strings.Contains(reason, tt.reason) {
				t.Errorf("audit reason %q does not say %q", reason, tt.reason)
			}
			want := telemetry.MetricTenantsSkipped
			if tt.action == "failed" {
				want = telemetry.MetricTenantsFailed
			}
			if n := metric(t, r.emf, want); n != 1 {
				t.Errorf("EMF %s %d, want 1", want, n)
			}
		})
	}
}

// The handler's request log line says what was asked and answered.
func TestHandleLogsEachRequest(t *testing.T) {
	k := newHook(t, policy.Rules{})
	r := k.serve(t, t.Context(), put(whOff, `{"enabled": true}`))
	status(t, r)
	var found bool
	for _, l := range r.logs {
		if l["message"] == "webhook request" {
			found = true
			if l["method"] != "PUT" || l["status"] != 200.0 || l["function"] != "webhook" || l["trigger"] != "http" {
				t.Errorf("request line %v", l)
			}
		}
	}
	if !found {
		t.Fatalf("no request line in %v", r.logs)
	}
}
