package worker_test

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"acronismfa/internal/acronis"
	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/policy"
	"acronismfa/internal/telemetry"
	"acronismfa/internal/tenant"
	"acronismfa/internal/testkit"
	"acronismfa/internal/worker"
)

// Fixed ids of the worker tests' tree below the API client's own tenant:
//
//	own ─┬─ partner ─┬─ off (customer, MFA off, 4 users, 1 with TOTP) ── unit
//	     │           ├─ off2 (customer, MFA off, named "Contoso Ltd")
//	     │           ├─ off3 (customer, MFA off, named "Contoso Ltd Holdings")
//	     │           ├─ on (customer, MFA on)
//	     │           ├─ locked (customer, MFA off, update_allowed false)
//	     │           ├─ suspended (customer, enabled false, MFA off)
//	     │           ├─ folder
//	     │           ├─ twin1, twin2 (customers, MFA off, both named "Twin Corp")
//	     │           └─ broken (customer, MFA off; the tests make Acronis fail on it)
//	     └─ xPartner ── xChild (MFA off)
const (
	qPartner   = "30000000-0000-4000-8000-000000000001"
	qOff       = "30000000-0000-4000-8000-000000000002"
	qUnit      = "30000000-0000-4000-8000-000000000003"
	qOff2      = "30000000-0000-4000-8000-000000000004"
	qOff3      = "30000000-0000-4000-8000-000000000005"
	qOn        = "30000000-0000-4000-8000-000000000006"
	qLocked    = "30000000-0000-4000-8000-000000000007"
	qSuspended = "30000000-0000-4000-8000-000000000008"
	qFolder    = "30000000-0000-4000-8000-000000000009"
	qTwin1     = "30000000-0000-4000-8000-00000000000a"
	qTwin2     = "30000000-0000-4000-8000-00000000000b"
	qBroken    = "30000000-0000-4000-8000-00000000000c"
	qXPartner  = "30000000-0000-4000-8000-00000000000d"
	qXChild    = "30000000-0000-4000-8000-00000000000e"
	qUnknown   = "30000000-0000-4000-8000-0000000000ff"
)

const qNamespace = "AcronisMFA/Test"

var qClock = time.Unix(1_767_225_600, 0)

func qFixture(t *testing.T) *testkit.Acronis {
	t.Helper()
	env := testkit.NewAcronis(t, testkit.AcronisOptions{})
	own := env.Sim.RootID()
	for _, tn := range []sim.Tenant{
		{ID: qPartner, Name: "Partner", Kind: "partner", ParentID: own, Enabled: true, MFAStatus: "enabled", UpdateAllowed: true},
		{ID: qOff, Name: "Off", Kind: "customer", ParentID: qPartner, Enabled: true, MFAStatus: "disabled", UsersCount: 4, UsersWithTOTP: 1, UpdateAllowed: true},
		{ID: qUnit, Name: "Unit", Kind: "unit", ParentID: qOff, Enabled: true, UpdateAllowed: true},
		{ID: qOff2, Name: "Contoso Ltd", Kind: "customer", ParentID: qPartner, Enabled: true, MFAStatus: "disabled", UpdateAllowed: true},
		{ID: qOff3, Name: "Contoso Ltd Holdings", Kind: "customer", ParentID: qPartner, Enabled: true, MFAStatus: "disabled", UpdateAllowed: true},
		{ID: qOn, Name: "On", Kind: "customer", ParentID: qPartner, Enabled: true, MFAStatus: "enabled", UsersCount: 2, UsersWithTOTP: 2, UpdateAllowed: true},
		{ID: qLocked, Name: "Locked", Kind: "customer", ParentID: qPartner, Enabled: true, MFAStatus: "disabled", UpdateAllowed: false},
		{ID: qSuspended, Name: "Suspended", Kind: "customer", ParentID: qPartner, Enabled: false, MFAStatus: "disabled", UpdateAllowed: true},
		{ID: qFolder, Name: "Folder", Kind: "folder", ParentID: qPartner, Enabled: true, UpdateAllowed: true},
		{ID: qTwin1, Name: "Twin Corp", Kind: "customer", ParentID: qPartner, Enabled: true, MFAStatus: "disabled", UpdateAllowed: true},
		{ID: qTwin2, Name: "Twin Corp", Kind: "customer", ParentID: qPartner, Enabled: true, MFAStatus: "disabled", UpdateAllowed: true},
		{ID: qBroken, Name: "Broken", Kind: "customer", ParentID: qPartner, Enabled: true, MFAStatus: "disabled", UpdateAllowed: true},
		{ID: qXPartner, Name: "Excluded Partner", Kind: "partner", ParentID: own, Enabled: true, MFAStatus: "disabled", UpdateAllowed: true},
		{ID: qXChild, Name: "Excluded Child", Kind: "customer", ParentID: qXPartner, Enabled: true, MFAStatus: "disabled", UpdateAllowed: true},
	} {
		if err := env.Sim.Add(tn); err != nil {
			t.Fatal(err)
		}
	}
	return env
}

