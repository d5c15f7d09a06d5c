package cli

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/enforce"
	"acronismfa/internal/policy"
	"acronismfa/internal/report"
	"acronismfa/internal/sweep"
	"acronismfa/internal/tenant"
)

// tenantID finds the id of the tenant a command names: ref itself, or the id
// of the tenant whose exact name ref is, under the root tenant; then name is
// that name, and "" for an id.
func (s *session) tenantID(ctx context.Context, ref string) (id, name string, err error) {
	if id, isID := tenant.ParseID(ref); isID {
		return id, "", nil
	}
	client := s.deps.Acronis
	root := s.deps.Config.RootTenantID
	if root == "" {
		if root, err = client.OwnTenantID(ctx); err != nil {
			return "", "", failed("find the root tenant to look up %q: %w", ref, err)
		}
	}
	found, err := client.FindTenantByName(ctx, root, ref)
	if err != nil {
		return "", "", failed("tenant %q: %w", ref, err)
	}
	return found.ID, ref, nil
}

// tenant reads the tenant a command names (see tenantID).
func (s *session) tenant(ctx context.Context, ref string) (tenant.Tenant, error) {
	id, _, err := s.tenantID(ctx, ref)
	if err != nil {
		return tenant.Tenant{}, err
	}
	t, err := s.deps.Acronis.Tenant(ctx, id)
	if err != nil {
		return tenant.Tenant{}, failed("tenant %s: %w", ref, err)
	}
	return t, nil
}

func failed(format string, args ...any) error {
	return fmt.Errorf("%w: %w", errFailed, fmt.Errorf(format, args...))
}

// oneTenant checks that a command got exactly its tenant argument (and more,
// where it takes more), and loads the configuration.
func (s *session) oneTenant(ctx context.Context, name string, args []string, n int) error {
	if len(args) != n {
		return usagef("%s takes %d argument(s), got %d: %q (see acronis-mfa %s --help)", name, n, len(args), args, name)
	}
	return s.load(ctx)
}

var statusCommand = command{
	name:    "status",
	args:    "TENANT",
	summary: "show a tenant's MFA status object",
	details: `TENANT is a tenant UUID or a tenant's exact name under the root tenant.

Examples:
  acronis-mfa status 3fa85f64-5717-4562-b3fc-2c963f66afa6
  acronis-mfa status "Contoso Ltd" --json
`,
	run: func(ctx context.Context, s *session, _ *flag.FlagSet, args []string) error {
		if err := s.oneTenant(ctx, "status", args, 1); err != nil {
			return err
		}
		t, err := s.tenant(ctx, args[0])
		if err != nil {
			return err
		}
		st, err := s.deps.Acronis.MFAStatus(ctx, t.ID)
		if err != nil {
			return failed("MFA status of %s: %w", t.ID, err)
		}
		obj := enforce.StatusOf(t.ID, st)
		if s.json {
			return s.emit(obj)
		}
		s.table(
			"Tenant", label(t),
			"Kind", string(t.Kind),
			"MFA", obj.MFAStatus,
			"Users", fmt.Sprintf("%d, %d with TOTP, %d without", obj.UsersCount, obj.UsersWithTOTPEnabledCount, st.UsersWithoutTOTP()),
			"Update allowed", yesNo(obj.UpdateAllowed))
		return nil
	},
}

