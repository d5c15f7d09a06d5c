//go:build integration

package stack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"acronismfa/internal/sweep"
	"acronismfa/internal/telemetry"
	"acronismfa/internal/testkit"
)

const (
	repoRoot     = "../.."
	templatePath = repoRoot + "/template.yaml"
	webhookPath  = "/tenants/{tenant_id}/mfa"
)

// lambdaFunction ties a template function to its code and its contract.
type lambdaFunction struct {
	id  string   // logical id in the template
	dir string   // ./functions/<dir>
	env []string // variables (docs/reference.md, Configuration) it reads besides the common ones
}

var functions = []lambdaFunction{
	{id: "WebhookFunction", dir: "webhook", env: []string{"WEBHOOK_SECRET_ID"}},
	{id: "WorkerFunction", dir: "worker"},
	{id: "SweepFunction", dir: "sweep", env: []string{"ENFORCE_QUEUE_URL", "SWEEP_CONCURRENCY", "SWEEP_INLINE_LIMIT", "REPORT_BUCKET", "REPORT_PREFIX"}},
}

// commonEnv is what every function reads; any variable beyond these and the
// functions' own is one that no function reads, a typo.
var commonEnv = []string{"ACRONIS_SECRET_ID", "MFA_DESIRED_STATE", "MFA_ALLOW_DISABLE", "DRY_RUN", "ROOT_TENANT_ID",
	"EXCLUDED_TENANT_IDS", "METRICS_NAMESPACE", "ROLLOUT_GRACE_DAYS", "STATE_TABLE", "NOTIFY_TOPIC_ARN"}

// A scenario is one way to deploy the stack; the checks run for each, since
// conditions change what the functions read and may read.
type scenario struct {
	name   string
	params map[string]string
	// the secrets the functions must read and may read
	acronisSecret, webhookSecret string
	alarmActions                 []any
}

var scenarios = []scenario{
	{name: "stack-made secrets", acronisSecret: "ref:AcronisSecret", webhookSecret: "ref:WebhookSecret"},
	{
		name: "existing secrets and an alarm topic",
		params: map[string]string{
			"AcronisSecretArn": "arn:aws:secretsmanager:eu-central-1:123456789012:secret:acronis-AbCdEf",
			"WebhookSecretArn": "arn:aws:secretsmanager:eu-central-1:123456789012:secret:webhook-GhIjKl",
			"AlarmTopicArn":    "arn:aws:sns:eu-central-1:123456789012:ops",
			"MfaDesiredState":  "disabled", "MfaAllowDisable": "true", "DryRun": "false",
			"WatchSchedule": "off", "RolloutGraceDays": "7.5", "NoticeEmail": "ops@example.com",
		},
		acronisSecret: "arn:aws:secretsmanager:eu-central-1:123456789012:secret:acronis-AbCdEf",
		webhookSecret: "arn:aws:secretsmanager:eu-central-1:123456789012:secret:webhook-GhIjKl",
		alarmActions:  []any{"arn:aws:sns:eu-central-1:123456789012:ops"},
	},
}

type reporter func(format string, args ...any)

// checkTemplate returns every way the template at path breaks what the
// functions, the contract and least privilege need; none for a good template.
// root is the repository whose Makefile and functions/ the template builds.
func checkTemplate(path, root string) []string {
	t, err := loadTemplate(path)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	report := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	checkBuild(t, root, report)
	if d := str(t.Parameters["DryRun"]["Default"]); d != "true" {
		report("parameter DryRun defaults to %q: a first deploy must be a dry run (\"true\")", d)
	}
	if _, err := newEvaluation(t, map[string]string{"MfaDesiredState": "disabled", "MfaAllowDisable": "false"}); err == nil {
		report("a deploy with MfaDesiredState=disabled and MfaAllowDisable=false is accepted, and every function would fail at init: add a Rule that refuses it")
	}
	for _, want := range []string{"ApiUrl", "EnforceQueueUrl", "EnforceDLQUrl", "TenantEventBusName", "AcronisSecretArn", "WebhookSecretArn"} {
		if _, ok := t.Outputs[want]; !ok {
			report("output %s is missing", want)
		}
	}
	for _, sc := range scenarios {
		e, err := newEvaluation(t, sc.params)
		if err != nil {
			report("%s: %v", sc.name, err)
			continue
		}
		scReport := func(format string, args ...any) { report(sc.name+": "+format, args...) }
		checkScenario(e, sc, scReport)
		for _, m := range e.missing {
			scReport("%s", m)
		}
	}
	slices.Sort(problems)
	return slices.Compact(problems)
}

