package main

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/tenant"
	"acronismfa/internal/testkit"
	"acronismfa/internal/webhook"
)

// Tenants a provisioning system creates after the sweep, MFA off, as Acronis
// creates them. "Contoso Ltd" is the name events/worker-batch.json looks up.
var newCustomers = []sim.Tenant{
	{Name: "Fabrikam Inc", Kind: "customer", Enabled: true, UpdateAllowed: true, MFAStatus: "disabled", UsersCount: 25, UsersWithTOTP: 3},
	{Name: "Contoso Ltd", Kind: "customer", Enabled: true, UpdateAllowed: true, MFAStatus: "disabled", UsersCount: 12, UsersWithTOTP: 0},
	{Name: "Northwind Traders", Kind: "customer", Enabled: true, UpdateAllowed: true, MFAStatus: "disabled", UsersCount: 8, UsersWithTOTP: 8},
}

func (d *demo) dryRunSweep(ctx context.Context) error {
	event, err := readEvent("sweep-dry-run.json")
	if err != nil {
		return err
	}
	d.header("Dry-run sweep")
	d.printf("sent: %s  (events/sweep-dry-run.json: an ad-hoc run's override)", strings.TrimSpace(string(event)))
	before, puts, states := d.drift(), d.sim.Count("PUT", "/mfa/status"), d.states()
	r, err := d.invoke(ctx, "sweep", event)
	if err != nil {
		return err
	}
	s, err := d.sweepSummary(r)
	if err != nil {
		return err
	}
	after := d.drift()
	d.printf("simulator: MFA off before: %s", before)
	d.printf("           MFA off after:  %s", after)
	d.printf("           PUT requests: %d (a dry run writes nothing)", d.sim.Count("PUT", "/mfa/status")-puts)
	total, top := totpDebt(r.lines)
	d.printf("           enabling would make %d users set up TOTP; most in: %s", total, joinOr(top, "none"))
	d.printEMF(r.emf)
	switch {
	case s["dry_run"] != true:
		return fmt.Errorf("the dry run's summary says dry_run %v", s["dry_run"])
	case num(s["would_change"]) != len(before.fixable) || num(s["changed"]) != 0:
		return fmt.Errorf("dry run: would_change %v changed %v, the simulator has %d to fix", s["would_change"], s["changed"], len(before.fixable))
	case d.sim.Count("PUT", "/mfa/status") != puts || !maps.Equal(states, d.states()):
		return fmt.Errorf("the dry run changed the tree")
	case num(s["users_without_totp"]) != total:
		return fmt.Errorf("users_without_totp %v, the audit lines add up to %d", s["users_without_totp"], total)
	}
	return nil
}

func (d *demo) realSweep(ctx context.Context) error {
	event, err := readEvent("sweep-scheduled.json")
	if err != nil {
		return err
	}
	d.header("Scheduled sweep")
	d.printf(`sent: EventBridge "Scheduled Event" from the schedule rule (events/sweep-scheduled.json), detail {}`)
	before, puts := d.drift(), d.sim.Count("PUT", "/mfa/status")
	r, err := d.invoke(ctx, "sweep", event)
	if err != nil {
		return err
	}
	s, err := d.sweepSummary(r)
	if err != nil {
		return err
	}
	after := d.drift()
	d.printf("simulator: MFA off before: %s", before)
	d.printf("           MFA off after:  %s", after)
	d.printf("           PUT requests: %d, one per tenant changed (%d Acronis requests in all for %d tenants)",
		d.sim.Count("PUT", "/mfa/status")-puts, int(r.emf.Metrics["AcronisRequests"]), num(s["tenants_seen"]))
	total, top := totpDebt(r.lines)
	d.printf("           %d users must now set up TOTP at their next login; most in: %s", total, joinOr(top, "none"))
	d.printEMF(r.emf)
	switch {
	case num(s["changed"]) != len(before.fixable) || num(s["failed"]) != 0:
		return fmt.Errorf("sweep: changed %v failed %v, the simulator had %d to fix", s["changed"], s["failed"], len(before.fixable))
	case len(after.fixable) != 0:
		return fmt.Errorf("%d tenants still drift after the sweep", len(after.fixable))
	case num(s["users_without_totp"]) != total:
		return fmt.Errorf("users_without_totp %v, the audit lines add up to %d", s["users_without_totp"], total)
	}
	return nil
}

