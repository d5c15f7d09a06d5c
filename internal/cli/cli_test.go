package cli_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/cli"
	"acronismfa/internal/report"
	"acronismfa/internal/tenant"
	"acronismfa/internal/testkit"
)

// shell runs the command line against the simulator with the ACRONIS_*
// variables set, as an operator's shell would.
type shell struct {
	acr      *testkit.Acronis
	vars     map[string]string
	terminal bool // stderr is a terminal
}

func newShell(t *testing.T) *shell {
	t.Helper()
	acr := testkit.NewFixture(t, testkit.AcronisOptions{})
	return &shell{acr: acr, vars: map[string]string{
		"ACRONIS_BASE_URL": acr.URL, "ACRONIS_CLIENT_ID": acr.Sim.ClientID(), "ACRONIS_CLIENT_SECRET": acr.Sim.ClientSecret(),
	}}
}

type ran struct {
	code           int
	stdout, stderr string
}

func (s *shell) run(t *testing.T, ctx context.Context, args ...string) ran {
	t.Helper()
	var out, errOut bytes.Buffer
	code := cli.Main(ctx, args, cli.Env{Getenv: func(k string) string { return s.vars[k] }, Stdout: &out, Stderr: &errOut, Terminal: s.terminal})
	r := ran{code, out.String(), errOut.String()}
	for _, secret := range append(s.acr.Sim.Secrets(), s.acr.Sim.ClientSecret()) {
		if secret != "" && strings.Contains(r.stdout+r.stderr, secret) {
			t.Fatalf("acronis-mfa %v printed a secret", args)
		}
	}
	return r
}

func (r ran) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("--json printed %q: %v", r.stdout, err)
	}
}

func TestStatus(t *testing.T) {
	s := newShell(t)
	for _, ref := range []string{testkit.OffCustomer, "Off Customer"} {
		r := s.run(t, t.Context(), "status", ref, "--json")
		var st map[string]any
		r.json(t, &st)
		want := map[string]any{"tenant_id": testkit.OffCustomer, "mfa_status": "disabled", "users_count": 5.0,
			"users_with_totp_enabled_count": 2.0, "update_allowed": true}
		if r.code != 0 || !equalJSON(st, want) {
			t.Errorf("status %s: %d %v", ref, r.code, st)
		}
	}
	if r := s.run(t, t.Context(), "status", "Contoso Ltd"); r.code != 0 || !strings.Contains(r.stdout, "12, 0 with TOTP, 12 without") {
		t.Errorf("human status: %d %q", r.code, r.stdout)
	}
	for _, tt := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"status", testkit.Unknown}, 1, "not found"},
		{[]string{"set", testkit.Unknown, "on"}, 1, testkit.Unknown + ": acronis: not found"},
		{[]string{"set", testkit.OnCustomer, "off"}, 1, testkit.OnCustomer + " refused: "},
		{[]string{"status", "Twin Corp"}, 1, "2 tenants named \"Twin Corp\""},
		{[]string{"status"}, 2, "status takes 1 argument(s), got 0"},
		{[]string{"status", "a", "b"}, 2, "got 2"},
		{[]string{"status", "--nope", "x"}, 2, "flag provided but not defined: -nope"},
	} {
		if r := s.run(t, t.Context(), tt.args...); r.code != tt.code || !strings.Contains(r.stderr, tt.says) || r.stdout != "" {
			t.Errorf("%v: %d, stderr %q, stdout %q", tt.args, r.code, r.stderr, r.stdout)
		}
	}
}

func TestSet(t *testing.T) {
	s := newShell(t)
	r := s.run(t, t.Context(), "set", "Contoso Ltd", "on", "--dry-run", "--json")
	var st map[string]any
	r.json(t, &st)
	if r.code != 0 || st["changed"] != false || st["dry_run"] != true || s.acr.MFAOn(t, testkit.Contoso) {
		t.Fatalf("dry run: %d %v", r.code, st)
	}
	s.acr.Sim.ResetRequests()
	r = s.run(t, t.Context(), "set", "--json", testkit.Contoso, "on")
	r.json(t, &st)
	if r.code != 0 || st["changed"] != true || st["mfa_status"] != "enabled" || !s.acr.MFAOn(t, testkit.Contoso) {
		t.Fatalf("on: %d %v", r.code, st)
	}
	// The tenant, its switch, the PUT: as the webhook's PUT costs.
	if routes := testkit.Routes(s.acr.Sim.Requests()); routes["GET /tenants/{id}"] != 1 || routes["GET /tenants/{id}/mfa/status"] != 1 || routes["PUT /tenants/{id}/mfa/status"] != 1 {
		t.Errorf("Acronis requests %v", routes)
	}
	if r := s.run(t, t.Context(), "set", testkit.Contoso, "on"); r.code != 0 || !strings.Contains(r.stdout, "already so, nothing written") {
		t.Errorf("again: %d %q", r.code, r.stdout)
	}
	for _, tt := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"set", testkit.OnCustomer, "off"}, 1, "disabling MFA requires MFA_ALLOW_DISABLE=true"},
		{[]string{"set", testkit.Unit, "on"}, 1, "inherit MFA from their parent"},
		{[]string{"set", testkit.Locked, "on"}, 1, "update_allowed: false"},
		{[]string{"set", testkit.OffCustomer, "maybe"}, 2, `the state is on or off, not "maybe"`},
	} {
		if r := s.run(t, t.Context(), tt.args...); r.code != tt.code || !strings.Contains(r.stderr, tt.says) {
			t.Errorf("%v: %d %q", tt.args, r.code, r.stderr)
		}
	}
	s.vars["MFA_ALLOW_DISABLE"] = "true"
	if r := s.run(t, t.Context(), "set", testkit.OnCustomer, "off"); r.code != 0 || s.acr.MFAOn(t, testkit.OnCustomer) {
		t.Errorf("off when allowed: %d %q", r.code, r.stderr)
	}
}

