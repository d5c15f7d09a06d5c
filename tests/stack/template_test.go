//go:build integration

package stack

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestTemplate(t *testing.T) {
	for _, p := range checkTemplate(templatePath, repoRoot) {
		t.Error(p)
	}
}

// TestCfnLint: AWS's linter accepts the template, and rejects it with an
// unknown ScheduleV2 property, which proves it can fail.
func TestCfnLint(t *testing.T) {
	bin, err := exec.LookPath("cfn-lint")
	if err != nil {
		t.Fatalf("cfn-lint is not on PATH: it comes with the machine image (pip package cfn-lint with aws-sam-translator) and validates template.yaml: %v", err)
	}
	if out, err := exec.Command(bin, templatePath).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("cfn-lint %s: %v\n%s", templatePath, err, out)
	}
	out, err := exec.Command(bin, mutate(t, templatePath, "Input: \"{}\"", "Input: \"{}\"\n            NoSuchProperty: 1")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "NoSuchProperty") {
		t.Errorf("cfn-lint did not reject a ScheduleV2 event with an unknown property (%v):\n%s", err, out)
	}
}

// mutate writes a copy of the file at path with old (which must occur exactly
// once) replaced by new, under the same name in a new directory, and returns
// the copy's path.
func mutate(t *testing.T, path, old, new string) string {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(src), old); n != 1 {
		t.Fatalf("mutation is stale: %q occurs %d times in %s, want 1", old, n, path)
	}
	copyPath := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(copyPath, []byte(strings.Replace(string(src), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return copyPath
}

// reports fails the test unless one of problems contains want.
func reports(t *testing.T, problems []string, want string) {
	t.Helper()
	for _, p := range problems {
		if strings.Contains(p, want) {
			return
		}
	}
	t.Errorf("checkTemplate did not report %q; it reported %d problems:\n%s", want, len(problems), strings.Join(problems, "\n"))
}

// TestTemplateMutations breaks the template in ways that matter and expects
// checkTemplate to notice each, for the reason given.
func TestTemplateMutations(t *testing.T) {
	const (
		webhookSecretLine = "                - !If [CreateWebhookSecret, !Ref WebhookSecret, !Ref WebhookSecretArn]\n"
		acronisSecretLine = "                - !If [CreateAcronisSecret, !Ref AcronisSecret, !Ref AcronisSecretArn]\n"
	)
	cases := []struct {
		name, old, new, want string
	}{
		{"no dead-letter queue", "      RedrivePolicy:\n        deadLetterTargetArn: !GetAtt EnforceDLQ.Arn\n        maxReceiveCount: 5\n", "", "no RedrivePolicy"},
		{"redrive to the queue itself", "deadLetterTargetArn: !GetAtt EnforceDLQ.Arn", "deadLetterTargetArn: !GetAtt EnforceQueue.Arn", "deadLetterTargetArn"},
		{"sweep may send to any queue",
			"- sqs:SendMessage\n              Resource:\n                - !GetAtt EnforceQueue.Arn",
			"- sqs:SendMessage\n              Resource:\n                - \"*\"",
			`sqs:SendMessage on wildcard resource "*"`},
		{"sweep may send to the DLQ too",
			"- sqs:SendMessage\n              Resource:\n                - !GetAtt EnforceQueue.Arn",
			"- sqs:SendMessage\n              Resource:\n                - !GetAtt EnforceQueue.Arn\n                - !GetAtt EnforceDLQ.Arn",
			"may sqs:SendMessage on [getatt:EnforceDLQ.Arn getatt:EnforceQueue.Arn]"},
		{"worker may send messages",
			"                - !Ref NoticeTopic\n      Events:\n        EnforceQueue:",
			"                - !Ref NoticeTopic\n            - Effect: Allow\n              Action: sqs:SendMessage\n              Resource: !GetAtt EnforceQueue.Arn\n      Events:\n        EnforceQueue:",
			"WorkerFunction: may sqs:SendMessage"},
		{"visibility timeout below 6 x worker timeout",
			"VisibilityTimeout: 360", "VisibilityTimeout: 300",
			"VisibilityTimeout 300s is below 6 x WorkerFunction Timeout"},
		{"worker timeout raised past the visibility timeout",
			"      Timeout: 60\n", "      Timeout: 120\n",
			"VisibilityTimeout 360s is below 6 x WorkerFunction Timeout (120s)"},
		{"DLQ keeps messages no longer than the queue", "MessageRetentionPeriod: 1209600", "MessageRetentionPeriod: 345600", "EnforceDLQ: MessageRetentionPeriod"},
		{"queue not encrypted",
			"      VisibilityTimeout: 360\n      MessageRetentionPeriod: 345600\n      SqsManagedSseEnabled: true\n",
			"      VisibilityTimeout: 360\n      MessageRetentionPeriod: 345600\n",
			"EnforceQueue: not encrypted"},
		{"worker without partial batch failures", "            FunctionResponseTypes: [ReportBatchItemFailures]\n", "", "ReportBatchItemFailures"},
		{"worker on the DLQ", "Queue: !GetAtt EnforceQueue.Arn", "Queue: !GetAtt EnforceDLQ.Arn", "want SQS on EnforceQueue"},
		{"webhook cannot read its signing keys", webhookSecretLine, "", "WebhookFunction: may secretsmanager:GetSecretValue on"},
		{"worker may read the webhook keys",
			acronisSecretLine + "            # rollout notices and write leases\n",
			acronisSecretLine + webhookSecretLine + "            # rollout notices and write leases\n",
			"WorkerFunction: may secretsmanager:GetSecretValue on"},
		{"secrets wildcard action",
			"              Action:\n                - secretsmanager:GetSecretValue\n              Resource:\n" + acronisSecretLine + webhookSecretLine,
			"              Action:\n                - secretsmanager:*\n              Resource:\n" + acronisSecretLine + webhookSecretLine,
			`wildcard action "secretsmanager:*"`},
		{"function reads a secret it may not read",
			"ACRONIS_SECRET_ID: !If [CreateAcronisSecret, !Ref AcronisSecret, !Ref AcronisSecretArn]",
			"ACRONIS_SECRET_ID: !Ref AcronisSecretArn",
			`ACRONIS_SECRET_ID is "", want "ref:AcronisSecret"`},
		{"secret referenced when not created",
			"ACRONIS_SECRET_ID: !If [CreateAcronisSecret, !Ref AcronisSecret, !Ref AcronisSecretArn]",
			"ACRONIS_SECRET_ID: !Ref AcronisSecret",
			"reference to AcronisSecret, which this deployment does not create"},
		{"webhook without its secret id",
			"          WEBHOOK_SECRET_ID: !If", "          WEBHOOK_SECRETS_ID: !If",
			"WebhookFunction: environment variable WEBHOOK_SECRET_ID is not set"},
		{"typo in a variable name",
			"          SWEEP_INLINE_LIMIT: !Ref SweepInlineLimit", "          SWEEP_INLINE_LIMT: !Ref SweepInlineLimit",
			"SWEEP_INLINE_LIMT is not in docs/reference.md"},
		{"sweep without the queue URL", "          ENFORCE_QUEUE_URL: !Ref EnforceQueue\n", "", "SweepFunction: environment variable ENFORCE_QUEUE_URL is not set"},
		{"sweep fans out to the DLQ", "ENFORCE_QUEUE_URL: !Ref EnforceQueue", "ENFORCE_QUEUE_URL: !Ref EnforceDLQ", `ENFORCE_QUEUE_URL is "ref:EnforceDLQ"`},
		{"x86_64", "Architectures: [arm64]", "Architectures: [x86_64]", "Architectures [x86_64]"},
		{"old runtime", "Runtime: provided.al2023", "Runtime: provided.al2", `Runtime "provided.al2"`},
		{"not a bootstrap handler", "Handler: bootstrap", "Handler: main", `Handler "main"`},
		{"not built by the Makefile",
			"    Metadata:\n      BuildMethod: makefile\n    Properties:\n      Description: Signed webhook",
			"    Metadata:\n      BuildMethod: go1.x\n    Properties:\n      Description: Signed webhook",
			"WebhookFunction: Metadata.BuildMethod"},
		{"renamed function has no Makefile target",
			"  WorkerFunction:\n    Type: AWS::Serverless::Function", "  QueueFunction:\n    Type: AWS::Serverless::Function",
			"QueueFunction: a function the contract does not know"},
		{"PUT route becomes POST", "            Method: PUT\n", "            Method: POST\n", "want exactly GET and PUT"},
		{"no catch-all route",
			"        OtherRoutes:\n          Type: HttpApi\n          Properties:\n            ApiId: !Ref WebhookApi\n            PayloadFormatVersion: \"2.0\"\n", "",
			"want exactly GET and PUT"},
		{"a failed sweep retried by Lambda", "      EventInvokeConfig:\n        MaximumRetryAttempts: 0\n", "", "SweepFunction: EventInvokeConfig"},
		{"route path changed",
			"            Method: GET\n            Path: /tenants/{tenant_id}/mfa", "            Method: GET\n            Path: /tenants/{id}/mfa",
			"want exactly GET and PUT"},
		{"payload format 1.0",
			"            Method: GET\n            Path: /tenants/{tenant_id}/mfa\n            PayloadFormatVersion: \"2.0\"",
			"            Method: GET\n            Path: /tenants/{tenant_id}/mfa\n            PayloadFormatVersion: \"1.0\"",
			"PayloadFormatVersion"},
		{"sweep schedule ignores the parameter", "ScheduleExpression: !Ref SweepSchedule", "ScheduleExpression: rate(1 hour)", "ScheduleExpression"},
		{"sweep input the sweep rejects", `Input: "{}"`, `Input: '{"dryrun": true}'`, `the sweep refuses it: invalid sweep input: unknown override "dryrun"`},
		{"watch input the sweep rejects", `Input: '{"updated_within_minutes": 5}'`, `Input: '{"updated_within_minutes": 0}'`, `the sweep refuses it`},
		{"watch schedule gone", "        Watch:\n          Type: ScheduleV2", "        Watch:\n          Type: SQS", "event Watch is SQS, want a schedule"},
		{"watch schedule left on when off", "            State: !If [WatchOn, ENABLED, DISABLED]", "            State: ENABLED", "or DISABLED when it is off"},
		{"schedule named by its logical id", "            OmitName: true\n            FlexibleTimeWindow:\n              Mode: \"OFF\"\n            RetryPolicy:\n              MaximumRetryAttempts: 2",
			"            FlexibleTimeWindow:\n              Mode: \"OFF\"\n            RetryPolicy:\n              MaximumRetryAttempts: 2", "OmitName"},
		{"rule on the default bus", "EventBusName: !Ref TenantEventBus", "EventBusName: default", "TenantCreatedRule: on bus"},
		{"rule matches another detail-type", `detail-type: ["Tenant Created"]`, `detail-type: ["TenantCreated"]`, "EventPattern detail-type"},
		{"rule targets the DLQ",
			"        - Id: EnforceQueue\n          Arn: !GetAtt EnforceQueue.Arn", "        - Id: EnforceQueue\n          Arn: !GetAtt EnforceDLQ.Arn",
			"TenantCreatedRule: targets"},
		{"queue policy without source condition",
			"            Condition:\n              ArnEquals:\n                aws:SourceArn: !GetAtt TenantCreatedRule.Arn\n", "",
			"without an aws:SourceArn condition"},
		{"plain-text logs", "LogFormat: JSON", "LogFormat: Text", `LogFormat "Text"`},
		{"log retention not set",
			"      LogGroupName: !Sub \"/aws/lambda/${AWS::StackName}-worker\"\n      RetentionInDays: !Ref LogRetentionDays\n",
			"      LogGroupName: !Sub \"/aws/lambda/${AWS::StackName}-worker\"\n",
			"log group WorkerLogGroup RetentionInDays"},
		{"no DLQ alarm", "MetricName: ApproximateNumberOfMessagesVisible", "MetricName: ApproximateNumberOfMessagesDelayed", "no alarm on EnforceDLQ"},
		{"TenantsFailed alarm on a dimension nobody emits",
			"      MetricName: TenantsFailed\n      Dimensions:\n        - Name: Function\n          Value: sweep\n        - Name: Trigger\n          Value: schedule",
			"      MetricName: TenantsFailed\n      Dimensions:\n        - Name: Function\n          Value: sweep\n        - Name: Trigger\n          Value: scheduled",
			"no alarm on TenantsFailed"},
		{"TenantsFailed alarm in another namespace", "      Namespace: AcronisMFA\n      MetricName: TenantsFailed", "      Namespace: AcronisMfa\n      MetricName: TenantsFailed", "no alarm on TenantsFailed"},
		{"dashboard metric nobody emits", `"AcronisMFA", "TenantsInGrace", "Function", "sweep"`, `"AcronisMFA", "TenantsGrace", "Function", "sweep"`,
			"Dashboard: TenantsGrace from sweep, which sweep does not emit"},
		{"dashboard metric under dimensions nobody emits", `"CompliancePercent", "Function", "sweep", "Trigger", "schedule"`,
			`"CompliancePercent", "Function", "sweep", "Trigger", "cron"`, "Dashboard: CompliancePercent with dimensions"},
		{"sweep-only metric from the worker", `"AcronisMFA", "TenantsNotified", "Function", "worker"`, `"AcronisMFA", "ReportFailures", "Function", "worker"`,
			"Dashboard: ReportFailures from worker, which worker does not emit"},
		{"state kept forever", "        AttributeName: expires_at\n        Enabled: true", "        AttributeName: expires_at\n        Enabled: false",
			"StateTable: TimeToLiveSpecification"},
		{"state not restorable", "        PointInTimeRecoveryEnabled: true", "        PointInTimeRecoveryEnabled: false", "point-in-time recovery is off"},
		{"state table provisioned", "      BillingMode: PAY_PER_REQUEST\n", "      BillingMode: PROVISIONED\n", "StateTable: BillingMode"},
		{"reports open to the public", "        RestrictPublicBuckets: true", "        RestrictPublicBuckets: false", "RestrictPublicBuckets is not true"},
		{"reports over plain HTTP", `aws:SecureTransport: "false"`, `aws:SecureTransport: "true"`, "no bucket policy denying requests without TLS"},
		{"reports kept forever", "            ExpirationInDays: !Ref ReportRetentionDays", "            ExpirationInDays: 30", "no enabled lifecycle rule"},
		{"sweep may write anywhere in the bucket", `!Sub "${ReportBucket.Arn}/reports/*"`, `!Sub "${ReportBucket.Arn}/*"`, "on wildcard resource"},
		{"worker may query the state", "                - dynamodb:BatchGetItem\n                - dynamodb:DeleteItem\n                - dynamodb:GetItem\n                - dynamodb:PutItem\n                - dynamodb:UpdateItem",
			"                - dynamodb:BatchGetItem\n                - dynamodb:DeleteItem\n                - dynamodb:GetItem\n                - dynamodb:PutItem\n                - dynamodb:Query\n                - dynamodb:UpdateItem",
			"WorkerFunction: may dynamodb:Query"},
		{"topic in clear", "      KmsMasterKeyId: alias/aws/sns\n", "", "NoticeTopic: want an AWS::SNS::Topic encrypted"},
		{"report failures unwatched", "      MetricName: ReportFailures", "      MetricName: ReportFailure", "no alarm on ReportFailures"},
		{"alarm that notifies nobody",
			"      AlarmActions: !If [HasAlarmTopic, [!Ref AlarmTopicArn], !Ref AWS::NoValue]\n      OKActions: !If [HasAlarmTopic, [!Ref AlarmTopicArn], !Ref AWS::NoValue]\n\nOutputs:",
			"      OKActions: !If [HasAlarmTopic, [!Ref AlarmTopicArn], !Ref AWS::NoValue]\n\nOutputs:",
			"ReportFailuresAlarm: AlarmActions <nil>, want the AlarmTopicArn"},
		{"no rule against disabled without allow-disable",
			"      - Assert: !Equals [!Ref MfaAllowDisable, \"true\"]", "      - Assert: !Equals [!Ref MfaAllowDisable, !Ref MfaAllowDisable]",
			"add a Rule that refuses it"},
		{"first deploy writes", "    Default: \"true\"\n", "    Default: \"false\"\n", "parameter DryRun defaults"},
		{"no ApiUrl output", "  ApiUrl:\n", "  WebhookUrl:\n", "output ApiUrl is missing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reports(t, checkTemplate(mutate(t, templatePath, tc.old, tc.new), repoRoot), tc.want)
		})
	}
}

// TestMakefileMutations: the build recipe that sam build runs is checked too.
func TestMakefileMutations(t *testing.T) {
	functionsDir, err := filepath.Abs(filepath.Join(repoRoot, "functions"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, old, new, want string }{
		{"amd64 build", "GOARCH=arm64", "GOARCH=amd64", `does not build with "GOARCH=arm64"`},
		{"cgo build", "CGO_ENABLED=0 GOOS", "CGO_ENABLED=1 GOOS", `does not build with "CGO_ENABLED=0"`},
		{"bootstrap elsewhere", "-o $(ARTIFACTS_DIR)/bootstrap ./functions/worker", "-o $(ARTIFACTS_DIR)/main ./functions/worker", "WorkerFunction: make build-WorkerFunction does not build with \"-o"},
		{"wrong package", "-o $(ARTIFACTS_DIR)/bootstrap ./functions/sweep", "-o $(ARTIFACTS_DIR)/bootstrap ./functions/worker", "does not build ./functions/sweep"},
		{"target missing", "build-WebhookFunction:", "build-Webhook:", "the Makefile has no target build-WebhookFunction"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Dir(mutate(t, filepath.Join(repoRoot, "Makefile"), tc.old, tc.new))
			if err := os.Symlink(functionsDir, filepath.Join(root, "functions")); err != nil {
				t.Fatal(err)
			}
			reports(t, checkTemplate(templatePath, root), tc.want)
		})
	}
}

// TestSamBuildTargets runs each build-<LogicalId> target as `sam build` does
// (make with ARTIFACTS_DIR) and checks that the result is what provided.al2023
// on arm64 executes: a static, stripped linux/arm64 ELF named bootstrap.
func TestSamBuildTargets(t *testing.T) {
	for _, f := range functions {
		t.Run(f.id, func(t *testing.T) {
			artifacts := t.TempDir()
			cmd := exec.Command("make", "--no-print-directory", "-C", repoRoot, "build-"+f.id, "ARTIFACTS_DIR="+artifacts)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("make build-%s: %v\n%s", f.id, err, out)
			}
			bin, err := elf.Open(filepath.Join(artifacts, "bootstrap"))
			if err != nil {
				t.Fatalf("ARTIFACTS_DIR/bootstrap: %v", err)
			}
			defer bin.Close()
			if bin.Machine != elf.EM_AARCH64 || bin.OSABI != elf.ELFOSABI_NONE && bin.OSABI != elf.ELFOSABI_LINUX {
				t.Errorf("bootstrap is %v/%v, want linux arm64", bin.OSABI, bin.Machine)
			}
			for _, p := range bin.Progs {
				if p.Type == elf.PT_INTERP {
					t.Error("bootstrap is dynamically linked (has PT_INTERP): build with CGO_ENABLED=0")
				}
			}
			if bin.Section(".symtab") != nil {
				t.Error("bootstrap keeps its symbol table: build with -ldflags \"-s -w\"")
			}
		})
	}
}