// checkBuild: every function is built by `sam build` through the Makefile
// target it names, from a package that exists.
func checkBuild(t *cfnTemplate, root string, report reporter) {
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		report("read Makefile: %v", err)
	}
	for id, r := range t.Resources {
		if (r.Type == "AWS::Serverless::Function" || r.Type == "AWS::Lambda::Function") &&
			!slices.ContainsFunc(functions, func(f lambdaFunction) bool { return f.id == id }) {
			report("%s: a function the contract does not know", id)
		}
	}
	for _, f := range functions {
		r, ok := t.Resources[f.id]
		if !ok || r.Type != "AWS::Serverless::Function" {
			report("%s: no AWS::Serverless::Function of that name", f.id)
			continue
		}
		if bm := str(r.Metadata["BuildMethod"]); bm != "makefile" {
			report("%s: Metadata.BuildMethod is %q, want makefile (the Makefile's build-%s target)", f.id, bm, f.id)
		}
		if target := "build-" + f.id; !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(target) + `:`).Match(makefile) {
			report("%s: the Makefile has no target %s, which sam build runs", f.id, target)
		} else {
			checkMakeTarget(root, f, report)
		}
		checkPackage(filepath.Join(root, "functions", f.dir), f.id, report)
	}
}

// checkMakeTarget: the recipe sam build runs writes a static linux/arm64
// bootstrap of the right package into ARTIFACTS_DIR.
func checkMakeTarget(root string, f lambdaFunction, report reporter) {
	const artifacts = "/artifacts-dir-probe"
	out, err := exec.Command("make", "--no-print-directory", "-C", root, "-n", "build-"+f.id, "ARTIFACTS_DIR="+artifacts).CombinedOutput()
	if err != nil {
		report("%s: make -n build-%s: %v\n%s", f.id, f.id, err, out)
		return
	}
	recipe := string(out)
	for _, want := range []string{"GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0", "lambda.norpc", "-o " + artifacts + "/bootstrap"} {
		if !strings.Contains(recipe, want) {
			report("%s: make build-%s does not build with %q:\n%s", f.id, f.id, want, recipe)
		}
	}
	if !regexp.MustCompile(`\./functions/` + f.dir + `(\s|$)`).MatchString(recipe) {
		report("%s: make build-%s does not build ./functions/%s:\n%s", f.id, f.id, f.dir, recipe)
	}
}

// checkPackage: dir holds a main package.
func checkPackage(dir, id string, report reporter) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		report("%s: its code %s: %v", id, dir, err)
		return
	}
	for _, ent := range entries {
		if name := ent.Name(); strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go") {
			if src, err := os.ReadFile(filepath.Join(dir, name)); err == nil && regexp.MustCompile(`(?m)^package main\b`).Match(src) {
				return
			}
		}
	}
	report("%s: %s holds no package main", id, dir)
}

func checkScenario(e *evaluation, sc scenario, report reporter) {
	fns := map[string]map[string]any{}
	for _, f := range functions {
		if _, ok := e.t.Resources[f.id]; ok {
			fns[f.id] = e.function(f.id)
			checkFunction(e, sc, f, fns[f.id], report)
		}
	}
	checkEvents(e, fns, report)
	checkQueues(e, fns["WorkerFunction"], report)
	checkIAM(sc, fns, report)
	checkEventBus(e, report)
	checkAlarms(e, sc, fns, report)
	checkState(e, report)
	checkReports(e, report)
	checkDashboard(e, fns, report)
}

