//go:build integration

package faults_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/app"
	"acronismfa/internal/config"
	"acronismfa/internal/sweep"
	"acronismfa/internal/testkit"
)

// The run's one AWS emulator, behind one proxy that counts the functions'
// calls. The functions' SDK takes its endpoint from this process's
// environment, which all tests share; one moto per test would also cost more
// than most tests.
var (
	moto     *testkit.Moto
	awsCalls *testkit.AWSProxy
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		// The tests mostly wait out the Acronis client's backoffs, idle: more
		// of them can wait at once than there are cores.
		_ = flag.Set("test.parallel", "8")
	}
	var err error
	if moto, err = testkit.StartMoto(context.Background(), nil); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v: the fault suite needs the AWS emulator\n", err) // never skip
		return 1
	}
	defer moto.Stop()
	if awsCalls, err = testkit.StartAWSProxy(moto.Endpoint); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	defer awsCalls.Close()
	for k, v := range (&testkit.Moto{Endpoint: awsCalls.URL}).Env() {
		os.Setenv(k, v)
	}
	return m.Run()
}

// world is one test's deployment: the simulator with the fixture tree (and a
// generated one, if asked), and the Acronis credentials and a webhook signing
// key in Secrets Manager, under names of this world's own.
type world struct {
	*testkit.Acronis
	key                          []byte
	acronisSecret, webhookSecret string // secret ids
}

func newWorld(t *testing.T, o testkit.AcronisOptions) *world {
	t.Helper()
	w := &world{
		Acronis:       testkit.NewFixture(t, o),
		key:           []byte("k-" + rand.Text()), // printable, so that a leak of the raw key can be found
		acronisSecret: "acronis-" + rand.Text(),
		webhookSecret: "webhook-" + rand.Text(),
	}
	createSecret(t, w.acronisSecret, w.CredentialsJSON())
	createSecret(t, w.webhookSecret, testkit.WebhookKeysJSON(w.key))
	return w
}

// function is one cold-started function: its dependencies, its stdout and its
// handler, built as functions/*/main.go builds them.
type function struct {
	deps    *app.Deps
	out     *testkit.Output
	webhook app.Handler[events.APIGatewayV2HTTPRequest, events.APIGatewayV2HTTPResponse]
	worker  app.Handler[events.SQSEvent, events.SQSEventResponse]
	sweep   app.Handler[json.RawMessage, sweep.Summary]
}

// start cold-starts fn through app.Init with the world's secrets, TRACE
// logging (so that the client's retry lines are in the output too) and vars
// on top.
func (w *world) start(t *testing.T, fn config.Function, vars map[string]string) *function {
	t.Helper()
	env := map[string]string{"ACRONIS_SECRET_ID": w.acronisSecret, "WEBHOOK_SECRET_ID": w.webhookSecret, "AWS_LAMBDA_LOG_LEVEL": "TRACE"}
	maps.Copy(env, vars)
	f := &function{out: testkit.NewOutput(nil)}
	var err error
	if f.deps, err = app.Init(t.Context(), fn, func(k string) string { return env[k] }, f.out); err != nil {
		t.Fatalf("init %s: %v", fn, err)
	}
	f.build(fn)
	return f
}

// build makes the handler of fn from f.deps, as the function's main does.
func (f *function) build(fn config.Function) {
	switch fn {
	case config.Webhook:
		f.webhook = app.Webhook(f.deps)
	case config.Worker:
		f.worker = app.Worker(f.deps)
	case config.Sweep:
		f.sweep = app.Sweep(f.deps)
	}
}

// scheduled is the sweep's input on its schedule.
var scheduled = json.RawMessage(`{}`)

// request is a webhook request signed with the world's key.
func (w *world) request(method, id, body string) events.APIGatewayV2HTTPRequest {
	return testkit.WebhookRequest(w.key, time.Now(), method, id, body)
}

