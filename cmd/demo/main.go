// Command demo runs the whole job on this machine, with no AWS account and no
// Docker (`make demo`): it builds the three functions, runs each under the AWS
// Lambda Runtime Interface Emulator with Secrets Manager and SQS served by a
// local moto_server and Acronis by the bundled simulator, drives them through
// a dry-run sweep, a real sweep, signed webhook calls and a queue batch, and
// reports what each step sent, got back, changed and measured. It stands on the
// end-to-end tests' kit (internal/testkit) and checks what they check.
//
// The functions' own logs go to .demo/functions.log. The exit status is 0 only
// when every step did what the contract says.
package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/tenant"
	"acronismfa/internal/testkit"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Stdout)
	interrupted := ctx.Err() != nil
	stop()
	if err != nil {
		if interrupted {
			err = fmt.Errorf("interrupted (%w)", err)
		}
		fmt.Fprintf(os.Stderr, "\ndemo FAILED: %v\n", err)
		os.Exit(1)
	}
}

var functions = []string{"webhook", "worker", "sweep"}

// demo is the running world and the report.
type demo struct {
	out     io.Writer
	sim     *sim.Server
	stack   *testkit.Stack
	fn      map[string]*testkit.Function
	logPath string
	step    int
	// Customers a provisioning system creates after the first sweeps.
	fabrikam, contoso, northwind sim.Tenant
}

func run(ctx context.Context, out io.Writer) error {
	start := time.Now()
	root, err := testkit.ModuleRoot()
	if err != nil {
		return err
	}
	rie, err := testkit.FindRIE()
	if err != nil {
		return fmt.Errorf("%w (make demo installs it)", err)
	}
	dir := filepath.Join(root, ".demo")
	d := &demo{out: out, fn: map[string]*testkit.Function{}, logPath: filepath.Join(dir, "functions.log")}
	outputs := map[string]*testkit.Output{"moto": testkit.NewOutput(nil)}
	defer func() { _ = writeLogs(d.logPath, append([]string{"moto"}, functions...), outputs) }()
	fmt.Fprint(out, "Acronis MFA enforcer: local demo\n",
		"Three Lambda functions built from this tree, run under aws-lambda-rie (the real runtime API);\n",
		"Secrets Manager and SQS from a local moto_server; Acronis from the bundled simulator.\n\n")

	paths, err := testkit.BuildFunctions(ctx, filepath.Join(dir, "bin"), functions...)
	if err != nil {
		return fmt.Errorf("build the functions: %w", err)
	}
	took := time.Since(start)
	moto, err := testkit.StartMoto(ctx, outputs["moto"])
	if err != nil {
		return err
	}
	defer moto.Stop()
	d.sim = sim.New(sim.Options{ClientSecret: rand.Text()})
	d.sim.Generate(sim.TreeSpec{Seed: 2026, Size: 300, Drift: 0.15})
	acronisURL, stopSim, err := testkit.ServeSim(d.sim)
	if err != nil {
		return err
	}
	defer stopSim()
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand.Read never fails
	if d.stack, err = testkit.NewStack(ctx, moto, testkit.CredentialsJSON(acronisURL, d.sim.ClientID(), d.sim.ClientSecret()), key); err != nil {
		return err
	}
	own, _ := d.sim.Get(d.sim.RootID())
	fmt.Fprintf(out, "setup\n  built webhook, worker, sweep (CGO_ENABLED=0, -tags lambda.norpc) in %s\n", took.Round(100*time.Millisecond))
	fmt.Fprintf(out, "  moto_server     %s  (secrets %s, %s; queue %s)\n", moto.Endpoint, testkit.AcronisSecretName, testkit.WebhookSecretName, testkit.QueueName)
	fmt.Fprintf(out, "  Acronis sim     %s  (%d tenants under %q)\n", acronisURL, len(d.sim.All()), own.Name)
	for _, name := range functions {
		f, err := testkit.Start(ctx, testkit.Options{RIE: rie, Bootstrap: paths[name], Env: d.stack.Env(name, nil), Timeout: time.Minute})
		if err != nil {
			return fmt.Errorf("start %s under the emulator: %w", name, err)
		}
		defer f.Stop()
		d.fn[name], outputs[name] = f, f.Output()
		fmt.Fprintf(out, "  %-15s %s  (aws-lambda-rie, %s)\n", name, f.URL, filepath.Join(".demo", "bin", name))
	}
	fmt.Fprintf(out, "  function logs   %s\n", d.logPath)

	dryRun, errDry := testkit.ReadEvent("sweep-dry-run.json")
	scheduled, errScheduled := testkit.ReadEvent("sweep-scheduled.json")
	if err := errors.Join(errDry, errScheduled); err != nil {
		return err
	}
	for _, step := range []func(context.Context) error{
		d.sweepStep("Dry-run sweep", fmt.Sprintf("%s  (events/sweep-dry-run.json: an ad-hoc run's override)", bytes.TrimSpace(dryRun)), dryRun, true),
		d.sweepStep("Scheduled sweep", `EventBridge "Scheduled Event" from the schedule rule (events/sweep-scheduled.json), detail {}`, scheduled, false),
		d.newTenants, d.webhookCalls, d.workerBatch,
		d.sweepStep("Check: dry-run sweep with EventBridge Scheduler's bare input",
			`{"dry_run": true}  (what a ScheduleV2 target's Input carries)`, []byte(`{"dry_run": true}`), true),
	} {
		if err := step(ctx); err != nil {
			return fmt.Errorf("%w (function logs: %s)", err, d.logPath)
		}
	}
	fmt.Fprintf(out, "\nAll steps did what the contract says, in %s. Function logs: %s\n", time.Since(start).Round(100*time.Millisecond), d.logPath)
	return nil
}