// checkFunction: runtime, environment and logging of one function.
func checkFunction(e *evaluation, sc scenario, f lambdaFunction, p map[string]any, report reporter) {
	if got := str(p["Runtime"]); got != "provided.al2023" {
		report("%s: Runtime %q, want provided.al2023", f.id, got)
	}
	if got := asList(p["Architectures"]); !reflect.DeepEqual(got, []any{"arm64"}) {
		report("%s: Architectures %v, want [arm64]", f.id, got)
	}
	if got := str(p["Handler"]); got != "bootstrap" {
		report("%s: Handler %q, want bootstrap", f.id, got)
	}
	// sam build runs the Makefile target in CodeUri: it must be the module root.
	if got := str(p["CodeUri"]); got != "." && got != "./" {
		report("%s: CodeUri %q, want . (the module root, where the Makefile and go.mod are)", f.id, got)
	}
	if _, ok := num(p["Timeout"]); !ok {
		report("%s: no Timeout", f.id)
	}

	vars := asMap(asMap(p["Environment"])["Variables"])
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		if !slices.Contains(commonEnv, k) && !slices.ContainsFunc(functions, func(f lambdaFunction) bool { return slices.Contains(f.env, k) }) {
			report("%s: environment variable %s is not in docs/reference.md, Configuration: no function reads it", f.id, k)
		}
	}
	for _, k := range slices.Concat(commonEnv, f.env) {
		if _, ok := vars[k]; !ok {
			report("%s: environment variable %s is not set", f.id, k)
		}
	}
	want := map[string]string{"ACRONIS_SECRET_ID": sc.acronisSecret, "MFA_DESIRED_STATE": e.params["MfaDesiredState"],
		"MFA_ALLOW_DISABLE": e.params["MfaAllowDisable"], "DRY_RUN": e.params["DryRun"],
		"ROLLOUT_GRACE_DAYS": e.params["RolloutGraceDays"], "STATE_TABLE": "ref:StateTable", "NOTIFY_TOPIC_ARN": "ref:NoticeTopic"}
	switch f.id {
	case "WebhookFunction":
		want["WEBHOOK_SECRET_ID"] = sc.webhookSecret
	case "SweepFunction":
		want["ENFORCE_QUEUE_URL"] = "ref:EnforceQueue" // Ref of a queue is its URL
		want["SWEEP_CONCURRENCY"] = e.params["SweepConcurrency"]
		want["SWEEP_INLINE_LIMIT"] = e.params["SweepInlineLimit"]
		want["REPORT_BUCKET"] = "ref:ReportBucket"
		want["REPORT_PREFIX"] = reportPrefix
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if v, ok := vars[k]; ok && str(v) != want[k] {
			report("%s: %s is %q, want %q", f.id, k, str(v), want[k])
		}
	}

	lc := asMap(p["LoggingConfig"])
	if got := str(lc["LogFormat"]); got != "JSON" {
		report("%s: LoggingConfig.LogFormat %q, want JSON", f.id, got)
	}
	// The function's log group is either named by LoggingConfig.LogGroup or is
	// the default /aws/lambda/<function name>; either way the stack owns it and
	// sets its retention.
	group, ok := strings.CutPrefix(str(lc["LogGroup"]), "ref:")
	for id, r := range e.t.Resources {
		if !ok && r.Type == "AWS::Logs::LogGroup" && str(e.Eval(r.Properties["LogGroupName"])) == "/aws/lambda/ref:"+f.id {
			group = id
		}
	}
	if r, ok := e.t.Resources[group]; !ok || r.Type != "AWS::Logs::LogGroup" {
		report("%s: no AWS::Logs::LogGroup of the stack holds its logs", f.id)
	} else if got := str(e.Eval(r.Properties["RetentionInDays"])); got != e.params["LogRetentionDays"] {
		report("%s: log group %s RetentionInDays %q, want the LogRetentionDays parameter %q", f.id, group, got, e.params["LogRetentionDays"])
	}
}

func eventsOf(p map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for name, ev := range asMap(p["Events"]) {
		out[name] = asMap(ev)
	}
	return out
}