var setCommand = command{
	name:    "set",
	args:    "TENANT on|off [--dry-run]",
	summary: "turn a tenant's MFA on or off, as the webhook's PUT does",
	details: `The same rules as the webhook: off needs MFA_ALLOW_DISABLE=true; units, folders,
excluded tenants and tenants Acronis does not allow are refused; a state that
already holds is not written. A request by name never waits for a rollout's grace.

  --dry-run  decide and report, write nothing

Examples:
  acronis-mfa set "Contoso Ltd" on
  acronis-mfa set 3fa85f64-5717-4562-b3fc-2c963f66afa6 on --dry-run --json
`,
	flags: func(fs *flag.FlagSet) { fs.Bool("dry-run", false, "") },
	run: func(ctx context.Context, s *session, fs *flag.FlagSet, args []string) error {
		if err := s.oneTenant(ctx, "set", args, 2); err != nil {
			return err
		}
		var enable bool
		switch strings.ToLower(args[1]) {
		case "on":
			enable = true
		case "off":
		default:
			return usagef("set: the state is on or off, not %q", args[1])
		}
		id, name, err := s.tenantID(ctx, args[0])
		if err != nil {
			return err
		}
		e := s.deps.Enforcer()
		e.Rules.DryRun = e.Rules.DryRun || flagBool(fs, "dry-run")
		intent := policy.Intent{Enable: enable, Origin: policy.ByCaller}
		// EnforceID reads the tenant, and checks a name given against it.
		res := e.EnforceID(ctx, enforce.IDRequest{ID: id, Name: name, Intent: intent})
		t := res.Tenant
		switch {
		case res.Err != nil:
			return failed("%s: %s: %w", label(t), enforce.Reason(res), res.Err)
		case res.Decision.Outcome != policy.Change && res.Decision.Outcome != policy.WouldChange && res.Decision.Outcome != policy.Compliant:
			return failed("%s refused: %s", label(t), res.Decision.Reason)
		}
		answer := res.Answer(e.Rules.DryRun)
		if s.json {
			return s.emit(answer)
		}
		what := map[policy.Outcome]string{policy.Change: "changed", policy.WouldChange: "would change (dry run)", policy.Compliant: "already so, nothing written"}
		s.table(
			"Tenant", label(t),
			"MFA", fmt.Sprintf("%s -> %s: %s", res.Previous, res.Current, what[res.Decision.Outcome]),
			"Users without TOTP", fmt.Sprint(res.Status.UsersWithoutTOTP()))
		return nil
	},
}

// userJSON is a user as --json prints it.
type userJSON struct {
	ID        string `json:"id"`
	Login     string `json:"login"`
	Email     string `json:"email"`
	Name      string `json:"name"`
	TenantID  string `json:"tenant_id"`
	Enabled   bool   `json:"enabled"`
	MFAStatus string `json:"mfa_status"`
}

var usersCommand = command{
	name:    "users",
	args:    "TENANT [--without-totp]",
	summary: "list a tenant's users and their MFA status",
	details: `The users of the tenant and of its own folders and units (not its customers').

  --without-totp  only the enabled users who still have to set up TOTP: those
                  enabling MFA locks out until they do

Examples:
  acronis-mfa users "Contoso Ltd" --without-totp
  acronis-mfa users 3fa85f64-5717-4562-b3fc-2c963f66afa6 --json
`,
	flags: func(fs *flag.FlagSet) { fs.Bool("without-totp", false, "") },
	run: func(ctx context.Context, s *session, fs *flag.FlagSet, args []string) error {
		if err := s.oneTenant(ctx, "users", args, 1); err != nil {
			return err
		}
		t, err := s.tenant(ctx, args[0])
		if err != nil {
			return err
		}
		users := []userJSON{}
		lacking := 0
		for u, err := range enforce.OwnUsers(ctx, s.deps.Acronis, t) {
			if err != nil {
				return failed("users of %s: %w", t.ID, err)
			}
			needs := u.NeedsTOTP()
			if needs {
				lacking++
			}
			if needs || !flagBool(fs, "without-totp") {
				users = append(users, userJSON{u.ID, u.Login, u.Email, u.Name(), u.TenantID, u.Enabled, u.MFAStatus})
			}
		}
		if s.json {
			return s.emit(users)
		}
		tw := tabwriter.NewWriter(s.env.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "LOGIN\tNAME\tEMAIL\tMFA")
		for _, u := range users {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Login, u.Name, u.Email, u.MFAStatus)
		}
		_ = tw.Flush()
		fmt.Fprintf(s.env.Stdout, "\n%d users listed; %d of %s's users lack TOTP\n", len(users), lacking, t.Name)
		return nil
	},
}

