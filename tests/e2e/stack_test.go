// Package e2e drives the three built functions through the real Lambda runtime
// protocol (aws-lambda-rie), with their AWS calls going to a real moto_server and
// their Acronis calls to the simulator: the contract's surface, end to end.
package e2e

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/tenant"
	"acronismfa/internal/testkit"
	"acronismfa/internal/webhook"
)

// Secrets that must never show up in any output line.
const (
	clientSecret = "e2e-client-secret-Zq7Xw"
	namespace    = "E2E/AcronisMFA" // not the default, to see METRICS_NAMESPACE honoured
)

var signingKey = []byte("e2e-signing-key-0123456789abcdef")

var (
	buildOnce  sync.Once
	bootstraps map[string]string
	buildErr   error
	buildDir   string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// bootstrap returns the built function name; the three are built once per test
// binary, by one go command.
func bootstrap(t *testing.T, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "acronismfa-e2e-"); buildErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		bootstraps, buildErr = testkit.BuildFunctions(ctx, buildDir, "webhook", "worker", "sweep")
	})
	if buildErr != nil {
		t.Fatalf("build the functions: %v", buildErr)
	}
	return bootstraps[name]
}

func rie(t *testing.T) string {
	t.Helper()
	p, err := testkit.FindRIE()
	if err != nil {
		t.Fatal(err) // never skip: a skipped end-to-end test proves nothing
	}
	return p
}

// stack is one test's world: a simulated Acronis tree, a moto_server holding
// the two secrets and the worker queue.
type stack struct {
	sim              *sim.Server
	moto             string
	aws              aws.Config
	acronisSecretARN string
	webhookSecretARN string
	queueURL         string
}

func newStack(t *testing.T, tree sim.TreeSpec) *stack {
	t.Helper()
	s := &stack{sim: sim.New(sim.Options{ClientSecret: clientSecret})}
	s.sim.Generate(tree)
	srv := httptest.NewServer(s.sim) // 127.0.0.1: http:// is accepted for loopback
	t.Cleanup(srv.Close)

	s.moto = testkit.NewMoto(t).Endpoint
	s.aws = testkit.MotoConfig(t, s.moto)
	ctx := t.Context()
	sm := secretsmanager.NewFromConfig(s.aws)
	acr, err := json.Marshal(map[string]string{"base_url": srv.URL, "client_id": s.sim.ClientID(), "client_secret": clientSecret})
	if err != nil {
		t.Fatal(err)
	}
	out, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("acronis-mfa/acronis"), SecretString: aws.String(string(acr))})
	if err != nil {
		t.Fatalf("create the Acronis secret: %v", err)
	}
	s.acronisSecretARN = aws.ToString(out.ARN)
	keys, err := json.Marshal(map[string][]string{"signing_keys": {"whsec_" + b64(signingKey)}})
	if err != nil {
		t.Fatal(err)
	}
	out, err = sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("acronis-mfa/webhook"), SecretString: aws.String(string(keys))})
	if err != nil {
		t.Fatalf("create the webhook secret: %v", err)
	}
	s.webhookSecretARN = aws.ToString(out.ARN)
	q, err := sqs.NewFromConfig(s.aws).CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("acronis-mfa-enforce")})
	if err != nil {
		t.Fatalf("create the queue: %v", err)
	}
	s.queueURL = aws.ToString(q.QueueUrl)
	return s
}

// env is a function's environment: moto's SDK variables, the contract's
// variables pointing at this stack, then extra (an empty value removes one).
func (s *stack) env(extra map[string]string) map[string]string {
	env := (&testkit.Moto{Endpoint: s.moto}).Env()
	delete(env, "AWS_SESSION_TOKEN") // an empty token is no token
	env["ACRONIS_SECRET_ID"] = s.acronisSecretARN
	env["WEBHOOK_SECRET_ID"] = s.webhookSecretARN
	env["METRICS_NAMESPACE"] = namespace
	for k, v := range extra {
		if v == "" {
			delete(env, k)
		} else {
			env[k] = v
		}
	}
	return env
}

// start runs a built function under the emulator until the test ends.
func start(t *testing.T, name string, env map[string]string) *testkit.Function {
	t.Helper()
	f, err := testkit.Start(t.Context(), testkit.Options{
		RIE: rie(t), Bootstrap: bootstrap(t, name), Env: env, Timeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Stop()
		if t.Failed() {
			lines := f.Output().Lines()
			t.Logf("the last output of %s under the emulator:\n%s", name, strings.Join(lines[max(len(lines)-40, 0):], "\n"))
		}
	})
	return f
}

