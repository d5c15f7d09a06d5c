package webhook_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/enforce"
	"acronismfa/internal/policy"
	"acronismfa/internal/telemetry"
	"acronismfa/internal/tenant"
	"acronismfa/internal/testkit"
	"acronismfa/internal/webhook"
)

const namespace = "AcronisMFA/Test"

var (
	keyA = []byte("webhook-test-key-a-0123456789abcdef")
	keyB = []byte("webhook-test-key-b-fedcba9876543210")
)

// hook is the handler over the fixture tree, with keyA as the one signing key
// and its clock standing at testkit.Epoch. Its logs and EMF documents go to one
// stdout, as in Lambda.
type hook struct {
	acr *testkit.Acronis
	h   *webhook.Handler
	out *testkit.Output
}

func newHook(t *testing.T, rules policy.Rules) *hook {
	t.Helper()
	k := &hook{acr: testkit.NewFixture(t, testkit.AcronisOptions{}), out: testkit.NewOutput(nil)}
	k.h = &webhook.Handler{
		Keys:      func(context.Context, bool) ([][]byte, error) { return [][]byte{keyA}, nil },
		Acronis:   k.acr.Client,
		Enforcer:  &enforce.Enforcer{API: k.acr.Client, Rules: rules},
		Logger:    telemetry.NewLogger(k.out, "webhook", "http", slog.LevelDebug),
		Namespace: namespace,
		Out:       k.out,
		Now:       testkit.NewClock().Now,
	}
	return k
}

// put and get are requests on a tenant, signed with keyA now.
func put(tenantID, body string) events.APIGatewayV2HTTPRequest {
	return testkit.WebhookRequest(keyA, testkit.Epoch, http.MethodPut, tenantID, body)
}

func get(tenantID string) events.APIGatewayV2HTTPRequest {
	return testkit.WebhookRequest(keyA, testkit.Epoch, http.MethodGet, tenantID, "")
}

// signed is a request on any raw path, signed with key at ts; the signature
// does not cover the path.
func signed(key []byte, ts time.Time, method, path, body string) events.APIGatewayV2HTTPRequest {
	return with(testkit.WebhookRequest(key, ts, method, "", body), func(r *events.APIGatewayV2HTTPRequest) {
		r.RawPath, r.RequestContext.HTTP.Path = path, path
	})
}

// with returns req changed by f, leaving req as it was.
func with(req events.APIGatewayV2HTTPRequest, f func(*events.APIGatewayV2HTTPRequest)) events.APIGatewayV2HTTPRequest {
	req.Headers = maps.Clone(req.Headers)
	f(&req)
	return req
}

// result is one invocation as the outside world sees it.
type result struct {
	resp    events.APIGatewayV2HTTPResponse
	audits  []map[string]any
	emf     testkit.EMF
	request map[string]any // the request's log line
}

// serve invokes the handler and checks what every invocation must produce: no
// Go error (API Gateway would answer 500), a JSON answer, JSON log lines
// without secrets, one request line, and exactly one EMF document for the
// webhook that counts the Acronis requests made.
func (k *hook) serve(t *testing.T, ctx context.Context, req events.APIGatewayV2HTTPRequest) result {
	t.Helper()
	mark, sent := k.out.Mark(), len(k.acr.Sim.Requests())
	resp, err := k.h.Handle(ctx, req)
	if err != nil {
		t.Fatalf("Handle returned error %v: API Gateway would answer 500", err)
	}
	r := result{resp: resp, audits: k.out.Audits(mark)}
	if ct := resp.Headers["Content-Type"]; ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	for _, line := range k.out.Since(mark) {
		m, ok := testkit.JSONObject(line)
		if !ok {
			t.Fatalf("line %q is not a JSON object", line)
		}
		for _, secret := range []string{string(keyA), string(keyB), k.acr.Creds.ClientSecret} {
			if strings.Contains(line, secret) {
				t.Fatalf("a log line holds a secret: %s", line)
			}
		}
		if m["message"] == "webhook request" {
			if r.request != nil {
				t.Fatalf("two request lines: %v and %v", r.request, m)
			}
			r.request = m
		}
	}
	if r.request["method"] != req.RequestContext.HTTP.Method || r.request["status"] != float64(resp.StatusCode) {
		t.Errorf("request line %v, want method %s and status %d", r.request, req.RequestContext.HTTP.Method, resp.StatusCode)
	}
	r.emf = k.out.InvocationEMF(t, mark, namespace, "webhook", "http")
	// A caller that gave up may leave a request on its way to the simulator.
	if _, deadline := ctx.Deadline(); !deadline {
		if n := len(k.acr.Sim.Requests()) - sent; r.emf.Metrics[telemetry.MetricAcronisRequests] != float64(n) {
			t.Errorf("EMF AcronisRequests %v, but %d reached the simulator", r.emf.Metrics[telemetry.MetricAcronisRequests], n)
		}
	}
	return r
}

