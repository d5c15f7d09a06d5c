package config

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"acronismfa/internal/acronis"
)

const (
	tenantA = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
	tenantB = "9b2d4c1e-0f3a-4e5b-8c7d-6a5b4c3d2e1f"
)

// env returns a getenv over the minimal valid environment plus overrides; an
// override of "" unsets a variable.
func env(overrides map[string]string) func(string) string {
	vars := map[string]string{
		"ACRONIS_SECRET_ID": "acronis-mfa/acronis",
		"WEBHOOK_SECRET_ID": "acronis-mfa/webhook",
	}
	for k, v := range overrides {
		vars[k] = v
	}
	return func(k string) string { return vars[k] }
}

func TestLoadAccepts(t *testing.T) {
	arn := "arn:aws:secretsmanager:us-east-1:123456789012:secret:acronis-AbCdEf"
	queue := "https://sqs.us-east-1.amazonaws.com/123456789012/enforce"
	tests := []struct {
		name string
		fn   Function
		vars map[string]string
		want func(*Config) // applied to the defaults
	}{
		{"defaults", Sweep, nil, func(*Config) {}},
		{"secret ARN", Worker, map[string]string{"ACRONIS_SECRET_ID": arn}, func(c *Config) { c.AcronisSecretID = arn }},
		{"secret id trimmed", Webhook, map[string]string{"WEBHOOK_SECRET_ID": "  hooks \n"}, func(c *Config) { c.WebhookSecretID = "hooks" }},
		{"worker needs no webhook secret", Worker, map[string]string{"WEBHOOK_SECRET_ID": ""}, func(c *Config) { c.WebhookSecretID = "" }},
		{"sweep needs no webhook secret", Sweep, map[string]string{"WEBHOOK_SECRET_ID": ""}, func(c *Config) { c.WebhookSecretID = "" }},
		{"desired ENABLED in any case, false in any case", Sweep,
			map[string]string{"MFA_DESIRED_STATE": "ENABLED", "MFA_ALLOW_DISABLE": "False", "DRY_RUN": "false"}, func(*Config) {}},
		{"desired disabled when allowed", Sweep, map[string]string{"MFA_DESIRED_STATE": "disabled", "MFA_ALLOW_DISABLE": "TRUE"},
			func(c *Config) { c.DesiredEnabled, c.AllowDisable = false, true }},
		{"dry run True", Sweep, map[string]string{"DRY_RUN": "True"}, func(c *Config) { c.DryRun = true }},
		{"root tenant lowercased", Sweep, map[string]string{"ROOT_TENANT_ID": strings.ToUpper(tenantA)}, func(c *Config) { c.RootTenantID = tenantA }},
		{"excluded list trimmed, empties ignored, lowercased", Sweep,
			map[string]string{"EXCLUDED_TENANT_IDS": " " + tenantA + " ,, " + strings.ToUpper(tenantB) + ","},
			func(c *Config) { c.ExcludedTenantIDs = []string{tenantA, tenantB} }},
		{"excluded only commas", Sweep, map[string]string{"EXCLUDED_TENANT_IDS": " , ,"}, func(*Config) {}},
		{"lower bounds", Sweep, map[string]string{"SWEEP_CONCURRENCY": "1", "SWEEP_INLINE_LIMIT": "1", "METRICS_NAMESPACE": "N"},
			func(c *Config) { c.SweepConcurrency, c.SweepInlineLimit, c.MetricsNamespace = 1, 1, "N" }},
		{"upper bounds", Sweep,
			map[string]string{"SWEEP_CONCURRENCY": "256", "SWEEP_INLINE_LIMIT": "1000000", "METRICS_NAMESPACE": strings.Repeat("n", 255)},
			func(c *Config) {
				c.SweepConcurrency, c.SweepInlineLimit, c.MetricsNamespace = 256, 1000000, strings.Repeat("n", 255)
			}},
		{"queue https", Sweep, map[string]string{"ENFORCE_QUEUE_URL": queue}, func(c *Config) { c.EnforceQueueURL = queue }},
		{"queue http for local emulators", Sweep, map[string]string{"ENFORCE_QUEUE_URL": "http://127.0.0.1:5000/123456789012/enforce"},
			func(c *Config) { c.EnforceQueueURL = "http://127.0.0.1:5000/123456789012/enforce" }},
		{"namespace", Sweep, map[string]string{"METRICS_NAMESPACE": "Security/Acronis MFA_1.0#x"}, func(c *Config) { c.MetricsNamespace = "Security/Acronis MFA_1.0#x" }},
		{"blank means default", Sweep, map[string]string{"SWEEP_CONCURRENCY": " ", "METRICS_NAMESPACE": "", "MFA_DESIRED_STATE": "", "REPORT_PREFIX": " "}, func(*Config) {}},
		{"rollout", Worker, map[string]string{"ROLLOUT_GRACE_DAYS": "1.5", "STATE_TABLE": "acronis-mfa-state",
			"NOTIFY_TOPIC_ARN": "arn:aws:sns:eu-central-1:123456789012:acronis-mfa-notices"},
			func(c *Config) {
				c.RolloutGrace, c.StateTable = 36*time.Hour, "acronis-mfa-state"
				c.NotifyTopicARN = "arn:aws:sns:eu-central-1:123456789012:acronis-mfa-notices"
			}},
		{"grace 0 and 365, table by ARN", Sweep, map[string]string{"ROLLOUT_GRACE_DAYS": "365", "STATE_TABLE": "arn:aws:dynamodb:us-east-1:123456789012:table/state"},
			func(c *Config) {
				c.RolloutGrace, c.StateTable = 365*24*time.Hour, "arn:aws:dynamodb:us-east-1:123456789012:table/state"
			}},
		{"grace 0 needs no table", Sweep, map[string]string{"ROLLOUT_GRACE_DAYS": "0"}, func(*Config) {}},
		{"command line with a secret", CLI, nil, func(*Config) {}},
		{"command line with three variables", CLI, map[string]string{"ACRONIS_SECRET_ID": "", "ACRONIS_BASE_URL": "http://127.0.0.1:8443/api/2/",
			"ACRONIS_CLIENT_ID": "c", "ACRONIS_CLIENT_SECRET": "s"}, func(c *Config) {
			c.AcronisSecretID = ""
			c.AcronisCredentials = acronis.Credentials{BaseURL: "http://127.0.0.1:8443", ClientID: "c", ClientSecret: "s"}
		}},
		{"reports", Sweep, map[string]string{"REPORT_BUCKET": "acme-mfa.reports-1", "REPORT_PREFIX": "mfa/compliance"},
			func(c *Config) { c.ReportBucket, c.ReportPrefix = "acme-mfa.reports-1", "mfa/compliance/" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load(tt.fn, env(tt.vars))
			if err != nil {
				t.Fatalf("rejected: %v", err)
			}
			want := Config{AcronisSecretID: "acronis-mfa/acronis", WebhookSecretID: "acronis-mfa/webhook", DesiredEnabled: true,
				SweepConcurrency: 8, SweepInlineLimit: 5000, MetricsNamespace: "AcronisMFA", ReportPrefix: "reports/"}
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestLoadRejects(t *testing.T) {
	tests := []struct {
		name string
		fn   Function
		vars map[string]string
		want []string // substrings of the error
	}{
		{"unknown function", Function("cron"), nil, []string{`"cron"`, "webhook, worker, sweep or cli"}},
		{"acronis secret missing", Sweep, map[string]string{"ACRONIS_SECRET_ID": ""}, []string{"ACRONIS_SECRET_ID is not set"}},
		{"acronis secret blank", Worker, map[string]string{"ACRONIS_SECRET_ID": "  "}, []string{"ACRONIS_SECRET_ID is not set"}},
		{"webhook secret missing", Webhook, map[string]string{"WEBHOOK_SECRET_ID": ""}, []string{"WEBHOOK_SECRET_ID is not set"}},
		{"desired state on", Sweep, map[string]string{"MFA_DESIRED_STATE": "on"}, []string{`MFA_DESIRED_STATE="on": accepts "enabled" or "disabled"`}},
		{"disabled without allow", Sweep, map[string]string{"MFA_DESIRED_STATE": "disabled"}, []string{"MFA_DESIRED_STATE", "MFA_ALLOW_DISABLE"}},
		{"disabled with allow false", Worker, map[string]string{"MFA_DESIRED_STATE": "disabled", "MFA_ALLOW_DISABLE": "false"}, []string{"MFA_DESIRED_STATE", "MFA_ALLOW_DISABLE"}},
		{"allow disable yes", Webhook, map[string]string{"MFA_ALLOW_DISABLE": "yes"}, []string{`MFA_ALLOW_DISABLE="yes": accepts "true" or "false"`}},
		{"allow disable 1", Webhook, map[string]string{"MFA_ALLOW_DISABLE": "1"}, []string{`MFA_ALLOW_DISABLE="1"`, `"true" or "false"`}},
		{"dry run 0", Sweep, map[string]string{"DRY_RUN": "0"}, []string{`DRY_RUN="0": accepts "true" or "false"`}},
		{"root tenant not uuid", Sweep, map[string]string{"ROOT_TENANT_ID": "root"}, []string{`ROOT_TENANT_ID="root"`, "UUID"}},
		{"root tenant braces", Sweep, map[string]string{"ROOT_TENANT_ID": "{" + tenantA + "}"}, []string{"ROOT_TENANT_ID", "UUID"}},
		{"excluded bad item named", Sweep, map[string]string{"EXCLUDED_TENANT_IDS": tenantA + ",nope," + tenantB}, []string{"EXCLUDED_TENANT_IDS item 2", `"nope"`, "UUIDs"}},
		{"excluded semicolons", Sweep, map[string]string{"EXCLUDED_TENANT_IDS": tenantA + ";" + tenantB}, []string{"EXCLUDED_TENANT_IDS item 1"}},
		{"concurrency 0", Sweep, map[string]string{"SWEEP_CONCURRENCY": "0"}, []string{`SWEEP_CONCURRENCY="0": accepts a whole number from 1 to 256`}},
		{"concurrency 257", Sweep, map[string]string{"SWEEP_CONCURRENCY": "257"}, []string{`SWEEP_CONCURRENCY="257"`, "1 to 256"}},
		{"concurrency text", Sweep, map[string]string{"SWEEP_CONCURRENCY": "eight"}, []string{`SWEEP_CONCURRENCY="eight"`}},
		{"concurrency fraction", Sweep, map[string]string{"SWEEP_CONCURRENCY": "2.5"}, []string{`SWEEP_CONCURRENCY="2.5"`}},
		{"queue not a url", Sweep, map[string]string{"ENFORCE_QUEUE_URL": "enforce-queue"}, []string{`ENFORCE_QUEUE_URL="enforce-queue"`, "http:// or https://"}},
		{"queue arn", Sweep, map[string]string{"ENFORCE_QUEUE_URL": "arn:aws:sqs:us-east-1:123456789012:enforce"}, []string{"ENFORCE_QUEUE_URL"}},
		{"queue ftp", Sweep, map[string]string{"ENFORCE_QUEUE_URL": "ftp://example.com/q"}, []string{"ENFORCE_QUEUE_URL"}},
		{"queue no host", Sweep, map[string]string{"ENFORCE_QUEUE_URL": "https:///q"}, []string{"ENFORCE_QUEUE_URL"}},
		{"inline limit 0", Sweep, map[string]string{"SWEEP_INLINE_LIMIT": "0"}, []string{`SWEEP_INLINE_LIMIT="0": accepts a whole number >= 1`}},
		{"inline limit negative", Sweep, map[string]string{"SWEEP_INLINE_LIMIT": "-5"}, []string{`SWEEP_INLINE_LIMIT="-5"`}},
		{"inline limit overflow", Sweep, map[string]string{"SWEEP_INLINE_LIMIT": "99999999999999999999"}, []string{"SWEEP_INLINE_LIMIT", ">= 1"}},
		{"namespace colon", Sweep, map[string]string{"METRICS_NAMESPACE": "Acronis:MFA"}, []string{`METRICS_NAMESPACE="Acronis:MFA"`, "without ':'"}},
		{"namespace reserved", Sweep, map[string]string{"METRICS_NAMESPACE": "AWS/Lambda"}, []string{"METRICS_NAMESPACE", `"AWS/"`}},
		{"namespace too long", Sweep, map[string]string{"METRICS_NAMESPACE": strings.Repeat("n", 256)}, []string{"METRICS_NAMESPACE", "1 to 255"}},
		{"namespace non-ascii", Sweep, map[string]string{"METRICS_NAMESPACE": "Acronis–MFA"}, []string{"METRICS_NAMESPACE"}},
		{"grace without table", Worker, map[string]string{"ROLLOUT_GRACE_DAYS": "7"}, []string{"ROLLOUT_GRACE_DAYS=\"7\" requires STATE_TABLE"}},
		{"grace negative", Sweep, map[string]string{"ROLLOUT_GRACE_DAYS": "-1", "STATE_TABLE": "t-1"}, []string{`ROLLOUT_GRACE_DAYS="-1"`, "from 0 to 365"}},
		{"grace over a year", Sweep, map[string]string{"ROLLOUT_GRACE_DAYS": "366", "STATE_TABLE": "t-1"}, []string{"ROLLOUT_GRACE_DAYS", "0 to 365"}},
		{"grace in words", Sweep, map[string]string{"ROLLOUT_GRACE_DAYS": "7d", "STATE_TABLE": "t-1"}, []string{`ROLLOUT_GRACE_DAYS="7d"`}},
		{"grace NaN", Sweep, map[string]string{"ROLLOUT_GRACE_DAYS": "NaN", "STATE_TABLE": "t-1"}, []string{"ROLLOUT_GRACE_DAYS"}},
		{"grace exponent", Sweep, map[string]string{"ROLLOUT_GRACE_DAYS": "1e2", "STATE_TABLE": "t-1"}, []string{"ROLLOUT_GRACE_DAYS"}},
		{"table name short", Webhook, map[string]string{"STATE_TABLE": "ab"}, []string{`STATE_TABLE="ab"`, "DynamoDB table"}},
		{"table name spaces", Webhook, map[string]string{"STATE_TABLE": "my table"}, []string{"STATE_TABLE"}},
		{"table ARN of a queue", Webhook, map[string]string{"STATE_TABLE": "arn:aws:sqs:us-east-1:123456789012:table/x"}, []string{"STATE_TABLE"}},
		{"topic not an ARN", Sweep, map[string]string{"NOTIFY_TOPIC_ARN": "acronis-notices"}, []string{`NOTIFY_TOPIC_ARN="acronis-notices"`, "SNS topic ARN"}},
		{"topic ARN of a queue", Sweep, map[string]string{"NOTIFY_TOPIC_ARN": "arn:aws:sqs:us-east-1:123456789012:q"}, []string{"NOTIFY_TOPIC_ARN"}},
		{"bucket uppercase", Sweep, map[string]string{"REPORT_BUCKET": "Reports"}, []string{`REPORT_BUCKET="Reports"`, "S3 bucket name"}},
		{"bucket dots", Sweep, map[string]string{"REPORT_BUCKET": "a..b"}, []string{"REPORT_BUCKET"}},
		{"bucket ends with a dash", Sweep, map[string]string{"REPORT_BUCKET": "reports-"}, []string{"REPORT_BUCKET"}},
		{"prefix absolute", Sweep, map[string]string{"REPORT_PREFIX": "/reports/"}, []string{`REPORT_PREFIX="/reports/"`}},
		{"prefix with spaces", Sweep, map[string]string{"REPORT_PREFIX": "my reports/"}, []string{"REPORT_PREFIX"}},
		{"command line without credentials", CLI, map[string]string{"ACRONIS_SECRET_ID": ""}, []string{"no credentials", "ACRONIS_SECRET_ID", "ACRONIS_BASE_URL"}},
		{"command line with both", CLI, map[string]string{"ACRONIS_BASE_URL": "https://eu2-cloud.acronis.com"}, []string{"both set"}},
		{"command line without base URL", CLI, map[string]string{"ACRONIS_SECRET_ID": "", "ACRONIS_CLIENT_ID": "c", "ACRONIS_CLIENT_SECRET": "s"},
			[]string{"ACRONIS_BASE_URL is not set", "https://eu2-cloud.acronis.com"}},
		{"command line without client id", CLI, map[string]string{"ACRONIS_SECRET_ID": "", "ACRONIS_BASE_URL": "https://x.example"}, []string{"ACRONIS_CLIENT_ID is not set"}},
		{"command line without client secret", CLI, map[string]string{"ACRONIS_SECRET_ID": "", "ACRONIS_BASE_URL": "https://x.example", "ACRONIS_CLIENT_ID": "c"},
			[]string{"ACRONIS_CLIENT_SECRET is not set"}},
		{"command line over plain http", CLI, map[string]string{"ACRONIS_SECRET_ID": "", "ACRONIS_BASE_URL": "http://user:pw@eu2-cloud.acronis.com",
			"ACRONIS_CLIENT_ID": "c", "ACRONIS_CLIENT_SECRET": "s3cr3t"}, []string{"ACRONIS_BASE_URL must not carry credentials"}},
		{"long value cut", Sweep, map[string]string{"ROOT_TENANT_ID": strings.Repeat("x", 10000)}, []string{"ROOT_TENANT_ID", "xxx…"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.fn, env(tt.vars))
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if len(err.Error()) > 300 {
				t.Errorf("error is %d bytes long: a pasted blob must not flood the init log", len(err.Error()))
			}
		})
	}
}