// syncBuffer is a bytes.Buffer safe for a batch's concurrent log lines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not a JSON object: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

type workerRig struct {
	env  *testkit.Acronis
	h    *worker.Handler
	logs syncBuffer
	out  syncBuffer
}

func newWorker(t *testing.T, env *testkit.Acronis, rules policy.Rules) *workerRig {
	t.Helper()
	w := &workerRig{env: env}
	w.h = &worker.Handler{
		Acronis:     env.Client,
		Rules:       rules,
		Desired:     true,
		Concurrency: 4,
		Logger:      telemetry.NewLogger(&w.logs, "worker", "sqs", slog.LevelDebug),
		Namespace:   qNamespace,
		Out:         &w.out,
		Now:         func() time.Time { return qClock },
	}
	return w
}

// batch is what the outside world sees of one invocation.
type batch struct {
	failed []string // the messageIds in batchItemFailures, in order
	logs   []map[string]any
	audits []map[string]any
	emf    map[string]any
}

// run hands the bodies to the handler as one SQS batch; message i has id "m<i>".
func (w *workerRig) run(t *testing.T, ctx context.Context, bodies ...string) batch {
	t.Helper()
	ev := events.SQSEvent{}
	for i, b := range bodies {
		ev.Records = append(ev.Records, sqsRecord(msgID(i), b))
	}
	return w.handle(t, ctx, ev)
}

func (w *workerRig) handle(t *testing.T, ctx context.Context, ev events.SQSEvent) batch {
	t.Helper()
	resp, err := w.h.Handle(ctx, ev)
	if err != nil {
		t.Fatalf("Handle returned error %v: SQS would retry the whole batch", err)
	}
	var b batch
	for _, f := range resp.BatchItemFailures {
		b.failed = append(b.failed, f.ItemIdentifier)
	}
	b.logs = w.logs.lines(t)
	for _, l := range b.logs {
		if l["audit"] == true {
			b.audits = append(b.audits, l)
		}
	}
	docs := w.out.lines(t)
	if len(docs) != 1 {
		t.Fatalf("%d EMF documents, want one per invocation", len(docs))
	}
	b.emf = docs[0]
	if b.emf["Function"] != "worker" || b.emf["Trigger"] != "sqs" {
		t.Fatalf("EMF Function=%v Trigger=%v, want worker and sqs", b.emf["Function"], b.emf["Trigger"])
	}
	meta, _ := b.emf["_aws"].(map[string]any)
	dirs, _ := meta["CloudWatchMetrics"].([]any)
	if len(dirs) != 1 || dirs[0].(map[string]any)["Namespace"] != qNamespace {
		t.Fatalf("EMF _aws %v", meta)
	}
	return b
}

func msgID(i int) string { return "m" + string(rune('a'+i)) }

func sqsRecord(id, body string) events.SQSMessage {
	return events.SQSMessage{
		MessageId:      id,
		ReceiptHandle:  "AQEB" + id,
		Body:           body,
		EventSource:    "aws:sqs",
		EventSourceARN: "arn:aws:sqs:eu-central-1:123456789012:acronis-mfa-EnforceQueue",
		AWSRegion:      "eu-central-1",
		Attributes:     map[string]string{"ApproximateReceiveCount": "1"},
	}
}

func (b batch) metric(t *testing.T, name string) int {
	t.Helper()
	v, ok := b.emf[name].(float64)
	if !ok {
		t.Fatalf("EMF document has no %s: %v", name, b.emf)
	}
	return int(v)
}

// auditsFor returns the audit lines about one tenant, by id or by name.
func (b batch) auditsFor(key, value string) []map[string]any {
	var out []map[string]any
	for _, a := range b.audits {
		if a[key] == value {
			out = append(out, a)
		}
	}
	return out
}

func mfaOn(t *testing.T, env *testkit.Acronis, id string) bool {
	t.Helper()
	tn, ok := env.Sim.Get(id)
	if !ok {
		t.Fatalf("no tenant %s", id)
	}
	return tenant.MFAOn(tn.MFAStatus)
}