// on reads whether a tenant has MFA on.
// createSecret and putSecret go to moto itself, past the proxy, whose count
// is the functions' calls.
func createSecret(t *testing.T, name, value string) {
	t.Helper()
	sm := secretsmanager.NewFromConfig(testkit.MotoConfig(t, moto.Endpoint))
	if _, err := sm.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)}); err != nil {
		t.Fatalf("create secret %s: %v", name, err)
	}
	// Deleted again so that the suite can run twice on one moto (-count).
	t.Cleanup(func() {
		_, err := sm.DeleteSecret(context.Background(), &secretsmanager.DeleteSecretInput{SecretId: aws.String(name), ForceDeleteWithoutRecovery: aws.Bool(true)})
		if err != nil {
			t.Errorf("delete secret %s: %v", name, err)
		}
	})
}

func putSecret(t *testing.T, id, value string) {
	t.Helper()
	sm := secretsmanager.NewFromConfig(testkit.MotoConfig(t, moto.Endpoint))
	if _, err := sm.PutSecretValue(t.Context(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(id), SecretString: aws.String(value)}); err != nil {
		t.Fatalf("put secret %s: %v", id, err)
	}
}

// Queue messages: enforce the policy, turn MFA on as asked, a tenant
// created, and one named.
func enforceMsg(id string) string { return fmt.Sprintf(`{"tenant_id": %q}`, id) }
func enableMsg(id string) string  { return fmt.Sprintf(`{"tenant_id": %q, "enabled": true}`, id) }
func createdMsg(id string) string { return testkit.TenantCreated(enforceMsg(id)) }
func nameMsg(name string) string  { return fmt.Sprintf(`{"tenant_name": %q}`, name) }

// failed lists a batch response's failures in order.
func failed(resp events.SQSEventResponse) []string {
	return slices.Sorted(slices.Values(testkit.FailedIDs(resp)))
}

// errorCode is the code of a webhook error answer.
func errorCode(resp events.APIGatewayV2HTTPResponse) any {
	body, _ := testkit.JSONObject(resp.Body)
	e, _ := body["error"].(map[string]any)
	return e["code"]
}

// audit is an audit line as CloudWatch receives it.
type audit map[string]any

func (a audit) get(field string) string { s, _ := a[field].(string); return s }

// audits returns f's audit lines, failing on any output line that is not JSON
// and on any audit line that lacks a field the contract requires.
func audits(t *testing.T, f *function) []audit {
	t.Helper()
	for _, line := range f.out.Lines() {
		if _, ok := testkit.JSONObject(line); !ok {
			t.Fatalf("output line is not JSON: %q", line)
		}
	}
	var out []audit
	for _, line := range f.out.Audits(0) {
		a := audit(line)
		_, prevOK := a["previous"].(string)
		_, curOK := a["current"].(string)
		// A tenant named by a queue message that could not be resolved has
		// only its name.
		if a.get("tenant_id") == "" && a.get("tenant_name") == "" || a.get("action") == "" || a.get("reason") == "" || !prevOK || !curOK {
			t.Errorf("audit line lacks tenant_id, action, reason, previous or current: %v", a)
		}
		out = append(out, a)
	}
	return out
}

func byTenant(lines []audit) map[string][]audit {
	out := map[string][]audit{}
	for _, l := range lines {
		out[l.get("tenant_id")] = append(out[l.get("tenant_id")], l)
	}
	return out
}

func countAction(lines []audit, action string) int {
	n := 0
	for _, l := range lines {
		if l.get("action") == action {
			n++
		}
	}
	return n
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

// acceptedWrites counts, per tenant, the MFA PUTs that landed: those answered
// 200, and those of the tenants whose write answers are lost (502).
func acceptedWrites(reqs []sim.Request, lost ...string) map[string]int {
	out := map[string]int{}
	for _, r := range reqs {
		id, ok := strings.CutPrefix(r.Path, "/api/2/tenants/")
		id = strings.TrimSuffix(id, "/mfa/status")
		if ok && r.Method == http.MethodPut && (r.Status == http.StatusOK || r.Status == http.StatusBadGateway && slices.Contains(lost, id)) {
			out[id]++
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
