package config

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"acronismfa/internal/policy"
	"acronismfa/internal/tenant"
)

// Function names the Lambda function being configured: some variables are
// required by one function only.
type Function string

// The three functions of the stack.
const (
	Webhook Function = "webhook"
	Worker  Function = "worker"
	Sweep   Function = "sweep"
)

// Config is the validated configuration of one function.
type Config struct {
	AcronisSecretID   string   // ACRONIS_SECRET_ID: id or ARN of the Acronis credentials secret
	WebhookSecretID   string   // WEBHOOK_SECRET_ID: id or ARN of the signing keys; required only for Webhook
	DesiredEnabled    bool     // MFA_DESIRED_STATE: "enabled" (default) is true, "disabled" false
	AllowDisable      bool     // MFA_ALLOW_DISABLE: unless true, nothing turns MFA off
	DryRun            bool     // DRY_RUN: decide and report, never write
	RootTenantID      string   // ROOT_TENANT_ID, lowercased; "" means the API client's own tenant
	ExcludedTenantIDs []string // EXCLUDED_TENANT_IDS, lowercased, in the order given
	SweepConcurrency  int      // SWEEP_CONCURRENCY: Acronis requests in flight during a sweep
	EnforceQueueURL   string   // ENFORCE_QUEUE_URL: the worker queue; "" means no fan-out
	SweepInlineLimit  int      // SWEEP_INLINE_LIMIT: tenants a sweep handles itself before fanning out
	MetricsNamespace  string   // METRICS_NAMESPACE: CloudWatch namespace of the EMF metrics
}

// Defaults (docs/reference.md, Configuration).
const (
	DefaultSweepConcurrency = 8
	DefaultSweepInlineLimit = 5000
	DefaultMetricsNamespace = "AcronisMFA"

	// maxSweepConcurrency bounds SWEEP_CONCURRENCY: beyond it a sweep would only
	// collect 429s from Acronis and exhaust the function's sockets.
	maxSweepConcurrency = 256
	// maxNamespaceLen is CloudWatch's limit on a metric namespace.
	maxNamespaceLen = 255
)

// Load reads the configuration of function fn through getenv (os.Getenv in
// production, a map in tests). Surrounding whitespace is ignored and an empty
// value means the default, because a template parameter left blank arrives as
// "". The error, if any, names the first bad variable and what it accepts.
func Load(fn Function, getenv func(string) string) (Config, error) {
	switch fn {
	case Webhook, Worker, Sweep:
	default:
		return Config{}, fmt.Errorf("config: unknown function %q: accepts webhook, worker or sweep", fn)
	}
	get := func(name string) string { return strings.TrimSpace(getenv(name)) }

	c := Config{
		AcronisSecretID:  get("ACRONIS_SECRET_ID"),
		WebhookSecretID:  get("WEBHOOK_SECRET_ID"),
		SweepConcurrency: DefaultSweepConcurrency,
		SweepInlineLimit: DefaultSweepInlineLimit,
		MetricsNamespace: DefaultMetricsNamespace,
	}
	if c.AcronisSecretID == "" {
		return Config{}, missing("ACRONIS_SECRET_ID", "a Secrets Manager secret id or ARN")
	}
	if fn == Webhook && c.WebhookSecretID == "" {
		return Config{}, missing("WEBHOOK_SECRET_ID", "a Secrets Manager secret id or ARN (required by the webhook function)")
	}

	var err error
	if c.DesiredEnabled, err = desiredState(get("MFA_DESIRED_STATE")); err != nil {
		return Config{}, err
	}
	if c.AllowDisable, err = boolean("MFA_ALLOW_DISABLE", get("MFA_ALLOW_DISABLE")); err != nil {
		return Config{}, err
	}
	if d, refused := c.Rules().Preflight(policy.Intent{Enable: c.DesiredEnabled}); refused {
		return Config{}, fmt.Errorf(`config: MFA_DESIRED_STATE="disabled": %s: nothing turns MFA off unless disabling is allowed explicitly`, d.Reason)
	}
	if c.DryRun, err = boolean("DRY_RUN", get("DRY_RUN")); err != nil {
		return Config{}, err
	}
	if v := get("ROOT_TENANT_ID"); v != "" {
		if !tenant.ValidID(v) {
			return Config{}, bad("ROOT_TENANT_ID", v, "a tenant UUID, or empty for the API client's own tenant")
		}
		c.RootTenantID = strings.ToLower(v)
	}
	if c.ExcludedTenantIDs, err = tenantList("EXCLUDED_TENANT_IDS", get("EXCLUDED_TENANT_IDS")); err != nil {
		return Config{}, err
	}
	if v := get("SWEEP_CONCURRENCY"); v != "" {
		if c.SweepConcurrency, err = intIn("SWEEP_CONCURRENCY", v, 1, maxSweepConcurrency); err != nil {
			return Config{}, err
		}
	}
	if v := get("ENFORCE_QUEUE_URL"); v != "" {
		if !httpURL(v) {
			return Config{}, bad("ENFORCE_QUEUE_URL", v, "an http:// or https:// SQS queue URL, or empty for no fan-out")
		}
		c.EnforceQueueURL = v
	}
	if v := get("SWEEP_INLINE_LIMIT"); v != "" {
		if c.SweepInlineLimit, err = intIn("SWEEP_INLINE_LIMIT", v, 1, 0); err != nil {
			return Config{}, err
		}
	}
	if v := get("METRICS_NAMESPACE"); v != "" {
		if !validNamespace(v) {
			return Config{}, bad("METRICS_NAMESPACE", v, `1 to 255 printable ASCII characters without ':', not starting with "AWS/"`)
		}
		c.MetricsNamespace = v
	}
	return c, nil
}

