package sweep_test

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"acronismfa/internal/acronis"
	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/policy"
	"acronismfa/internal/sweep"
	"acronismfa/internal/telemetry"
	"acronismfa/internal/testkit"
)

// fixtureRig is the sweep function over the fixture tree with ExcludedPartner
// excluded, ROOT_TENANT_ID root ("": the API client's own tenant) and DRY_RUN
// dryRun.
func fixtureRig(t *testing.T, root string, dryRun bool) *rig {
	r := newRig(testkit.NewFixture(t, testkit.AcronisOptions{}), policy.Rules{Excluded: policy.NewExclusions([]string{testkit.ExcludedPartner})})
	r.h.RootTenantID, r.h.DryRun = root, dryRun
	return r
}

func event(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../../events/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkErrorLogged checks that a failed invocation says why on an ERROR line.
func checkErrorLogged(t *testing.T, inv invocation) {
	t.Helper()
	if !slices.ContainsFunc(inv.lines, func(l map[string]any) bool {
		e, _ := l["error"].(string)
		return l["level"] == "ERROR" && strings.Contains(e, inv.err.Error())
	}) {
		t.Errorf("no ERROR line says why: %v", inv.lines)
	}
}

func TestHandleSweepInputs(t *testing.T) {
	rootB := `"root_tenant_id": "` + testkit.PartnerB + `"`
	tests := []struct {
		name   string
		root   string // ROOT_TENANT_ID
		dryRun bool   // DRY_RUN
		input  string
		// what runs: the root ("" for the API client's own tenant), and whether dry
		sweeps string
		dry    bool
	}{
		{name: "classic schedule rule", input: event(t, "sweep-scheduled.json")},
		{name: "classic schedule rule, dry run in detail", input: scheduled("Scheduled Event", `{"dry_run": true}`), dry: true},
		{name: "classic schedule rule, root in detail", input: scheduled("Scheduled Event", `{`+rootB+`}`), sweeps: testkit.PartnerB},
		{name: "classic schedule rule, both in detail", input: scheduled("Scheduled Event", `{`+rootB+`, "dry_run": true}`),
			sweeps: testkit.PartnerB, dry: true},
		{name: "scheduler, no overrides", input: event(t, "sweep-scheduler.json")},
		{name: "scheduler, dry run", input: event(t, "sweep-dry-run.json"), dry: true},
		{name: "empty object", input: `{}`},
		{name: "empty input", input: ``},
		{name: "null", input: `null`},
		{name: "root override", input: `{` + rootB + `}`, sweeps: testkit.PartnerB},
		{name: "root override in upper case", input: `{"root_tenant_id": "` + strings.ToUpper(testkit.PartnerB) + `"}`, sweeps: testkit.PartnerB},
		{name: "root override beats ROOT_TENANT_ID", root: testkit.PartnerA, input: `{` + rootB + `}`, sweeps: testkit.PartnerB},
		{name: "ROOT_TENANT_ID", root: testkit.PartnerA, input: `{}`, sweeps: testkit.PartnerA},
		{name: "DRY_RUN", dryRun: true, input: `{}`, dry: true},
		{name: "DRY_RUN, dry run override", dryRun: true, input: `{"dry_run": true}`, dry: true},
		{name: "dry run override off when DRY_RUN is off", input: `{"dry_run": false}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := fixtureRig(t, tt.root, tt.dryRun)
			before := testkit.MFAStates(r.acr.Sim)
			want := expect(r.acr.Sim.All(), cmp.Or(tt.sweeps, r.acr.Sim.RootID()), tt.dry, testkit.ExcludedPartner)
			inv := r.run(t, t.Context(), tt.input)
			if inv.err != nil {
				t.Fatalf("sweep failed: %v", inv.err)
			}
			checkSummary(t, inv.sum, want)
			checkTree(t, r.acr, before, want)
		})
	}
}

// An input the sweep cannot take fails the invocation before Acronis is asked
// anything, so nothing is written.
func TestHandleSweepRefusesBadInput(t *testing.T) {
	tests := []struct {
		name   string
		dryRun bool
		input  string
		want   error
	}{
		{"unknown override", false, `{"dryrun": true}`, sweep.ErrInvalidInput},
		{"unknown override with a known one", false, `{"dry_run": true, "desired": "disabled"}`, sweep.ErrInvalidInput},
		{"unknown override in detail", false, scheduled("Scheduled Event", `{"dryrun": true}`), sweep.ErrInvalidInput},
		{"dry run off while DRY_RUN", true, `{"dry_run": false}`, sweep.ErrDryRunOverride},
		{"dry run off in detail while DRY_RUN", true, scheduled("Scheduled Event", `{"dry_run": false}`), sweep.ErrDryRunOverride},
		{"dry run off with a root while DRY_RUN", true, `{"root_tenant_id": "` + testkit.PartnerB + `", "dry_run": false}`, sweep.ErrDryRunOverride},
		{"dry run as a string", false, `{"dry_run": "true"}`, sweep.ErrInvalidInput},
		{"duplicated dry run", true, `{"dry_run": true, "dry_run": false}`, sweep.ErrInvalidInput},
		{"root not a UUID", false, `{"root_tenant_id": "../clients"}`, sweep.ErrInvalidInput},
		{"another event", false, strings.Replace(event(t, "sweep-scheduled.json"), "Scheduled Event", "Tenant Created", 1), sweep.ErrInvalidInput},
		{"not JSON", false, `dry_run=true`, sweep.ErrInvalidInput},
		{"array", false, `[{"dry_run": true}]`, sweep.ErrInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := fixtureRig(t, "", tt.dryRun)
			inv := r.run(t, t.Context(), tt.input)
			if !errors.Is(inv.err, tt.want) {
				t.Fatalf("error %v, want %v", inv.err, tt.want)
			}
			if n := len(r.acr.Sim.Requests()); n != 0 {
				t.Fatalf("%d requests reached Acronis: %v", n, r.acr.Sim.Requests())
			}
			if len(inv.audits) != 0 || inv.sum.TenantsSeen != 0 {
				t.Errorf("summary %+v and audit lines %v of a sweep that never ran", inv.sum, inv.audits)
			}
			checkErrorLogged(t, inv)
		})
	}
}

// A sweep that cannot start, because its root is out of reach or its
// credentials are rejected, fails loudly, with nothing written.
func TestHandleSweepFailsLoudly(t *testing.T) {
	reject := func(r *rig) { r.acr.Sim.SetClientSecret("rotated-away") }
	// Without exclusions nothing above the root is read first: the listing
	// meets the failure.
	unchecked := func(r *rig) { r.h.Sweeper.Enforcer.Rules.Excluded = nil }
	tests := []struct {
		name  string
		input string
		setup func(*rig) // nil: none
		want  error
	}{
		{"unknown root", `{"root_tenant_id": "` + testkit.Unknown + `"}`, nil, acronis.ErrNotFound},
		{"root out of sight", `{"root_tenant_id": "` + testkit.Outsider + `"}`, unchecked, acronis.ErrNotAllowed},
		{"credentials rejected", `{}`, reject, acronis.ErrUnauthorized},
		{"credentials rejected, ROOT_TENANT_ID", `{}`, func(r *rig) {
			reject(r)
			unchecked(r)
			r.h.RootTenantID = r.acr.Sim.RootID()
		}, acronis.ErrUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := fixtureRig(t, "", false)
			if tt.setup != nil {
				tt.setup(r)
			}
			inv := r.run(t, t.Context(), tt.input)
			if !errors.Is(inv.err, tt.want) || inv.sum.TenantsSeen != 0 || r.acr.Sim.Count("PUT", "/mfa/status") != 0 {
				t.Fatalf("error %v, summary %+v; want %v and nothing written", inv.err, inv.sum, tt.want)
			}
			checkErrorLogged(t, inv)
		})
	}
}

// The summary is the contract's JSON object, key for key. Counted by hand on
// the fixture: own, PartnerA and OnCustomer are compliant; Unit and Folder
// inherit; Suspended is disabled; Locked is not allowed; ExcludedPartner and
// its child are excluded; the eight others change, and lock out 3 users of
// OffCustomer, 12 of Contoso, 1 of Broken and 2 of Foldered. Compliance is
// (3 + 8) / 12 eligible, and a dry run's would-be changes are none of it.
func TestHandleSweepSummaryJSON(t *testing.T) {
	for _, dryRun := range []bool{false, true} {
		r := fixtureRig(t, "", dryRun)
		inv := r.run(t, t.Context(), `{}`)
		if inv.err != nil {
			t.Fatal(inv.err)
		}
		inv.sum.DurationMs = 0
		got, _ := json.Marshal(inv.sum)
		changed, wouldChange, percent := 8, 0, "91.7"
		if dryRun {
			changed, wouldChange, percent = 0, 8, "25"
		}
		want := fmt.Sprintf(`{"root_tenant_id":%q,"desired":"enabled","dry_run":%t,"tenants_seen":17,"compliant":3,`+
			`"changed":%d,"would_change":%d,"skipped_inherited":2,"skipped_disabled":1,"skipped_excluded":2,"not_allowed":1,`+
			`"failed":0,"fanned_out":0,"in_grace":0,"notified":0,"users_without_totp":18,"compliance_percent":%s,`+
			`"report":null,"duration_ms":0}`, r.acr.Sim.RootID(), dryRun, changed, wouldChange, percent)
		if string(got) != want {
			t.Fatalf("summary\n got %s\nwant %s", got, want)
		}
	}
}

// Audit lines carry the sweep id, which is Lambda's request id when there is
// one, so that they match the invocation's own log lines.
func TestHandleSweepAuditLines(t *testing.T) {
	const requestID = "8f5e2c1a-sweep-request"
	for _, inLambda := range []bool{true, false} {
		t.Run(fmt.Sprint("in Lambda ", inLambda), func(t *testing.T) {
			r := fixtureRig(t, "", false)
			want := map[string]string{testkit.Locked: "skipped", testkit.Suspended: "skipped",
				testkit.ExcludedPartner: "skipped", testkit.ExcludedChild: "skipped"}
			for _, id := range expect(r.acr.Sim.All(), r.acr.Sim.RootID(), false, testkit.ExcludedPartner).turnsOn {
				want[id] = "enable"
			}
			ctx := t.Context()
			if inLambda {
				ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: requestID})
			}
			inv := r.run(t, ctx, `{}`)
			if inv.err != nil {
				t.Fatal(inv.err)
			}
			// One line per tenant decided about: not the plainly compliant ones,
			// nor units and folders, which have no switch of their own.
			if got := auditedOnce(t, inv); !maps.Equal(got, want) {
				t.Fatalf("audited tenants and actions\n got %v\nwant %v", got, want)
			}
			ids := map[any]bool{}
			for _, a := range inv.audits {
				ids[a["sweep_id"]] = true
				if inLambda && (a["sweep_id"] != requestID || a["requestId"] != requestID) {
					t.Errorf("audit line sweep_id %v requestId %v, want %s", a["sweep_id"], a["requestId"], requestID)
				}
			}
			if len(ids) != 1 || ids[""] || ids[nil] {
				t.Fatalf("sweep ids %v, want one non-empty id on every line", ids)
			}
			if !slices.ContainsFunc(inv.lines, func(l map[string]any) bool {
				return l["message"] == "sweep started" && ids[l["sweep_id"]] && l["root_tenant_id"] == r.acr.Sim.RootID()
			}) {
				t.Error("no sweep started line names the sweep and its root")
			}
		})
	}
}

// A tenant that fails is reported, in the summary, the EMF document and an
// ERROR audit line that says why, and the rest of the sweep goes on.
func TestHandleSweepReportsFailures(t *testing.T) {
	r := fixtureRig(t, "", false)
	before := testkit.MFAStates(r.acr.Sim)
	want := expect(r.acr.Sim.All(), r.acr.Sim.RootID(), false, testkit.ExcludedPartner)
	r.acr.Sim.SetFaults(sim.Faults{FailTenants: map[string]int{testkit.Broken: 500}})
	inv := r.run(t, t.Context(), `{}`)
	if inv.err != nil {
		t.Fatal(inv.err)
	}
	// Broken and its one user move from changed to failed: (3 + 7) / 12 compliant.
	percent := 83.3
	want.Changed, want.Failed, want.UsersWithoutTOTP, want.CompliancePercent = want.Changed-1, 1, want.UsersWithoutTOTP-1, &percent
	want.turnsOn = slices.DeleteFunc(want.turnsOn, func(id string) bool { return id == testkit.Broken })
	checkSummary(t, inv.sum, want)
	checkTree(t, r.acr, before, want)
	if n := inv.emf.Metrics[telemetry.MetricAcronisErrors]; n == 0 {
		t.Error("EMF AcronisErrors 0 despite the 500s")
	}
	var failed []map[string]any
	for _, a := range inv.audits {
		if a["action"] == "failed" {
			failed = append(failed, a)
		}
	}
	if len(failed) != 1 || failed[0]["tenant_id"] != testkit.Broken || failed[0]["level"] != "ERROR" ||
		!strings.Contains(fmt.Sprint(failed[0]["error"]), "HTTP 500") {
		t.Fatalf("failure audit lines %v, want one ERROR line for %s that says HTTP 500", failed, testkit.Broken)
	}
}
