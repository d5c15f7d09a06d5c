package config

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"acronismfa/internal/acronis"
	"acronismfa/internal/policy"
	"acronismfa/internal/secrets"
	"acronismfa/internal/tenant"
)

// Function names the Lambda function being configured: some variables are
// required by one function only.
type Function string

// The three functions of the stack, and the operator's command line.
const (
	Webhook Function = "webhook"
	Worker  Function = "worker"
	Sweep   Function = "sweep"
	CLI     Function = "cli"
)

// Config is the validated configuration of one function.
type Config struct {
	AcronisSecretID string // ACRONIS_SECRET_ID: id or ARN of the Acronis credentials secret
	// AcronisCredentials are the command line's ACRONIS_BASE_URL,
	// ACRONIS_CLIENT_ID and ACRONIS_CLIENT_SECRET, when it has no
	// ACRONIS_SECRET_ID; the base URL normalised.
	AcronisCredentials acronis.Credentials
	WebhookSecretID    string   // WEBHOOK_SECRET_ID: id or ARN of the signing keys; required only for Webhook
	DesiredEnabled     bool     // MFA_DESIRED_STATE: "enabled" (default) is true, "disabled" false
	AllowDisable       bool     // MFA_ALLOW_DISABLE: unless true, nothing turns MFA off
	DryRun             bool     // DRY_RUN: decide and report, never write
	RootTenantID       string   // ROOT_TENANT_ID, lowercased; "" means the API client's own tenant
	ExcludedTenantIDs  []string // EXCLUDED_TENANT_IDS, lowercased, in the order given
	SweepConcurrency   int      // SWEEP_CONCURRENCY: Acronis requests in flight during a sweep
	EnforceQueueURL    string   // ENFORCE_QUEUE_URL: the worker queue; "" means no fan-out
	SweepInlineLimit   int      // SWEEP_INLINE_LIMIT: tenants a sweep handles itself before fanning out
	MetricsNamespace   string   // METRICS_NAMESPACE: CloudWatch namespace of the EMF metrics
	// ROLLOUT_GRACE_DAYS: between a tenant's notice and its enforcement when
	// enabling MFA would lock users out; 0 enforces at once.
	RolloutGrace   time.Duration
	StateTable     string // STATE_TABLE: DynamoDB table of notices and replay records; "" means none
	NotifyTopicARN string // NOTIFY_TOPIC_ARN: SNS topic of notices and sweep digests; "" means none
	ReportBucket   string // REPORT_BUCKET: S3 bucket of the compliance reports; "" means none
	ReportPrefix   string // REPORT_PREFIX: key prefix of the reports, ending in "/" unless empty
}

// Defaults (docs/reference.md, Configuration).
const (
	DefaultSweepConcurrency = 8
	DefaultSweepInlineLimit = 5000
	DefaultMetricsNamespace = "AcronisMFA"
	DefaultReportPrefix     = "reports/"

	// maxGraceDays bounds ROLLOUT_GRACE_DAYS: a year is as long as a rollout
	// can sensibly wait.
	maxGraceDays = 365

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
	case Webhook, Worker, Sweep, CLI:
	default:
		return Config{}, fmt.Errorf("config: unknown function %q: accepts webhook, worker, sweep or cli", fn)
	}
	get := func(name string) string { return strings.TrimSpace(getenv(name)) }

	c := Config{
		AcronisSecretID:  get("ACRONIS_SECRET_ID"),
		WebhookSecretID:  get("WEBHOOK_SECRET_ID"),
		SweepConcurrency: DefaultSweepConcurrency,
		SweepInlineLimit: DefaultSweepInlineLimit,
		MetricsNamespace: DefaultMetricsNamespace,
	}
	switch {
	case fn == CLI:
		if err := c.loadCredentials(get); err != nil {
			return Config{}, err
		}
	case c.AcronisSecretID == "":
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
	if err := c.loadSweep(get); err != nil {
		return Config{}, err
	}
	if err := c.loadRollout(get); err != nil {
		return Config{}, err
	}
	return c, nil
}