func checkEvents(e *evaluation, fns map[string]map[string]any, report reporter) {
	if p, ok := fns["WebhookFunction"]; ok {
		routes := map[string]bool{}
		for name, ev := range eventsOf(p) {
			props := asMap(ev["Properties"])
			if ev["Type"] != "HttpApi" {
				report("WebhookFunction: event %s is %v, want only HttpApi events", name, ev["Type"])
				continue
			}
			if api, _ := strings.CutPrefix(str(props["ApiId"]), "ref:"); e.t.Resources[api].Type != "AWS::Serverless::HttpApi" {
				report("WebhookFunction: event %s is not on the stack's AWS::Serverless::HttpApi (ApiId %q)", name, str(props["ApiId"]))
			}
			if v, ok := props["PayloadFormatVersion"]; ok && str(v) != "2.0" {
				report("WebhookFunction: event %s PayloadFormatVersion %q, the handler reads 2.0", name, str(v))
			}
			route := str(props["Method"]) + " " + str(props["Path"])
			if props["Method"] == nil && props["Path"] == nil {
				route = "$default" // SAM makes an event with neither the API's $default route
			}
			routes[route] = true
		}
		if want := map[string]bool{"GET " + webhookPath: true, "PUT " + webhookPath: true, "$default": true}; !maps.Equal(routes, want) {
			report("WebhookFunction: HttpApi routes %v, want exactly GET and PUT %s, and $default so that any other route gets the contract's 400",
				slices.Sorted(maps.Keys(routes)), webhookPath)
		}
	}
	if p, ok := fns["WorkerFunction"]; ok {
		evs := eventsOf(p)
		if len(evs) != 1 {
			report("WorkerFunction: %d events, want exactly the SQS event on EnforceQueue", len(evs))
		}
		for name, ev := range evs {
			props := asMap(ev["Properties"])
			if ev["Type"] != "SQS" || str(props["Queue"]) != "getatt:EnforceQueue.Arn" {
				report("WorkerFunction: event %s is %v on %q, want SQS on EnforceQueue", name, ev["Type"], str(props["Queue"]))
				continue
			}
			if !slices.Contains(asList(props["FunctionResponseTypes"]), any("ReportBatchItemFailures")) {
				report("WorkerFunction: event %s lacks FunctionResponseTypes [ReportBatchItemFailures]: one failed message would retry the whole batch", name)
			}
			if b, ok := num(props["BatchSize"]); !ok || b < 1 || b > 10 {
				report("WorkerFunction: event %s BatchSize %v, want 1..10", name, props["BatchSize"])
			}
			if c, ok := num(asMap(props["ScalingConfig"])["MaximumConcurrency"]); !ok || c < 2 {
				report("WorkerFunction: event %s needs ScalingConfig.MaximumConcurrency (>= 2) to bound the load on Acronis", name)
			}
		}
	}
	if p, ok := fns["SweepFunction"]; ok {
		if n := str(asMap(p["EventInvokeConfig"])["MaximumRetryAttempts"]); n != "0" {
			report("SweepFunction: EventInvokeConfig.MaximumRetryAttempts %q, want 0: Lambda would re-run a failed sweep twice", n)
		}
		evs := eventsOf(p)
		full, watch := 0, 0
		for name, ev := range evs {
			props := asMap(ev["Properties"])
			if ev["Type"] != "ScheduleV2" && ev["Type"] != "Schedule" {
				report("SweepFunction: event %s is %v, want a schedule", name, ev["Type"])
				continue
			}
			// The sweep's own parser says whether it takes the input.
			o, err := sweep.ParseInput([]byte(str(props["Input"])))
			if err != nil {
				report("SweepFunction: event %s Input %q: the sweep refuses it: %v", name, str(props["Input"]), err)
				continue
			}
			expr, state := str(props["ScheduleExpression"]), str(props["State"])
			switch {
			case o.UpdatedWithin == 0:
				full++
				if expr != e.params["SweepSchedule"] || state == "DISABLED" {
					report("SweepFunction: event %s ScheduleExpression %q (%s), want the SweepSchedule parameter", name, expr, state)
				}
			default:
				watch++
				on := e.params["WatchSchedule"] != "off"
				if on && (expr != e.params["WatchSchedule"] || state != "ENABLED") || !on && state != "DISABLED" {
					report("SweepFunction: event %s ScheduleExpression %q (%s), want the WatchSchedule parameter, or DISABLED when it is off", name, expr, state)
				}
			}
			if ev["Type"] == "ScheduleV2" && props["Name"] == nil && props["OmitName"] != true {
				report("SweepFunction: event %s: set OmitName: true (or a Name with the stack name), else SAM names the schedule by its logical id and two stacks collide in one account", name)
			}
		}
		if full != 1 || watch != 1 {
			report("SweepFunction: %d full sweep and %d watch schedules, want one of each", full, watch)
		}
	}
}

