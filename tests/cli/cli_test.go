package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/testkit"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "acronis-mfa-cli-")
	if err == nil {
		binary = filepath.Join(dir, "acronis-mfa")
		root, rerr := testkit.ModuleRoot()
		cmd := exec.Command("go", "build", "-o", binary, "./cmd/acronis-mfa")
		cmd.Dir, cmd.Stderr = root, os.Stderr
		if err = rerr; err == nil {
			err = cmd.Run()
		}
	}
	if err != nil {
		os.Stderr.WriteString("FAIL: build acronis-mfa: " + err.Error() + "\n")
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type ran struct {
	code           int
	stdout, stderr string
}

// run runs the binary with env (and PATH and HOME only) until it ends or ctx does.
func run(t *testing.T, ctx context.Context, env map[string]string, args ...string) ran {
	t.Helper()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return ran{code, out.String(), errOut.String()}
}

func varsOf(acr *testkit.Acronis) map[string]string {
	return map[string]string{"ACRONIS_BASE_URL": acr.URL, "ACRONIS_CLIENT_ID": acr.Sim.ClientID(), "ACRONIS_CLIENT_SECRET": acr.Sim.ClientSecret()}
}

// noSecrets fails the test if anything printed holds a credential or token
// that crossed the wire.
func noSecrets(t *testing.T, acr *testkit.Acronis, printed ...ran) {
	t.Helper()
	for _, r := range printed {
		for _, s := range append(acr.Sim.Secrets(), acr.Sim.ClientSecret()) {
			if s != "" && strings.Contains(r.stdout+r.stderr, s) {
				t.Errorf("a secret was printed: %q", r.stdout+r.stderr)
			}
		}
	}
}

func TestCommands(t *testing.T) {
	acr := testkit.NewFixture(t, testkit.AcronisOptions{})
	env := varsOf(acr)
	var all []ran
	check := func(r ran, code int, in, says string) {
		t.Helper()
		all = append(all, r)
		if r.code != code || !strings.Contains(r.stdout+r.stderr, says) {
			t.Errorf("exit %d (want %d), in %s want %q:\nstdout %s\nstderr %s", r.code, code, in, says, r.stdout, r.stderr)
		}
	}
	r := run(t, t.Context(), env, "status", "Contoso Ltd", "--json")
	check(r, 0, "stdout", `"users_count": 12`)
	var st map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || len(st) != 5 {
		t.Errorf("status --json is %q (%v), want the 5 members of the status object", r.stdout, err)
	}
	check(run(t, t.Context(), env, "users", testkit.OffCustomer, "--without-totp"), 0, "stdout", "3 of Off Customer's users lack TOTP")
	check(run(t, t.Context(), env, "set", testkit.OffCustomer, "on", "--json"), 0, "stdout", `"changed": true`)
	check(run(t, t.Context(), env, "set", testkit.OnCustomer, "off"), 1, "stderr", "MFA_ALLOW_DISABLE")
	check(run(t, t.Context(), env, "status", testkit.Unknown), 1, "stderr", "not found")
	check(run(t, t.Context(), env, "sweep", "--bogus"), 2, "stderr", "flag provided but not defined")
	check(run(t, t.Context(), map[string]string{}, "sweep"), 2, "stderr", "no credentials")

	// Without a terminal, progress is plain lines on stderr; the summary on stdout.
	r = run(t, t.Context(), env, "sweep", "--json")
	check(r, 0, "stdout", `"changed": 9`)
	if lines := strings.Split(strings.TrimSpace(r.stderr), "\n"); strings.Contains(r.stderr, "\r") || !strings.HasPrefix(lines[len(lines)-1], "listed 17, drifting 10, done 17 of 17") {
		t.Errorf("progress without a terminal: %q", r.stderr)
	}
	noSecrets(t, acr, all...)
}

// Ctrl-C stops a sweep cleanly: the summary of what was done, exit 1.
func TestInterrupt(t *testing.T) {
	acr := testkit.NewAcronis(t, testkit.AcronisOptions{Tree: &sim.TreeSpec{Seed: 9, Size: 400, Drift: 0.5}})
	acr.Sim.SetFaults(sim.Faults{Latency: 20 * time.Millisecond})
	cmd := exec.Command(binary, "sweep")
	for k, v := range varsOf(acr) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr := testkit.NewOutput(nil)
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt once it is changing tenants.
	if _, err := stderr.Wait(t.Context(), 0, 30*time.Second, func(l string) bool { return strings.HasPrefix(l, "change ") }); err != nil {
		_ = cmd.Process.Kill()
		t.Fatal(err)
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 || !strings.Contains(stdout.String(), "tenants seen") || !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("%v\nstdout %s\nstderr %s", err, stdout.String(), stderr.String())
	}
}

// sim serves the simulator for the other commands, and stops on Ctrl-C.
func TestSim(t *testing.T) {
	cmd := exec.Command(binary, "sim", "--tenants", "30")
	out := testkit.NewOutput(nil)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	if _, err := out.Wait(t.Context(), 0, 10*time.Second, func(l string) bool { return strings.HasPrefix(l, "export ACRONIS_CLIENT_SECRET=") }); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, l := range out.Lines() {
		if k, v, ok := strings.Cut(strings.TrimPrefix(l, "export "), "="); ok && strings.HasPrefix(l, "export ") {
			env[k] = v
		}
	}
	if r := run(t, t.Context(), env, "sweep", "--dry-run", "--json"); r.code != 0 || !strings.Contains(r.stdout, `"tenants_seen": 31`) {
		t.Errorf("dry run on the served simulator: %d %s %s", r.code, r.stdout, r.stderr)
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Errorf("sim after Ctrl-C: %v", err)
	}
}