// newTenants adds the customers a provisioning system creates after the sweep.
func (d *demo) newTenants(context.Context) error {
	parent := d.sim.RootID()
	for _, t := range d.sim.All() {
		if t.Kind == "partner" && t.ID != d.sim.RootID() && t.Enabled {
			parent = t.ID
			break
		}
	}
	fmt.Fprintf(d.out, "\n   Meanwhile a provisioning system creates %d customers under %q, MFA off as Acronis creates them:\n", len(newCustomers), mustGet(d.sim, parent).Name)
	for i := range newCustomers {
		newCustomers[i].ID = ""
		t := newCustomers[i]
		t.ParentID = parent
		if err := d.sim.Add(t); err != nil {
			return err
		}
		for _, x := range d.sim.All() {
			if x.Name == t.Name {
				newCustomers[i].ID = x.ID
			}
		}
		fmt.Fprintf(d.out, "     %-18s %s  %d users, %d with TOTP\n", t.Name, newCustomers[i].ID, t.UsersCount, t.UsersWithTOTP)
	}
	return nil
}

// webhookEvent is events/webhook-<method>.json aimed at tenantID, signed now
// with key. It returns the event and the three signature headers.
func webhookEvent(method, tenantID, body string, key []byte) ([]byte, map[string]string, error) {
	raw, err := readEvent("webhook-" + strings.ToLower(method) + ".json")
	if err != nil {
		return nil, nil, err
	}
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, nil, err
	}
	path := "/tenants/" + tenantID + "/mfa"
	ev["rawPath"] = path
	ev["pathParameters"] = map[string]any{"tenant_id": tenantID}
	ev["requestContext"].(map[string]any)["http"].(map[string]any)["path"] = path
	if body != "" {
		ev["body"] = body
	}
	now := time.Now()
	sig := map[string]string{
		"webhook-id":        "msg_demo_" + strconv.FormatInt(now.UnixNano(), 36),
		"webhook-timestamp": strconv.FormatInt(now.Unix(), 10),
	}
	sig["webhook-signature"] = webhook.Sign(key, sig["webhook-id"], now, []byte(body))
	headers := ev["headers"].(map[string]any)
	headers["content-length"] = strconv.Itoa(len(body))
	for k, v := range sig {
		headers[k] = v
	}
	out, err := json.Marshal(ev)
	return out, sig, err
}

// httpAnswer is the API Gateway payload 2.0 response.
type httpAnswer struct {
	StatusCode int               `json:"statusCode"`
	Headers    map[string]string `json:"headers"`
	Body       string            `json:"body"`
}

func (d *demo) callWebhook(ctx context.Context, method, tenantID, body string, key []byte) (httpAnswer, map[string]any, result, error) {
	event, sig, err := webhookEvent(method, tenantID, body, key)
	if err != nil {
		return httpAnswer{}, nil, result{}, err
	}
	d.printf("sent: %s", strings.TrimSpace(method+" /tenants/"+tenantID+"/mfa "+body))
	d.printf("      webhook-id %s, webhook-timestamp %s, webhook-signature %s",
		sig["webhook-id"], sig["webhook-timestamp"], short(sig["webhook-signature"], 16))
	r, err := d.invoke(ctx, "webhook", event)
	if err != nil {
		return httpAnswer{}, nil, result{}, err
	}
	var a httpAnswer
	var obj map[string]any
	if err := json.Unmarshal(r.body, &a); err != nil {
		return a, nil, r, fmt.Errorf("webhook answer %s: %w", r.body, err)
	}
	if err := json.Unmarshal([]byte(a.Body), &obj); err != nil {
		return a, nil, r, fmt.Errorf("webhook body %q: %w", a.Body, err)
	}
	d.printJSON(fmt.Sprintf("answer: HTTP %d, Content-Type %s", a.StatusCode, a.Headers["Content-Type"]), []byte(a.Body))
	return a, obj, r, nil
}

func (d *demo) webhookGet(ctx context.Context) error {
	t := newCustomers[0]
	d.header(fmt.Sprintf("Webhook: signed GET of %s's MFA status", t.Name))
	a, obj, r, err := d.callWebhook(ctx, "GET", t.ID, "", d.key)
	if err != nil {
		return err
	}
	d.printEMF(r.emf)
	if a.StatusCode != 200 || obj["tenant_id"] != t.ID || obj["mfa_status"] != "disabled" {
		return fmt.Errorf("GET: HTTP %d %s, want 200 with %s disabled", a.StatusCode, a.Body, t.ID)
	}
	return nil
}

