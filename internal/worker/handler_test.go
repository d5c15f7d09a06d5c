package worker_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/enforce"
	"acronismfa/internal/policy"
	"acronismfa/internal/statestore"
	"acronismfa/internal/telemetry"
	"acronismfa/internal/tenant"
	"acronismfa/internal/testkit"
	"acronismfa/internal/worker"
)

const namespace = "AcronisMFA/Test"

// rig is the worker over a simulated Acronis, its logs and EMF documents on
// one stdout, as in Lambda.
type rig struct {
	acr *testkit.Acronis
	h   *worker.Handler
	out *testkit.Output
}

func newWorker(t *testing.T, acr *testkit.Acronis, rules policy.Rules) *rig {
	t.Helper()
	w := &rig{acr: acr, out: testkit.NewOutput(nil)}
	w.h = &worker.Handler{
		Acronis:     acr.Client,
		Enforcer:    &enforce.Enforcer{API: acr.Client, Rules: rules},
		Desired:     true,
		Concurrency: 4,
		Logger:      telemetry.NewLogger(w.out, "worker", "sqs", slog.LevelDebug),
		Namespace:   namespace,
		Out:         w.out,
		Now:         testkit.NewClock().Now,
	}
	return w
}

// batch is what the outside world sees of one invocation.
type batch struct {
	failed []string // the messageIds in batchItemFailures, in order
	lines  []map[string]any
	audits []map[string]any
	emf    testkit.EMF
}

// run hands the bodies to the handler as one SQS batch; message i has id "m<i>".
func (w *rig) run(t *testing.T, ctx context.Context, bodies ...string) batch {
	t.Helper()
	return w.handle(t, ctx, testkit.SQSBatch(bodies...))
}