var sweepCommand = command{
	name:    "sweep",
	args:    "[--root ID] [--dry-run] [--updated-within MINUTES] [--csv FILE]",
	summary: "sweep the tenant tree from this machine",
	details: `Brings every eligible tenant under the root to MFA_DESIRED_STATE, as the sweep
function does, and prints its summary. Progress goes to stderr; Ctrl-C stops the
sweep cleanly and prints what was done. It does all its work itself: nothing goes
to ENFORCE_QUEUE_URL or REPORT_BUCKET. With STATE_TABLE it gives the rollout's
notices, and with NOTIFY_TOPIC_ARN it publishes the sweep_completed digest.

  --root ID                 sweep this tenant's subtree (default ROOT_TENANT_ID,
                            else the API client's own tenant)
  --dry-run                 decide and report, write nothing
  --updated-within MINUTES  a watch run: only tenants created or updated in the
                            last MINUTES (1 to 1440)
  --csv FILE                write the compliance report (full sweeps only), the
                            same CSV as the sweep function's report in S3

Examples:
  acronis-mfa sweep --dry-run --csv before.csv
  acronis-mfa sweep --updated-within 60 --json
`,
	flags: func(fs *flag.FlagSet) {
		fs.String("root", "", "")
		fs.Bool("dry-run", false, "")
		fs.Int("updated-within", 0, "")
		fs.String("csv", "", "")
	},
	run: runSweep,
}

// sweepFlags are the sweep command's flags, checked.
type sweepFlags struct {
	root, csv string
	dryRun    bool
	within    time.Duration // a watch run's window; 0 for a full sweep
}

func parseSweepFlags(fs *flag.FlagSet, args []string) (sweepFlags, error) {
	f := sweepFlags{root: fs.Lookup("root").Value.String(), csv: fs.Lookup("csv").Value.String(), dryRun: flagBool(fs, "dry-run")}
	minutes := fs.Lookup("updated-within").Value.(flag.Getter).Get().(int)
	watch := false
	fs.Visit(func(fl *flag.Flag) { watch = watch || fl.Name == "updated-within" })
	switch {
	case len(args) != 0:
		return f, usagef("sweep takes no arguments, got %q (see acronis-mfa sweep --help)", args)
	case watch && (minutes < 1 || minutes > 1440):
		return f, usagef("--updated-within takes minutes from 1 to 1440, not %d", minutes)
	case f.csv != "" && watch:
		return f, usagef("--csv is for full sweeps: a watch run (--updated-within) writes no report")
	}
	if f.root != "" {
		root, ok := tenant.ParseID(f.root)
		if !ok {
			return f, usagef("--root takes a tenant UUID, not %q", f.root)
		}
		f.root = root
	}
	if watch {
		f.within = time.Duration(minutes) * time.Minute
	}
	return f, nil
}

func runSweep(ctx context.Context, s *session, fs *flag.FlagSet, args []string) error {
	flags, err := parseSweepFlags(fs, args)
	if err != nil {
		return err
	}
	if err := s.load(ctx); err != nil {
		return err
	}
	// A sweep from this machine is the whole job: nothing goes to the
	// deployed worker's queue, and its report is the --csv file or none.
	sw := s.deps.Sweeper()
	sw.Fanout, sw.NewReport = nil, nil
	run := sweep.Run{RootTenantID: cmp.Or(flags.root, s.deps.Config.RootTenantID),
		DryRun: s.deps.Config.DryRun || flags.dryRun, SweepID: "cli-" + time.Now().UTC().Format("20060102T150405Z")}
	if flags.within > 0 {
		run.UpdatedSince = time.Now().Add(-flags.within)
	}
	if run.RootTenantID == "" {
		if run.RootTenantID, err = s.deps.Acronis.OwnTenantID(ctx); err != nil {
			return failed("find the API client's own tenant, the default sweep root: %w", err)
		}
	}
	var csv *fileReport
	if flags.csv != "" {
		if csv, err = newFileReport(flags.csv); err != nil {
			return usagef("--csv %s: %v", flags.csv, err)
		}
		sw.NewReport = func(context.Context, string, time.Time) sweep.Report { return csv }
	}
	p := newProgress(s.env, s.deps.Acronis.Stats)
	sw.Progress = p.counts
	sw.Audit = p.audit
	p.start(run)
	sum, err := sw.Run(ctx, run)
	p.stop()
	interrupted := ctx.Err() != nil
	var digestErr error
	if pub := s.deps.Publisher(); pub != nil && !interrupted {
		digestErr = sweep.PublishDigest(ctx, pub, run, sum)
	}
	if s.json {
		if werr := s.emit(sum); werr != nil {
			return werr
		}
	} else {
		s.printSummary(sum, run)
	}
	switch {
	case interrupted:
		return failed("interrupted: the summary above is what was done")
	case err != nil:
		return failed("%w", err)
	case csv != nil && sum.Report == nil:
		return failed("the report %s was not written: %w", flags.csv, sum.ReportErr)
	case digestErr != nil:
		return failed("the sweep_completed digest was not published: %w", digestErr)
	case sum.Failed > 0:
		return failed("%d tenants failed; their reasons are above", sum.Failed)
	}
	return nil
}

