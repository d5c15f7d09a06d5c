package sweep_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/enforce"
	"acronismfa/internal/policy"
	"acronismfa/internal/sweep"
	"acronismfa/internal/telemetry"
	"acronismfa/internal/tenant"
	"acronismfa/internal/testkit"
)

// Fixed ids of the sweep handler tests' tree below the API client's own tenant
// (a partner with MFA on):
//
//	own ─┬─ pA (partner, on) ─┬─ cA1 (customer, off, 4 users, 1 with TOTP) ── uA (unit)
//	     │                    └─ cA2 (customer, on)
//	     ├─ pB (partner, off) ─┬─ cB1 (customer, off, update_allowed false)
//	     │                     ├─ cB2 (customer, off, enabled false)
//	     │                     └─ fB (folder) ── cB3 (customer, off, 2 users, none with TOTP)
//	     └─ pX (partner, off, excluded) ── cX1 (customer, off)
const (
	pA  = "40000000-0000-4000-8000-000000000001"
	cA1 = "40000000-0000-4000-8000-000000000002"
	uA  = "40000000-0000-4000-8000-000000000003"
	cA2 = "40000000-0000-4000-8000-000000000004"
	pB  = "40000000-0000-4000-8000-000000000005"
	cB1 = "40000000-0000-4000-8000-000000000006"
	cB2 = "40000000-0000-4000-8000-000000000007"
	fB  = "40000000-0000-4000-8000-000000000008"
	cB3 = "40000000-0000-4000-8000-000000000009"
	pX  = "40000000-0000-4000-8000-00000000000a"
	cX1 = "40000000-0000-4000-8000-00000000000b"
)

const sweepNamespace = "AcronisMFA/Test"

// The tree's expected summaries, counted by hand from the picture above.
var (
	// Whole tree: own, pA, cA2 compliant; cA1, pB, cB3 drift; uA, fB inherit;
	// cB2 is disabled; pX, cX1 excluded; cB1 locked.
	wholeTree = sweep.Summary{Desired: "enabled", TenantsSeen: 12, Compliant: 3, Changed: 3,
		SkippedInherited: 2, SkippedDisabled: 1, SkippedExcluded: 2, NotAllowed: 1, UsersWithoutTOTP: 5}
	// pB's subtree: pB and cB3 drift; fB inherits; cB2 disabled; cB1 locked.
	subtreeB = sweep.Summary{RootTenantID: pB, Desired: "enabled", TenantsSeen: 5, Changed: 2,
		SkippedInherited: 1, SkippedDisabled: 1, NotAllowed: 1, UsersWithoutTOTP: 2}
	// pA's subtree: pA and cA2 compliant, cA1 drifts, uA inherits.
	subtreeA = sweep.Summary{RootTenantID: pA, Desired: "enabled", TenantsSeen: 4, Compliant: 2, Changed: 1,
		SkippedInherited: 1, UsersWithoutTOTP: 3}
)

// dry turns a summary into that of the same sweep as a dry run.
func dry(s sweep.Summary) sweep.Summary {
	s.DryRun, s.WouldChange, s.Changed = true, s.Changed, 0
	return s
}

