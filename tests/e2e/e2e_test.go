//go:build integration

// Package e2e drives the three built functions through the real Lambda runtime
// protocol (aws-lambda-rie), with their AWS calls going to a real moto_server and
// their Acronis calls to the simulator: the contract's surface, end to end.
package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/testkit"
)

// The credentials, which must never show up in any output line.
var (
	clientSecret = "e2e-client-secret-Zq7Xw"
	signingKey   = []byte("e2e-signing-key-0123456789abcdef")
)

// namespace is not the default, to see METRICS_NAMESPACE honoured.
const namespace = "E2E/AcronisMFA"

// The emulator and the three functions, built once for the whole run.
var (
	rie        string
	bootstraps map[string]string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if rie, err = testkit.FindRIE(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err) // never skip: a skipped end-to-end test proves nothing
		return 1
	}
	dir, err := os.MkdirTemp("", "acronismfa-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if bootstraps, err = testkit.BuildFunctions(ctx, dir, "webhook", "worker", "sweep"); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: build the functions: %v\n", err)
		return 1
	}
	return m.Run()
}

// world is one test's deployment: a generated Acronis tree on the simulator,
// and moto holding the stack.
type world struct {
	sim   *sim.Server
	stack *testkit.Stack
	local *testkit.Local
}

func newWorld(t *testing.T, tree sim.TreeSpec) *world {
	t.Helper()
	s := sim.New(sim.Options{ClientSecret: clientSecret})
	s.Generate(tree)
	l, err := testkit.StartLocal(t.Context(), testkit.LocalOptions{Sim: s, Key: signingKey, RIE: rie, Bootstraps: bootstraps})
	if err != nil {
		t.Fatalf("%v: these tests need moto_server and the emulator", err)
	}
	t.Cleanup(l.Close)
	return &world{sim: s, stack: l.Stack, local: l}
}

// start runs function fn under the emulator until the test ends, with the
// stack's environment, the test namespace and extra.
func (w *world) start(t *testing.T, fn string, extra map[string]string) *testkit.Function {
	t.Helper()
	env := map[string]string{"METRICS_NAMESPACE": namespace}
	maps.Copy(env, extra)
	f, err := w.local.Start(t.Context(), fn, env)
	if err != nil {
		t.Fatal(err)
	}
	dumpOnFailure(t, fn, f)
	return f
}

func start(t *testing.T, fn string, env map[string]string) *testkit.Function {
	t.Helper()
	f, err := testkit.Start(t.Context(), testkit.Options{RIE: rie, Bootstrap: bootstraps[fn], Env: env, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	dumpOnFailure(t, fn, f)
	return f
}

// dumpOnFailure stops f when the test ends and, if it failed, logs the last of
// f's output.
func dumpOnFailure(t *testing.T, fn string, f *testkit.Function) {
	t.Cleanup(func() {
		f.Stop()
		if t.Failed() {
			lines := f.Output().Lines()
			t.Logf("the last output of %s under the emulator:\n%s", fn, strings.Join(lines[max(len(lines)-40, 0):], "\n"))
		}
	})
}

func readEvent(t *testing.T, name string) []byte {
	t.Helper()
	b, err := testkit.ReadEvent(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// metricNames are the counts every EMF document declares (docs/reference.md, Metrics).
var metricNames = []string{
	"TenantsChecked", "TenantsCompliant", "TenantsChanged", "TenantsWouldChange", "TenantsSkipped",
	"TenantsFailed", "UsersWithoutTotp", "AcronisRequests", "AcronisThrottled", "AcronisErrors",
	"TenantsInGrace", "TenantsNotified",
}

// sweepUnits are the units of the metrics only sweeps declare: a watch run
// SweepDurationMs, a full sweep all three (the stack sets REPORT_BUCKET).
var sweepUnits = map[string]string{"SweepDurationMs": "Milliseconds", "CompliancePercent": "Percent", "ReportFailures": "Count"}

// checkEMF checks the document's namespace, dimensions and declared metrics:
// the counts and sweepMetrics.
func checkEMF(t *testing.T, e testkit.EMF, function, trigger string, sweepMetrics ...string) {
	t.Helper()
	if e.Namespace != namespace {
		t.Errorf("EMF namespace %q, want METRICS_NAMESPACE %q", e.Namespace, namespace)
	}
	if len(e.Dimensions) != 1 || !slices.Equal(e.Dimensions[0], []string{"Function", "Trigger"}) ||
		e.Dimension("Function") != function || e.Dimension("Trigger") != trigger {
		t.Errorf("EMF dimensions %v Function=%q Trigger=%q, want [[Function Trigger]] %s/%s",
			e.Dimensions, e.Dimension("Function"), e.Dimension("Trigger"), function, trigger)
	}
	units := map[string]string{}
	for _, name := range metricNames {
		units[name] = "Count"
	}
	for _, name := range sweepMetrics {
		units[name] = sweepUnits[name]
	}
	if !maps.Equal(e.Units, units) {
		t.Errorf("EMF declares %v, want %v", e.Units, units)
	}
}

// rieLine matches the emulator's own output: its timestamped log lines and the
// START/END/REPORT lines it writes for Lambda.
var rieLine = regexp.MustCompile(`^(\d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2},\d{3} \[|(START|END|REPORT|INIT_REPORT) RequestId: )`)

var levels = []string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}

// checkLogs stops f and checks its whole output: every line is the emulator's
// own or one JSON object, an EMF document or a log line with Lambda's keys plus
// function and trigger; no line holds a credential.
func checkLogs(t *testing.T, f *testkit.Function, function, trigger string, wantRequestID bool) {
	t.Helper()
	f.Stop()
	logs := 0
	for _, line := range f.Output().Lines() {
		for _, secret := range []string{clientSecret, base64.StdEncoding.EncodeToString(signingKey)} {
			if strings.Contains(line, secret) {
				t.Errorf("a credential reached the output: %.120s...", line)
			}
		}
		m, ok := testkit.JSONObject(line)
		if !ok {
			if strings.TrimSpace(line) != "" && !rieLine.MatchString(line) {
				t.Errorf("output line is neither JSON nor the emulator's: %q", line)
			}
			continue
		}
		if _, ok := m["_aws"]; ok {
			continue
		}
		logs++
		ts, _ := m["timestamp"].(string)
		lvl, _ := m["level"].(string)
		msg, _ := m["message"].(string)
		id, _ := m["requestId"].(string)
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || !slices.Contains(levels, lvl) || msg == "" ||
			wantRequestID && id == "" || m["function"] != function || m["trigger"] != trigger {
			t.Errorf("log line %s: want an RFC 3339 timestamp, one of Lambda's levels, a message, a requestId and function=%s trigger=%s",
				line, function, trigger)
		}
	}
	if logs == 0 {
		t.Errorf("no JSON log line at all")
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