func checkQueues(e *evaluation, worker map[string]any, report reporter) {
	q, dlq := e.t.Resources["EnforceQueue"], e.t.Resources["EnforceDLQ"]
	if q.Type != "AWS::SQS::Queue" || dlq.Type != "AWS::SQS::Queue" {
		report("EnforceQueue, EnforceDLQ: want two AWS::SQS::Queue of these names")
		return
	}
	qp, dp := asMap(e.Eval(q.Properties)), asMap(e.Eval(dlq.Properties))
	if rp := asMap(qp["RedrivePolicy"]); len(rp) == 0 {
		report("EnforceQueue: no RedrivePolicy: a message that keeps failing is never set aside in a DLQ")
	} else {
		if got := str(rp["deadLetterTargetArn"]); got != "getatt:EnforceDLQ.Arn" {
			report("EnforceQueue: RedrivePolicy.deadLetterTargetArn %q, want EnforceDLQ's Arn", got)
		}
		if n, ok := num(rp["maxReceiveCount"]); !ok || n < 1 || n > 10 {
			report("EnforceQueue: RedrivePolicy.maxReceiveCount %v, want 1..10", rp["maxReceiveCount"])
		}
	}
	timeout, _ := num(worker["Timeout"])
	vis, ok := num(qp["VisibilityTimeout"])
	if !ok {
		vis = 30 // SQS default
	}
	if timeout == 0 || vis < 6*timeout {
		report("EnforceQueue: VisibilityTimeout %ds is below 6 x WorkerFunction Timeout (%ds)", vis, timeout)
	}
	qRet, ok := num(qp["MessageRetentionPeriod"])
	if !ok {
		qRet = 345600 // SQS default, 4 days
	}
	// A message keeps its first enqueue time in the DLQ: a DLQ with no longer a
	// retention than its source drops what it is given.
	if dRet, _ := num(dp["MessageRetentionPeriod"]); dRet != 1209600 || dRet <= qRet {
		report("EnforceDLQ: MessageRetentionPeriod %v, want 1209600 (14 days, longer than EnforceQueue's %d)", dp["MessageRetentionPeriod"], qRet)
	}
	for id, p := range map[string]map[string]any{"EnforceQueue": qp, "EnforceDLQ": dp} {
		if p["SqsManagedSseEnabled"] != true && p["KmsMasterKeyId"] == nil {
			report("%s: not encrypted at rest (SqsManagedSseEnabled)", id)
		}
	}
}

// checkIAM: each function may do exactly what it needs, on exactly what it
// needs it on, through inline statements that can be checked here.
// reportPrefix is where the sweep writes its reports, and all it may write.
const reportPrefix = "reports/"

// checkIAM: each function may do exactly what its code calls, on exactly the
// resources it calls it on (docs/reference.md, State table and Compliance
// reports name the calls).
func checkIAM(sc scenario, fns map[string]map[string]any, report reporter) {
	table, topic, reports := []string{"getatt:StateTable.Arn"}, []string{"ref:NoticeTopic"}, []string{"getatt:ReportBucket.Arn/" + reportPrefix + "*"}
	state := func(actions ...string) map[string][]string {
		m := map[string][]string{}
		for _, a := range actions {
			m["dynamodb:"+a] = table
		}
		return m
	}
	webhook := state("DeleteItem", "GetItem", "PutItem", "UpdateItem")
	webhook["secretsmanager:GetSecretValue"] = slices.Sorted(slices.Values([]string{sc.acronisSecret, sc.webhookSecret}))
	worker := state("BatchGetItem", "DeleteItem", "GetItem", "PutItem", "UpdateItem")
	worker["secretsmanager:GetSecretValue"] = []string{sc.acronisSecret}
	worker["sns:Publish"] = topic
	sweep := state("BatchGetItem", "DeleteItem", "GetItem", "PutItem", "Query", "UpdateItem")
	sweep["secretsmanager:GetSecretValue"] = []string{sc.acronisSecret}
	sweep["sns:Publish"] = topic
	sweep["sqs:SendMessage"] = []string{"getatt:EnforceQueue.Arn"}
	for _, a := range []string{"s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"} {
		sweep[a] = reports
	}
	want := map[string]map[string][]string{"WebhookFunction": webhook, "WorkerFunction": worker, "SweepFunction": sweep}
	for id, p := range fns {
		got := map[string][]string{} // action -> resources
		for i, pol := range asList(p["Policies"]) {
			doc, ok := pol.(map[string]any)
			if !ok || doc["Statement"] == nil {
				report("%s: Policies[%d] is not an inline policy document (managed policies and SAM policy templates grant more than the function needs, and cannot be checked here)", id, i)
				continue
			}
			for j, st := range asList(doc["Statement"]) {
				s := asMap(st)
				if s["NotAction"] != nil || s["NotResource"] != nil {
					report("%s: Policies[%d].Statement[%d] uses NotAction/NotResource", id, i, j)
				}
				for _, a := range asList(s["Action"]) {
					for _, r := range asList(s["Resource"]) {
						if str(s["Effect"]) == "Allow" {
							got[str(a)] = append(got[str(a)], str(r))
						}
					}
				}
			}
		}
		for _, action := range slices.Sorted(maps.Keys(got)) {
			slices.Sort(got[action])
			if strings.Contains(action, "*") {
				report("%s: wildcard action %q", id, action)
			}
			for _, r := range got[action] {
				// Objects are named by key: a wildcard below the report prefix is
				// the one that may stand.
				if strings.Contains(strings.TrimSuffix(r, "/"+reportPrefix+"*"), "*") {
					report("%s: %s on wildcard resource %q", id, action, r)
				}
			}
			if _, ok := want[id][action]; !ok {
				report("%s: may %s on %v, which it does not need", id, action, got[action])
			}
		}
		for action, resources := range want[id] {
			if !slices.Equal(got[action], resources) {
				report("%s: may %s on %v, want exactly %v", id, action, got[action], resources)
			}
		}
	}
}