func (d *demo) webhookPut(ctx context.Context) error {
	t := newCustomers[0]
	d.header(fmt.Sprintf("Webhook: signed PUT turning MFA on for %s", t.Name))
	before := mustGet(d.sim, t.ID).MFAStatus
	a, obj, r, err := d.callWebhook(ctx, "PUT", t.ID, `{"enabled": true}`, d.key)
	if err != nil {
		return err
	}
	after := mustGet(d.sim, t.ID).MFAStatus
	d.printf("simulator: %s %s -> %s; %d users must now set up TOTP", t.Name, before, after, t.UsersCount-t.UsersWithTOTP)
	for _, a := range testkit.AuditLines(r.lines) {
		d.printf("audit:     action %v, reason %q, previous %v, current %v", a["action"], a["reason"], a["previous"], a["current"])
	}
	d.printEMF(r.emf)
	if a.StatusCode != 200 || obj["changed"] != true || !tenant.MFAOn(after) {
		return fmt.Errorf("PUT: HTTP %d %s, simulator %s, want 200 changed true and MFA on", a.StatusCode, a.Body, after)
	}
	return nil
}

func (d *demo) webhookUnsigned(ctx context.Context) error {
	t := newCustomers[0]
	d.header("Webhook: a PUT signed with a key the stack does not know")
	requests := len(d.sim.Requests())
	a, obj, r, err := d.callWebhook(ctx, "PUT", t.ID, `{"enabled": false}`, []byte("an attacker's key"))
	if err != nil {
		return err
	}
	d.printf("simulator: %d requests reached Acronis; %s is still %s", len(d.sim.Requests())-requests, t.Name, mustGet(d.sim, t.ID).MFAStatus)
	d.printEMF(r.emf)
	e, _ := obj["error"].(map[string]any)
	if a.StatusCode != 401 || e["code"] != "unauthorized" || len(d.sim.Requests()) != requests {
		return fmt.Errorf("forged PUT: HTTP %d %s, want 401 unauthorized and no Acronis request", a.StatusCode, a.Body)
	}
	return nil
}

// sqsRecord is a record shaped like those of events/worker-batch.json.
func sqsRecord(id, body string) map[string]any {
	sum := md5.Sum([]byte(body))
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	return map[string]any{
		"messageId": id, "receiptHandle": "AQEB" + id, "body": body, "md5OfBody": hex.EncodeToString(sum[:]),
		"attributes": map[string]string{"ApproximateReceiveCount": "1", "SentTimestamp": now,
			"SenderId": "AIDAIENQZJOLO23YVJ4VO", "ApproximateFirstReceiveTimestamp": now},
		"messageAttributes": map[string]any{}, "eventSource": "aws:sqs",
		"eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:acronis-mfa-enforce", "awsRegion": "us-east-1",
	}
}