// tenantCreated is the body of an SQS message that an EventBridge rule with the
// queue as target delivers: the whole event.
func tenantCreated(detail string) string {
	return `{"version":"0","id":"6e1d2c3b-4a59-4f8e-8d7c-6b5a4f3e2d10","detail-type":"Tenant Created",` +
		`"source":"provisioning.example","account":"123456789012","time":"2026-01-01T00:00:00Z",` +
		`"region":"eu-central-1","resources":[],"detail":` + detail + `}`
}

// One message of each shape, alone in its batch.
func TestHandleMessage(t *testing.T) {
	tests := []struct {
		name   string
		rules  policy.Rules
		fail   map[string]int // sim.Faults.FailTenants
		body   string
		listed bool
		tenant string // whose state is checked; "" for none
		after  bool   // its MFA afterwards
		puts   int
		action string // of the one audit line; "" for none
		key    string // where the audit line names the tenant: tenant_id or tenant_name
		id     string // the audit line's tenant_id, when not tenant
		says   string // in the audit line's reason or error
		metric string // the outcome counted in the EMF document
	}{
		{name: "explicit enable", body: `{"tenant_id":"` + qOff + `","enabled":true}`,
			tenant: qOff, after: true, puts: 1, action: "enable", metric: telemetry.MetricTenantsChanged},
		{name: "explicit enable, id in upper case", body: `{"tenant_id":"` + strings.ToUpper(qOff) + `","enabled":true}`,
			tenant: qOff, after: true, puts: 1, action: "enable", metric: telemetry.MetricTenantsChanged},
		{name: "explicit enable of a suspended tenant", body: `{"tenant_id":"` + qSuspended + `","enabled":true}`,
			tenant: qSuspended, after: true, puts: 1, action: "enable", metric: telemetry.MetricTenantsChanged},
		{name: "explicit disable refused", body: `{"tenant_id":"` + qOn + `","enabled":false}`, listed: true,
			tenant: qOn, after: true, action: "skipped", says: "MFA_ALLOW_DISABLE", metric: telemetry.MetricTenantsSkipped},
		{name: "explicit disable allowed", rules: policy.Rules{AllowDisable: true}, body: `{"tenant_id":"` + qOn + `","enabled":false}`,
			tenant: qOn, after: false, puts: 1, action: "disable", metric: telemetry.MetricTenantsChanged},
		{name: "policy only", body: `{"tenant_id":"` + qOff + `"}`,
			tenant: qOff, after: true, puts: 1, action: "enable", metric: telemetry.MetricTenantsChanged},
		{name: "policy only, dry run", rules: policy.Rules{DryRun: true}, body: `{"tenant_id":"` + qOff + `"}`,
			tenant: qOff, after: false, action: "would_enable", metric: telemetry.MetricTenantsWouldChange},
		{name: "policy only leaves a suspended tenant alone", body: `{"tenant_id":"` + qSuspended + `"}`,
			tenant: qSuspended, after: false, action: "skipped", says: "disabled", metric: telemetry.MetricTenantsSkipped},
		{name: "Tenant Created event", body: tenantCreated(`{"tenant_id":"` + qOff + `"}`),
			tenant: qOff, after: true, puts: 1, action: "enable", metric: telemetry.MetricTenantsChanged},
		{name: "Tenant Created event with enabled", rules: policy.Rules{AllowDisable: true}, body: tenantCreated(`{"tenant_id":"` + qOn + `","enabled":false,"plan":"gold"}`),
			tenant: qOn, after: false, puts: 1, action: "disable", metric: telemetry.MetricTenantsChanged},
		{name: "Tenant Created event by name", body: tenantCreated(`{"tenant_name":"Contoso Ltd"}`),
			tenant: qOff2, after: true, puts: 1, action: "enable", metric: telemetry.MetricTenantsChanged},
		{name: "tenant_name with one exact match", body: `{"tenant_name":"Contoso Ltd"}`,
			tenant: qOff2, after: true, puts: 1, action: "enable", metric: telemetry.MetricTenantsChanged},
		{name: "tenant_name with no match", body: `{"tenant_name":"Contoso"}`, listed: true,
			action: "failed", key: "tenant_name", says: `no tenant named "Contoso"`, metric: telemetry.MetricTenantsFailed},
		{name: "tenant_name with two matches", body: `{"tenant_name":"Twin Corp","enabled":true}`, listed: true,
			tenant: qTwin1, after: false, action: "failed", key: "tenant_name", says: `2 tenants named "Twin Corp"`, metric: telemetry.MetricTenantsFailed},
		{name: "unit", body: `{"tenant_id":"` + qUnit + `","enabled":true}`,
			tenant: qUnit, after: false, action: "skipped", says: "inherit", metric: telemetry.MetricTenantsSkipped},
		{name: "folder", body: `{"tenant_id":"` + qFolder + `"}`,
			tenant: qFolder, after: true, action: "skipped", says: "inherit", metric: telemetry.MetricTenantsSkipped},
		{name: "excluded", rules: policy.Rules{Excluded: policy.NewExclusions([]string{qOff})}, body: `{"tenant_id":"` + qOff + `","enabled":true}`,
			tenant: qOff, after: false, action: "skipped", says: "EXCLUDED_TENANT_IDS", metric: telemetry.MetricTenantsSkipped},
		{name: "excluded ancestor", rules: policy.Rules{Excluded: policy.NewExclusions([]string{qXPartner})}, body: `{"tenant_id":"` + qXChild + `"}`,
			tenant: qXChild, after: false, action: "skipped", says: "EXCLUDED_TENANT_IDS", metric: telemetry.MetricTenantsSkipped},
		{name: "already compliant", body: `{"tenant_id":"` + qOn + `"}`,
			tenant: qOn, after: true, action: "unchanged", metric: telemetry.MetricTenantsCompliant},
		{name: "already compliant, explicit", body: `{"tenant_id":"` + qOn + `","enabled":true}`,
			tenant: qOn, after: true, action: "unchanged", metric: telemetry.MetricTenantsCompliant},
		{name: "update_allowed false", body: `{"tenant_id":"` + qLocked + `","enabled":true}`, listed: true,
			tenant: qLocked, after: false, action: "skipped", says: "update_allowed", metric: telemetry.MetricTenantsSkipped},
		{name: "update_allowed false, policy only", body: `{"tenant_id":"` + qLocked + `"}`,
			tenant: qLocked, after: false, action: "skipped", says: "update_allowed", metric: telemetry.MetricTenantsSkipped},
		{name: "unknown tenant", body: `{"tenant_id":"` + qUnknown + `"}`, listed: true,
			id: qUnknown, action: "failed", says: "not found", metric: telemetry.MetricTenantsFailed},
		{name: "Acronis 500", fail: map[string]int{qBroken: 500}, body: `{"tenant_id":"` + qBroken + `"}`, listed: true,
			tenant: qBroken, after: false, action: "failed", says: "HTTP 500", metric: telemetry.MetricTenantsFailed},
		{name: "not JSON", body: `tenant_id=` + qOff, listed: true, metric: telemetry.MetricTenantsFailed},
		{name: "array", body: `[{"tenant_id":"` + qOff + `"}]`, listed: true, metric: telemetry.MetricTenantsFailed},
		{name: "empty", body: ``, listed: true, metric: telemetry.MetricTenantsFailed},
		{name: "null", body: `null`, listed: true, metric: telemetry.MetricTenantsFailed},
		{name: "missing tenant", body: `{"enabled":true}`, listed: true, metric: telemetry.MetricTenantsFailed},
		{name: "event missing tenant", body: tenantCreated(`{"name":"Contoso Ltd"}`), listed: true, metric: telemetry.MetricTenantsFailed},
		{name: "bad UUID", body: `{"tenant_id":"30000000-0000-4000-8000-00000000000"}`, listed: true, metric: telemetry.MetricTenantsFailed},
		{name: "path in the id", body: `{"tenant_id":"../` + qOff + `"}`, listed: true, metric: telemetry.MetricTenantsFailed},
		{name: "enabled as string", body: `{"tenant_id":"` + qOff + `","enabled":"true"}`, listed: true, metric: telemetry.MetricTenantsFailed},
		{name: "typo of enabled", body: `{"tenant_id":"` + qOn + `","enable":false}`, listed: true,
			tenant: qOn, after: true, metric: telemetry.MetricTenantsFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := qFixture(t)
			if tt.fail != nil {
				env.Sim.SetFaults(sim.Faults{FailTenants: tt.fail})
			}
			w := newWorker(t, env, tt.rules)
			b := w.run(t, t.Context(), tt.body)

			want := []string(nil)
			if tt.listed {
				want = []string{msgID(0)}
			}
			if !slices.Equal(b.failed, want) {
				t.Fatalf("batchItemFailures %v, want %v\nlogs: %v", b.failed, want, b.logs)
			}
			if n := env.Sim.Count("PUT", "/mfa/status"); n != tt.puts {
				t.Errorf("%d PUTs reached Acronis, want %d", n, tt.puts)
			}
			if tt.tenant != "" && mfaOn(t, env, tt.tenant) != tt.after {
				t.Errorf("MFA on = %v afterwards, want %v", !tt.after, tt.after)
			}
			if tt.action == "" {
				// An unparseable message is no tenant decision, but it must be logged.
				if len(b.audits) != 0 {
					t.Errorf("audit lines for an unparseable message: %v", b.audits)
				}
				if len(env.Sim.Requests()) != 0 {
					t.Errorf("an unparseable message reached Acronis: %v", env.Sim.Requests())
				}
				if !logged(b.logs, "ERROR", msgID(0)) {
					t.Errorf("no ERROR line names the message: %v", b.logs)
				}
			} else {
				if len(b.audits) != 1 {
					t.Fatalf("%d audit lines, want 1: %v", len(b.audits), b.audits)
				}
				a := b.audits[0]
				if a["action"] != tt.action {
					t.Errorf("audit action %v, want %s: %v", a["action"], tt.action, a)
				}
				if tt.key == "tenant_name" {
					if a["tenant_name"] == nil || a["tenant_name"] == "" {
						t.Errorf("the audit line does not name the tenant it looked for: %v", a)
					}
					if reason, _ := a["reason"].(string); tt.action == "failed" && !strings.Contains(reason, tt.says) {
						t.Errorf("audit reason %q does not say which lookup failure it was (%q)", reason, tt.says)
					}
				} else if id := cmp.Or(tt.id, tt.tenant); a["tenant_id"] != id {
					t.Errorf("audit tenant_id %v, want %s", a["tenant_id"], id)
				}
				text, _ := a["reason"].(string)
				if e, ok := a["error"].(string); ok {
					text += " " + e
				}
				if !strings.Contains(text, tt.says) {
					t.Errorf("audit line says %q, want it to say %q", text, tt.says)
				}
			}
			for _, name := range []string{telemetry.MetricTenantsChanged, telemetry.MetricTenantsWouldChange,
				telemetry.MetricTenantsCompliant, telemetry.MetricTenantsSkipped, telemetry.MetricTenantsFailed} {
				want := 0
				if name == tt.metric {
					want = 1
				}
				if n := b.metric(t, name); n != want {
					t.Errorf("EMF %s %d, want %d", name, n, want)
				}
			}
			if n := b.metric(t, telemetry.MetricAcronisRequests); n != len(env.Sim.Requests()) {
				t.Errorf("EMF AcronisRequests %d, but %d reached the simulator", n, len(env.Sim.Requests()))
			}
		})
	}
}