func checkEventBus(e *evaluation, report reporter) {
	if e.t.Resources["TenantEventBus"].Type != "AWS::Events::EventBus" {
		report("TenantEventBus: no AWS::Events::EventBus of that name")
	}
	rule, ok := e.t.Resources["TenantCreatedRule"]
	if !ok || rule.Type != "AWS::Events::Rule" {
		report("TenantCreatedRule: no AWS::Events::Rule of that name")
		return
	}
	rp := asMap(e.Eval(rule.Properties))
	if got := str(rp["EventBusName"]); got != "ref:TenantEventBus" {
		report("TenantCreatedRule: on bus %q, want TenantEventBus", got)
	}
	if got := asList(asMap(rp["EventPattern"])["detail-type"]); !reflect.DeepEqual(got, []any{"Tenant Created"}) {
		report("TenantCreatedRule: EventPattern detail-type %v, want [Tenant Created]", got)
	}
	if s := str(rp["State"]); s != "" && s != "ENABLED" {
		report("TenantCreatedRule: State %q", s)
	}
	if targets := asList(rp["Targets"]); len(targets) != 1 || str(asMap(targets[0])["Arn"]) != "getatt:EnforceQueue.Arn" {
		report("TenantCreatedRule: targets %v, want exactly EnforceQueue", targets)
	}

	// The rule may deliver to the queue, and only the rule may.
	found := false
	for id, r := range e.t.Resources {
		if r.Type != "AWS::SQS::QueuePolicy" {
			continue
		}
		p := asMap(e.Eval(r.Properties))
		if !slices.Contains(asList(p["Queues"]), any("ref:EnforceQueue")) {
			continue
		}
		for _, st := range asList(asMap(p["PolicyDocument"])["Statement"]) {
			s := asMap(st)
			if !slices.Contains(asList(asMap(s["Principal"])["Service"]), any("events.amazonaws.com")) {
				continue
			}
			cond := asMap(s["Condition"])
			src := cmpOr(asMap(cond["ArnEquals"])["aws:SourceArn"], asMap(cond["ArnLike"])["aws:SourceArn"])
			switch {
			case str(s["Effect"]) != "Allow" || !reflect.DeepEqual(asList(s["Action"]), []any{"sqs:SendMessage"}) ||
				!reflect.DeepEqual(asList(s["Resource"]), []any{"getatt:EnforceQueue.Arn"}):
				report("%s: EventBridge statement %v, want Allow sqs:SendMessage on EnforceQueue only", id, s)
			case str(src) != "getatt:TenantCreatedRule.Arn":
				report("%s: EventBridge may send to EnforceQueue without an aws:SourceArn condition naming TenantCreatedRule (any rule of any account could)", id)
			default:
				found = true
			}
		}
	}
	if !found {
		report("EnforceQueue: no queue policy lets TenantCreatedRule (events.amazonaws.com, aws:SourceArn) send to it")
	}
}

func cmpOr(a, b any) any {
	if a != nil {
		return a
	}
	return b
}