// loadCredentials reads where the command line finds its credentials: in
// Secrets Manager, or in three variables, never in a flag.
func (c *Config) loadCredentials(get func(string) string) error {
	base, id, secret := get("ACRONIS_BASE_URL"), get("ACRONIS_CLIENT_ID"), get("ACRONIS_CLIENT_SECRET")
	switch {
	case c.AcronisSecretID != "" && (base != "" || id != "" || secret != ""):
		return fmt.Errorf("config: ACRONIS_SECRET_ID and ACRONIS_BASE_URL/ACRONIS_CLIENT_ID/ACRONIS_CLIENT_SECRET are both set: set one")
	case c.AcronisSecretID != "":
		return nil
	case base == "" && id == "" && secret == "":
		return fmt.Errorf("config: no credentials: set ACRONIS_SECRET_ID (a Secrets Manager secret), or ACRONIS_BASE_URL, ACRONIS_CLIENT_ID and ACRONIS_CLIENT_SECRET")
	case base == "":
		return missing("ACRONIS_BASE_URL", "the data center's https:// URL, such as https://eu2-cloud.acronis.com")
	case id == "":
		return missing("ACRONIS_CLIENT_ID", "the API client's id")
	case secret == "":
		return missing("ACRONIS_CLIENT_SECRET", "the API client's secret")
	}
	normalised, err := secrets.NormaliseBaseURL(base)
	if err != nil {
		// The URL may hold credentials; the error names the variable, not the value.
		return fmt.Errorf("config: ACRONIS_BASE_URL %v", err)
	}
	c.AcronisCredentials = acronis.Credentials{BaseURL: normalised, ClientID: id, ClientSecret: secret}
	return nil
}

// loadSweep reads where sweeps start, what they leave alone and how they run.
func (c *Config) loadSweep(get func(string) string) error {
	var err error
	if v := get("ROOT_TENANT_ID"); v != "" {
		var ok bool
		if c.RootTenantID, ok = tenant.ParseID(v); !ok {
			return bad("ROOT_TENANT_ID", v, "a tenant UUID, or empty for the API client's own tenant")
		}
	}
	if c.ExcludedTenantIDs, err = tenantList("EXCLUDED_TENANT_IDS", get("EXCLUDED_TENANT_IDS")); err != nil {
		return err
	}
	if v := get("SWEEP_CONCURRENCY"); v != "" {
		if c.SweepConcurrency, err = intIn("SWEEP_CONCURRENCY", v, 1, maxSweepConcurrency); err != nil {
			return err
		}
	}
	if v := get("ENFORCE_QUEUE_URL"); v != "" {
		if !httpURL(v) {
			return bad("ENFORCE_QUEUE_URL", v, "an http:// or https:// SQS queue URL, or empty for no fan-out")
		}
		c.EnforceQueueURL = v
	}
	if v := get("SWEEP_INLINE_LIMIT"); v != "" {
		if c.SweepInlineLimit, err = intIn("SWEEP_INLINE_LIMIT", v, 1, 0); err != nil {
			return err
		}
	}
	if v := get("METRICS_NAMESPACE"); v != "" {
		if !validNamespace(v) {
			return bad("METRICS_NAMESPACE", v, `1 to 255 printable ASCII characters without ':', not starting with "AWS/"`)
		}
		c.MetricsNamespace = v
	}
	return nil
}