// handle invokes the handler and checks what every invocation must produce: no
// Go error (SQS would retry the whole batch), JSON log lines with a closing
// line that counts the batch, and one EMF document that counts the Acronis
// requests made.
func (w *rig) handle(t *testing.T, ctx context.Context, ev events.SQSEvent) batch {
	t.Helper()
	mark, sent := w.out.Mark(), len(w.acr.Sim.Requests())
	resp, err := w.h.Handle(ctx, ev)
	if err != nil {
		t.Fatalf("Handle returned error %v: SQS would retry the whole batch", err)
	}
	b := batch{failed: testkit.FailedIDs(resp), audits: w.out.Audits(mark)}
	for _, line := range w.out.Since(mark) {
		m, ok := testkit.JSONObject(line)
		if !ok {
			t.Fatalf("line %q is not a JSON object", line)
		}
		b.lines = append(b.lines, m)
	}
	if !slices.ContainsFunc(b.lines, func(l map[string]any) bool {
		return l["message"] == "batch done" && l["messages"] == float64(len(ev.Records)) && l["failed"] == float64(len(b.failed))
	}) {
		t.Errorf("no batch line counts %d messages and %d failed: %v", len(ev.Records), len(b.failed), b.lines)
	}
	b.emf = w.out.InvocationEMF(t, mark, namespace, "worker", "sqs")
	if _, deadline := ctx.Deadline(); !deadline {
		if n := len(w.acr.Sim.Requests()) - sent; b.emf.Metrics[telemetry.MetricAcronisRequests] != float64(n) {
			t.Errorf("EMF AcronisRequests %v, but %d reached the simulator", b.emf.Metrics[telemetry.MetricAcronisRequests], n)
		}
	}
	return b
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

// line returns the first log line with this message about message id.
func (b batch) line(message, messageID string) map[string]any {
	for _, l := range b.lines {
		if l["message"] == message && l["message_id"] == messageID {
			return l
		}
	}
	return nil
}

// set and enforce are the two operator shapes of a message about a tenant id.
func set(id string, enabled bool) string {
	return `{"tenant_id":"` + id + `","enabled":` + strconv.FormatBool(enabled) + `}`
}

func enforceID(id string) string { return `{"tenant_id":"` + id + `"}` }

// One message of each shape, alone in its batch.
func TestHandleMessage(t *testing.T) {
	allow := policy.Rules{AllowDisable: true}
	exclude := func(ids ...string) policy.Rules { return policy.Rules{Excluded: policy.NewExclusions(ids)} }
	tests := []struct {
		name   string
		rules  policy.Rules
		root   string // ROOT_TENANT_ID
		faults sim.Faults
		body   string
		listed bool
		tenant string // whose state is checked; "" for none
		after  bool   // its MFA afterwards
		puts   int
		action string // of the one audit line; "" for an unparseable message
		key    string // where the audit line names the tenant: tenant_id or tenant_name
		id     string // the audit line's tenant_id, when not tenant
		says   string // in the audit line's reason or error
		sweep  string // the audit line's sweep_id
	}{
		{name: "explicit enable", body: set(testkit.OffCustomer, true), tenant: testkit.OffCustomer, after: true, puts: 1, action: "enable"},
		{name: "explicit enable, id in upper case", body: set(strings.ToUpper(testkit.OffCustomer), true),
			tenant: testkit.OffCustomer, after: true, puts: 1, action: "enable"},
		{name: "explicit enable of a suspended tenant", body: set(testkit.Suspended, true), tenant: testkit.Suspended, after: true, puts: 1, action: "enable"},
		{name: "explicit disable refused", body: set(testkit.OnCustomer, false), listed: true,
			tenant: testkit.OnCustomer, after: true, action: "skipped", says: "MFA_ALLOW_DISABLE"},
		{name: "explicit disable allowed", rules: allow, body: set(testkit.OnCustomer, false), tenant: testkit.OnCustomer, puts: 1, action: "disable"},
		{name: "policy only", body: enforceID(testkit.OffCustomer), tenant: testkit.OffCustomer, after: true, puts: 1, action: "enable"},
		{name: "policy only, dry run", rules: policy.Rules{DryRun: true}, body: enforceID(testkit.OffCustomer), tenant: testkit.OffCustomer, action: "would_enable"},
		{name: "policy only leaves a suspended tenant alone", body: enforceID(testkit.Suspended), tenant: testkit.Suspended, action: "skipped", says: "disabled"},
		{name: "fanned out by a sweep", body: `{"tenant_id":"` + testkit.OffCustomer + `","sweep_id":"sweep-7"}`,
			tenant: testkit.OffCustomer, after: true, puts: 1, action: "enable", sweep: "sweep-7"},
		{name: "Tenant Created event", body: testkit.TenantCreated(enforceID(testkit.OffCustomer)), tenant: testkit.OffCustomer, after: true, puts: 1, action: "enable"},
		{name: "Tenant Created event with enabled", rules: allow, body: testkit.TenantCreated(`{"tenant_id":"` + testkit.OnCustomer + `","enabled":false,"plan":"gold"}`),
			tenant: testkit.OnCustomer, puts: 1, action: "disable"},
		{name: "Tenant Created event by name", body: testkit.TenantCreated(`{"tenant_name":"Contoso Ltd"}`), tenant: testkit.Contoso, after: true, puts: 1, action: "enable"},
		{name: "tenant_name with one exact match", body: `{"tenant_name":"Contoso Ltd"}`, tenant: testkit.Contoso, after: true, puts: 1, action: "enable"},
		{name: "tenant_name with no match", body: `{"tenant_name":"Contoso"}`, listed: true,
			action: "failed", key: "tenant_name", says: `no tenant named "Contoso"`},
		{name: "tenant_name outside ROOT_TENANT_ID", root: testkit.PartnerB, body: `{"tenant_name":"Contoso Ltd"}`, listed: true,
			tenant: testkit.Contoso, action: "failed", key: "tenant_name", says: `no tenant named "Contoso Ltd"`},
		{name: "tenant_name with two matches", body: `{"tenant_name":"Twin Corp","enabled":true}`, listed: true,
			tenant: testkit.Twin1, action: "failed", key: "tenant_name", says: `2 tenants named "Twin Corp"`},
		{name: "tenant_name while the root tenant cannot be read", faults: sim.Faults{ThrottleEvery: 1}, body: `{"tenant_name":"Contoso Ltd"}`, listed: true,
			tenant: testkit.Contoso, action: "failed", key: "tenant_name", says: "throttled"},
		{name: "unit", body: set(testkit.Unit, true), tenant: testkit.Unit, action: "skipped", says: "inherit"},
		{name: "folder", body: enforceID(testkit.Folder), tenant: testkit.Folder, action: "skipped", says: "inherit"},
		{name: "excluded", rules: exclude(testkit.OffCustomer), body: set(testkit.OffCustomer, true), tenant: testkit.OffCustomer,
			action: "skipped", says: "EXCLUDED_TENANT_IDS"},
		{name: "excluded ancestor", rules: exclude(testkit.ExcludedPartner), body: enforceID(testkit.ExcludedChild), tenant: testkit.ExcludedChild,
			action: "skipped", says: "EXCLUDED_TENANT_IDS"},
		{name: "already compliant", body: enforceID(testkit.OnCustomer), tenant: testkit.OnCustomer, after: true, action: "unchanged"},
		{name: "already compliant, explicit", body: set(testkit.OnCustomer, true), tenant: testkit.OnCustomer, after: true, action: "unchanged"},
		{name: "update_allowed false", body: set(testkit.Locked, true), listed: true, tenant: testkit.Locked, action: "skipped", says: "update_allowed"},
		{name: "update_allowed false, policy only", body: enforceID(testkit.Locked), tenant: testkit.Locked, action: "skipped", says: "update_allowed"},
		{name: "unknown tenant", body: enforceID(testkit.Unknown), listed: true, id: testkit.Unknown, action: "failed", says: "not found"},
		{name: "event about an unknown tenant", body: testkit.TenantCreated(enforceID(testkit.Unknown)), listed: true,
			id: testkit.Unknown, action: "failed", says: "not found"},
		{name: "fanned out about an unknown tenant", body: `{"tenant_id":"` + testkit.Unknown + `","sweep_id":"sweep-7"}`, listed: true,
			id: testkit.Unknown, action: "failed", says: "not found", sweep: "sweep-7"},
		{name: "Acronis 500", faults: sim.Faults{FailTenants: map[string]int{testkit.Broken: 500}}, body: enforceID(testkit.Broken), listed: true,
			tenant: testkit.Broken, action: "failed", says: "HTTP 500"},
		{name: "not JSON", body: `tenant_id=` + testkit.OffCustomer, listed: true},
		{name: "array", body: `[` + enforceID(testkit.OffCustomer) + `]`, listed: true},
		{name: "empty", body: ``, listed: true},
		{name: "null", body: `null`, listed: true},
		{name: "missing tenant", body: `{"enabled":true}`, listed: true},
		{name: "event missing tenant", body: testkit.TenantCreated(`{"name":"Contoso Ltd"}`), listed: true},
		{name: "bad UUID", body: enforceID(testkit.OffCustomer[:35]), listed: true},
		{name: "path in the id", body: enforceID("../" + testkit.OffCustomer), listed: true},
		{name: "enabled as string", body: `{"tenant_id":"` + testkit.OffCustomer + `","enabled":"true"}`, listed: true},
		{name: "typo of enabled", body: `{"tenant_id":"` + testkit.OnCustomer + `","enable":false}`, listed: true, tenant: testkit.OnCustomer, after: true},
	}
	metric := map[string]string{"enable": telemetry.MetricTenantsChanged, "disable": telemetry.MetricTenantsChanged,
		"would_enable": telemetry.MetricTenantsWouldChange, "unchanged": telemetry.MetricTenantsCompliant,
		"skipped": telemetry.MetricTenantsSkipped, "failed": telemetry.MetricTenantsFailed, "": telemetry.MetricTenantsFailed}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acr := testkit.NewFixture(t, testkit.AcronisOptions{})
			acr.Sim.SetFaults(tt.faults)
			w := newWorker(t, acr, tt.rules)
			w.h.RootTenantID = tt.root
			b := w.run(t, t.Context(), tt.body)

			if want := map[bool][]string{true: {"m0"}}[tt.listed]; !slices.Equal(b.failed, want) {
				t.Fatalf("batchItemFailures %v, want %v\nlogs: %v", b.failed, want, b.lines)
			}
			if n := acr.Sim.Count("PUT", "/mfa/status"); n != tt.puts {
				t.Errorf("%d PUTs reached Acronis, want %d", n, tt.puts)
			}
			if tt.tenant != "" && acr.MFAOn(t, tt.tenant) != tt.after {
				t.Errorf("MFA on = %v afterwards, want %v", !tt.after, tt.after)
			}
			for _, name := range []string{telemetry.MetricTenantsChanged, telemetry.MetricTenantsWouldChange,
				telemetry.MetricTenantsCompliant, telemetry.MetricTenantsSkipped, telemetry.MetricTenantsFailed} {
				if want := map[bool]float64{true: 1}[name == metric[tt.action]]; b.emf.Metrics[name] != want {
					t.Errorf("EMF %s %v, want %v", name, b.emf.Metrics[name], want)
				}
			}
			if tt.action == "" {
				// An unparseable message is no tenant decision, but it must be logged.
				if len(b.audits) != 0 || len(acr.Sim.Requests()) != 0 {
					t.Errorf("an unparseable message reached Acronis (%d requests) or the audit: %v", len(acr.Sim.Requests()), b.audits)
				}
				if l := b.line("unparseable message", "m0"); l == nil || l["level"] != "ERROR" {
					t.Errorf("no ERROR line names the message: %v", b.lines)
				}
				return
			}
			if len(b.audits) != 1 {
				t.Fatalf("%d audit lines, want 1: %v", len(b.audits), b.audits)
			}
			a := b.audits[0]
			if a["action"] != tt.action || a["sweep_id"] != map[bool]any{true: tt.sweep}[tt.sweep != ""] {
				t.Errorf("audit action %v sweep_id %v, want %s and %q: %v", a["action"], a["sweep_id"], tt.action, tt.sweep, a)
			}
			if tt.key == "tenant_name" {
				if a["tenant_name"] == nil || a["tenant_name"] == "" {
					t.Errorf("the audit line does not name the tenant it looked for: %v", a)
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
			// Whoever reads the dead-letter queue starts from a message id: the
			// failure's line ties it to where the message came from and says why.
			if !tt.listed {
				return
			}
			l := b.line("message failed", "m0")
			if l == nil || l["level"] != "ERROR" || l["reason"] == nil || l["sweep_id"] != a["sweep_id"] {
				t.Fatalf("no ERROR line ties the message to its cause and sweep: %v", b.lines)
			}
			if event := strings.Contains(tt.body, "Tenant Created"); event && (l["shape"] != "event" || l["detail_type"] != "Tenant Created" || l["event_id"] == "") {
				t.Errorf("the failure line does not tie the message to its event: %v", l)
			}
		})
	}
}