// checkAlarms: someone hears of a message in the DLQ, a function's errors and
// a sweep's failed tenants, through the AlarmTopicArn when there is one.
func checkAlarms(e *evaluation, sc scenario, fns map[string]map[string]any, report reporter) {
	alarms := map[string]map[string]any{}
	for id, r := range e.t.Resources {
		if r.Type == "AWS::CloudWatch::Alarm" && e.created(id) {
			alarms[id] = asMap(e.Eval(r.Properties))
		}
	}
	find := func(namespace, metric string, dims map[string]string) bool {
		for _, p := range alarms {
			got := map[string]string{}
			for _, x := range asList(p["Dimensions"]) {
				got[str(asMap(x)["Name"])] = str(asMap(x)["Value"])
			}
			if th, ok := num(p["Threshold"]); ok && th == 0 && str(p["ComparisonOperator"]) == "GreaterThanThreshold" &&
				str(p["Namespace"]) == namespace && str(p["MetricName"]) == metric && maps.Equal(got, dims) {
				return true
			}
		}
		return false
	}
	if !find("AWS/SQS", "ApproximateNumberOfMessagesVisible", map[string]string{"QueueName": "getatt:EnforceDLQ.QueueName"}) {
		report("no alarm on EnforceDLQ ApproximateNumberOfMessagesVisible > 0")
	}
	for _, f := range functions {
		if !find("AWS/Lambda", "Errors", map[string]string{"FunctionName": "ref:" + f.id}) {
			report("no alarm on %s Errors > 0", f.id)
		}
	}
	ns := cmpOr(asMap(asMap(fns["SweepFunction"]["Environment"])["Variables"])["METRICS_NAMESPACE"], "AcronisMFA") // the default
	if !find(str(ns), "TenantsFailed", map[string]string{"Function": "sweep", "Trigger": "schedule"}) {
		report("no alarm on TenantsFailed > 0 in namespace %s with dimensions Function=sweep, Trigger=schedule (what the sweep emits)", ns)
	}
	if !find(str(ns), telemetry.MetricReportFailures, map[string]string{"Function": "sweep", "Trigger": "schedule"}) {
		report("no alarm on ReportFailures > 0 in namespace %s: a report that cannot be written would go unnoticed", ns)
	}
	for id, p := range alarms {
		for _, key := range []string{"AlarmActions", "OKActions"} {
			got, ok := p[key]
			switch {
			case key == "OKActions" && !ok:
			case sc.alarmActions == nil && ok && len(asList(got)) > 0:
				report("%s: %s %v without an AlarmTopicArn", id, key, got)
			case sc.alarmActions != nil && !reflect.DeepEqual(asList(got), sc.alarmActions):
				report("%s: %s %v, want the AlarmTopicArn %v", id, key, got, sc.alarmActions)
			}
		}
	}
}

// checkState: the state table is on demand, expires items by their
// expires_at, can be restored to a point in time, and has the keys the code
// writes; the notice topic is encrypted.
func checkState(e *evaluation, report reporter) {
	r := e.t.Resources["StateTable"]
	if r.Type != "AWS::DynamoDB::Table" {
		report("StateTable: no AWS::DynamoDB::Table of that name")
		return
	}
	p := asMap(e.Eval(r.Properties))
	if str(p["BillingMode"]) != "PAY_PER_REQUEST" {
		report("StateTable: BillingMode %q, want PAY_PER_REQUEST (on demand)", str(p["BillingMode"]))
	}
	if ttl := asMap(p["TimeToLiveSpecification"]); str(ttl["AttributeName"]) != "expires_at" || ttl["Enabled"] != true {
		report("StateTable: TimeToLiveSpecification %v, want expires_at enabled", ttl)
	}
	if asMap(p["PointInTimeRecoverySpecification"])["PointInTimeRecoveryEnabled"] != true {
		report("StateTable: point-in-time recovery is off")
	}
	keys := map[string]string{}
	for _, k := range asList(p["KeySchema"]) {
		keys[str(asMap(k)["AttributeName"])] = str(asMap(k)["KeyType"])
	}
	if !maps.Equal(keys, map[string]string{"pk": "HASH", "sk": "RANGE"}) {
		report("StateTable: KeySchema %v, want pk HASH and sk RANGE", keys)
	}
	if t := e.t.Resources["NoticeTopic"]; t.Type != "AWS::SNS::Topic" || str(asMap(e.Eval(t.Properties))["KmsMasterKeyId"]) == "" {
		report("NoticeTopic: want an AWS::SNS::Topic encrypted with a KMS key")
	}
}

// checkReports: the report bucket is encrypted, closed to the public, reached
// over TLS only, and forgets old reports after the parameter's days.
func checkReports(e *evaluation, report reporter) {
	r := e.t.Resources["ReportBucket"]
	if r.Type != "AWS::S3::Bucket" {
		report("ReportBucket: no AWS::S3::Bucket of that name")
		return
	}
	p := asMap(e.Eval(r.Properties))
	if len(asList(asMap(p["BucketEncryption"])["ServerSideEncryptionConfiguration"])) == 0 {
		report("ReportBucket: no BucketEncryption")
	}
	pab := asMap(p["PublicAccessBlockConfiguration"])
	for _, k := range []string{"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"} {
		if pab[k] != true {
			report("ReportBucket: PublicAccessBlockConfiguration.%s is not true", k)
		}
	}
	expires := false
	for _, rule := range asList(asMap(p["LifecycleConfiguration"])["Rules"]) {
		m := asMap(rule)
		if str(m["Status"]) == "Enabled" && str(m["Prefix"]) == reportPrefix && str(m["ExpirationInDays"]) == e.params["ReportRetentionDays"] {
			expires = true
		}
	}
	if !expires {
		report("ReportBucket: no enabled lifecycle rule expiring %s after ReportRetentionDays", reportPrefix)
	}
	tlsOnly := false
	for _, res := range e.t.Resources {
		if res.Type != "AWS::S3::BucketPolicy" || str(asMap(e.Eval(res.Properties))["Bucket"]) != "ref:ReportBucket" {
			continue
		}
		for _, st := range asList(asMap(asMap(e.Eval(res.Properties))["PolicyDocument"])["Statement"]) {
			m := asMap(st)
			cond := asMap(asMap(m["Condition"])["Bool"])
			if str(m["Effect"]) == "Deny" && str(cond["aws:SecureTransport"]) == "false" {
				tlsOnly = true
			}
		}
	}
	if !tlsOnly {
		report("ReportBucket: no bucket policy denying requests without TLS (aws:SecureTransport false)")
	}
}