// Rules is the operator's policy from the configuration.
func (c Config) Rules() policy.Rules {
	return policy.Rules{
		AllowDisable: c.AllowDisable,
		DryRun:       c.DryRun,
		Excluded:     policy.NewExclusions(c.ExcludedTenantIDs),
	}
}

func missing(name, accepts string) error {
	return fmt.Errorf("config: %s is not set: accepts %s", name, accepts)
}

func bad(name, value, accepts string) error {
	return fmt.Errorf("config: %s=%s: accepts %s", name, short(value), accepts)
}

// short quotes a bad value for the error, cut so that one pasted blob cannot
// flood the init log line.
func short(v string) string {
	const max = 64
	if utf8.RuneCountInString(v) > max {
		v = string([]rune(v)[:max]) + "…"
	}
	return strconv.Quote(v)
}

func desiredState(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "", "enabled":
		return true, nil
	case "disabled":
		return false, nil
	}
	return false, bad("MFA_DESIRED_STATE", v, `"enabled" or "disabled"`)
}

// boolean accepts true and false only (any case): a lenient parser would read
// "yes" or "1" one way here and another way in the operator's head.
func boolean(name, v string) (bool, error) {
	switch strings.ToLower(v) {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, bad(name, v, `"true" or "false"`)
}

func tenantList(name, v string) ([]string, error) {
	var ids []string
	for i, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if !tenant.ValidID(item) {
			return nil, fmt.Errorf("config: %s item %d %s: accepts comma-separated tenant UUIDs", name, i+1, short(item))
		}
		ids = append(ids, strings.ToLower(item))
	}
	return ids, nil
}

// intIn parses a decimal integer in [lo, hi]; hi 0 means no upper bound.
func intIn(name, v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || hi != 0 && n > hi {
		if hi == 0 {
			return 0, bad(name, v, fmt.Sprintf("a whole number >= %d", lo))
		}
		return 0, bad(name, v, fmt.Sprintf("a whole number from %d to %d", lo, hi))
	}
	return n, nil
}

func httpURL(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.User == nil
}

// validNamespace applies CloudWatch's namespace rules: 1 to 255 printable
// ASCII characters and not the reserved "AWS/" prefix. The API forbids only a
// leading ':'; forbidding any keeps the rule short enough to state in the error.
func validNamespace(v string) bool {
	if len(v) > maxNamespaceLen || strings.HasPrefix(v, "AWS/") {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e || v[i] == ':' {
			return false
		}
	}
	return true
}