// A mixed batch lists exactly the messages that failed, and its EMF document
// counts every outcome.
func TestHandleMixedBatch(t *testing.T) {
	acr := testkit.NewFixture(t, testkit.AcronisOptions{})
	acr.Sim.SetFaults(sim.Faults{FailTenants: map[string]int{testkit.Broken: 500}})
	w := newWorker(t, acr, policy.Rules{Excluded: policy.NewExclusions([]string{testkit.ExcludedPartner})})
	b := w.run(t, t.Context(),
		set(testkit.OffCustomer, true), // m0: changed
		`not json`,                     // m1: listed
		set(testkit.OnCustomer, false), // m2: refused, listed
		testkit.TenantCreated(enforceID(testkit.ContosoHoldings)), // m3: changed
		`{"tenant_name":"Contoso Ltd"}`,                           // m4: changed
		`{"tenant_name":"Nobody"}`,                                // m5: listed
		`{"tenant_name":"Twin Corp"}`,                             // m6: listed
		enforceID(testkit.Unit),                                   // m7: skipped
		enforceID(testkit.Folder),                                 // m8: skipped
		enforceID(testkit.ExcludedChild),                          // m9: skipped
		enforceID(testkit.OnCustomer),                             // m10: compliant
		enforceID(testkit.Broken),                                 // m11: Acronis 500, listed
		`[]`,                                                      // m12: listed
		`{"tenant_id":"nope"}`,                                    // m13: listed
	)
	want := []string{"m1", "m11", "m12", "m13", "m2", "m5", "m6"}
	if got := slices.Sorted(slices.Values(b.failed)); !slices.Equal(got, want) {
		t.Fatalf("batchItemFailures %v, want exactly %v", got, want)
	}
	for id, on := range map[string]bool{testkit.OffCustomer: true, testkit.Contoso: true, testkit.ContosoHoldings: true,
		testkit.ExcludedChild: false, testkit.Broken: false, testkit.Twin1: false, testkit.Twin2: false} {
		if acr.MFAOn(t, id) != on {
			t.Errorf("tenant %s: MFA on = %v, want %v", id, !on, on)
		}
	}
	if n := acr.Sim.Count("PUT", "/mfa/status"); n != 3 {
		t.Errorf("%d PUTs, want 3", n)
	}
	for name, want := range map[string]float64{
		telemetry.MetricTenantsChanged:     3,
		telemetry.MetricTenantsCompliant:   1,
		telemetry.MetricTenantsSkipped:     4, // unit, folder, excluded, and the refused disable
		telemetry.MetricTenantsFailed:      6, // 3 unparseable, 2 names, 1 Acronis failure
		telemetry.MetricTenantsWouldChange: 0,
		telemetry.MetricUsersWithoutTotp:   15, // Off Customer's 3 and Contoso's 12
	} {
		if n := b.emf.Metrics[name]; n != want {
			t.Errorf("EMF %s %v, want %v", name, n, want)
		}
	}
	if b.emf.Metrics[telemetry.MetricAcronisErrors] == 0 {
		t.Error("EMF AcronisErrors 0 despite the 500s")
	}
	// Every parsed message gets exactly one audit line.
	if len(b.audits) != 11 {
		t.Errorf("%d audit lines, want 11 (one per parsed message): %v", len(b.audits), b.audits)
	}
	for _, id := range []string{testkit.OffCustomer, testkit.Contoso, testkit.ContosoHoldings, testkit.Unit, testkit.Folder, testkit.ExcludedChild, testkit.Broken} {
		if n := len(b.auditsFor("tenant_id", id)); n != 1 {
			t.Errorf("tenant %s has %d audit lines, want 1", id, n)
		}
	}
	if n := len(b.auditsFor("tenant_id", testkit.OnCustomer)); n != 2 {
		t.Errorf("On Customer has %d audit lines, want 2 (refused disable, compliant)", n)
	}
}