// checkDashboard: every metric of the functions' namespace that the dashboard
// shows is one they emit, with the dimensions they emit it with, by the code's
// own names; and it shows what an operator watches.
func checkDashboard(e *evaluation, fns map[string]map[string]any, report reporter) {
	r := e.t.Resources["Dashboard"]
	if r.Type != "AWS::CloudWatch::Dashboard" {
		report("Dashboard: no AWS::CloudWatch::Dashboard of that name")
		return
	}
	var body struct {
		Widgets []struct {
			Properties struct {
				Metrics [][]any `json:"metrics"`
			} `json:"properties"`
		} `json:"widgets"`
	}
	if err := json.Unmarshal([]byte(str(asMap(e.Eval(r.Properties))["DashboardBody"])), &body); err != nil {
		report("Dashboard: DashboardBody is not JSON: %v", err)
		return
	}
	ns := str(cmpOr(asMap(asMap(fns["SweepFunction"]["Environment"])["Variables"])["METRICS_NAMESPACE"], "AcronisMFA"))
	emitted, err := emittedMetrics(ns)
	if err != nil {
		report("Dashboard: %v", err)
		return
	}
	shown := map[string]bool{}
	for _, w := range body.Widgets {
		for _, m := range w.Properties.Metrics {
			if len(m) < 2 {
				continue
			}
			namespace, name := fmt.Sprint(m[0]), fmt.Sprint(m[1])
			shown[namespace+" "+name] = true
			if namespace != ns {
				continue
			}
			dims := map[string]string{}
			for i := 2; i+1 < len(m); i += 2 {
				if k, ok := m[i].(string); ok {
					dims[k] = fmt.Sprint(m[i+1])
				}
			}
			src := telemetry.Source{Function: dims["Function"], Trigger: dims["Trigger"]}
			names, ok := emitted[src]
			switch {
			case len(dims) != 2 || !ok:
				report("Dashboard: %s with dimensions %v, which no function emits (Function and Trigger of %v)", name, dims, slices.Collect(maps.Keys(emitted)))
			case !slices.Contains(names, name):
				report("Dashboard: %s from %s, which %s does not emit", name, src.Function, src.Function)
			}
		}
	}
	for _, want := range []string{telemetry.MetricCompliancePercent, telemetry.MetricTenantsChanged, telemetry.MetricTenantsFailed,
		telemetry.MetricTenantsInGrace, telemetry.MetricUsersWithoutTotp, telemetry.MetricAcronisRequests, telemetry.MetricAcronisThrottled} {
		if !shown[ns+" "+want] {
			report("Dashboard: does not show %s", want)
		}
	}
	for _, want := range []string{"AWS/SQS ApproximateNumberOfMessagesVisible", "AWS/Lambda Errors"} {
		if !shown[want] {
			report("Dashboard: does not show %s", want)
		}
	}
}

// emittedMetrics reads what each function's metric documents carry from the
// documents telemetry writes: every counter, and for the sweep what only a
// full sweep's document has.
func emittedMetrics(ns string) (map[telemetry.Source][]string, error) {
	out := map[telemetry.Source][]string{}
	for _, src := range []telemetry.Source{telemetry.Webhook, telemetry.Worker, telemetry.Sweep} {
		m := telemetry.NewMetrics(ns, src)
		if src == telemetry.Sweep {
			m.SetDurationMs(1)
			m.SetCompliancePercent(100)
			m.SetReportFailed(false)
		}
		var buf bytes.Buffer
		if err := m.Write(&buf, time.Unix(0, 0)); err != nil {
			return nil, err
		}
		doc, err := testkit.ParseEMF(strings.TrimSpace(buf.String()))
		if err != nil {
			return nil, fmt.Errorf("the metrics document of %s: %w", src.Function, err)
		}
		out[src] = doc.Order
	}
	return out, nil
}