// wantError checks an error answer: exactly {"error": {"code", "message"}}.
func wantError(t *testing.T, r result, status int, code string) string {
	t.Helper()
	var body map[string]map[string]any
	if err := json.Unmarshal([]byte(r.resp.Body), &body); err != nil || len(body) != 1 {
		t.Fatalf("error body %q is not {\"error\": {...}}: %v", r.resp.Body, err)
	}
	e := body["error"]
	if keys := slices.Sorted(maps.Keys(e)); !slices.Equal(keys, []string{"code", "message"}) {
		t.Fatalf("error body %s: error has %v, want code and message", r.resp.Body, keys)
	}
	msg, _ := e["message"].(string)
	if r.resp.StatusCode != status || e["code"] != code || msg == "" {
		t.Fatalf("answer %d %s, want %d %s with a message", r.resp.StatusCode, r.resp.Body, status, code)
	}
	return msg
}

// status decodes a 200 answer into its members.
func status(t *testing.T, r result) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.resp.Body), &m); err != nil || r.resp.StatusCode != http.StatusOK {
		t.Fatalf("answer %d %s, want 200 with a status object", r.resp.StatusCode, r.resp.Body)
	}
	return m
}

// wantAudit checks that the invocation wrote exactly one audit line, for tenant.
func wantAudit(t *testing.T, r result, tenantID, action string) map[string]any {
	t.Helper()
	if len(r.audits) != 1 || r.audits[0]["tenant_id"] != tenantID || r.audits[0]["action"] != action {
		t.Fatalf("audit lines %v, want one for %s with action %s", r.audits, tenantID, action)
	}
	a := r.audits[0]
	for _, k := range []string{"reason", "previous", "current"} {
		if _, ok := a[k].(string); !ok {
			t.Fatalf("audit line lacks %s: %v", k, a)
		}
	}
	return a
}

// counted checks the EMF document's one outcome and its users without TOTP.
func counted(t *testing.T, r result, metric string, users int) {
	t.Helper()
	for _, name := range []string{telemetry.MetricTenantsChanged, telemetry.MetricTenantsWouldChange, telemetry.MetricTenantsCompliant,
		telemetry.MetricTenantsSkipped, telemetry.MetricTenantsFailed} {
		if want := map[bool]float64{true: 1}[name == metric]; r.emf.Metrics[name] != want {
			t.Errorf("EMF %s %v, want %v", name, r.emf.Metrics[name], want)
		}
	}
	if r.emf.Metrics[telemetry.MetricTenantsChecked] != 1 || r.emf.Metrics[telemetry.MetricUsersWithoutTotp] != float64(users) {
		t.Errorf("EMF TenantsChecked %v, UsersWithoutTotp %v; want 1 and %d",
			r.emf.Metrics[telemetry.MetricTenantsChecked], r.emf.Metrics[telemetry.MetricUsersWithoutTotp], users)
	}
}

// warmToken has the client fetch its access token before a test slows the
// simulator down. The simulator waits out its latency before reading a request
// body, and net/http only notices a caller hanging up once the body is read, so
// a token POST abandoned by its caller would keep the server (and the test's
// cleanup) waiting the full latency; a GET without a body ends at once.
func warmToken(t *testing.T, acr *testkit.Acronis) {
	t.Helper()
	if _, err := acr.Client.OwnTenantID(t.Context()); err != nil {
		t.Fatal(err)
	}
	acr.Sim.ResetRequests()
}