// Two messages about one tenant never race: they run one after the other, in
// batch order. Latency makes any overlap of two requests show.
func TestHandleSameTenantInOrder(t *testing.T) {
	t.Run("seen from Acronis", func(t *testing.T) {
		acr := testkit.NewFixture(t, testkit.AcronisOptions{})
		acr.Sim.SetFaults(sim.Faults{Latency: 10 * time.Millisecond})
		w := newWorker(t, acr, policy.Rules{AllowDisable: true})
		w.h.Concurrency = 8
		off := testkit.OffCustomer
		b := w.run(t, t.Context(), set(off, true), set(off, false), set(off, true), set(off, false))
		if len(b.failed) != 0 {
			t.Fatalf("batchItemFailures %v", b.failed)
		}
		if n := acr.Sim.MaxInFlight(); n != 1 {
			t.Fatalf("%d requests about one tenant were in flight at once, want 1", n)
		}
		if n := acr.Sim.Count("PUT", "/mfa/status"); n != 4 || acr.MFAOn(t, off) {
			t.Fatalf("%d PUTs, MFA on %v; want 4, the last one disabling it", n, acr.MFAOn(t, off))
		}
	})
	t.Run("among other tenants", func(t *testing.T) {
		acr := testkit.NewFixture(t, testkit.AcronisOptions{})
		acr.Sim.SetFaults(sim.Faults{Latency: 20 * time.Millisecond})
		w := newWorker(t, acr, policy.Rules{AllowDisable: true})
		w.h.Concurrency = 8
		b := w.run(t, t.Context(),
			set(strings.ToUpper(testkit.OffCustomer), true),
			set(testkit.ContosoHoldings, true),
			`{"tenant_name":"Off Customer","enabled":false}`,
			enforceID(testkit.Contoso),
			set(testkit.ContosoHoldings, false),
			set(testkit.OffCustomer, false),
		)
		if len(b.failed) != 0 {
			t.Fatalf("batchItemFailures %v: %v", b.failed, b.audits)
		}
		for id, want := range map[string][]string{
			testkit.OffCustomer:     {"enable", "disable", "unchanged"},
			testkit.ContosoHoldings: {"enable", "disable"},
			testkit.Contoso:         {"enable"},
		} {
			var got []string
			for _, a := range b.auditsFor("tenant_id", id) {
				got = append(got, a["action"].(string))
			}
			if !slices.Equal(got, want) || acr.MFAOn(t, id) != (len(want) == 1) {
				t.Errorf("tenant %s: audit actions %v, MFA on %v; want %v in batch order", id, got, acr.MFAOn(t, id), want)
			}
		}
	})
}

