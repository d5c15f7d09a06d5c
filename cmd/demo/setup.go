package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/tenant"
	"acronismfa/internal/testkit"
)

// provision creates the two secrets and the worker queue in moto and returns
// each function's environment (contract section 2).
func (d *demo) provision(ctx context.Context, acronisURL string) (map[string]map[string]string, error) {
	cfg, err := d.moto.Config(ctx)
	if err != nil {
		return nil, err
	}
	d.key = make([]byte, 32)
	_, _ = rand.Read(d.key) // crypto/rand.Read never fails
	acr, _ := json.Marshal(map[string]string{
		"base_url": acronisURL, "client_id": d.sim.ClientID(), "client_secret": d.sim.ClientSecret(),
	})
	keys, _ := json.Marshal(map[string][]string{"signing_keys": {"whsec_" + base64.StdEncoding.EncodeToString(d.key)}})
	sm := secretsmanager.NewFromConfig(cfg)
	arns := map[string]string{}
	for name, value := range map[string][]byte{"acronis-mfa/acronis": acr, "acronis-mfa/webhook": keys} {
		out, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(string(value))})
		if err != nil {
			return nil, fmt.Errorf("create secret %s in moto: %w", name, err)
		}
		arns[name] = aws.ToString(out.ARN)
	}
	q, err := sqs.NewFromConfig(cfg).CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("acronis-mfa-enforce")})
	if err != nil {
		return nil, fmt.Errorf("create the queue in moto: %w", err)
	}
	common := d.moto.Env()
	common["ACRONIS_SECRET_ID"] = arns["acronis-mfa/acronis"]
	common["MFA_DESIRED_STATE"] = "enabled"
	common["MFA_ALLOW_DISABLE"] = "false"
	common["DRY_RUN"] = "false"
	env := map[string]map[string]string{}
	for _, name := range []string{"webhook", "worker", "sweep"} {
		env[name] = maps.Clone(common)
	}
	env["webhook"]["WEBHOOK_SECRET_ID"] = arns["acronis-mfa/webhook"]
	env["sweep"]["ENFORCE_QUEUE_URL"] = aws.ToString(q.QueueUrl)
	env["sweep"]["SWEEP_CONCURRENCY"] = "8"
	return env, nil
}

// result is one invocation as the demo saw it.
type result struct {
	status int
	body   []byte
	lines  []string // the function's output for this invocation, up to its EMF document
	emf    testkit.EMF
	took   time.Duration
}

// invoke sends event to fn through the emulator and waits for the invocation's
// EMF document. A crash, an init failure or a returned error is an error.
func (d *demo) invoke(ctx context.Context, fn string, event []byte) (result, error) {
	f := d.fns[fn]
	mark := f.Output().Mark()
	t0 := time.Now()
	status, body, err := f.Invoke(ctx, event)
	took := time.Since(t0)
	if err != nil {
		return result{}, fmt.Errorf("%s: %w", fn, err)
	}
	if status != 200 {
		return result{}, fmt.Errorf("%s: the emulator answered HTTP %d (crash or init failure): %s; see %s", fn, status, body, d.logPath)
	}
	var fnErr struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}
	if json.Unmarshal(body, &fnErr) == nil && fnErr.ErrorMessage != "" {
		return result{}, fmt.Errorf("%s returned an error (%s): %s", fn, fnErr.ErrorType, fnErr.ErrorMessage)
	}
	line, err := f.Output().Wait(ctx, mark, 10*time.Second, testkit.IsEMF)
	if err != nil {
		return result{}, fmt.Errorf("%s wrote no EMF document for the invocation: %w", fn, err)
	}
	emf, err := testkit.ParseEMF(line)
	if err != nil {
		return result{}, fmt.Errorf("%s's EMF document: %w", fn, err)
	}
	var lines []string
	for _, l := range f.Output().Since(mark) {
		lines = append(lines, l)
		if l == line {
			break
		}
	}
	return result{status: status, body: body, lines: lines, emf: emf, took: took}, nil
}

// readEvent reads a sample event of events/.
func readEvent(name string) ([]byte, error) {
	root, err := testkit.ModuleRoot()
	if err != nil {
		return nil, err
	}
	return os.ReadFile(filepath.Join(root, "events", name))
}

// --- report formatting ---

func (d *demo) header(title string) {
	d.step++
	fmt.Fprintf(d.out, "\n%d. %s\n", d.step, title)
}

func (d *demo) printf(format string, args ...any) {
	fmt.Fprintf(d.out, "   "+format+"\n", args...)
}

// table prints label/value pairs, perRow pairs to a row.
func (d *demo) table(perRow int, pairs ...any) {
	tw := tabwriter.NewWriter(d.out, 0, 0, 2, ' ', 0)
	for i := 0; i < len(pairs); i += 2 {
		if i%(2*perRow) == 0 {
			fmt.Fprint(tw, "     ")
		}
		fmt.Fprintf(tw, "%v\t%v\t", pairs[i], pairs[i+1])
		if (i/2)%perRow == perRow-1 || i+2 >= len(pairs) {
			fmt.Fprintln(tw)
		} else {
			fmt.Fprint(tw, "  ")
		}
	}
	_ = tw.Flush()
}