// Signed or not, a request the API cannot take is refused with 400 or 401
// before anything reaches Acronis, and is no tenant decision to audit. The
// parsers' own tests go through every spelling; these are the classes.
func TestHandleRefusesHostileInputWithoutAskingAcronis(t *testing.T) {
	off, on := testkit.OffCustomer, `{"enabled": true}`
	path := "/tenants/" + off + "/mfa"
	big := `{"enabled": true, "pad": "` + strings.Repeat("x", webhook.MaxBodyBytes) + `"}`
	valid := put(off, on)
	unsigned := func(r *events.APIGatewayV2HTTPRequest) { delete(r.Headers, "webhook-signature") }
	setSig := func(f func(string) string) func(*events.APIGatewayV2HTTPRequest) {
		return func(r *events.APIGatewayV2HTTPRequest) {
			r.Headers["webhook-signature"] = f(r.Headers["webhook-signature"])
		}
	}
	tests := []struct {
		name   string
		req    events.APIGatewayV2HTTPRequest
		status int
		code   string
	}{
		{"id not a UUID", get("not-a-uuid"), 400, "invalid_tenant_id"},
		{"dot-dot encoded", get("%2e%2e"), 400, "invalid_tenant_id"},
		{"encoded slashes after a valid id", put(off+"%2Fmfa%2Fstatus", on), 400, "invalid_tenant_id"},

		{"dot-dot segments", signed(keyA, testkit.Epoch, "PUT", "/tenants/../../mfa", on), 400, "invalid_request"},
		{"id of another tenant through dot-dot", signed(keyA, testkit.Epoch, "GET", "/tenants/"+testkit.OnCustomer+"/../"+off+"/mfa", ""), 400, "invalid_request"},
		{"unknown route: the Acronis path", signed(keyA, testkit.Epoch, "GET", path+"/status", ""), 400, "invalid_request"},
		{"unknown route: trailing slash", signed(keyA, testkit.Epoch, "PUT", path+"/", on), 400, "invalid_request"},
		{"wrong method POST", signed(keyA, testkit.Epoch, "POST", path, on), 400, "invalid_request"},
		{"wrong method DELETE", signed(keyA, testkit.Epoch, "DELETE", path, ""), 400, "invalid_request"},

		{"body not JSON", put(off, `{enabled: true}`), 400, "invalid_request"},
		{"enabled as string", put(off, `{"enabled": "true"}`), 400, "invalid_request"},
		{"extra field", put(off, `{"enabled": true, "force": true}`), 400, "invalid_request"},
		{"duplicated enabled", put(off, `{"enabled": false, "enabled": true}`), 400, "invalid_request"},
		{"empty body on PUT", put(off, ""), 400, "invalid_request"},
		{"body on GET", signed(keyA, testkit.Epoch, "GET", path, on), 400, "invalid_request"},
		{"body over 64 KiB", put(off, big), 400, "invalid_request"},
		{"body over 64 KiB unsigned", with(put(off, big), unsigned), 400, "invalid_request"},
		{"base64 body over 64 KiB", with(put(off, big), func(r *events.APIGatewayV2HTTPRequest) {
			r.Body, r.IsBase64Encoded = base64.StdEncoding.EncodeToString([]byte(big)), true
		}), 400, "invalid_request"},
		{"base64 flag on a body that is not base64", with(valid, func(r *events.APIGatewayV2HTTPRequest) { r.IsBase64Encoded = true }), 400, "invalid_request"},

		// The body is verified before it is parsed, and the route before it is read.
		{"no headers at all", with(valid, func(r *events.APIGatewayV2HTTPRequest) { r.Headers = nil }), 401, "unauthorized"},
		{"no webhook-id", with(valid, func(r *events.APIGatewayV2HTTPRequest) { delete(r.Headers, "webhook-id") }), 401, "unauthorized"},
		{"garbage signature", with(valid, setSig(func(string) string { return "v1,!!not base64!!" })), 401, "unauthorized"},
		{"signature of another version", with(valid, setSig(func(s string) string { return "v2," + strings.TrimPrefix(s, "v1,") })), 401, "unauthorized"},
		{"duplicated signature header, joined by API Gateway", with(valid, setSig(func(s string) string { return s + "," + s })), 401, "unauthorized"},
		{"wrong key", testkit.WebhookRequest(keyB, testkit.Epoch, "PUT", off, on), 401, "unauthorized"},
		{"empty key", testkit.WebhookRequest([]byte{}, testkit.Epoch, "PUT", off, on), 401, "unauthorized"},
		{"stale timestamp", testkit.WebhookRequest(keyA, testkit.Epoch.Add(-webhook.Tolerance-time.Second), "PUT", off, on), 401, "unauthorized"},
		{"future timestamp", testkit.WebhookRequest(keyA, testkit.Epoch.Add(webhook.Tolerance+time.Second), "PUT", off, on), 401, "unauthorized"},
		{"timestamp changed after signing", with(valid, func(r *events.APIGatewayV2HTTPRequest) {
			r.Headers["webhook-timestamp"] = strconv.FormatInt(testkit.Epoch.Unix()-1, 10)
		}), 401, "unauthorized"},
		{"tampered body", with(put(off, `{"enabled": false}`), func(r *events.APIGatewayV2HTTPRequest) { r.Body = on }), 401, "unauthorized"},
		{"base64 body signed over the encoded text", with(put(off, base64.StdEncoding.EncodeToString([]byte(on))), func(r *events.APIGatewayV2HTTPRequest) {
			r.IsBase64Encoded = true
		}), 401, "unauthorized"},
		{"unsigned bad body", with(put(off, `{enabled`), unsigned), 401, "unauthorized"},
		{"unsigned bad path", with(put("..%2F..", on), unsigned), 401, "unauthorized"},
		{"unsigned disable", with(put(testkit.OnCustomer, `{"enabled": false}`), unsigned), 401, "unauthorized"},
	}
	k := newHook(t, policy.Rules{AllowDisable: true})
	before := k.acr.Sim.All()
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
			if n := len(k.acr.Sim.Requests()); n != 0 || len(r.audits) != 0 {
				t.Fatalf("%d requests reached Acronis, audit lines %v", n, r.audits)
			}
		})
	}
	if !slices.Equal(before, k.acr.Sim.All()) {
		t.Fatal("the tree changed")
	}
}

