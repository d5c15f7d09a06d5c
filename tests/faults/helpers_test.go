package faults_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"acronismfa/internal/acronis"
	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/app"
	"acronismfa/internal/config"
	"acronismfa/internal/sweep"
	"acronismfa/internal/telemetry"
	"acronismfa/internal/tenant"
	"acronismfa/internal/testkit"
	"acronismfa/internal/webhook"
)

// lockedBuffer is a function's stdout: log lines and EMF documents, written
// from many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// acronisSpy stands in front of the simulator. It records every Authorization
// header and every token the token endpoint hands out, so that tests can look
// for them in the output, and it can misbehave in ways the simulator cannot:
// run a hook before the nth API request, or never answer about some tenants.
type acronisSpy struct {
	sim *sim.Server

	mu       sync.Mutex
	secrets  map[string]bool // header values, their credential parts, tokens
	apiCount int
	before   func(n int)     // runs before the nth API request (token calls excluded) is served
	hold     map[string]bool // tenant ids whose requests get no answer before their caller gives up
	lose     map[string]bool // tenant ids whose MFA writes land but are answered 502
	// throttled holds the requests (method and path) already answered 429 once,
	// when every request is to be throttled the first time; nil otherwise.
	throttled map[string]bool
	// scripted answers the nth request of a method and path with a status
	// instead of serving it; seen counts the requests per method and path.
	scripted map[string]map[int]int
	seen     map[string]int
}