// A batch cut off by the invocation deadline lists the messages it could not
// finish, and only those.
func TestHandleDeadline(t *testing.T) {
	acr := testkit.NewFixture(t, testkit.AcronisOptions{})
	// The token is fetched first: see warmToken in the webhook tests for why
	// the simulator should not be slowed down in the middle of a token call.
	if _, err := acr.Client.OwnTenantID(t.Context()); err != nil {
		t.Fatal(err)
	}
	acr.Sim.SetFaults(sim.Faults{Latency: 10 * time.Second})
	w := newWorker(t, acr, policy.Rules{})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	b := w.run(t, ctx, enforceID(testkit.OffCustomer), set(testkit.Contoso, true), `{"tenant":`)
	if got := slices.Sorted(slices.Values(b.failed)); !slices.Equal(got, []string{"m0", "m1", "m2"}) {
		t.Fatalf("batchItemFailures %v, want all three", got)
	}
	for _, id := range []string{testkit.OffCustomer, testkit.Contoso} {
		as := b.auditsFor("tenant_id", id)
		if len(as) != 1 || as[0]["action"] != "failed" || !strings.Contains(as[0]["reason"].(string), "deadline") {
			t.Errorf("audit lines for %s: %v, want one failure that names the deadline", id, as)
		}
	}
	if n := b.emf.Metrics[telemetry.MetricTenantsFailed]; n != 3 {
		t.Errorf("EMF TenantsFailed %v, want 3", n)
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
	acr := testkit.NewAcronis(t, testkit.AcronisOptions{})
	ids := []string{"3f0b8c2e-6a4d-4b7e-9c1a-2d5e8f7a9b10", "5a1c9e3b-7d2f-4c8a-b6e4-1f0d2c3b4a55", "8d2f4a61-0b3c-4e5d-a7f8-9c0b1d2e3f41", ""}
	for i, name := range []string{"Acme", "Globex", "Initech", "Contoso Ltd"} {
		if err := acr.Sim.Add(sim.Tenant{ID: ids[i], Name: name, Kind: "customer", Enabled: true, MFAStatus: "disabled", UpdateAllowed: true}); err != nil {
			t.Fatal(err)
		}
	}
	b := newWorker(t, acr, policy.Rules{}).handle(t, t.Context(), ev)
	if len(b.failed) != 0 || b.emf.Metrics[telemetry.MetricTenantsChanged] != 4 {
		t.Fatalf("batchItemFailures %v, %v changed, want none and 4: %v", b.failed, b.emf.Metrics[telemetry.MetricTenantsChanged], b.lines)
	}
	for _, tn := range acr.Sim.All()[1:] {
		if !tenant.MFAOn(tn.MFAStatus) {
			t.Errorf("tenant %s (%s) not enabled", tn.Name, tn.ID)
		}
	}
}

// A name held by two tenants fails the message even when Acronis search, which
// matches substrings, returns so many partial matches that the second exact one
// is past the hits the client reads: the message must not be applied to the
// first one as if it were the only one.
func TestHandleAmbiguousNameAmongManyPartialMatches(t *testing.T) {
	acr := testkit.NewAcronis(t, testkit.AcronisOptions{})
	first, second := "30000000-0000-4000-8000-000000000100", "30000000-0000-4000-8000-000000000200"
	add := func(id, name string) {
		t.Helper()
		if err := acr.Sim.Add(sim.Tenant{ID: id, Name: name, Kind: "customer", Enabled: true, MFAStatus: "disabled", UpdateAllowed: true}); err != nil {
			t.Fatal(err)
		}
	}
	add(first, "Globex")
	for i := range 120 {
		add("", "Globex Branch "+strconv.Itoa(i))
	}
	add(second, "Globex")
	b := newWorker(t, acr, policy.Rules{}).run(t, t.Context(), `{"tenant_name":"Globex"}`)
	if !slices.Equal(b.failed, []string{"m0"}) || acr.MFAOn(t, first) || acr.MFAOn(t, second) {
		t.Errorf("batchItemFailures %v: the ambiguous message must be listed and neither Globex enabled", b.failed)
	}
}

// failingWriter is a stdout that refuses every write.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("stdout closed") }

// A metrics document that cannot be written is logged; the batch stands.
func TestHandleMetricsUnwritable(t *testing.T) {
	w := newWorker(t, testkit.NewFixture(t, testkit.AcronisOptions{}), policy.Rules{})
	w.h.Out = failingWriter{}
	resp, err := w.h.Handle(t.Context(), testkit.SQSBatch(enforceID(testkit.OnCustomer)))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("answer %v, %v", resp, err)
	}
	for _, m := range w.out.JSON(0) {
		if m["message"] == "write metrics" && m["error"] == "stdout closed" {
			return
		}
	}
	t.Fatalf("no line says the metrics were lost: %v", w.out.Lines())
}