// loadRollout reads the rollout's grace and the AWS resources of state,
// notices and reports.
func (c *Config) loadRollout(get func(string) string) error {
	if v := get("ROLLOUT_GRACE_DAYS"); v != "" {
		days, err := strconv.ParseFloat(v, 64)
		if err != nil || strings.ContainsAny(v, "eEnNiIxX") || days < 0 || days > maxGraceDays {
			return bad("ROLLOUT_GRACE_DAYS", v, "a decimal number of days from 0 to 365, such as 7 or 1.5")
		}
		c.RolloutGrace = time.Duration(days * float64(24*time.Hour))
	}
	if v := get("STATE_TABLE"); v != "" {
		if !validTable(v) {
			return bad("STATE_TABLE", v, "a DynamoDB table name (3 to 255 of A-Z a-z 0-9 _ - .) or table ARN")
		}
		c.StateTable = v
	}
	if c.RolloutGrace > 0 && c.StateTable == "" {
		return fmt.Errorf("config: ROLLOUT_GRACE_DAYS=%s requires STATE_TABLE: the notices and their deadlines are kept there", short(get("ROLLOUT_GRACE_DAYS")))
	}
	if v := get("NOTIFY_TOPIC_ARN"); v != "" {
		if !validARN(v, "sns") {
			return bad("NOTIFY_TOPIC_ARN", v, "an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)")
		}
		c.NotifyTopicARN = v
	}
	if v := get("REPORT_BUCKET"); v != "" {
		if !validBucket(v) {
			return bad("REPORT_BUCKET", v, "an S3 bucket name: 3 to 63 of a-z 0-9 . -, starting and ending with a letter or digit")
		}
		c.ReportBucket = v
	}
	c.ReportPrefix = DefaultReportPrefix
	if v := get("REPORT_PREFIX"); v != "" {
		if !validPrefix(v) {
			return bad("REPORT_PREFIX", v, "up to 512 of A-Z a-z 0-9 ! - _ . * ' ( ) /, not starting with /")
		}
		// A prefix names a folder: "mfa" and "mfa/" both put reports in mfa/.
		c.ReportPrefix = strings.TrimSuffix(v, "/") + "/"
	}
	return nil
}

// Rules is the operator's policy from the configuration.
func (c Config) Rules() policy.Rules {
	return policy.Rules{
		AllowDisable: c.AllowDisable,
		DryRun:       c.DryRun,
		Excluded:     policy.NewExclusions(c.ExcludedTenantIDs),
		Grace:        c.RolloutGrace,
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
		id, ok := tenant.ParseID(item)
		if !ok {
			return nil, fmt.Errorf("config: %s item %d %s: accepts comma-separated tenant UUIDs", name, i+1, short(item))
		}
		ids = append(ids, id)
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

// validTable accepts a DynamoDB table name or a table ARN.
func validTable(v string) bool {
	if name, ok := strings.CutPrefix(v, "arn:"); ok {
		_, name, ok = strings.Cut(name, ":table/")
		return ok && validARN(v, "dynamodb") && validTable(name)
	}
	return len(v) >= 3 && len(v) <= 255 && onlyOf(v, "_-.")
}

// validARN accepts arn:PARTITION:service:REGION:ACCOUNT:RESOURCE.
func validARN(v, service string) bool {
	parts := strings.SplitN(v, ":", 6)
	return len(parts) == 6 && parts[0] == "arn" && strings.HasPrefix(parts[1], "aws") && parts[2] == service &&
		parts[3] != "" && len(parts[4]) == 12 && onlyOf(parts[4], "") && parts[5] != "" && onlyOf(parts[5], "_-./")
}

// validBucket applies S3's rules for bucket names.
func validBucket(v string) bool {
	if len(v) < 3 || len(v) > 63 || strings.Contains(v, "..") {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		alnum := 'a' <= c && c <= 'z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || i == len(v)-1 || c != '.' && c != '-') {
			return false
		}
	}
	return true
}

// validPrefix accepts S3's safe key characters, so that a report's key never
// needs escaping in an s3:// URI or a log line.
func validPrefix(v string) bool {
	return len(v) <= 512 && !strings.HasPrefix(v, "/") && onlyOf(v, "!-_.*'()/")
}

// onlyOf reports whether v holds ASCII letters, digits and the given others only.
func onlyOf(v, others string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(others, c) >= 0) {
			return false
		}
	}
	return true
}