// logged reports whether a line at level names the message.
func logged(lines []map[string]any, level, messageID string) bool {
	for _, l := range lines {
		if l["level"] == level && l["message_id"] == messageID {
			return true
		}
	}
	return false
}

// A mixed batch lists exactly the messages that failed, and its EMF document
// counts every outcome.
func TestHandleMixedBatch(t *testing.T) {
	env := qFixture(t)
	env.Sim.SetFaults(sim.Faults{FailTenants: map[string]int{qBroken: 500}})
	w := newWorker(t, env, policy.Rules{Excluded: policy.NewExclusions([]string{qXPartner})})
	bodies := []string{
		`{"tenant_id":"` + qOff + `","enabled":true}`, // a: changed
		`not json`, // b: listed
		`{"tenant_id":"` + qOn + `","enabled":false}`,  // c: refused, listed
		tenantCreated(`{"tenant_id":"` + qOff3 + `"}`), // d: changed
		`{"tenant_name":"Contoso Ltd"}`,                // e: changed
		`{"tenant_name":"Nobody"}`,                     // f: listed
		`{"tenant_name":"Twin Corp"}`,                  // g: listed
		`{"tenant_id":"` + qUnit + `"}`,                // h: skipped
		`{"tenant_id":"` + qFolder + `"}`,              // i: skipped
		`{"tenant_id":"` + qXChild + `"}`,              // j: skipped
		`{"tenant_id":"` + qOn + `"}`,                  // k: compliant
		`{"tenant_id":"` + qBroken + `"}`,              // l: Acronis 500, listed
		`[]`,                                           // m: listed
		`{"tenant_id":"nope"}`,                         // n: listed
	}
	b := w.run(t, t.Context(), bodies...)
	want := []string{"mb", "mc", "mf", "mg", "ml", "mm", "mn"}
	if got := slices.Sorted(slices.Values(b.failed)); !slices.Equal(got, want) {
		t.Fatalf("batchItemFailures %v, want exactly %v", got, want)
	}
	for _, id := range []string{qOff, qOff2, qOff3} {
		if !mfaOn(t, env, id) {
			t.Errorf("tenant %s not enabled", id)
		}
	}
	for _, id := range []string{qXChild, qBroken, qTwin1, qTwin2} {
		if mfaOn(t, env, id) {
			t.Errorf("tenant %s enabled", id)
		}
	}
	if n := env.Sim.Count("PUT", "/mfa/status"); n != 3 {
		t.Errorf("%d PUTs, want 3", n)
	}
	for name, want := range map[string]int{
		telemetry.MetricTenantsChanged:     3,
		telemetry.MetricTenantsCompliant:   1,
		telemetry.MetricTenantsSkipped:     4, // unit, folder, excluded, and the refused disable
		telemetry.MetricTenantsFailed:      6, // 3 unparseable, 2 names, 1 Acronis failure
		telemetry.MetricTenantsWouldChange: 0,
		telemetry.MetricUsersWithoutTotp:   3,
	} {
		if n := b.metric(t, name); n != want {
			t.Errorf("EMF %s %d, want %d", name, n, want)
		}
	}
	if n := b.metric(t, telemetry.MetricAcronisRequests); n != len(env.Sim.Requests()) {
		t.Errorf("EMF AcronisRequests %d, but %d reached the simulator", n, len(env.Sim.Requests()))
	}
	if n := b.metric(t, telemetry.MetricAcronisErrors); n == 0 {
		t.Error("EMF AcronisErrors 0 despite the 500s")
	}
	// Every parsed message gets exactly one audit line.
	if len(b.audits) != 11 {
		t.Errorf("%d audit lines, want 11 (one per parsed message): %v", len(b.audits), b.audits)
	}
	for _, id := range []string{qOff, qOff2, qOff3, qUnit, qFolder, qXChild, qBroken} {
		if n := len(b.auditsFor("tenant_id", id)); n != 1 {
			t.Errorf("tenant %s has %d audit lines, want 1", id, n)
		}
	}
	if n := len(b.auditsFor("tenant_id", qOn)); n != 2 {
		t.Errorf("tenant %s has %d audit lines, want 2 (refused disable, compliant)", qOn, n)
	}
	for _, l := range b.logs {
		if l["message"] == "batch done" && (l["messages"] != 14.0 || l["failed"] != 7.0) {
			t.Errorf("batch line %v, want 14 messages and 7 failed", l)
		}
	}
}