func TestUsers(t *testing.T) {
	s := newShell(t)
	r := s.run(t, t.Context(), "users", "Off Customer", "--without-totp", "--json")
	var users []map[string]any
	r.json(t, &users)
	if r.code != 0 || len(users) != 3 {
		t.Fatalf("%d: %d users, want the 3 without TOTP", r.code, len(users))
	}
	for _, u := range users {
		if u["mfa_status"] == tenant.MFAEnabled || u["login"] == "" || u["tenant_id"] != testkit.OffCustomer {
			t.Errorf("user %v", u)
		}
	}
	if r := s.run(t, t.Context(), "users", testkit.OffCustomer); r.code != 0 || !strings.Contains(r.stdout, "5 users listed; 3 of Off Customer's users lack TOTP") {
		t.Errorf("human users: %d %q", r.code, r.stdout)
	}
	r = s.run(t, t.Context(), "users", testkit.Twin1, "--json")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("a tenant without users: %q", r.stdout)
	}
}

func TestSweep(t *testing.T) {
	s := newShell(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "report.csv")
	r := s.run(t, t.Context(), "sweep", "--dry-run", "--csv", path, "--json")
	var sum map[string]any
	r.json(t, &sum)
	if r.code != 0 || sum["dry_run"] != true || sum["would_change"] != 10.0 || sum["report"] != path || sum["compliance_percent"] != 21.4 {
		t.Fatalf("dry run: %d %v\n%s", r.code, sum, r.stderr)
	}
	// The report is the same CSV as the sweep function's.
	f, _ := os.Open(path)
	records, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || !slices.Equal(records[0], report.Header) || len(records) != 18 {
		t.Errorf("report: %d records, %v", len(records), err)
	}
	// Progress goes to stderr as plain lines without a terminal, ending with the tally.
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if !strings.HasPrefix(lines[0], "sweep of ") || !strings.HasPrefix(lines[len(lines)-1], "listed 17, drifting 11, done 17 of 17,") {
		t.Errorf("progress %q", r.stderr)
	}
	r = s.run(t, t.Context(), "sweep")
	if r.code != 0 || !strings.Contains(r.stdout, "changed                     10") || !strings.Contains(r.stderr, "change       Contoso Ltd") {
		t.Errorf("real sweep: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// --root takes a tenant id in any case and sweeps its subtree alone:
	// Partner B, its two customers, its folder and the folder's customer.
	r = s.run(t, t.Context(), "sweep", "--root", strings.ToUpper(testkit.PartnerB), "--dry-run", "--json")
	var sub map[string]any
	r.json(t, &sub)
	if r.code != 0 || sub["root_tenant_id"] != testkit.PartnerB || sub["tenants_seen"] != 5.0 {
		t.Errorf("--root: %d %v", r.code, sub)
	}
	for _, tt := range []struct {
		args []string
		says string
	}{
		{[]string{"sweep", "--updated-within", "0"}, "--updated-within takes minutes from 1 to 1440, not 0"},
		{[]string{"sweep", "--updated-within", "60", "--csv", path}, "--csv is for full sweeps"},
		{[]string{"sweep", "--root", "nope"}, `--root takes a tenant UUID, not "nope"`},
		{[]string{"sweep", "extra"}, "sweep takes no arguments"},
		{[]string{"sweep", "--csv", filepath.Join(dir, "no", "such", "dir.csv")}, "--csv"},
	} {
		if r := s.run(t, t.Context(), tt.args...); r.code != 2 || !strings.Contains(r.stderr, tt.says) {
			t.Errorf("%v: %d %q", tt.args, r.code, r.stderr)
		}
	}
	if r := s.run(t, t.Context(), "sweep", "--updated-within", "5", "--json"); r.code != 0 || !strings.Contains(r.stdout, `"updated_since"`) {
		t.Errorf("watch run: %d %q", r.code, r.stdout)
	}
}

// On a terminal, the progress is one line rewritten in place, which each
// tenant's line clears before it is printed, and which ends the sweep.
func TestSweepProgressOnATerminal(t *testing.T) {
	s := newShell(t)
	s.terminal = true
	r := s.run(t, t.Context(), "sweep", "--dry-run")
	const clear = "\r\033[K"
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if r.code != 0 || !strings.HasPrefix(lines[len(lines)-1], clear+"listed 17, drifting 11, done 17 of 17,") {
		t.Fatalf("%d, stderr %q", r.code, r.stderr)
	}
	tenants := 0
	for _, l := range lines[1 : len(lines)-1] {
		if !strings.HasPrefix(l, clear) {
			t.Errorf("line %q does not clear the live line first", l)
		}
		if strings.Contains(l, "would_change") {
			tenants++
		}
	}
	if tenants != 10 {
		t.Errorf("%d would_change lines, want 10: %q", tenants, r.stderr)
	}
}

// Ctrl-C stops a sweep cleanly: the summary of what was done, and exit 1.
func TestSweepInterrupted(t *testing.T) {
	s := newShell(t)
	ctx, cancel := context.WithCancel(t.Context())
	s.acr.Sim.SetFaults(sim.Faults{BeforeRequest: func(n int) {
		if n == 3 { // the listing, then the first confirming read
			cancel()
		}
	}})
	r := s.run(t, ctx, "sweep")
	if r.code != 1 || !strings.Contains(r.stderr, "interrupted") || !strings.Contains(r.stdout, "tenants seen") {
		t.Errorf("%d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

func TestHelpAndConfiguration(t *testing.T) {
	s := newShell(t)
	if r := s.run(t, t.Context()); r.code != 0 || !strings.Contains(r.stdout, "Commands:") {
		t.Errorf("no arguments: %d %q", r.code, r.stdout)
	}
	for _, c := range []string{"status", "set", "users", "sweep", "sim"} {
		for _, args := range [][]string{{c, "--help"}, {"help", c}} {
			if r := s.run(t, t.Context(), args...); r.code != 0 || !strings.Contains(r.stdout, "acronis-mfa "+c) || !strings.Contains(r.stdout, "--json") {
				t.Errorf("%v: %d %q", args, r.code, r.stdout)
			}
		}
	}
	if r := s.run(t, t.Context(), "frobnicate"); r.code != 2 || !strings.Contains(r.stderr, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %d %q", r.code, r.stderr)
	}
	delete(s.vars, "ACRONIS_CLIENT_SECRET")
	if r := s.run(t, t.Context(), "status", testkit.OffCustomer); r.code != 2 || !strings.Contains(r.stderr, "ACRONIS_CLIENT_SECRET is not set") {
		t.Errorf("no secret: %d %q", r.code, r.stderr)
	}
	s.vars["ACRONIS_CLIENT_SECRET"] = "wrong"
	if r := s.run(t, t.Context(), "status", testkit.OffCustomer); r.code != 1 || !strings.Contains(r.stderr, "credentials rejected") {
		t.Errorf("wrong secret: %d %q", r.code, r.stderr)
	}
}

func TestSim(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	out := testkit.NewOutput(nil)
	done := make(chan int)
	go func() {
		done <- cli.Main(ctx, []string{"sim", "--tenants", "20", "--json"}, cli.Env{Getenv: func(string) string { return "" }, Stdout: out, Stderr: io.Discard})
	}()
	if _, err := out.Wait(t.Context(), 0, 10*time.Second, func(l string) bool { return l == "}" }); err != nil {
		t.Fatal(err)
	}
	var vars map[string]string
	if err := json.Unmarshal([]byte(out.String()), &vars); err != nil {
		t.Fatalf("sim printed %q: %v", out.String(), err)
	}
	s := &shell{acr: testkit.NewAcronis(t, testkit.AcronisOptions{}), vars: vars}
	if r := s.run(t, t.Context(), "sweep", "--dry-run", "--json"); r.code != 0 || !strings.Contains(r.stdout, `"tenants_seen": 21`) {
		t.Errorf("sweep of the served simulator: %d %q %q", r.code, r.stdout, r.stderr)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("sim ended with %d", code)
	}
	resp, err := http.Get(vars["ACRONIS_BASE_URL"] + "/api/2/idp/token")
	if err == nil {
		resp.Body.Close()
		t.Error("the simulator still answers after Ctrl-C")
	}
	for _, tt := range []struct {
		args []string
		says string
	}{
		{[]string{"sim", "--tenants", "-1"}, "--tenants takes 0 to 1000000, not -1"},
		{[]string{"sim", "--latency", "2m"}, "--latency takes a duration from 0 to 1m, not 2m0s"},
		{[]string{"sim", "--latency", "soon"}, `invalid value "soon" for flag -latency`},
		{[]string{"sim", "extra"}, `sim takes no arguments, got ["extra"]`},
	} {
		if r := s.run(t, t.Context(), tt.args...); r.code != 2 || !strings.Contains(r.stderr, tt.says) {
			t.Errorf("%v: %d %q", tt.args, r.code, r.stderr)
		}
	}
}

func equalJSON(a, b map[string]any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}