// A signature made with any configured key, at any time within the tolerance,
// over the decoded body, among other entries, is accepted.
func TestHandleAcceptsEveryValidSignature(t *testing.T) {
	on, body := testkit.OnCustomer, `{"enabled": true}`
	valid := put(on, body)
	tests := []struct {
		name string
		req  events.APIGatewayV2HTTPRequest
	}{
		{"key A", valid},
		{"key B", testkit.WebhookRequest(keyB, testkit.Epoch, "PUT", on, body)},
		{"4m59s old", testkit.WebhookRequest(keyA, testkit.Epoch.Add(-webhook.Tolerance+time.Second), "PUT", on, body)},
		{"4m59s ahead", testkit.WebhookRequest(keyA, testkit.Epoch.Add(webhook.Tolerance-time.Second), "PUT", on, body)},
		{"base64 body signed over the decoded bytes", with(valid, func(r *events.APIGatewayV2HTTPRequest) {
			r.Body, r.IsBase64Encoded = base64.StdEncoding.EncodeToString([]byte(body)), true
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
		{"stage prefix", signed(keyA, testkit.Epoch, "PUT", "/prod/tenants/"+on+"/mfa", body)},
		{"upper-case id", testkit.WebhookRequest(keyA, testkit.Epoch, "PUT", strings.ToUpper(on), body)},
	}
	k := newHook(t, policy.Rules{})
	k.h.Keys = func(context.Context, bool) ([][]byte, error) { return [][]byte{keyA, keyB}, nil }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := k.serve(t, t.Context(), tt.req)
			if st := status(t, r); st["tenant_id"] != on || st["changed"] != false {
				t.Fatalf("status %v", st)
			}
			wantAudit(t, r, on, "unchanged")
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
	steps := []struct {
		key           []byte
		status        int
		cached, fresh int // key reads so far
	}{
		{keyA, 200, 1, 0},
		{keyB, 200, 2, 1},
		{[]byte("never-configured-key-0123456789"), 401, 3, 2},
	}
	for i, st := range steps {
		r := k.serve(t, t.Context(), testkit.WebhookRequest(st.key, testkit.Epoch, "GET", testkit.OnCustomer, ""))
		if r.resp.StatusCode != st.status || cached != st.cached || fresh != st.fresh {
			t.Fatalf("request %d: %d after %d cached and %d fresh key reads, want %d after %d and %d",
				i, r.resp.StatusCode, cached, fresh, st.status, st.cached, st.fresh)
		}
	}
	if n := k.acr.Sim.Count("GET", "/mfa/status"); n != 2 {
		t.Fatalf("%d status reads, want 2 (none for the refused request)", n)
	}
}

// Keys that cannot be read fail the request before Acronis is asked anything:
// a timeout when the deadline passed, an upstream error otherwise.
func TestHandleKeysUnreadable(t *testing.T) {
	tests := []struct {
		name    string
		keys    webhook.Keys
		timeout time.Duration
		status  int
		code    string
	}{
		{"access denied", func(context.Context, bool) ([][]byte, error) {
			return nil, errors.New("secrets manager: access denied")
		}, 0, 502, "upstream_error"},
		{"past the deadline", func(ctx context.Context, _ bool) ([][]byte, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}, 50 * time.Millisecond, 504, "upstream_timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newHook(t, policy.Rules{})
			k.h.Keys = tt.keys
			ctx := t.Context()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			r := k.serve(t, ctx, put(testkit.OffCustomer, `{"enabled": true}`))
			if msg := wantError(t, r, tt.status, tt.code); strings.Contains(msg, "access denied") {
				t.Errorf("message %q leaks the internal error", msg)
			}
			if n := len(k.acr.Sim.Requests()); n != 0 {
				t.Fatalf("%d requests reached Acronis without a verified signature", n)
			}
		})
	}
}

func TestHandleGet(t *testing.T) {
	on := map[string]any{"tenant_id": testkit.OnCustomer, "mfa_status": "enabled", "users_count": 3.0, "users_with_totp_enabled_count": 3.0, "update_allowed": true}
	tests := []struct {
		tenant string
		want   map[string]any
	}{
		{testkit.OnCustomer, on},
		{strings.ToUpper(testkit.OnCustomer), on},
		{testkit.OffCustomer, map[string]any{"tenant_id": testkit.OffCustomer, "mfa_status": "disabled", "users_count": 5.0, "users_with_totp_enabled_count": 2.0, "update_allowed": true}},
		{testkit.Locked, map[string]any{"tenant_id": testkit.Locked, "mfa_status": "disabled", "users_count": 0.0, "users_with_totp_enabled_count": 0.0, "update_allowed": false}},
	}
	k := newHook(t, policy.Rules{})
	for _, tt := range tests {
		t.Run(tt.tenant, func(t *testing.T) {
			r := k.serve(t, t.Context(), get(tt.tenant))
			if got := status(t, r); !maps.Equal(got, tt.want) {
				t.Fatalf("GET answered %v\nwant %v", got, tt.want)
			}
			if len(r.audits) != 0 || k.acr.Sim.Count("PUT", "/mfa/status") != 0 {
				t.Fatalf("a read wrote audit lines %v or PUTs", r.audits)
			}
		})
	}
}

func TestHandlePut(t *testing.T) {
	on, off := `{"enabled": true}`, `{"enabled": false}`
	allow := policy.Rules{AllowDisable: true}
	tests := []struct {
		name    string
		rules   policy.Rules
		tenant  string
		body    string
		status  string // mfa_status answered
		changed bool
		puts    int
		action  string
		metric  string
		users   int // users_without_totp in the audit line
	}{
		{"enable", policy.Rules{}, testkit.OffCustomer, on, "enabled", true, 1, "enable", telemetry.MetricTenantsChanged, 3},
		{"enable a suspended tenant when asked", policy.Rules{}, testkit.Suspended, on, "enabled", true, 1, "enable", telemetry.MetricTenantsChanged, 1},
		{"already enabled", policy.Rules{}, testkit.OnCustomer, on, "enabled", false, 0, "unchanged", telemetry.MetricTenantsCompliant, 0},
		{"already disabled", allow, testkit.OffCustomer, off, "disabled", false, 0, "unchanged", telemetry.MetricTenantsCompliant, 0},
		{"already enabled, body with spaces", policy.Rules{}, testkit.OnCustomer, "\t{ \"enabled\" : true }\n", "enabled", false, 0, "unchanged", telemetry.MetricTenantsCompliant, 0},
		{"disable allowed", allow, testkit.OnCustomer, off, "disabled", true, 1, "disable", telemetry.MetricTenantsChanged, 0},
		{"dry run enable", policy.Rules{DryRun: true}, testkit.OffCustomer, on, "disabled", false, 0, "would_enable", telemetry.MetricTenantsWouldChange, 3},
		{"dry run disable", policy.Rules{DryRun: true, AllowDisable: true}, testkit.OnCustomer, off, "enabled", false, 0, "would_disable", telemetry.MetricTenantsWouldChange, 0},
		{"dry run already enabled", policy.Rules{DryRun: true}, testkit.OnCustomer, on, "enabled", false, 0, "unchanged", telemetry.MetricTenantsCompliant, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newHook(t, tt.rules)
			initial, _ := k.acr.Sim.Get(tt.tenant)
			r := k.serve(t, t.Context(), put(tt.tenant, tt.body))
			want := map[string]any{"tenant_id": tt.tenant, "mfa_status": tt.status,
				"users_count": float64(initial.UsersCount), "users_with_totp_enabled_count": float64(initial.UsersWithTOTP),
				"update_allowed": true, "changed": tt.changed, "dry_run": tt.rules.DryRun}
			if got := status(t, r); !maps.Equal(got, want) {
				t.Fatalf("PUT answered %v\nwant %v", got, want)
			}
			if n := k.acr.Sim.Count("PUT", "/mfa/status"); n != tt.puts {
				t.Fatalf("%d PUTs reached Acronis, want %d", n, tt.puts)
			}
			if after, _ := k.acr.Sim.Get(tt.tenant); tenant.MFAOn(after.MFAStatus) != tenant.MFAOn(tt.status) {
				t.Fatalf("MFA is %s in Acronis afterwards, want %s", after.MFAStatus, tt.status)
			}
			a := wantAudit(t, r, tt.tenant, tt.action)
			if a["previous"] != tenant.MFAState(tenant.MFAOn(initial.MFAStatus)) || a["current"] != tt.status {
				t.Errorf("audit previous %v current %v, want %s and %s", a["previous"], a["current"], initial.MFAStatus, tt.status)
			}
			if n, _ := a["users_without_totp"].(float64); int(n) != tt.users || (a["dry_run"] == true) != tt.rules.DryRun {
				t.Errorf("audit users_without_totp %v dry_run %v, want %d and %v", a["users_without_totp"], a["dry_run"], tt.users, tt.rules.DryRun)
			}
			counted(t, r, tt.metric, tt.users)
		})
	}
}

// Every failure row of the reference's table that Acronis or policy causes.
func TestHandleErrors(t *testing.T) {
	on, off := `{"enabled": true}`, `{"enabled": false}`
	exclude := func(allow bool, ids ...string) policy.Rules {
		return policy.Rules{AllowDisable: allow, Excluded: policy.NewExclusions(ids)}
	}
	slow := &sim.Faults{Latency: 10 * time.Second}
	tests := []struct {
		name    string
		rules   policy.Rules
		faults  *sim.Faults
		secret  string                     // rotate the API client's secret away first
		state   func(*testkit.MemoryState) // with a state table, as this leaves it
		refused bool                       // Acronis refuses the PUT sent to it
		timeout time.Duration
		req     events.APIGatewayV2HTTPRequest
		status  int
		code    string
		action  string // of the one audit line; "" for a GET, which has none
		reason  string // in the audit reason, or for a GET in the request line's error
	}{
		{name: "GET unknown tenant", req: get(testkit.Unknown), status: 404, code: "tenant_not_found", reason: "1005"},
		{name: "PUT unknown tenant", req: put(testkit.Unknown, on), status: 404, code: "tenant_not_found", action: "failed", reason: "not found"},
		{name: "GET tenant outside the client's tree", req: get(testkit.Outsider), status: 404, code: "tenant_not_found", reason: "not allowed"},
		{name: "PUT tenant outside the client's tree", req: put(testkit.Outsider, on), status: 404, code: "tenant_not_found", action: "failed", reason: "not allowed"},

		{name: "unit", req: put(testkit.Unit, on), status: 409, code: "update_not_allowed", action: "skipped", reason: "inherit"},
		{name: "folder", req: put(testkit.Folder, on), status: 409, code: "update_not_allowed", action: "skipped", reason: "inherit"},
		{name: "update_allowed false", req: put(testkit.Locked, on), status: 409, code: "update_not_allowed", action: "skipped", reason: "update_allowed"},
		{name: "excluded", rules: exclude(false, testkit.OffCustomer), req: put(testkit.OffCustomer, on),
			status: 409, code: "update_not_allowed", action: "skipped", reason: "EXCLUDED_TENANT_IDS"},
		{name: "excluded in upper case", rules: exclude(false, strings.ToUpper(testkit.OffCustomer)), req: put(testkit.OffCustomer, on),
			status: 409, code: "update_not_allowed", action: "skipped", reason: "EXCLUDED_TENANT_IDS"},
		{name: "excluded parent", rules: exclude(false, testkit.ExcludedPartner), req: put(testkit.ExcludedChild, on),
			status: 409, code: "update_not_allowed", action: "skipped", reason: "EXCLUDED_TENANT_IDS"},
		{name: "excluded grandparent", rules: exclude(false, testkit.PartnerB), req: put(testkit.Foldered, on),
			status: 409, code: "update_not_allowed", action: "skipped", reason: "EXCLUDED_TENANT_IDS"},
		{name: "excluded parent, disable", rules: exclude(true, testkit.PartnerA), req: put(testkit.OnCustomer, off),
			status: 409, code: "update_not_allowed", action: "skipped", reason: "EXCLUDED_TENANT_IDS"},

		// A disable the operator has not allowed is refused before Acronis is
		// asked anything, whatever the tenant.
		{name: "disable not allowed", req: put(testkit.OnCustomer, off), status: 403, code: "disable_not_allowed", action: "skipped", reason: "MFA_ALLOW_DISABLE"},
		{name: "disable not allowed, already off", req: put(testkit.OffCustomer, off), status: 403, code: "disable_not_allowed", action: "skipped", reason: "MFA_ALLOW_DISABLE"},
		{name: "disable not allowed, unknown tenant", req: put(testkit.Unknown, off), status: 403, code: "disable_not_allowed", action: "skipped", reason: "MFA_ALLOW_DISABLE"},

		{name: "GET throttled", faults: &sim.Faults{ThrottleEvery: 1, RetryAfter: 7}, req: get(testkit.OffCustomer), status: 429, code: "rate_limited", reason: "throttled"},
		{name: "PUT throttled", faults: &sim.Faults{ThrottleEvery: 1, RetryAfter: 7}, req: put(testkit.OffCustomer, on), status: 429, code: "rate_limited", action: "failed", reason: "throttled"},

		{name: "GET Acronis 500", faults: &sim.Faults{FailTenants: map[string]int{testkit.Broken: 500}}, req: get(testkit.Broken), status: 502, code: "upstream_error", reason: "HTTP 500"},
		{name: "PUT Acronis 500", faults: &sim.Faults{FailTenants: map[string]int{testkit.Broken: 500}}, req: put(testkit.Broken, on), status: 502, code: "upstream_error", action: "failed", reason: "upstream"},
		{name: "GET credentials rejected", secret: "rotated-elsewhere", req: get(testkit.OffCustomer), status: 502, code: "upstream_error", reason: "credentials rejected"},
		{name: "PUT credentials rejected", secret: "rotated-elsewhere", req: put(testkit.OffCustomer, on), status: 502, code: "upstream_error", action: "failed", reason: "credentials rejected"},

		{name: "PUT refused by Acronis", faults: &sim.Faults{FailNth: []sim.NthFailure{{Method: "PUT", Path: "/api/2/tenants/" + testkit.OffCustomer + "/mfa/status", Nth: []int{1}, Status: 403}}},
			refused: true, req: put(testkit.OffCustomer, on), status: 409, code: "update_not_allowed", action: "failed", reason: "not allowed"},
		{name: "PUT bad request", faults: &sim.Faults{FailNth: []sim.NthFailure{{Method: "PUT", Path: "/api/2/tenants/" + testkit.OffCustomer + "/mfa/status", Nth: []int{1}, Status: 400}}},
			refused: true, req: put(testkit.OffCustomer, on), status: 502, code: "upstream_error", action: "failed", reason: "bad request"},
		{name: "PUT while another run writes the tenant", state: func(m *testkit.MemoryState) { m.HoldLease(testkit.OffCustomer) },
			req: put(testkit.OffCustomer, on), status: 503, code: "unavailable", action: "failed", reason: "busy"},
		{name: "PUT state table down", state: func(m *testkit.MemoryState) { m.Down(errors.New("throttled")) },
			req: put(testkit.OffCustomer, on), status: 503, code: "unavailable", action: "failed", reason: "state table unavailable"},

		{name: "GET deadline", faults: slow, timeout: 100 * time.Millisecond, req: get(testkit.OffCustomer), status: 504, code: "upstream_timeout", reason: "deadline"},
		{name: "PUT deadline", faults: slow, timeout: 100 * time.Millisecond, req: put(testkit.OffCustomer, on), status: 504, code: "upstream_timeout", action: "failed", reason: "deadline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newHook(t, tt.rules)
			before := k.acr.Sim.All()
			ctx := t.Context()
			if tt.timeout > 0 {
				warmToken(t, k.acr)
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			if tt.faults != nil {
				k.acr.Sim.SetFaults(*tt.faults)
			}
			if tt.secret != "" {
				k.acr.Sim.SetClientSecret(tt.secret)
			}
			if tt.state != nil {
				state := testkit.NewMemoryState(testkit.NewClock().Now)
				tt.state(state)
				k.h.Enforcer.Leases = state
			}
			r := k.serve(t, ctx, tt.req)
			msg := wantError(t, r, tt.status, tt.code)
			for _, leak := range []string{"HTTP", "/api/2", k.acr.URL, tt.secret, "sim-secret"} {
				if leak != "" && strings.Contains(msg, leak) {
					t.Errorf("message %q shows the caller %q", msg, leak)
				}
			}
			if tt.code == "disable_not_allowed" && !strings.Contains(msg, "MFA_ALLOW_DISABLE") || tt.secret != "" && !strings.Contains(msg, "credentials") {
				t.Errorf("message %q does not say what went wrong", msg)
			}
			if n := len(k.acr.Sim.Requests()); tt.code == "disable_not_allowed" && n != 0 {
				t.Errorf("%d requests reached Acronis", n)
			}
			if puts := k.acr.Sim.Count("PUT", "/mfa/status"); puts != map[bool]int{true: 1}[tt.refused] || !slices.Equal(before, k.acr.Sim.All()) {
				t.Errorf("the tree changed, or %d PUTs were sent", puts)
			}
			if retry := r.resp.Headers["Retry-After"]; retry != map[int]string{429: "7", 503: "1"}[tt.status] {
				t.Errorf("Retry-After %q on a %d; a 429 passes on the 7 seconds Acronis asked for, a 503 asks for 1", retry, tt.status)
			}
			if tt.status == 429 && r.emf.Metrics[telemetry.MetricAcronisThrottled] == 0 {
				t.Error("EMF AcronisThrottled 0 after throttled answers")
			}
			if tt.action == "" {
				if cause, _ := r.request["error"].(string); !strings.Contains(cause, tt.reason) {
					t.Errorf("the request line's error %q does not say %q: a GET has no audit line to say it", cause, tt.reason)
				}
				return
			}
			tenantID := strings.Split(tt.req.RawPath, "/")[2]
			if reason, _ := wantAudit(t, r, tenantID, tt.action)["reason"].(string); !strings.Contains(reason, tt.reason) {
				t.Errorf("audit reason %q does not say %q", reason, tt.reason)
			}
			counted(t, r, map[string]string{"failed": telemetry.MetricTenantsFailed, "skipped": telemetry.MetricTenantsSkipped}[tt.action], 0)
		})
	}
}

// A signed request captured in flight cannot be replayed against another
// tenant: the signature does not cover the path, the guard does.
func TestHandleRefusesReplayOnAnotherRoute(t *testing.T) {
	k := newHook(t, policy.Rules{})
	to := func(id string) func(*events.APIGatewayV2HTTPRequest) {
		return func(r *events.APIGatewayV2HTTPRequest) { r.RawPath = "/tenants/" + id + "/mfa" }
	}
	captured, read := put(testkit.OffCustomer, `{"enabled": true}`), get(testkit.OnCustomer)
	steps := []struct {
		name   string
		req    events.APIGatewayV2HTTPRequest
		status int
	}{
		{"the original request", captured, 200},
		{"a replay on another tenant", with(captured, to(testkit.Locked)), 401},
		{"the sender's own retry, the same route", captured, 200},
		// A GET's signature covers an empty body: it must not read another tenant either.
		{"a GET", read, 200},
		{"a replayed GET on another tenant", with(read, to(testkit.OffCustomer)), 401},
	}
	for _, st := range steps {
		sent := len(k.acr.Sim.Requests())
		if r := k.serve(t, t.Context(), st.req); r.resp.StatusCode != st.status {
			t.Fatalf("%s answered %d %s, want %d", st.name, r.resp.StatusCode, r.resp.Body, st.status)
		}
		if n := len(k.acr.Sim.Requests()) - sent; st.status == 401 && n != 0 {
			t.Fatalf("%s reached Acronis with %d requests", st.name, n)
		}
	}
}

// failingWriter is a stdout that refuses every write.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("stdout closed") }

// A metrics document that cannot be written is logged; the answer stands.
func TestHandleMetricsUnwritable(t *testing.T) {
	k := newHook(t, policy.Rules{})
	k.h.Out = failingWriter{}
	resp, err := k.h.Handle(t.Context(), get(testkit.OnCustomer))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("answer %d, %v", resp.StatusCode, err)
	}
	for _, m := range k.out.JSON(0) {
		if m["message"] == "write metrics" && m["error"] == "stdout closed" {
			return
		}
	}
	t.Fatalf("no line says the metrics were lost: %v", k.out.Lines())
}