func (d *demo) workerBatch(ctx context.Context) error {
	contoso, northwind := newCustomers[1], newCustomers[2]
	var compliant, unit sim.Tenant
	for _, t := range d.sim.All() {
		if t.Kind == "customer" && t.Enabled && tenant.MFAOn(t.MFAStatus) && compliant.ID == "" {
			compliant = t
		}
		if t.Kind == "unit" && unit.ID == "" {
			unit = t
		}
	}
	// As an EventBridge rule with the queue as target delivers the event.
	envelope := fmt.Sprintf(`{"version":"0","id":"6e1d2c3b-4a59-4f8e-8d7c-6b5a4f3e2d10","detail-type":"Tenant Created",`+
		`"source":"provisioning.example","account":"123456789012","time":%q,"region":"us-east-1","resources":[],`+
		`"detail":{"tenant_id":%q}}`, time.Now().UTC().Format(time.RFC3339), northwind.ID)
	type message struct{ id, shape, body, show, tenant string }
	msgs := []message{
		{"msg-1", "EventBridge event", envelope,
			fmt.Sprintf(`{"version":"0",…,"detail-type":"Tenant Created",…,"detail":{"tenant_id":%q}}`, northwind.ID), northwind.ID},
		{"msg-2", "tenant by name", `{"tenant_name":"Contoso Ltd"}`, "", contoso.ID},
		{"msg-3", "explicit disable", fmt.Sprintf(`{"tenant_id":%q,"enabled":false}`, compliant.ID), "", compliant.ID},
		{"msg-4", "a unit (inherits)", fmt.Sprintf(`{"tenant_id":%q}`, unit.ID), "", unit.ID},
		{"msg-5", "malformed", `{"tenant_id": "` + northwind.ID[:8], "", ""},
	}
	d.header("Worker: an SQS batch of five messages")
	var records []map[string]any
	for _, m := range msgs {
		records = append(records, sqsRecord(m.id, m.body))
		if m.show == "" {
			m.show = m.body
		}
		d.printf("sent: %s  %-18s %s", m.id, m.shape, m.show)
	}
	event, _ := json.Marshal(map[string]any{"Records": records})
	before := map[string]string{}
	for _, m := range msgs {
		if m.tenant != "" {
			before[m.tenant] = mustGet(d.sim, m.tenant).MFAStatus
		}
	}
	r, err := d.invoke(ctx, "worker", event)
	if err != nil {
		return err
	}
	var resp struct {
		BatchItemFailures []struct {
			ItemIdentifier string `json:"itemIdentifier"`
		} `json:"batchItemFailures"`
	}
	if err := json.Unmarshal(r.body, &resp); err != nil {
		return fmt.Errorf("worker answer %s: %w", r.body, err)
	}
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	slices.Sort(failed)
	d.printf("answer: batchItemFailures %v (SQS retries these, then dead-letters them)", failed)
	for _, id := range failed {
		tenant := ""
		if i := slices.IndexFunc(msgs, func(m message) bool { return m.id == id }); i >= 0 {
			tenant = msgs[i].tenant
		}
		d.printf("        %s: %s", id, failureReason(r.lines, tenant, id))
	}
	d.printf("simulator:")
	for _, m := range msgs {
		if m.tenant == "" {
			continue
		}
		t := mustGet(d.sim, m.tenant)
		d.printf("  %-17s %-8s %s -> %s", t.Name, t.Kind, before[m.tenant], t.MFAStatus)
	}
	d.printEMF(r.emf)
	if !slices.Equal(failed, []string{"msg-3", "msg-5"}) {
		return fmt.Errorf("batchItemFailures %v, want exactly [msg-3 msg-5]", failed)
	}
	for _, t := range []sim.Tenant{contoso, northwind, compliant} {
		if s := mustGet(d.sim, t.ID).MFAStatus; !tenant.MFAOn(s) {
			return fmt.Errorf("%s has MFA %s after the batch, want on", t.Name, s)
		}
	}
	return nil
}

// failureReason finds why a message failed in the worker's log lines: the
// parse error logged with its message id, or the audit line of its tenant.
func failureReason(lines []string, tenantID, messageID string) string {
	for _, l := range lines {
		m, ok := testkit.JSONObject(l)
		if !ok {
			continue
		}
		if m["message_id"] == messageID {
			return fmt.Sprintf("%v: %v", m["message"], m["error"])
		}
		if tenantID != "" && m["audit"] == true && m["tenant_id"] == tenantID {
			return fmt.Sprintf("%v (%v)", m["action"], m["reason"])
		}
	}
	return "(no log line says why)"
}

func (d *demo) finalCheck(ctx context.Context) error {
	d.header("Check: dry-run sweep with EventBridge Scheduler's bare input")
	event := []byte(`{"dry_run": true}`)
	d.printf("sent: %s  (what a ScheduleV2 target's Input carries)", event)
	r, err := d.invoke(ctx, "sweep", event)
	if err != nil {
		return err
	}
	s, err := d.sweepSummary(r)
	if err != nil {
		return err
	}
	d.printEMF(r.emf)
	if num(s["would_change"]) != 0 || num(s["failed"]) != 0 {
		return fmt.Errorf("the tree is not compliant at the end: would_change %v failed %v", s["would_change"], s["failed"])
	}
	d.printf("the whole tree is compliant: nothing left to change")
	return nil
}

// states maps every tenant to its MFA state.
func (d *demo) states() map[string]string {
	m := map[string]string{}
	for _, t := range d.sim.All() {
		m[t.ID] = t.MFAStatus
	}
	return m
}