// A message may name its tenant by id and by name: the id decides and the
// name must match, or the message fails with a reason naming both.
func TestHandleIDAndName(t *testing.T) {
	w := newWorker(t, testkit.NewFixture(t, testkit.AcronisOptions{}), policy.Rules{})
	b := w.run(t, t.Context(),
		testkit.TenantCreated(`{"tenant_id": "`+testkit.Contoso+`", "tenant_name": "Contoso Ltd"}`),
		`{"tenant_id": "`+testkit.Twin1+`", "tenant_name": "Contoso Ltd"}`)
	if !slices.Equal(b.failed, []string{"m1"}) {
		t.Fatalf("batchItemFailures %v, want only the mismatched m1", b.failed)
	}
	on, _ := w.acr.Sim.Get(testkit.Contoso)
	off, _ := w.acr.Sim.Get(testkit.Twin1)
	if !tenant.MFAOn(on.MFAStatus) || tenant.MFAOn(off.MFAStatus) {
		t.Errorf("Contoso %s, Twin Corp %s", on.MFAStatus, off.MFAStatus)
	}
	reason := fmt.Sprint(b.auditsFor("tenant_id", testkit.Twin1)[0]["reason"])
	if !strings.Contains(reason, `"Twin Corp"`) || !strings.Contains(reason, `"Contoso Ltd"`) {
		t.Errorf("reason %q does not name both", reason)
	}
}