func sweepFixture(t *testing.T) *testkit.Acronis {
	t.Helper()
	env := testkit.NewAcronis(t, testkit.AcronisOptions{})
	own := env.Sim.RootID()
	for _, tn := range []sim.Tenant{
		{ID: pA, Name: "Partner A", Kind: "partner", ParentID: own, Enabled: true, MFAStatus: "enabled", UpdateAllowed: true},
		{ID: cA1, Name: "Customer A1", Kind: "customer", ParentID: pA, Enabled: true, MFAStatus: "disabled", UsersCount: 4, UsersWithTOTP: 1, UpdateAllowed: true},
		{ID: uA, Name: "Unit A", Kind: "unit", ParentID: cA1, Enabled: true, UpdateAllowed: true},
		{ID: cA2, Name: "Customer A2", Kind: "customer", ParentID: pA, Enabled: true, MFAStatus: "enabled", UsersCount: 3, UsersWithTOTP: 3, UpdateAllowed: true},
		{ID: pB, Name: "Partner B", Kind: "partner", ParentID: own, Enabled: true, MFAStatus: "disabled", UpdateAllowed: true},
		{ID: cB1, Name: "Customer B1", Kind: "customer", ParentID: pB, Enabled: true, MFAStatus: "disabled", UpdateAllowed: false},
		{ID: cB2, Name: "Customer B2", Kind: "customer", ParentID: pB, Enabled: false, MFAStatus: "disabled", UpdateAllowed: true},
		{ID: fB, Name: "Folder B", Kind: "folder", ParentID: pB, Enabled: true, UpdateAllowed: true},
		{ID: cB3, Name: "Customer B3", Kind: "customer", ParentID: fB, Enabled: true, MFAStatus: "disabled", UsersCount: 2, UpdateAllowed: true},
		{ID: pX, Name: "Partner X", Kind: "partner", ParentID: own, Enabled: true, MFAStatus: "disabled", UpdateAllowed: true},
		{ID: cX1, Name: "Customer X1", Kind: "customer", ParentID: pX, Enabled: true, MFAStatus: "disabled", UpdateAllowed: true},
	} {
		if err := env.Sim.Add(tn); err != nil {
			t.Fatal(err)
		}
	}
	return env
}

// ticker is a fake clock that moves on 3ms every time it is read.
type ticker struct {
	mu  sync.Mutex
	now time.Time
}

func (c *ticker) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(3 * time.Millisecond)
	return c.now
}