// invocation is one answer of the emulator and what the function wrote for it.
type invocation struct {
	status int
	body   []byte
	lines  []string // the output of this invocation up to its EMF document
	emf    testkit.EMF
}

// invoke sends event and waits for the invocation's EMF document.
func invoke(t *testing.T, f *testkit.Function, event []byte) invocation {
	t.Helper()
	mark := f.Output().Mark()
	status, body, err := f.Invoke(t.Context(), event)
	if err != nil {
		t.Fatal(err)
	}
	if status != 200 {
		t.Fatalf("emulator answered %d: %s", status, body)
	}
	line, err := f.Output().Wait(t.Context(), mark, 10*time.Second, testkit.IsEMF)
	if err != nil {
		t.Fatalf("no EMF document for the invocation (answer %s): %v", body, err)
	}
	emf, err := testkit.ParseEMF(line)
	if err != nil {
		t.Fatalf("EMF document %s: %v", line, err)
	}
	var lines []string
	for _, l := range f.Output().Since(mark) {
		lines = append(lines, l)
		if l == line {
			break
		}
	}
	return invocation{status: status, body: body, lines: lines, emf: emf}
}

// metricNames are the counts every EMF document declares (contract section 7).
var metricNames = []string{
	"TenantsChecked", "TenantsCompliant", "TenantsChanged", "TenantsWouldChange", "TenantsSkipped",
	"TenantsFailed", "UsersWithoutTotp", "AcronisRequests", "AcronisThrottled", "AcronisErrors",
}

// checkEMF checks the document's namespace, dimensions and declared metrics.
func checkEMF(t *testing.T, e testkit.EMF, function, trigger string, sweep bool) {
	t.Helper()
	if e.Namespace != namespace {
		t.Errorf("EMF namespace %q, want METRICS_NAMESPACE %q", e.Namespace, namespace)
	}
	if len(e.Dimensions) != 1 || !slices.Equal(e.Dimensions[0], []string{"Function", "Trigger"}) {
		t.Errorf("EMF dimensions %v, want [[Function Trigger]]", e.Dimensions)
	}
	if e.Dimension("Function") != function || e.Dimension("Trigger") != trigger {
		t.Errorf("EMF Function=%q Trigger=%q, want %s/%s", e.Dimension("Function"), e.Dimension("Trigger"), function, trigger)
	}
	want := slices.Clone(metricNames)
	if sweep {
		want = append(want, "SweepDurationMs")
	}
	if got := slices.Sorted(slices.Values(e.Order)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("EMF declares %v, want %v", got, want)
	}
	for _, name := range metricNames {
		if e.Units[name] != "Count" {
			t.Errorf("EMF %s unit %q, want Count", name, e.Units[name])
		}
	}
	if sweep && e.Units["SweepDurationMs"] != "Milliseconds" {
		t.Errorf("EMF SweepDurationMs unit %q, want Milliseconds", e.Units["SweepDurationMs"])
	}
}

// rieLine matches the emulator's own output: its timestamped log lines and the
// START/END/REPORT lines it writes for Lambda.
var rieLine = regexp.MustCompile(`^(\d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2},\d{3} \[|(START|END|REPORT|INIT_REPORT) RequestId: )`)

var levels = []string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}

// checkLogs checks a function's whole output: every line is the emulator's own
// or one JSON object, an EMF document or a log line with Lambda's keys plus
// function and trigger; no line holds a credential.
func checkLogs(t *testing.T, lines []string, function, trigger string, wantRequestID bool) {
	t.Helper()
	logs := 0
	for _, line := range lines {
		for _, secret := range []string{clientSecret, b64(signingKey)} {
			if strings.Contains(line, secret) {
				t.Errorf("a credential reached the output: %.120s...", line)
			}
		}
		m, ok := testkit.JSONObject(line)
		if !ok {
			if strings.TrimSpace(line) != "" && !rieLine.MatchString(line) {
				t.Errorf("output line is neither JSON nor the emulator's: %q", line)
			}
			continue
		}
		if _, ok := m["_aws"]; ok {
			continue
		}
		logs++
		ts, _ := m["timestamp"].(string)
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			t.Errorf("log line without an RFC 3339 timestamp: %s", line)
		}
		if lvl, _ := m["level"].(string); !slices.Contains(levels, lvl) {
			t.Errorf("log line level %q is not one of Lambda's: %s", lvl, line)
		}
		if msg, _ := m["message"].(string); msg == "" {
			t.Errorf("log line without a message: %s", line)
		}
		if id, _ := m["requestId"].(string); wantRequestID && id == "" {
			t.Errorf("log line without a requestId: %s", line)
		}
		if m["function"] != function || m["trigger"] != trigger {
			t.Errorf("log line function=%v trigger=%v, want %s/%s: %s", m["function"], m["trigger"], function, trigger, line)
		}
	}
	if logs == 0 {
		t.Errorf("no JSON log line at all")
	}
}