// sweepStep runs a sweep and checks that it dealt with exactly the tenants
// that drift: a dry run changes none of them, a real sweep each, one PUT each.
func (d *demo) sweepStep(title, sent string, event []byte, dryRun bool) func(context.Context) error {
	return func(ctx context.Context) error {
		d.header(title)
		d.printf("sent: %s", sent)
		before, states, puts := testkit.DriftOf(d.sim.All()), testkit.MFAStates(d.sim), d.sim.Count("PUT", "/mfa/status")
		inv, s, err := d.fn["sweep"].Sweep(ctx, event)
		if err != nil {
			return err
		}
		d.printSummary(s)
		n, puts := s.Counts, d.sim.Count("PUT", "/mfa/status")-puts
		total, top := testkit.TOTPDebt(inv.Audits())
		d.printf("simulator: MFA off before: %s", before)
		d.printf("           MFA off after:  %s", testkit.DriftOf(d.sim.All()))
		want, done, left := before.IDs(), "changed", "would_change"
		if dryRun {
			want, done, left = nil, "would_change", "changed"
			d.printf("           PUT requests: %d (a dry run writes nothing)", puts)
			d.printf("           enabling would make %d users set up TOTP; most in: %s", total, most(top))
		} else {
			d.printf("           PUT requests: %d, one per tenant changed (%d Acronis requests in all for %d tenants)",
				puts, int(inv.EMF.Metrics["AcronisRequests"]), n["tenants_seen"])
			d.printf("           %d users must now set up TOTP at their next login; most in: %s", total, most(top))
		}
		d.printEMF(inv.EMF)
		if n["tenants_seen"] != len(d.sim.All()) || n[done] != len(before.Fixable) || n[left] != 0 || n["failed"] != 0 || puts != len(want) {
			return fmt.Errorf("summary %v after %d PUTs; the simulator has %d tenants, %d to fix", n, puts, len(d.sim.All()), len(before.Fixable))
		}
		if changed := testkit.Changed(states, testkit.MFAStates(d.sim)); !slices.Equal(changed, want) {
			return fmt.Errorf("the sweep changed %d tenants, want %d", len(changed), len(want))
		}
		if len(before.Fixable) == 0 {
			d.printf("the whole tree is compliant: nothing left to change")
		}
		return nil
	}
}

