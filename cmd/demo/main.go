// Command demo runs the whole job on this machine with no AWS account and no
// Docker (`make demo`): the functions built from this tree under the Lambda
// Runtime Interface Emulator, AWS from a local moto_server, Acronis from the
// bundled simulator. It tells a rollout with a grace, a watch run, webhook
// calls and replays, and a queue batch, shows what each step sent, got back,
// changed, published and measured, and checks what the end-to-end tests check,
// on their kit (internal/testkit). The functions' logs go to
// .demo/functions.log. The exit status is 0 only when every step did what the
// contract says.
package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/tenant"
	"acronismfa/internal/testkit"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Stdout)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("interrupted (%w)", err)
	}
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo FAILED: %v\n", err)
		os.Exit(1)
	}
}

// demo is the running world and the report.
type demo struct {
	out                                   io.Writer
	logPath                               string
	local                                 *testkit.Local
	fn                                    map[string]*testkit.Function
	logs                                  map[string]*testkit.Output // what each process wrote, by a name
	step                                  int
	atOnce, notice                        []sim.Tenant // the drifting tenants a rollout enables at once, and those it notifies
	console, fabrikam, contoso, northwind sim.Tenant   // created in the console and by a provisioning system
}

func run(ctx context.Context, out io.Writer) error {
	start := time.Now()
	root, err := testkit.ModuleRoot()
	if err != nil {
		return err
	}
	d := &demo{out: out, fn: map[string]*testkit.Function{}, logPath: filepath.Join(root, ".demo", "functions.log"),
		logs: map[string]*testkit.Output{"moto": testkit.NewOutput(nil)}}
	defer func() { _ = writeLogs(d.logPath, d.logs) }()
	fmt.Fprint(out, "Acronis MFA enforcer: local demo\nThree Lambda functions built from this tree, run under aws-lambda-rie (the real runtime API);\n",
		"Secrets Manager, SQS, DynamoDB, SNS and S3 from a local moto_server; Acronis from the bundled simulator.\n\n")
	paths, err := testkit.BuildFunctions(ctx, filepath.Join(root, ".demo", "bin"), "webhook", "worker", "sweep")
	if err != nil {
		return fmt.Errorf("build the functions: %w", err)
	}
	fmt.Fprintf(out, "setup\n  built webhook, worker, sweep (CGO_ENABLED=0, -tags lambda.norpc) in %s\n", time.Since(start).Round(100*time.Millisecond))
	s := sim.New(sim.Options{ClientSecret: rand.Text()})
	s.Generate(sim.TreeSpec{Seed: 2024, Size: 300, Drift: 0.15})
	all := s.All() // the API client's own tenant first
	d.atOnce, d.notice = testkit.DriftOf(all).Grace(all)
	if d.local, err = testkit.StartLocal(ctx, testkit.LocalOptions{Sim: s, Key: []byte(rand.Text()), Bootstraps: paths,
		MotoOutput: d.logs["moto"]}); err != nil {
		return err
	}
	defer d.local.Close()
	fmt.Fprintf(out, "  moto_server     %s  (secrets %s, %s; queue %s;\n                  state table %s; topic %s, a queue subscribed; bucket %s)\n",
		d.local.Stack.Moto.Endpoint, testkit.AcronisSecretName, testkit.WebhookSecretName, testkit.QueueName, testkit.StateTableName, testkit.TopicName, testkit.ReportBucket)
	fmt.Fprintf(out, "  Acronis sim     %s  (%d tenants under %q; MFA off on %d that policy turns on: %d whose users all\n"+
		"                  have TOTP, %d with users it would lock out)\n  configuration   the template's: ROLLOUT_GRACE_DAYS=7, STATE_TABLE, "+
		"NOTIFY_TOPIC_ARN; for the sweep ENFORCE_QUEUE_URL, REPORT_BUCKET, REPORT_PREFIX\n", d.local.AcronisURL, len(all), all[0].Name, len(d.atOnce)+len(d.notice), len(d.atOnce), len(d.notice))
	for _, name := range []string{"webhook", "worker", "sweep"} {
		if err := d.start(ctx, name, "7"); err != nil {
			return err
		}
	}

	sweep := func(title, file, sent string, want testkit.SweepExpect) func(context.Context) error {
		return func(ctx context.Context) error { return d.sweep(ctx, title, file, sent, want) }
	}
	for _, step := range []func(context.Context) error{
		sweep("Dry-run sweep: what a rollout with a 7-day grace would do", "sweep-dry-run.json", "an ad-hoc run's override",
			testkit.SweepExpect{DryRun: true, Enable: testkit.IDs(d.atOnce), InGrace: len(d.notice)}),
		sweep("Scheduled sweep: MFA on at once where nobody is locked out, notice to the others", "sweep-scheduled.json",
			`EventBridge "Scheduled Event" of the schedule rule`, testkit.SweepExpect{Enable: testkit.IDs(d.atOnce), InGrace: len(d.notice),
				Notified: len(d.notice), Notices: map[string][]string{"grace_started": testkit.IDs(d.notice)}}),
		sweep("The next scheduled sweep: tenants in grace cost no Acronis request", "sweep-scheduler.json", "EventBridge Scheduler's input",
			testkit.SweepExpect{InGrace: len(d.notice), Notices: map[string][]string{}}),
		func(ctx context.Context) error {
			d.console = sim.Tenant{Name: "Tailspin Toys"}
			if err := d.create("someone in the Acronis console, telling nobody,", &d.console); err != nil {
				return err
			}
			return d.sweep(ctx, "Watch run: the template's watch schedule, every minute", "sweep-watch.json", "the watch schedule's input",
				testkit.SweepExpect{Seen: 1, Enable: []string{d.console.ID}})
		},
		func(context.Context) error {
			d.fabrikam, d.contoso = sim.Tenant{Name: "Fabrikam Inc", UsersCount: 25, UsersWithTOTP: 3}, sim.Tenant{Name: "Contoso Ltd", UsersCount: 12}
			d.northwind = sim.Tenant{Name: "Northwind Traders", UsersCount: 8, UsersWithTOTP: 8}
			return d.create("a provisioning system", &d.fabrikam, &d.contoso, &d.northwind)
		},
		d.webhookCalls, d.workerBatch,
		func(ctx context.Context) error {
			fmt.Fprint(d.out, "\n   Meanwhile an operator sets ROLLOUT_GRACE_DAYS=0, and the sweep function restarts under the emulator:\n")
			if err := d.start(ctx, "sweep", "0"); err != nil {
				return err
			}
			noticed := slices.Sorted(slices.Values(append(testkit.IDs(d.notice), d.contoso.ID)))
			return d.sweep(ctx, "The grace ends: a grace of 0 days ends every grace at the next run", "sweep-scheduler.json",
				"EventBridge Scheduler's input", testkit.SweepExpect{Enable: noticed, Notices: map[string][]string{"enforced": noticed}})
		},
		sweep("Check: a dry run finds nothing left to change", "sweep-dry-run.json", "an ad-hoc run's override", testkit.SweepExpect{DryRun: true}),
	} {
		if err := step(ctx); err != nil {
			return fmt.Errorf("%w (function logs: %s)", err, d.logPath)
		}
	}
	fmt.Fprintf(out, "\nAll steps did what the contract says, in %s. Function logs: %s\n", time.Since(start).Round(100*time.Millisecond), d.logPath)
	return nil
}