var simCommand = command{
	name:    "sim",
	args:    "[--tenants N] [--addr HOST:PORT] [--latency DURATION]",
	summary: "serve the bundled Acronis simulator to try the commands on",
	details: `Generates a tenant tree and serves it until Ctrl-C, printing the three
ACRONIS_* variables that point the other commands at it.

  --tenants N         tenants to generate under the API client's own (default 300)
  --addr HOST:PORT    where to listen (default 127.0.0.1, a free port)
  --latency DURATION  answer each request this much later, as a distant data
                      center does (such as 20ms; default 0, at most 1m)

Example:
  acronis-mfa sim --tenants 50 > sim.env &
  sleep 1 && . ./sim.env && acronis-mfa sweep --dry-run
`,
	flags: func(fs *flag.FlagSet) {
		fs.Int("tenants", 300, "")
		fs.String("addr", "127.0.0.1:0", "")
		fs.Duration("latency", 0, "")
	},
	run: func(ctx context.Context, s *session, fs *flag.FlagSet, args []string) error {
		n := fs.Lookup("tenants").Value.(flag.Getter).Get().(int)
		latency := fs.Lookup("latency").Value.(flag.Getter).Get().(time.Duration)
		switch {
		case len(args) != 0:
			return usagef("sim takes no arguments, got %q (see acronis-mfa sim --help)", args)
		case n < 0 || n > 1_000_000:
			return usagef("--tenants takes 0 to 1000000, not %d", n)
		case latency < 0 || latency > time.Minute:
			return usagef("--latency takes a duration from 0 to 1m, not %s", latency)
		}
		server := sim.New(sim.Options{ClientSecret: rand.Text()})
		server.Generate(sim.TreeSpec{Seed: 2026, Size: n, Drift: 0.15})
		server.SetFaults(sim.Faults{Latency: latency})
		l, err := net.Listen("tcp", fs.Lookup("addr").Value.String())
		if err != nil {
			return usagef("--addr: %v", err)
		}
		vars := map[string]string{"ACRONIS_BASE_URL": "http://" + l.Addr().String(),
			"ACRONIS_CLIENT_ID": server.ClientID(), "ACRONIS_CLIENT_SECRET": server.ClientSecret()}
		if s.json {
			_ = s.emit(vars)
		} else {
			for _, k := range []string{"ACRONIS_BASE_URL", "ACRONIS_CLIENT_ID", "ACRONIS_CLIENT_SECRET"} {
				fmt.Fprintf(s.env.Stdout, "export %s=%s\n", k, vars[k])
			}
		}
		fmt.Fprintf(s.env.Stderr, "acronis-mfa sim: %d tenants under %s on %s; Ctrl-C stops\n", len(server.All()), server.RootID(), l.Addr())
		srv := &http.Server{Handler: server, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			<-ctx.Done()
			_ = srv.Close()
		}()
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return failed("serve: %w", err)
		}
		return nil
	},
}

// fileReport is the --csv report: the same writer as the S3 report's.
type fileReport struct {
	path string
	f    *os.File
	w    *report.Writer
	err  error
}

func newFileReport(path string) (*fileReport, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	w, err := report.NewWriter(f)
	return &fileReport{path: path, f: f, w: w}, err
}

func (r *fileReport) Add(row report.Row) {
	if r.err == nil {
		r.err = r.w.Write(row)
	}
}

func (r *fileReport) Finish() (string, error) {
	err := errors.Join(r.err, r.w.Flush(), r.f.Close())
	if err != nil {
		return "", err
	}
	return r.path, nil
}

func flagBool(fs *flag.FlagSet, name string) bool {
	return fs.Lookup(name).Value.(flag.Getter).Get().(bool)
}

// label names a tenant for people: its name and id, or its id alone where
// the name is not known (a request refused before the tenant was read).
func label(t tenant.Tenant) string {
	if t.Name == "" {
		return t.ID
	}
	return fmt.Sprintf("%s (%s)", t.Name, t.ID)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