func (d *demo) newTenants(context.Context) error {
	all := d.sim.All()
	parent := all[slices.IndexFunc(all, func(t sim.Tenant) bool { return t.Kind == "partner" && t.ID != d.sim.RootID() && t.Enabled })]
	fmt.Fprintf(d.out, "\n   Meanwhile a provisioning system creates 3 customers under %q, MFA off as Acronis creates them:\n", parent.Name)
	for _, c := range []struct {
		t           *sim.Tenant
		name        string
		users, totp int
	}{{&d.fabrikam, "Fabrikam Inc", 25, 3}, {&d.contoso, "Contoso Ltd", 12, 0}, {&d.northwind, "Northwind Traders", 8, 8}} {
		if err := d.sim.Add(sim.Tenant{Name: c.name, Kind: "customer", ParentID: parent.ID, Enabled: true, UpdateAllowed: true,
			MFAStatus: tenant.MFADisabled, UsersCount: c.users, UsersWithTOTP: c.totp}); err != nil {
			return err
		}
		all = d.sim.All() // the simulator gave it an id
		*c.t = all[slices.IndexFunc(all, func(t sim.Tenant) bool { return t.Name == c.name })]
		fmt.Fprintf(d.out, "     %-18s %s  %d users, %d with TOTP\n", c.name, c.t.ID, c.users, c.totp)
	}
	return nil
}

// webhook sends a request about Fabrikam signed now with key, and shows it
// and the answer.
func (d *demo) webhook(ctx context.Context, key []byte, method, body string) (testkit.Invocation, testkit.HTTPAnswer, error) {
	req := testkit.WebhookRequest(key, time.Now(), method, d.fabrikam.ID, body)
	sig := req.Headers["webhook-signature"]
	d.printf("sent: %s", strings.TrimSpace(method+" "+req.RawPath+" "+body))
	d.printf("      webhook-id %s, webhook-timestamp %s, webhook-signature %s…", req.Headers["webhook-id"], req.Headers["webhook-timestamp"], sig[:min(len(sig), 15)])
	inv, a, err := d.fn["webhook"].Webhook(ctx, req)
	if err == nil {
		d.printJSON(fmt.Sprintf("answer: HTTP %d, Content-Type %s", a.StatusCode, a.Headers["Content-Type"]), a.Body)
	}
	return inv, a, err
}

// webhookCalls are a signed GET, a signed PUT turning MFA on, and a PUT signed
// with a key the stack does not know, all about the new customer Fabrikam.
func (d *demo) webhookCalls(ctx context.Context) error {
	t := d.fabrikam
	d.header(fmt.Sprintf("Webhook: signed GET of %s's MFA status", t.Name))
	inv, a, err := d.webhook(ctx, d.stack.Key, "GET", "")
	if err != nil {
		return err
	}
	d.printEMF(inv.EMF)
	if a.StatusCode != 200 || a.JSON["tenant_id"] != t.ID || a.JSON["mfa_status"] != tenant.MFADisabled {
		return fmt.Errorf("GET: HTTP %d %s, want 200 with %s disabled", a.StatusCode, a.Body, t.ID)
	}

	d.header(fmt.Sprintf("Webhook: signed PUT turning MFA on for %s", t.Name))
	if inv, a, err = d.webhook(ctx, d.stack.Key, "PUT", `{"enabled": true}`); err != nil {
		return err
	}
	after, _ := d.sim.Get(t.ID)
	users, totp := testkit.UserTotals(d.sim.All(), t)
	d.printf("simulator: %s %s -> %s; %d users must now set up TOTP", t.Name, t.MFAStatus, after.MFAStatus, users-totp)
	for _, a := range inv.Audits() {
		d.printf("audit:     action %v, reason %q, previous %v, current %v", a["action"], a["reason"], a["previous"], a["current"])
	}
	d.printEMF(inv.EMF)
	if a.StatusCode != 200 || a.JSON["changed"] != true || !tenant.MFAOn(after.MFAStatus) || len(inv.Audits()) != 1 {
		return fmt.Errorf("PUT: HTTP %d %s, simulator %s, want 200 changed true, MFA on, one audit line", a.StatusCode, a.Body, after.MFAStatus)
	}

	d.header("Webhook: a PUT signed with a key the stack does not know")
	requests := len(d.sim.Requests())
	if inv, a, err = d.webhook(ctx, []byte("an attacker's key"), "PUT", `{"enabled": false}`); err != nil {
		return err
	}
	now, _ := d.sim.Get(t.ID)
	d.printf("simulator: %d requests reached Acronis; %s is still %s", len(d.sim.Requests())-requests, t.Name, now.MFAStatus)
	d.printEMF(inv.EMF)
	if e, _ := a.JSON["error"].(map[string]any); a.StatusCode != 401 || e["code"] != "unauthorized" || len(d.sim.Requests()) != requests {
		return fmt.Errorf("forged PUT: HTTP %d %s, want 401 unauthorized and no Acronis request", a.StatusCode, a.Body)
	}
	return nil
}