type sweepOut struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *sweepOut) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *sweepOut) lines(t *testing.T) []map[string]any {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(o.buf.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not a JSON object: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	o.buf.Reset()
	return out
}

type sweepFn struct {
	env  *testkit.Acronis
	h    *sweep.Handler
	logs sweepOut
	out  sweepOut
}

// newSweepFn wires the sweep function as production does, over the fixture,
// with pX excluded.
func newSweepFn(t *testing.T, root string, dryRun bool) *sweepFn {
	t.Helper()
	env := sweepFixture(t)
	f := &sweepFn{env: env}
	clock := &ticker{now: time.Unix(1_767_225_600, 0)}
	rules := policy.Rules{DryRun: dryRun, Excluded: policy.NewExclusions([]string{pX})}
	f.h = &sweep.Handler{
		Sweeper: sweep.Sweeper{
			Lister:      env.Client,
			Enforcer:    &enforce.Enforcer{API: env.Client, Rules: rules},
			Desired:     true,
			Concurrency: 4,
			InlineLimit: 5000,
			Now:         clock.Now,
		},
		Acronis:      env.Client,
		RootTenantID: root,
		DryRun:       dryRun,
		Logger:       telemetry.NewLogger(&f.logs, "sweep", "schedule", slog.LevelInfo),
		Namespace:    sweepNamespace,
		Out:          &f.out,
	}
	return f
}

// invocation is what one sweep invocation showed the world.
type invocation struct {
	sum    sweep.Summary
	err    error
	logs   []map[string]any
	audits []map[string]any
	emf    map[string]any
}

func (f *sweepFn) invoke(t *testing.T, ctx context.Context, input []byte) invocation {
	t.Helper()
	sum, err := f.h.Handle(ctx, json.RawMessage(input))
	inv := invocation{sum: sum, err: err, logs: f.logs.lines(t)}
	for _, l := range inv.logs {
		if l["audit"] == true {
			inv.audits = append(inv.audits, l)
		}
	}
	docs := f.out.lines(t)
	if len(docs) != 1 {
		t.Fatalf("%d EMF documents, want one per invocation", len(docs))
	}
	inv.emf = docs[0]
	if inv.emf["Function"] != "sweep" || inv.emf["Trigger"] != "schedule" {
		t.Fatalf("EMF Function=%v Trigger=%v, want sweep and schedule", inv.emf["Function"], inv.emf["Trigger"])
	}
	return inv
}

func readEvent(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../events/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withDetail is events/sweep-scheduled.json with its detail replaced.
func withDetail(t *testing.T, detail string) []byte {
	t.Helper()
	var ev map[string]json.RawMessage
	if err := json.Unmarshal(readEvent(t, "sweep-scheduled.json"), &ev); err != nil {
		t.Fatal(err)
	}
	ev["detail"] = json.RawMessage(detail)
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mfaStates maps every tenant of the tree that has a setting of its own (not a
// folder or unit, which follow their parent) to its MFA being on.
func mfaStates(env *testkit.Acronis) map[string]bool {
	m := map[string]bool{}
	for _, tn := range env.Sim.All() {
		if tn.Kind != "folder" && tn.Kind != "unit" {
			m[tn.ID] = tenant.MFAOn(tn.MFAStatus)
		}
	}
	return m
}

func TestHandleSweepInputs(t *testing.T) {
	tests := []struct {
		name   string
		root   string // ROOT_TENANT_ID; "" for the API client's own tenant
		dryRun bool   // DRY_RUN
		input  func(t *testing.T) []byte
		want   sweep.Summary
		on     []string // tenants whose MFA the sweep turned on
	}{
		{name: "classic schedule rule", input: func(t *testing.T) []byte { return readEvent(t, "sweep-scheduled.json") },
			want: wholeTree, on: []string{cA1, pB, cB3}},
		{name: "classic schedule rule, dry run in detail", input: func(t *testing.T) []byte { return withDetail(t, `{"dry_run": true}`) },
			want: dry(wholeTree)},
		{name: "classic schedule rule, root in detail", input: func(t *testing.T) []byte { return withDetail(t, `{"root_tenant_id": "`+pB+`"}`) },
			want: subtreeB, on: []string{pB, cB3}},
		{name: "classic schedule rule, both in detail", input: func(t *testing.T) []byte {
			return withDetail(t, `{"root_tenant_id": "`+pB+`", "dry_run": true}`)
		}, want: dry(subtreeB)},
		{name: "scheduler, no overrides", input: func(t *testing.T) []byte { return readEvent(t, "sweep-scheduler.json") },
			want: wholeTree, on: []string{cA1, pB, cB3}},
		{name: "scheduler, dry run", input: func(t *testing.T) []byte { return readEvent(t, "sweep-dry-run.json") },
			want: dry(wholeTree)},
		{name: "empty object", input: func(*testing.T) []byte { return []byte(`{}`) },
			want: wholeTree, on: []string{cA1, pB, cB3}},
		{name: "empty input", input: func(*testing.T) []byte { return nil },
			want: wholeTree, on: []string{cA1, pB, cB3}},
		{name: "null", input: func(*testing.T) []byte { return []byte("null") },
			want: wholeTree, on: []string{cA1, pB, cB3}},
		{name: "root override", input: func(*testing.T) []byte { return []byte(`{"root_tenant_id": "` + pB + `"}`) },
			want: subtreeB, on: []string{pB, cB3}},
		{name: "root override in upper case", input: func(*testing.T) []byte { return []byte(`{"root_tenant_id": "` + strings.ToUpper(pB) + `"}`) },
			want: subtreeB, on: []string{pB, cB3}},
		{name: "root override beats ROOT_TENANT_ID", root: pA, input: func(*testing.T) []byte { return []byte(`{"root_tenant_id": "` + pB + `"}`) },
			want: subtreeB, on: []string{pB, cB3}},
		{name: "ROOT_TENANT_ID", root: pA, input: func(*testing.T) []byte { return []byte(`{}`) },
			want: subtreeA, on: []string{cA1}},
		{name: "DRY_RUN", dryRun: true, input: func(*testing.T) []byte { return []byte(`{}`) },
			want: dry(wholeTree)},
		{name: "DRY_RUN, dry run override", dryRun: true, input: func(*testing.T) []byte { return []byte(`{"dry_run": true}`) },
			want: dry(wholeTree)},
		{name: "dry run override off when DRY_RUN is off", input: func(*testing.T) []byte { return []byte(`{"dry_run": false}`) },
			want: wholeTree, on: []string{cA1, pB, cB3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newSweepFn(t, tt.root, tt.dryRun)
			before := mfaStates(f.env)
			inv := f.invoke(t, t.Context(), tt.input(t))
			if inv.err != nil {
				t.Fatalf("sweep failed: %v", inv.err)
			}
			want := tt.want
			if want.RootTenantID == "" {
				want.RootTenantID = f.env.Sim.RootID() // the default root: the API client's own tenant
			}
			got := inv.sum
			if got.DurationMs <= 0 {
				t.Errorf("duration_ms %d, want the time the fake clock moved on", got.DurationMs)
			}
			got.DurationMs = 0
			if got != want {
				t.Fatalf("summary\n got %+v\nwant %+v", got, want)
			}

			// The tree is what the summary says: exactly the drifting tenants
			// of the swept subtree were turned on, and nothing else changed.
			after := mfaStates(f.env)
			for id, on := range after {
				wantOn := before[id] || slices.Contains(tt.on, id)
				if on != wantOn {
					t.Errorf("tenant %s: MFA on = %v afterwards, want %v", id, on, wantOn)
				}
			}
			if n := f.env.Sim.Count("PUT", "/mfa/status"); n != len(tt.on) {
				t.Errorf("%d PUTs, want %d", n, len(tt.on))
			}

			checkSweepEMF(t, f, inv)
		})
	}
}

// checkSweepEMF checks that the EMF document reports the summary.
func checkSweepEMF(t *testing.T, f *sweepFn, inv invocation) {
	t.Helper()
	s := inv.sum
	for name, want := range map[string]int{
		telemetry.MetricTenantsChecked:     s.TenantsSeen,
		telemetry.MetricTenantsCompliant:   s.Compliant,
		telemetry.MetricTenantsChanged:     s.Changed,
		telemetry.MetricTenantsWouldChange: s.WouldChange,
		telemetry.MetricTenantsSkipped:     s.SkippedInherited + s.SkippedDisabled + s.SkippedExcluded + s.NotAllowed,
		telemetry.MetricTenantsFailed:      s.Failed,
		telemetry.MetricUsersWithoutTotp:   s.UsersWithoutTOTP,
		telemetry.MetricAcronisRequests:    len(f.env.Sim.Requests()),
		telemetry.MetricSweepDurationMs:    int(s.DurationMs),
	} {
		got, ok := inv.emf[name].(float64)
		if !ok || int(got) != want {
			t.Errorf("EMF %s = %v, want %d", name, inv.emf[name], want)
		}
	}
	meta, _ := inv.emf["_aws"].(map[string]any)
	dirs, _ := meta["CloudWatchMetrics"].([]any)
	if len(dirs) != 1 {
		t.Fatalf("EMF _aws %v", meta)
	}
	dir := dirs[0].(map[string]any)
	if dir["Namespace"] != sweepNamespace {
		t.Errorf("EMF namespace %v", dir["Namespace"])
	}
	var unit any
	declared, _ := dir["Metrics"].([]any)
	for _, m := range declared {
		if m := m.(map[string]any); m["Name"] == telemetry.MetricSweepDurationMs {
			unit = m["Unit"]
		}
	}
	if unit != "Milliseconds" {
		t.Errorf("SweepDurationMs declared with unit %v, want Milliseconds", unit)
	}
}

// An input the sweep cannot take fails the invocation before Acronis is asked
// anything, so nothing is written.
func TestHandleSweepRefusesBadInput(t *testing.T) {
	tests := []struct {
		name   string
		dryRun bool
		input  func(t *testing.T) []byte
		want   error
	}{
		{"unknown override", false, func(*testing.T) []byte { return []byte(`{"dryrun": true}`) }, sweep.ErrInvalidInput},
		{"unknown override with a known one", false, func(*testing.T) []byte { return []byte(`{"dry_run": true, "desired": "disabled"}`) }, sweep.ErrInvalidInput},
		{"unknown override in detail", false, func(t *testing.T) []byte { return withDetail(t, `{"dryrun": true}`) }, sweep.ErrInvalidInput},
		{"dry run off while DRY_RUN", true, func(*testing.T) []byte { return []byte(`{"dry_run": false}`) }, sweep.ErrDryRunOverride},
		{"dry run off in detail while DRY_RUN", true, func(t *testing.T) []byte { return withDetail(t, `{"dry_run": false}`) }, sweep.ErrDryRunOverride},
		{"dry run off with a root while DRY_RUN", true, func(*testing.T) []byte { return []byte(`{"root_tenant_id": "` + pB + `", "dry_run": false}`) }, sweep.ErrDryRunOverride},
		{"dry run as a string", false, func(*testing.T) []byte { return []byte(`{"dry_run": "true"}`) }, sweep.ErrInvalidInput},
		{"duplicated dry run", true, func(*testing.T) []byte { return []byte(`{"dry_run": true, "dry_run": false}`) }, sweep.ErrInvalidInput},
		{"root not a UUID", false, func(*testing.T) []byte { return []byte(`{"root_tenant_id": "../clients"}`) }, sweep.ErrInvalidInput},
		{"another event", false, func(*testing.T) []byte {
			return bytes.Replace(readEvent(t, "sweep-scheduled.json"), []byte("Scheduled Event"), []byte("Tenant Created"), 1)
		}, sweep.ErrInvalidInput},
		{"not JSON", false, func(*testing.T) []byte { return []byte(`dry_run=true`) }, sweep.ErrInvalidInput},
		{"array", false, func(*testing.T) []byte { return []byte(`[{"dry_run": true}]`) }, sweep.ErrInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newSweepFn(t, "", tt.dryRun)
			before := f.env.Sim.All()
			inv := f.invoke(t, t.Context(), tt.input(t))
			if !errors.Is(inv.err, tt.want) {
				t.Fatalf("error %v, want %v", inv.err, tt.want)
			}
			if n := len(f.env.Sim.Requests()); n != 0 {
				t.Fatalf("%d requests reached Acronis: %v", n, f.env.Sim.Requests())
			}
			if !slices.Equal(before, f.env.Sim.All()) {
				t.Fatal("the tree changed")
			}
			if len(inv.audits) != 0 {
				t.Errorf("audit lines: %v", inv.audits)
			}
			var logged bool
			for _, l := range inv.logs {
				if l["level"] == "ERROR" && strings.Contains(l["error"].(string), inv.err.Error()) {
					logged = true
				}
			}
			if !logged {
				t.Errorf("no ERROR line says why: %v", inv.logs)
			}
			if n, _ := inv.emf[telemetry.MetricTenantsChecked].(float64); n != 0 {
				t.Errorf("EMF TenantsChecked %v for a sweep that never ran", n)
			}
		})
	}
}

// A root the API client cannot see or that does not exist fails the sweep
// loudly, with nothing written.
func TestHandleSweepUnknownRoot(t *testing.T) {
	f := newSweepFn(t, "", false)
	inv := f.invoke(t, t.Context(), []byte(`{"root_tenant_id": "40000000-0000-4000-8000-0000000000ff"}`))
	if inv.err == nil {
		t.Fatalf("sweep of a tenant that does not exist succeeded: %+v", inv.sum)
	}
	if n := f.env.Sim.Count("PUT", "/mfa/status"); n != 0 {
		t.Fatalf("%d PUTs", n)
	}
	if inv.sum.TenantsSeen != 0 {
		t.Fatalf("summary %+v", inv.sum)
	}
}

// The summary is the contract's JSON object, key for key.
func TestHandleSweepSummaryJSON(t *testing.T) {
	f := newSweepFn(t, "", false)
	inv := f.invoke(t, t.Context(), []byte(`{}`))
	if inv.err != nil {
		t.Fatal(inv.err)
	}
	raw, err := json.Marshal(inv.sum)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"root_tenant_id", "desired", "dry_run", "tenants_seen", "compliant", "changed", "would_change",
		"skipped_inherited", "skipped_disabled", "skipped_excluded", "not_allowed", "failed", "fanned_out",
		"users_without_totp", "duration_ms"}
	if !slices.Equal(keys, want) {
		t.Fatalf("summary keys\n got %v\nwant %v", keys, want)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if m["root_tenant_id"] != f.env.Sim.RootID() || m["desired"] != "enabled" || m["dry_run"] != false ||
		m["tenants_seen"] != 12.0 || m["changed"] != 3.0 || m["users_without_totp"] != 5.0 {
		t.Fatalf("summary %s", raw)
	}
}

// Audit lines carry the sweep id, which is Lambda's request id when there is
// one, so that they match the invocation's own log lines.
func TestHandleSweepAuditLines(t *testing.T) {
	const requestID = "8f5e2c1a-sweep-request"
	tests := []struct {
		name string
		ctx  func(context.Context) context.Context
		want string // "" for any id, the same on every line
	}{
		{"in Lambda", func(ctx context.Context) context.Context {
			return lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: requestID})
		}, requestID},
		{"outside Lambda", func(ctx context.Context) context.Context { return ctx }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newSweepFn(t, "", false)
			inv := f.invoke(t, tt.ctx(t.Context()), []byte(`{}`))
			if inv.err != nil {
				t.Fatal(inv.err)
			}
			// One line per tenant decided about: not the plainly compliant ones,
			// nor units and folders, which have no switch of their own.
			if n, want := len(inv.audits), wholeTree.TenantsSeen-wholeTree.Compliant-2; n != want { // uA and fB
				t.Fatalf("%d audit lines, want %d", n, want)
			}
			actions := map[string]string{}
			ids := map[string]bool{}
			for _, a := range inv.audits {
				id, _ := a["sweep_id"].(string)
				ids[id] = true
				actions[a["tenant_id"].(string)] = a["action"].(string)
				if tt.want != "" && (id != tt.want || a["requestId"] != tt.want) {
					t.Errorf("audit line sweep_id %q requestId %v, want %q", id, a["requestId"], tt.want)
				}
			}
			if len(ids) != 1 || ids[""] {
				t.Fatalf("sweep ids %v, want one non-empty id on every line", ids)
			}
			want := map[string]string{
				cA1: "enable", pB: "enable", cB3: "enable",
				cB1: "skipped", cB2: "skipped", pX: "skipped", cX1: "skipped",
			}
			if len(actions) != len(want) {
				t.Errorf("audited tenants %v, want %v", actions, want)
			}
			for id, action := range want {
				if actions[id] != action {
					t.Errorf("tenant %s: action %q, want %q", id, actions[id], action)
				}
			}
			var started bool
			for _, l := range inv.logs {
				if l["message"] == "sweep started" {
					started = true
					if !ids[l["sweep_id"].(string)] || l["root_tenant_id"] != f.env.Sim.RootID() {
						t.Errorf("start line %v does not match the audit lines", l)
					}
				}
			}
			if !started {
				t.Error("no sweep started line")
			}
		})
	}
}