// perTenant wraps the client and records, per tenant, the most calls that
// were ever under way at once, and the order of the writes.
type perTenant struct {
	*acronis.Client
	mu     sync.Mutex
	now    map[string]int
	most   map[string]int
	writes []string
}

func (p *perTenant) enter(id string) func() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.now[id]++
	p.most[id] = max(p.most[id], p.now[id])
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.now[id]--
	}
}

func (p *perTenant) Tenant(ctx context.Context, id string) (tenant.Tenant, error) {
	defer p.enter(id)()
	return p.Client.Tenant(ctx, id)
}

func (p *perTenant) MFAStatus(ctx context.Context, id string) (tenant.MFAStatus, error) {
	defer p.enter(id)()
	return p.Client.MFAStatus(ctx, id)
}

func (p *perTenant) SetMFA(ctx context.Context, id string, enabled bool) (tenant.MFAStatus, error) {
	defer p.enter(id)()
	p.mu.Lock()
	p.writes = append(p.writes, id+"="+tenant.MFAState(enabled))
	p.mu.Unlock()
	return p.Client.SetMFA(ctx, id, enabled)
}

// Two messages about one tenant never race: they run one after the other, in
// batch order, while other tenants go on at the same time.
func TestHandleSameTenantInOrder(t *testing.T) {
	env := qFixture(t)
	// Latency makes any overlap of two calls about one tenant show.
	env.Sim.SetFaults(sim.Faults{Latency: 20 * time.Millisecond})
	w := newWorker(t, env, policy.Rules{AllowDisable: true})
	p := &perTenant{Client: env.Client, now: map[string]int{}, most: map[string]int{}}
	w.h.Acronis = p
	w.h.Concurrency = 8
	b := w.run(t, t.Context(),
		`{"tenant_id":"`+strings.ToUpper(qOff)+`","enabled":true}`,
		`{"tenant_id":"`+qOff3+`","enabled":true}`,
		`{"tenant_name":"Off","enabled":false}`, // qOff again, by name
		`{"tenant_id":"`+qOff2+`"}`,
		`{"tenant_id":"`+qOff3+`","enabled":false}`,
		`{"tenant_id":"`+qOff+`","enabled":false}`,
	)
	if len(b.failed) != 0 {
		t.Fatalf("batchItemFailures %v: %v", b.failed, b.audits)
	}
	for _, id := range []string{qOff, qOff3} {
		if mfaOn(t, env, id) {
			t.Errorf("tenant %s ends enabled, want disabled by its last message", id)
		}
		if p.most[id] != 1 {
			t.Errorf("tenant %s had %d calls under way at once, want 1", id, p.most[id])
		}
	}
	if !mfaOn(t, env, qOff2) {
		t.Error("tenant off2 not enabled")
	}
	var offWrites, off3Writes []string
	for _, wr := range p.writes {
		switch {
		case strings.HasPrefix(wr, qOff+"="):
			offWrites = append(offWrites, wr)
		case strings.HasPrefix(wr, qOff3+"="):
			off3Writes = append(off3Writes, wr)
		}
	}
	if want := []string{qOff + "=enabled", qOff + "=disabled"}; !slices.Equal(offWrites, want) {
		t.Errorf("writes to off %v, want %v (the third message finds it disabled)", offWrites, want)
	}
	if want := []string{qOff3 + "=enabled", qOff3 + "=disabled"}; !slices.Equal(off3Writes, want) {
		t.Errorf("writes to off3 %v, want %v", off3Writes, want)
	}
	actions := func(id string) []string {
		var out []string
		for _, a := range b.auditsFor("tenant_id", id) {
			out = append(out, a["action"].(string))
		}
		return out
	}
	if got, want := actions(qOff), []string{"enable", "disable", "unchanged"}; !slices.Equal(got, want) {
		t.Errorf("audit actions for off %v, want %v in batch order", got, want)
	}
}