// start runs function name under the emulator as the template configures it,
// with ROLLOUT_GRACE_DAYS=grace, in place of the instance running, if any.
func (d *demo) start(ctx context.Context, name, grace string) error {
	f, err := d.local.Start(ctx, name, map[string]string{"ROLLOUT_GRACE_DAYS": grace})
	if err != nil {
		return err
	}
	d.fn[name] = f // one it replaces idles until the end
	d.logs[name+" "+grace+"d"] = f.Output()
	fmt.Fprintf(d.out, "  %-15s %s  (aws-lambda-rie, %s)\n", name, f.URL, filepath.Join(".demo", "bin", name))
	return nil
}

// create has who create customers (name and users given) under a partner,
// MFA off as Acronis creates them, and shows them.
func (d *demo) create(who string, customers ...*sim.Tenant) (err error) {
	all := d.local.Sim.All()
	partner := all[slices.IndexFunc(all, func(t sim.Tenant) bool { return t.Kind == "partner" && t.ID != all[0].ID && t.Enabled })]
	fmt.Fprintf(d.out, "\n   Meanwhile %s creates under %q, with MFA off as Acronis creates tenants:\n", who, partner.Name)
	for _, c := range customers {
		c.Kind, c.ParentID, c.Enabled, c.UpdateAllowed, c.MFAStatus = "customer", partner.ID, true, true, tenant.MFADisabled
		if *c, err = d.local.Sim.Create(*c); err != nil {
			return err
		}
		fmt.Fprintf(d.out, "     %-18s %s  %d users, %d with TOTP, created_at %s\n", c.Name, c.ID, c.UsersCount, c.UsersWithTOTP, c.CreatedAt.UTC().Format(time.RFC3339))
	}
	return nil
}