func (s *acronisSpy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a := r.Header.Get("Authorization"); a != "" {
		s.remember(a)
		if _, cred, ok := strings.Cut(a, " "); ok {
			s.remember(cred)
		}
	}
	if !strings.HasSuffix(r.URL.Path, "/idp/token") {
		s.mu.Lock()
		s.apiCount++
		n, before, held := s.apiCount, s.before, s.held(r.URL.Path)
		lost := r.Method == http.MethodPut && s.lose[tenantOf(r.URL.Path)]
		key := r.Method + " " + r.URL.Path
		throttle := false
		if s.throttled != nil && !s.throttled[key] {
			s.throttled[key], throttle = true, true
		}
		if s.seen == nil {
			s.seen = map[string]int{}
		}
		s.seen[key]++
		scripted := s.scripted[key][s.seen[key]]
		s.mu.Unlock()
		if scripted != 0 {
			http.Error(w, http.StatusText(scripted), scripted)
			return
		}
		if throttle {
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"error": {"code": 429, "message": "Too Many Requests"}}`)
			return
		}
		if before != nil {
			before(n)
		}
		if held {
			<-r.Context().Done()
			return
		}
		if lost {
			s.sim.ServeHTTP(httptest.NewRecorder(), r)
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		s.sim.ServeHTTP(w, r)
		return
	}
	tee := &teeWriter{ResponseWriter: w}
	s.sim.ServeHTTP(tee, r)
	var tok struct {
		AccessToken string `json:"access_token"`
		IDToken     string `json:"id_token"`
	}
	if json.Unmarshal(tee.body.Bytes(), &tok) == nil {
		s.remember(tok.AccessToken)
		s.remember(tok.IDToken)
	}
}

func (s *acronisSpy) remember(v string) {
	if v == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.secrets == nil {
		s.secrets = map[string]bool{}
	}
	s.secrets[v] = true
}

// held reports whether path is about a held tenant; the caller holds mu.
func (s *acronisSpy) held(path string) bool {
	for id := range s.hold {
		if strings.Contains(path, "/"+id) {
			return true
		}
	}
	return false
}

// Hold makes every request about tenant id wait until its caller gives up.
func (s *acronisSpy) Hold(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold == nil {
		s.hold = map[string]bool{}
	}
	s.hold[id] = true
}

// FailNth answers the given requests (counted from 1) of method on the MFA
// status of tenant id with status, without serving them.
func (s *acronisSpy) FailNth(method, id string, status int, nth ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.scripted == nil {
		s.scripted = map[string]map[int]int{}
	}
	key := method + " /api/2/tenants/" + id + "/mfa/status"
	if s.scripted[key] == nil {
		s.scripted[key] = map[int]int{}
	}
	for _, n := range nth {
		s.scripted[key][n] = status
	}
}

// ThrottleFirst answers every API request 429 the first time it is sent: each
// one is retried, whatever the order in which concurrent requests arrive.
func (s *acronisSpy) ThrottleFirst() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttled = map[string]bool{}
}

// LoseAnswers makes every MFA write of tenant id land, but answers it 502, as
// a gateway that lost Acronis's answer would.
func (s *acronisSpy) LoseAnswers(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lose == nil {
		s.lose = map[string]bool{}
	}
	s.lose[id] = true
}

// Before runs f before each API request is served, with its number counted
// from 1 at this call.
func (s *acronisSpy) Before(f func(n int)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apiCount, s.before = 0, f
}

// Secrets returns every credential and token that crossed the wire.
func (s *acronisSpy) Secrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.secrets))
	for v := range s.secrets {
		out = append(out, v)
	}
	return out
}

type teeWriter struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (t *teeWriter) Write(p []byte) (int, error) {
	t.body.Write(p)
	return t.ResponseWriter.Write(p)
}

// awsSpy is a reverse proxy in front of moto that counts the Secrets Manager
// calls of the functions, by action and secret id.
type awsSpy struct {
	proxy *httputil.ReverseProxy
	mu    sync.Mutex
	calls []awsCall
}

type awsCall struct{ Action, SecretID string }

func (a *awsSpy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	var in struct {
		SecretID string `json:"SecretId"`
	}
	_ = json.Unmarshal(body, &in)
	a.mu.Lock()
	a.calls = append(a.calls, awsCall{Action: r.Header.Get("X-Amz-Target"), SecretID: in.SecretID})
	a.mu.Unlock()
	a.proxy.ServeHTTP(w, r)
}

// Count counts the calls of action ("secretsmanager.GetSecretValue") for secretID.
func (a *awsSpy) Count(action, secretID string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, c := range a.calls {
		if c.Action == action && c.SecretID == secretID {
			n++
		}
	}
	return n
}

// Actions returns every action called so far.
func (a *awsSpy) Actions() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]int{}
	for _, c := range a.calls {
		out[c.Action]++
	}
	return out
}

// rig is the simulator behind the spy on a loopback port.
type rig struct {
	t   *testing.T
	sim *sim.Server
	spy *acronisSpy
	url string
}

func newRig(t *testing.T, o sim.Options, tree *sim.TreeSpec) *rig {
	t.Helper()
	s := sim.New(o)
	if tree != nil {
		s.Generate(*tree)
	}
	spy := &acronisSpy{sim: s}
	srv := httptest.NewServer(spy)
	t.Cleanup(srv.Close)
	return &rig{t: t, sim: s, spy: spy, url: srv.URL}
}

// stack is a rig plus Secrets Manager (moto behind awsSpy) holding the Acronis
// credentials and a webhook signing key, with this process's AWS SDK aimed at it.
type stack struct {
	*rig
	aws           *awsSpy
	admin         *secretsmanager.Client
	acronisSecret string // secret ids
	webhookSecret string
	key           []byte // the webhook signing key
}

func newStack(t *testing.T, o sim.Options, tree *sim.TreeSpec) *stack {
	t.Helper()
	r := newRig(t, o, tree)
	moto := testkit.NewMoto(t).Endpoint
	target, err := url.Parse(moto)
	if err != nil {
		t.Fatal(err)
	}
	spy := &awsSpy{proxy: httputil.NewSingleHostReverseProxy(target)}
	srv := httptest.NewServer(spy)
	t.Cleanup(srv.Close)
	(&testkit.Moto{Endpoint: srv.URL}).Setenv(t)
	st := &stack{
		rig:           r,
		aws:           spy,
		admin:         secretsmanager.NewFromConfig(testkit.MotoConfig(t, moto)),
		acronisSecret: "acronis-credentials",
		webhookSecret: "webhook-keys",
		key:           []byte("k-" + rand.Text()), // printable, so that a leak of the raw key is findable
	}
	st.createSecret(st.acronisSecret, st.credentialsJSON(r.sim.ClientSecret()))
	st.createSecret(st.webhookSecret, `{"signing_keys": ["`+whsec(st.key)+`"]}`)
	return st
}

func whsec(key []byte) string { return "whsec_" + base64.StdEncoding.EncodeToString(key) }

func (st *stack) credentialsJSON(clientSecret string) string {
	b, _ := json.Marshal(map[string]string{"base_url": st.url, "client_id": st.sim.ClientID(), "client_secret": clientSecret})
	return string(b)
}

func (st *stack) createSecret(name, value string) {
	st.t.Helper()
	if _, err := st.admin.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name: aws.String(name), SecretString: aws.String(value),
	}); err != nil {
		st.t.Fatalf("create secret %s: %v", name, err)
	}
}

func (st *stack) putSecret(name, value string) {
	st.t.Helper()
	if _, err := st.admin.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(name), SecretString: aws.String(value),
	}); err != nil {
		st.t.Fatalf("put secret %s: %v", name, err)
	}
}

// getSecretValues counts the functions' reads of secret id.
func (st *stack) getSecretValues(id string) int {
	return st.aws.Count("secretsmanager.GetSecretValue", id)
}

// function is one cold-started function: its dependencies and its stdout.
type function struct {
	deps *app.Deps
	out  *lockedBuffer
}

// noSleep stands in for the Acronis client's waits between retries.
func noSleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

// start cold-starts fn through app.Init, as functions/*/main.go does, with the
// contract's variables from vars on top of the stack's secret ids and TRACE
// logging (so that the client's retry lines are in the output too). Only the
// client's retry waits are not slept.
func (st *stack) start(fn config.Function, vars map[string]string) *function {
	st.t.Helper()
	env := map[string]string{
		"ACRONIS_SECRET_ID":    st.acronisSecret,
		"WEBHOOK_SECRET_ID":    st.webhookSecret,
		"AWS_LAMBDA_LOG_LEVEL": "TRACE",
	}
	for k, v := range vars {
		env[k] = v
	}
	out := &lockedBuffer{}
	d, err := app.Init(context.Background(), fn, func(k string) string { return env[k] }, out)
	if err != nil {
		st.t.Fatalf("init %s: %v", fn, err)
	}
	return &function{deps: d, out: out}
}

// direct builds fn's dependencies around a client of the rig with static
// credentials and the given client options, for tests that need the client's
// clock; everything else is as app.Init builds it.
func (r *rig) direct(fn config.Function, vars map[string]string, opts acronis.Options) *function {
	r.t.Helper()
	env := map[string]string{"ACRONIS_SECRET_ID": "unused", "WEBHOOK_SECRET_ID": "unused", "AWS_LAMBDA_LOG_LEVEL": "TRACE"}
	for k, v := range vars {
		env[k] = v
	}
	cfg, err := config.Load(fn, func(k string) string { return env[k] })
	if err != nil {
		r.t.Fatal(err)
	}
	out := &lockedBuffer{}
	logger := telemetry.NewLogger(out, string(fn), map[config.Function]string{config.Webhook: "http", config.Worker: "sqs", config.Sweep: "schedule"}[fn], telemetry.LevelFromEnv(func(k string) string { return env[k] }))
	opts.Logger = logger
	if opts.Sleep == nil {
		opts.Sleep = noSleep
	}
	if fn == config.Sweep {
		opts.MaxInFlight = cfg.SweepConcurrency
	}
	creds := testkit.StaticCredentials{BaseURL: r.url, ClientID: r.sim.ClientID(), ClientSecret: r.sim.ClientSecret()}
	return &function{deps: &app.Deps{Config: cfg, Logger: logger, Acronis: acronis.New(creds, opts), Out: out}, out: out}
}

// handle is a function's handler, built as in production.
type handle[In, Out any] struct{ Handle app.Handler[In, Out] }

func build[In, Out any](h app.Handler[In, Out], err error) handle[In, Out] {
	if err != nil {
		panic(err)
	}
	return handle[In, Out]{h}
}

func (f *function) webhook() handle[events.APIGatewayV2HTTPRequest, events.APIGatewayV2HTTPResponse] {
	return build(app.Webhook(f.deps))
}

func (f *function) worker() handle[events.SQSEvent, events.SQSEventResponse] {
	return build(app.Worker(f.deps))
}

func (f *function) sweep() handle[json.RawMessage, sweep.Summary] { return build(app.Sweep(f.deps)) }

// signed is a webhook request signed with key now.
func signed(key []byte, method, tenantID, body string) events.APIGatewayV2HTTPRequest {
	id := "msg_" + rand.Text()
	now := time.Now()
	return events.APIGatewayV2HTTPRequest{
		RawPath: "/tenants/" + tenantID + "/mfa",
		Headers: map[string]string{
			"webhook-id":        id,
			"webhook-timestamp": strconv.FormatInt(now.Unix(), 10),
			"webhook-signature": testkit.Sign(key, id, now, []byte(body)),
			"content-type":      "application/json",
		},
		Body:           body,
		RequestContext: events.APIGatewayV2HTTPRequestContext{HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method}},
	}
}

// errorCode reads the code of a webhook error answer.
func errorCode(t *testing.T, resp events.APIGatewayV2HTTPResponse) string {
	t.Helper()
	var body struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
		t.Fatalf("answer %d %q is not JSON: %v", resp.StatusCode, resp.Body, err)
	}
	return body.Error.Code
}

// batch is an SQS event with one record per body, message ids m0, m1, ...
func batch(bodies ...string) events.SQSEvent {
	var ev events.SQSEvent
	for i, b := range bodies {
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: fmt.Sprintf("m%d", i), Body: b, EventSource: "aws:sqs"})
	}
	return ev
}

// failedIDs lists a batch response's failures.
func failedIDs(resp events.SQSEventResponse) map[string]bool {
	out := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		out[f.ItemIdentifier] = true
	}
	return out
}

func setMessage(id string, enabled bool) string {
	return fmt.Sprintf(`{"tenant_id": %q, "enabled": %t}`, id, enabled)
}

func enforceMessage(id string) string { return fmt.Sprintf(`{"tenant_id": %q}`, id) }

func eventMessage(id string) string {
	return fmt.Sprintf(`{"version": "0", "id": %q, "detail-type": "Tenant Created", "source": "provisioning", "detail": {"tenant_id": %q}}`, rand.Text(), id)
}

// auditLine is an audit line as CloudWatch receives it.
type auditLine struct {
	Level      string  `json:"level"`
	TenantID   string  `json:"tenant_id"`
	TenantName string  `json:"tenant_name"`
	Action     string  `json:"action"`
	Reason     string  `json:"reason"`
	Previous   *string `json:"previous"`
	Current    *string `json:"current"`
	Error      string  `json:"error"`
}

// audits parses every audit line of out, failing on any line that is not JSON
// and on any audit line that lacks a field the contract requires.
func audits(t *testing.T, out string) []auditLine {
	t.Helper()
	var lines []auditLine
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var probe struct {
			Audit bool `json:"audit"`
		}
		if err := json.Unmarshal(sc.Bytes(), &probe); err != nil {
			t.Fatalf("output line is not JSON: %q", sc.Text())
		}
		if !probe.Audit {
			continue
		}
		var a auditLine
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		// A tenant named by a queue message that could not be resolved has
		// only its name.
		if a.TenantID == "" && a.TenantName == "" || a.Action == "" || a.Reason == "" || a.Previous == nil || a.Current == nil {
			t.Errorf("audit line lacks tenant_id, action, reason, previous or current: %s", sc.Text())
		}
		lines = append(lines, a)
	}
	return lines
}

func byTenant(lines []auditLine) map[string][]auditLine {
	out := map[string][]auditLine{}
	for _, l := range lines {
		out[l.TenantID] = append(out[l.TenantID], l)
	}
	return out
}

// ownSetting: the tenant has an MFA switch of its own (units and folders inherit).
func ownSetting(t sim.Tenant) bool { return t.Kind != "unit" && t.Kind != "folder" }

// eligible: a sweep or an enforce message must turn MFA on for this tenant.
func eligible(t sim.Tenant) bool { return ownSetting(t) && t.Enabled && t.UpdateAllowed }

func byID(ts []sim.Tenant) map[string]sim.Tenant {
	out := make(map[string]sim.Tenant, len(ts))
	for _, t := range ts {
		out[t.ID] = t
	}
	return out
}

// tenantOf is the tenant id in a simulator path, "" for paths without one.
func tenantOf(path string) string {
	rest, ok := strings.CutPrefix(path, "/api/2/tenants/")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, "/")
	return id
}

// acceptedWrites counts, per tenant, the MFA PUTs that Acronis answered 200.
func acceptedWrites(reqs []sim.Request) map[string]int {
	out := map[string]int{}
	for _, r := range reqs {
		if r.Method == http.MethodPut && strings.HasSuffix(r.Path, "/mfa/status") && r.Status == http.StatusOK {
			out[tenantOf(r.Path)]++
		}
	}
	return out
}

// statuses counts the simulator's answers by status.
func statuses(reqs []sim.Request) map[int]int {
	out := map[int]int{}
	for _, r := range reqs {
		out[r.Status]++
	}
	return out
}

// addCustomers adds n enabled customers the client may change, in MFA state
// state, and returns their ids.
func addCustomers(t *testing.T, s *sim.Server, n int, state string) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = newUUID()
		if err := s.Add(sim.Tenant{ID: ids[i], Kind: "customer", Enabled: true, UpdateAllowed: true,
			MFAStatus: state, UsersCount: 5, UsersWithTOTP: 1}); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

func addTenant(t *testing.T, s *sim.Server, tn sim.Tenant) string {
	t.Helper()
	if tn.ID == "" {
		tn.ID = newUUID()
	}
	if err := s.Add(tn); err != nil {
		t.Fatal(err)
	}
	return tn.ID
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// mfaOn reads a tenant's state from the simulator.
func mfaOn(t *testing.T, s *sim.Server, id string) bool {
	t.Helper()
	tn, ok := s.Get(id)
	if !ok {
		t.Fatalf("tenant %s is gone", id)
	}
	return tenant.MFAOn(tn.MFAStatus)
}

// closedPort is a loopback URL where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return "http://" + addr
}

// staticKeys is a webhook key source for handlers built without Secrets Manager.
func staticKeys(keys ...[]byte) webhook.Keys {
	return func(context.Context, bool) ([][]byte, error) { return keys, nil }
}