func (d *demo) workerBatch(ctx context.Context) error {
	all := d.sim.All()
	compliant := all[slices.IndexFunc(all, func(t sim.Tenant) bool { return t.Kind == "customer" && t.Enabled && tenant.MFAOn(t.MFAStatus) })]
	unit := all[slices.IndexFunc(all, func(t sim.Tenant) bool { return t.Kind == "unit" })]
	nw := d.northwind.ID
	msgs := []struct{ id, shape, body, shown, tenant string }{
		{"msg-1", "EventBridge event", testkit.TenantCreated(fmt.Sprintf(`{"tenant_id":%q}`, nw)),
			fmt.Sprintf(`{"version":"0",…,"detail-type":"Tenant Created",…,"detail":{"tenant_id":%q}}`, nw), nw},
		{"msg-2", "tenant by name", fmt.Sprintf(`{"tenant_name":%q}`, d.contoso.Name), "", d.contoso.ID},
		{"msg-3", "explicit disable", fmt.Sprintf(`{"tenant_id":%q,"enabled":false}`, compliant.ID), "", compliant.ID},
		{"msg-4", "a unit (inherits)", fmt.Sprintf(`{"tenant_id":%q}`, unit.ID), "", unit.ID},
		{"msg-5", "malformed", `{"tenant_id": "` + nw[:8], "", ""},
	}
	d.header("Worker: an SQS batch of five messages")
	var batch events.SQSEvent
	before := map[string]string{}
	for _, m := range msgs {
		batch.Records = append(batch.Records, testkit.SQSRecord(m.id, m.body))
		d.printf("sent: %s  %-18s %s", m.id, m.shape, cmp.Or(m.shown, m.body))
		t, _ := d.sim.Get(m.tenant)
		before[m.tenant] = t.MFAStatus
	}
	inv, failed, err := d.fn["worker"].Worker(ctx, batch)
	if err != nil {
		return err
	}
	d.printf("answer: batchItemFailures %v (SQS retries these, then dead-letters them)", failed)
	for _, id := range failed {
		d.printf("        %s: %s", id, cmp.Or(testkit.FailureReason(inv.Lines, id), "(no log line says why)"))
	}
	d.printf("simulator:")
	for _, m := range msgs[:4] {
		t, _ := d.sim.Get(m.tenant)
		d.printf("  %-17s %-8s %s -> %s", t.Name, t.Kind, before[m.tenant], t.MFAStatus)
	}
	d.printEMF(inv.EMF)
	if !slices.Equal(failed, []string{"msg-3", "msg-5"}) {
		return fmt.Errorf("batchItemFailures %v, want exactly [msg-3 msg-5]", failed)
	}
	for _, id := range []string{d.contoso.ID, nw, compliant.ID} {
		if t, _ := d.sim.Get(id); !tenant.MFAOn(t.MFAStatus) {
			return fmt.Errorf("%s has MFA %s after the batch, want on", t.Name, t.MFAStatus)
		}
	}
	return nil
}