// printEMF shows an invocation's metrics as CloudWatch would get them.
func (d *demo) printEMF(e testkit.EMF) {
	d.printf("metrics (EMF, namespace %s, Function=%s, Trigger=%s):", e.Namespace, e.Dimension("Function"), e.Dimension("Trigger"))
	var pairs []any
	for _, name := range e.Order {
		v := fmt.Sprint(e.Metrics[name])
		if e.Units[name] == "Milliseconds" {
			v += " ms"
		}
		pairs = append(pairs, name, v)
	}
	d.table(4, pairs...)
}

// printJSON shows a JSON document indented under the step.
func (d *demo) printJSON(label string, doc []byte) {
	var buf bytes.Buffer
	if err := json.Indent(&buf, doc, "     ", "  "); err != nil {
		d.printf("%s %s", label, doc)
		return
	}
	d.printf("%s", label)
	fmt.Fprintf(d.out, "     %s\n", buf.Bytes())
}

// summaryOrder is the sweep summary's fields as contract section 6 lists them.
var summaryOrder = []string{
	"tenants_seen", "compliant", "changed", "would_change", "skipped_inherited", "skipped_disabled",
	"skipped_excluded", "not_allowed", "failed", "fanned_out", "users_without_totp", "duration_ms",
}

// sweepSummary decodes a sweep's answer and prints it as a table.
func (d *demo) sweepSummary(r result) (map[string]any, error) {
	var s map[string]any
	if err := json.Unmarshal(r.body, &s); err != nil {
		return nil, fmt.Errorf("sweep answer %s: %w", r.body, err)
	}
	for _, k := range append([]string{"root_tenant_id", "desired", "dry_run"}, summaryOrder...) {
		if _, ok := s[k]; !ok {
			return nil, fmt.Errorf("sweep summary lacks %q: %s", k, r.body)
		}
	}
	d.printf("answer: summary (root %s, desired %v, dry_run %v)", s["root_tenant_id"], s["desired"], s["dry_run"])
	var pairs []any
	for _, k := range summaryOrder {
		pairs = append(pairs, k, s[k])
	}
	d.table(3, pairs...)
	seen, sum := num(s["tenants_seen"]), 0
	for _, k := range summaryOrder[1:10] {
		sum += num(s[k])
	}
	if sum != seen {
		return nil, fmt.Errorf("the summary's buckets add up to %d, tenants_seen is %d", sum, seen)
	}
	if want := len(d.sim.All()); seen != want {
		return nil, fmt.Errorf("tenants_seen %d, the simulator's tree has %d", seen, want)
	}
	return s, nil
}

func num(v any) int {
	f, _ := v.(float64)
	return int(f)
}

// --- simulator facts ---

// driftReport is what the simulator says about tenants with MFA off.
type driftReport struct {
	fixable  []sim.Tenant // a sweep should turn these on
	disabled int          // suspended tenants with MFA off: left alone
	locked   int          // update_allowed false with MFA off: not allowed
}

func (d *demo) drift() driftReport {
	var r driftReport
	for _, t := range d.sim.All() {
		if t.Kind == "unit" || t.Kind == "folder" || tenant.MFAOn(t.MFAStatus) {
			continue
		}
		switch {
		case !t.Enabled:
			r.disabled++
		case !t.UpdateAllowed:
			r.locked++
		default:
			r.fixable = append(r.fixable, t)
		}
	}
	return r
}

func (r driftReport) String() string {
	return fmt.Sprintf("%d to fix, plus %d suspended and %d locked (update_allowed: false) that policy leaves alone",
		len(r.fixable), r.disabled, r.locked)
}

func mustGet(s *sim.Server, id string) sim.Tenant {
	t, _ := s.Get(id)
	return t
}

// totpDebt sums, per tenant enabled, the users who must now set up TOTP, from
// the audit lines of an invocation, largest first.
func totpDebt(lines []string) (total int, top []string) {
	type debt struct {
		name  string
		users int
	}
	var all []debt
	for _, a := range testkit.AuditLines(lines) {
		if a["action"] != "enable" && a["action"] != "would_enable" {
			continue
		}
		n := num(a["users_without_totp"])
		total += n
		name, _ := a["tenant_name"].(string)
		if name == "" {
			name, _ = a["tenant_id"].(string)
		}
		all = append(all, debt{name, n})
	}
	slices.SortStableFunc(all, func(a, b debt) int { return b.users - a.users })
	for _, x := range all[:min(len(all), 5)] {
		top = append(top, fmt.Sprintf("%s (%d)", x.name, x.users))
	}
	return total, top
}

func short(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

func joinOr(items []string, none string) string {
	if len(items) == 0 {
		return none
	}
	return strings.Join(items, ", ")
}