// Seen from Acronis: a batch about one tenant never has two requests in flight.
func TestHandleSameTenantOneRequestAtATime(t *testing.T) {
	env := qFixture(t)
	env.Sim.SetFaults(sim.Faults{Latency: 10 * time.Millisecond})
	w := newWorker(t, env, policy.Rules{AllowDisable: true})
	w.h.Concurrency = 8
	b := w.run(t, t.Context(),
		`{"tenant_id":"`+qOff+`","enabled":true}`,
		`{"tenant_id":"`+qOff+`","enabled":false}`,
		`{"tenant_id":"`+qOff+`","enabled":true}`,
		`{"tenant_id":"`+qOff+`","enabled":false}`,
	)
	if len(b.failed) != 0 {
		t.Fatalf("batchItemFailures %v", b.failed)
	}
	if n := env.Sim.MaxInFlight(); n != 1 {
		t.Fatalf("%d requests about one tenant were in flight at once, want 1", n)
	}
	if n := env.Sim.Count("PUT", "/mfa/status"); n != 4 {
		t.Fatalf("%d PUTs, want 4", n)
	}
	if mfaOn(t, env, qOff) {
		t.Fatal("the last message disabled MFA, but it is on")
	}
}

// A batch cut off by the invocation deadline lists the messages it could not
// finish, and only those.
func TestHandleDeadline(t *testing.T) {
	env := qFixture(t)
	// The token is fetched first: see warmToken in the webhook tests for why
	// the simulator should not be slowed down in the middle of a token call.
	if _, err := env.Client.OwnTenantID(t.Context()); err != nil {
		t.Fatal(err)
	}
	env.Sim.ResetRequests()
	env.Sim.SetFaults(sim.Faults{Latency: 10 * time.Second})
	w := newWorker(t, env, policy.Rules{})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	b := w.run(t, ctx, `{"tenant_id":"`+qOff+`"}`, `{"tenant_id":"`+qOff2+`","enabled":true}`, `{"tenant":`)
	if got := slices.Sorted(slices.Values(b.failed)); !slices.Equal(got, []string{"ma", "mb", "mc"}) {
		t.Fatalf("batchItemFailures %v, want all three", got)
	}
	for _, id := range []string{qOff, qOff2} {
		as := b.auditsFor("tenant_id", id)
		if len(as) != 1 || as[0]["action"] != "failed" || !strings.Contains(as[0]["reason"].(string), "deadline") {
			t.Errorf("audit lines for %s: %v, want one failure that names the deadline", id, as)
		}
	}
	if n := b.metric(t, telemetry.MetricTenantsFailed); n != 3 {
		t.Errorf("EMF TenantsFailed %d, want 3", n)
	}
}