// A policy message about a tenant in grace is done: acknowledged with a
// skipped audit line that names the deadline. A set message never waits.
func TestHandleTenantInGrace(t *testing.T) {
	w := newWorker(t, testkit.NewFixture(t, testkit.AcronisOptions{}), policy.Rules{Grace: 24 * time.Hour})
	clock := testkit.NewClock()
	state := testkit.NewMemoryState(clock.Now)
	w.h.Enforcer.Rollout = &enforce.Rollout{Notices: state, Directory: w.acr.Client, Now: clock.Now}
	state.Put(statestore.Notice{TenantID: testkit.OffCustomer, ClaimedAt: clock.Now(), NoticedAt: clock.Now()})
	b := w.run(t, t.Context(), `{"tenant_id": "`+testkit.OffCustomer+`"}`, `{"tenant_id": "`+testkit.Contoso+`"}`)
	if len(b.failed) != 0 || b.emf.Metrics["TenantsInGrace"] != 2 || b.emf.Metrics["TenantsNotified"] != 1 {
		t.Fatalf("failed %v, EMF %v", b.failed, b.emf.Metrics)
	}
	if a := b.auditsFor("tenant_id", testkit.OffCustomer)[0]; a["action"] != "skipped" || a["deadline"] != "2026-01-02T00:00:00Z" {
		t.Errorf("in grace: %v", a)
	}
	if a := b.auditsFor("tenant_id", testkit.Contoso)[0]; a["action"] != "notify" || a["users_without_totp"] != float64(12) {
		t.Errorf("notified: %v", a)
	}
	b = w.run(t, t.Context(), `{"tenant_id": "`+testkit.OffCustomer+`", "enabled": true}`)
	if len(b.failed) != 0 || b.auditsFor("tenant_id", testkit.OffCustomer)[0]["action"] != "enable" {
		t.Errorf("a set message waited for the grace: %v", b.audits)
	}
}