// requestIDs are the distinct requestId values of lines.
func requestIDs(lines []string) []string {
	var ids []string
	for _, line := range lines {
		if m, ok := testkit.JSONObject(line); ok {
			if id, ok := m["requestId"].(string); ok && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// readEvent loads a sample event from events/.
func readEvent(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func b64(b []byte) string {
	return base64.StdEncoding.EncodeToString(b)
}

// webhookEvent is events/webhook-get.json or webhook-put.json aimed at tenantID
// with body, signed now with key when key is not nil.
func webhookEvent(t *testing.T, method, tenantID, body string, key []byte) []byte {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(readEvent(t, "webhook-"+strings.ToLower(method)+".json"), &ev); err != nil {
		t.Fatal(err)
	}
	path := "/tenants/" + tenantID + "/mfa"
	ev["rawPath"] = path
	ev["pathParameters"] = map[string]any{"tenant_id": tenantID}
	ev["requestContext"].(map[string]any)["http"].(map[string]any)["path"] = path
	if body == "" {
		delete(ev, "body")
	} else {
		ev["body"] = body
	}
	headers := ev["headers"].(map[string]any)
	headers["content-length"] = fmt.Sprint(len(body))
	id := fmt.Sprintf("msg_e2e_%d", rand.Int64())
	now := time.Now()
	headers["webhook-id"] = id
	headers["webhook-timestamp"] = fmt.Sprint(now.Unix())
	if key != nil {
		headers["webhook-signature"] = webhook.Sign(key, id, now, []byte(body))
	} else {
		delete(headers, "webhook-signature")
	}
	out, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sqsRecord is a record of events/worker-batch.json with id and body replaced.
func sqsRecord(t *testing.T, messageID, body string) map[string]any {
	t.Helper()
	var batch struct {
		Records []map[string]any `json:"Records"`
	}
	if err := json.Unmarshal(readEvent(t, "worker-batch.json"), &batch); err != nil {
		t.Fatal(err)
	}
	rec := batch.Records[0]
	sum := md5.Sum([]byte(body))
	rec["messageId"] = messageID
	rec["body"] = body
	rec["md5OfBody"] = hex.EncodeToString(sum[:])
	return rec
}

func sqsEvent(t *testing.T, records ...map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"Records": records})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// drifting returns the tenants a policy-driven run should turn on: with a
// setting of their own, enabled, changeable, MFA off, outside excluded.
func drifting(all []sim.Tenant, excluded ...string) []sim.Tenant {
	byID := map[string]sim.Tenant{}
	for _, t := range all {
		byID[t.ID] = t
	}
	inExcluded := func(t sim.Tenant) bool {
		for seen := 0; seen <= len(all); seen++ { // bounded walk up to the root
			if slices.Contains(excluded, t.ID) {
				return true
			}
			p, ok := byID[t.ParentID]
			if !ok || p.ID == t.ID {
				return false
			}
			t = p
		}
		return false
	}
	var out []sim.Tenant
	for _, t := range all {
		if t.Kind != "unit" && t.Kind != "folder" && t.Enabled && t.UpdateAllowed &&
			!tenant.MFAOn(t.MFAStatus) && !inExcluded(t) {
			out = append(out, t)
		}
	}
	return out
}

// userTotals is what Acronis reports for t: its users and those of the folders
// and units below it, which share its setting, and how many of them have TOTP.
func userTotals(all []sim.Tenant, t sim.Tenant) (users, totp int) {
	users, totp = t.UsersCount, t.UsersWithTOTP
	for _, c := range all {
		if c.ParentID == t.ID && c.ID != t.ID && (c.Kind == "unit" || c.Kind == "folder") {
			u, p := userTotals(all, c)
			users, totp = users+u, totp+p
		}
	}
	return users, totp
}

// usersWithoutTOTP is how many of t's users must set up TOTP once MFA is on.
func usersWithoutTOTP(all []sim.Tenant, t sim.Tenant) int {
	users, totp := userTotals(all, t)
	return users - totp
}

// mfaStates maps every tenant id to its state.
func mfaStates(s *sim.Server) map[string]string {
	m := map[string]string{}
	for _, t := range s.All() {
		m[t.ID] = t.MFAStatus
	}
	return m
}

func mustGet(t *testing.T, s *sim.Server, id string) sim.Tenant {
	t.Helper()
	tn, ok := s.Get(id)
	if !ok {
		t.Fatalf("tenant %s vanished from the simulator", id)
	}
	return tn
}