// The sample batch of events/ works as it is, once its tenants exist.
func TestHandleSampleBatch(t *testing.T) {
	raw, err := os.ReadFile("../../events/worker-batch.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.SQSEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	env := testkit.NewAcronis(t, testkit.AcronisOptions{})
	ids := []string{"3f0b8c2e-6a4d-4b7e-9c1a-2d5e8f7a9b10", "5a1c9e3b-7d2f-4c8a-b6e4-1f0d2c3b4a55", "8d2f4a61-0b3c-4e5d-a7f8-9c0b1d2e3f41", ""}
	names := []string{"Acme", "Globex", "Initech", "Contoso Ltd"}
	for i, id := range ids {
		if err := env.Sim.Add(sim.Tenant{ID: id, Name: names[i], Kind: "customer", Enabled: true, MFAStatus: "disabled", UpdateAllowed: true}); err != nil {
			t.Fatal(err)
		}
	}
	w := newWorker(t, env, policy.Rules{})
	b := w.handle(t, t.Context(), ev)
	if len(b.failed) != 0 {
		t.Fatalf("batchItemFailures %v: %v", b.failed, b.logs)
	}
	for _, tn := range env.Sim.All()[1:] {
		if !tenant.MFAOn(tn.MFAStatus) {
			t.Errorf("tenant %s (%s) not enabled", tn.Name, tn.ID)
		}
	}
	if n := b.metric(t, telemetry.MetricTenantsChanged); n != 4 {
		t.Errorf("EMF TenantsChanged %d, want 4", n)
	}
}

// A name held by two tenants fails the message even when Acronis search, which
// matches substrings, returns so many partial matches that the second exact one
// is past the hits the client reads: the message must not be applied to the
// first one as if it were the only one.
func TestHandleAmbiguousNameAmongManyPartialMatches(t *testing.T) {
	env := testkit.NewAcronis(t, testkit.AcronisOptions{})
	first := "30000000-0000-4000-8000-000000000100"
	second := "30000000-0000-4000-8000-000000000200"
	add := func(id, name string) {
		t.Helper()
		if err := env.Sim.Add(sim.Tenant{ID: id, Name: name, Kind: "customer", Enabled: true, MFAStatus: "disabled", UpdateAllowed: true}); err != nil {
			t.Fatal(err)
		}
	}
	add(first, "Globex")
	for i := range 120 {
		add("", "Globex Branch "+strconv.Itoa(i))
	}
	add(second, "Globex")
	w := newWorker(t, env, policy.Rules{})
	b := w.run(t, t.Context(), `{"tenant_name":"Globex"}`)
	if !slices.Equal(b.failed, []string{"ma"}) {
		t.Errorf("batchItemFailures %v, want the ambiguous message listed", b.failed)
	}
	for _, id := range []string{first, second} {
		if mfaOn(t, env, id) {
			t.Errorf("tenant %s named Globex was enabled, though the name is not unique", id)
		}
	}
}

// A message the sweep fanned out carries its sweep id into the audit line, so
// that the sweep's and the worker's lines about one run can be joined.
func TestHandleFannedOutMessageKeepsSweepID(t *testing.T) {
	env := qFixture(t)
	w := newWorker(t, env, policy.Rules{})
	b := w.run(t, t.Context(), `{"tenant_id":"`+qOff+`","enabled":true,"sweep_id":"sweep-7"}`, `{"tenant_id":"`+qOff2+`"}`)
	if len(b.failed) != 0 {
		t.Fatalf("batchItemFailures %v", b.failed)
	}
	if as := b.auditsFor("tenant_id", qOff); len(as) != 1 || as[0]["sweep_id"] != "sweep-7" {
		t.Errorf("audit lines for the fanned-out message %v, want sweep_id sweep-7", as)
	}
	if as := b.auditsFor("tenant_id", qOff2); len(as) != 1 || as[0]["sweep_id"] != nil {
		t.Errorf("audit lines for the operator's message %v, want no sweep_id", as)
	}
}

// Whoever reads the dead-letter queue starts from a message id: the failure's
// log line ties it to the event it came from and says why.
func TestHandleFailedMessageLogsItsOrigin(t *testing.T) {
	env := qFixture(t)
	w := newWorker(t, env, policy.Rules{})
	const missing = "50000000-0000-4000-8000-0000000000ff"
	b := w.run(t, t.Context(), tenantCreated(`{"tenant_id": "`+missing+`"}`))
	if len(b.failed) != 1 {
		t.Fatalf("failures %v, want the message listed", b.failed)
	}
	for _, l := range b.logs {
		if l["message"] != "message failed" {
			continue
		}
		if l["message_id"] != msgID(0) || l["shape"] != "event" || l["detail_type"] != "Tenant Created" ||
			l["event_id"] == "" || l["tenant_id"] != missing || !strings.Contains(l["error"].(string), "not found") {
			t.Fatalf("the failure line does not tie the message to its event and cause: %v", l)
		}
		return
	}
	t.Fatalf("no failure line in %v", b.logs)
}
