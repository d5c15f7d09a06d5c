package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/tenant"
	"acronismfa/internal/testkit"
)

// sweep sends the sweep function the sample event file, shows what it did,
// and checks it did what want says.
func (d *demo) sweep(ctx context.Context, title, file, sent string, want testkit.SweepExpect) error {
	d.header(title)
	event, err := testkit.ReadEvent(file)
	if err != nil {
		return err
	}
	d.printf("sent: %s  (events/%s, %s)", bytes.Join(bytes.Fields(event), []byte(" ")), file, sent)
	r, err := d.local.RunSweep(ctx, d.fn["sweep"], event, want)
	if r.Summary.JSON == nil {
		return err
	}
	d.printSummary(r.Summary)
	d.printf("simulator: MFA off before: %s", r.Before)
	d.printf("           MFA off after:  %s", testkit.DriftOf(d.local.Sim.All()))
	d.printf("           Acronis requests by route: %v", r.Routes)
	users, top := testkit.TOTPDebt(r.Audits())
	locked, graced := testkit.UsersWithoutTOTP(r.Audits(), "notify", "would_notify")
	say := map[bool][]string{false: {"must now set up TOTP at their next login", "given", "have until the deadline"},
		true: {"would have to set up TOTP now", "would go", "it would lock out"}}[want.DryRun]
	d.printf("%d users %s; most in: %s", users, say[0], list(top, 5, testkit.TenantUsers.String))
	d.printf("notice %s to %d tenants: their %d users without TOTP %s; most in: %s", say[1], len(graced), locked, say[2], list(graced, 5, testkit.TenantUsers.String))
	d.printReport(r.Report)
	d.printNotices(r.Notices)
	d.printEMF(r.EMF)
	return err
}

// webhookCalls are signed calls about the new customer Fabrikam: a GET, a PUT
// that turns MFA on at once, a forged PUT, and replays of the signed PUT.
func (d *demo) webhookCalls(ctx context.Context) error {
	t, key := d.fabrikam, d.local.Stack.Key
	put := testkit.WebhookRequest(key, time.Now(), "PUT", t.ID, `{"enabled": true}`)
	var answers []testkit.HTTPAnswer
	// Only the first two may reach Acronis; the fourth is the second again.
	for i, c := range []struct {
		title  string
		req    events.APIGatewayV2HTTPRequest
		status int
	}{
		{"a signed GET of Fabrikam's MFA status", testkit.WebhookRequest(key, time.Now(), "GET", t.ID, ""), 200},
		{"a signed PUT turning MFA on for Fabrikam: a request by name never waits for a grace", put, 200},
		{"a PUT signed with a key the stack does not know", testkit.WebhookRequest([]byte("an attacker's key"), time.Now(), "PUT", t.ID, `{"enabled": false}`), 401},
		{"the same signed PUT again, same webhook-id: the first answer, from the state table", put, 200},
		{"the captured PUT replayed on Contoso's route, which the signature does not cover", testkit.Reroute(put, d.contoso.ID), 401},
	} {
		d.header("Webhook: " + c.title)
		sig, mark := c.req.Headers["webhook-signature"], len(d.local.Sim.Requests())
		d.printf("sent: %s\n         webhook-id %s, webhook-timestamp %s, webhook-signature %s…", strings.TrimSpace(c.req.RequestContext.HTTP.Method+" "+c.req.RawPath+" "+c.req.Body),
			c.req.Headers["webhook-id"], c.req.Headers["webhook-timestamp"], sig[:min(len(sig), 15)])
		inv, a, err := d.fn["webhook"].Webhook(ctx, c.req)
		if err != nil {
			return err
		}
		after, _ := d.local.Sim.Get(t.ID)
		requests := len(d.local.Sim.Requests()) - mark
		d.printf("answer: HTTP %d, Content-Type %s, %s", a.StatusCode, a.Headers["Content-Type"], a.Body)
		d.printf("simulator: %d Acronis requests; %s is %s", requests, t.Name, after.MFAStatus)
		for _, a := range inv.Audits() {
			d.printf("audit:     action %v, reason %q, previous %v, current %v: %v users must now set up TOTP", a["action"], a["reason"], a["previous"], a["current"], a["users_without_totp"])
		}
		d.printEMF(inv.EMF)
		if answers = append(answers, a); a.StatusCode != c.status || i > 1 && requests > 0 || tenant.MFAOn(after.MFAStatus) != (i > 0) ||
			i == 3 && a.Body != answers[1].Body || i == 1 && (a.JSON["changed"] != true || len(inv.Audits()) != 1) {
			return fmt.Errorf("%s: HTTP %d %s after %d Acronis requests, MFA %s", c.title, a.StatusCode, a.Body, requests, after.MFAStatus)
		}
	}
	return nil
}

func (d *demo) workerBatch(ctx context.Context) error {
	all := d.local.Sim.All()
	compliant := all[slices.IndexFunc(all, func(t sim.Tenant) bool { return t.Kind == "customer" && t.Enabled && tenant.MFAOn(t.MFAStatus) })]
	unit := all[slices.IndexFunc(all, func(t sim.Tenant) bool { return t.Kind == "unit" })]
	nw := d.northwind.ID
	msgs := []struct{ id, shape, body, tenant string }{
		{"msg-1", "EventBridge event", testkit.TenantCreated(fmt.Sprintf(`{"tenant_id":%q}`, nw)), nw},
		{"msg-2", "tenant by name", fmt.Sprintf(`{"tenant_name":%q}`, d.contoso.Name), d.contoso.ID},
		{"msg-3", "explicit disable", fmt.Sprintf(`{"tenant_id":%q,"enabled":false}`, compliant.ID), compliant.ID},
		{"msg-4", "a unit (inherits)", fmt.Sprintf(`{"tenant_id":%q}`, unit.ID), unit.ID},
		{"msg-5", "malformed", `{"tenant_id": "` + nw[:8], ""},
	}
	d.header("Worker: an SQS batch of five messages")
	var batch events.SQSEvent
	before := testkit.MFAStates(d.local.Sim)
	for _, m := range msgs {
		batch.Records = append(batch.Records, testkit.SQSRecord(m.id, m.body))
		d.printf("sent: %s  %-18s %s", m.id, m.shape, m.body)
	}
	r, err := d.local.RunBatch(ctx, d.fn["worker"], batch, testkit.BatchExpect{Failed: []string{"msg-3", "msg-5"},
		Enable: []string{nw}, Notices: map[string][]string{"grace_started": {d.contoso.ID}}})
	if r.Lines == nil {
		return err
	}
	d.printf("answer: batchItemFailures %v (SQS retries these, then dead-letters them)", r.Failed)
	for _, id := range r.Failed {
		d.printf("        %s: %s", id, testkit.FailureReason(r.Lines, id))
	}
	for _, m := range msgs[:4] {
		t, _ := d.local.Sim.Get(m.tenant)
		d.printf("simulator: %-17s %-8s %s -> %s", t.Name, t.Kind, cmp.Or(before[m.tenant], t.MFAStatus), t.MFAStatus)
	}
	for _, a := range r.Audits() {
		d.printf("audit: %-17v action %-7v %v", cmp.Or(a["tenant_name"], a["tenant_id"]), a["action"], a["reason"])
	}
	d.printNotices(r.Notices)
	d.printEMF(r.EMF)
	return err
}