// A tenant that fails is reported, in the summary and the EMF document, and
// the rest of the sweep goes on.
func TestHandleSweepReportsFailures(t *testing.T) {
	f := newSweepFn(t, "", false)
	f.env.Sim.SetFaults(sim.Faults{FailTenants: map[string]int{cB3: 500}})
	inv := f.invoke(t, t.Context(), []byte(`{}`))
	if inv.err != nil {
		t.Fatal(inv.err)
	}
	want := wholeTree
	want.RootTenantID, want.Changed, want.Failed, want.UsersWithoutTOTP = f.env.Sim.RootID(), 2, 1, 3
	got := inv.sum
	got.DurationMs = 0
	if got != want {
		t.Fatalf("summary\n got %+v\nwant %+v", got, want)
	}
	checkSweepEMF(t, f, inv)
	if n, _ := inv.emf[telemetry.MetricAcronisErrors].(float64); n == 0 {
		t.Error("EMF AcronisErrors 0 despite the 500s")
	}
	var failed []map[string]any
	for _, a := range inv.audits {
		if a["action"] == "failed" {
			failed = append(failed, a)
		}
	}
	if len(failed) != 1 || failed[0]["tenant_id"] != cB3 || failed[0]["level"] != "ERROR" {
		t.Fatalf("failure audit lines %v, want one ERROR line for %s", failed, cB3)
	}
}
