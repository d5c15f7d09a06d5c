package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/tenant"
	"acronismfa/internal/testkit"
)

// sqsResponse is events.SQSEventResponse as it goes over the wire.
type sqsResponse struct {
	BatchItemFailures []struct {
		ItemIdentifier string `json:"itemIdentifier"`
	} `json:"batchItemFailures"`
}

func failedIDs(t *testing.T, body []byte) []string {
	t.Helper()
	var r sqsResponse
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("worker answer %s: %v", body, err)
	}
	var ids []string
	for _, f := range r.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	slices.Sort(ids)
	return ids
}

func TestWorker(t *testing.T) {
	t.Parallel()
	st := newStack(t, sim.TreeSpec{Seed: 23, Size: 300})
	all := st.sim.All()
	var customers []sim.Tenant
	for _, d := range drifting(all) {
		if d.Kind == "customer" {
			customers = append(customers, d)
		}
	}
	if len(customers) < 5 {
		t.Fatalf("the generated tree has %d drifting customers, want 5", len(customers))
	}
	set, enforceOne, created, byName, excluded := customers[0], customers[1], customers[2], customers[3], customers[4]
	var unit, compliant sim.Tenant
	for _, tn := range all {
		switch {
		case tn.Kind == "unit" && unit.ID == "":
			unit = tn
		case tn.Kind == "customer" && tn.Enabled && tn.UpdateAllowed && tenant.MFAOn(tn.MFAStatus) && compliant.ID == "":
			compliant = tn
		}
	}
	if unit.ID == "" || compliant.ID == "" {
		t.Fatal("the generated tree lacks a unit or a compliant customer")
	}

	envelope := fmt.Sprintf(`{"version":"0","id":"6e1d2c3b-4a59-4f8e-8d7c-6b5a4f3e2d10","detail-type":"Tenant Created",`+
		`"source":"provisioning.example","account":"123456789012","time":%q,"region":"us-east-1","resources":[],`+
		`"detail":{"tenant_id":%q}}`, time.Now().UTC().Format(time.RFC3339), created.ID)
	type msg struct {
		id, body string
		fail     bool // the contract wants it in batchItemFailures
	}
	msgs := []msg{
		{"m-set", fmt.Sprintf(`{"tenant_id":%q,"enabled":true}`, set.ID), false},
		{"m-enforce", fmt.Sprintf(`{"tenant_id":%q}`, enforceOne.ID), false},
		{"m-event", envelope, false},
		{"m-name", fmt.Sprintf(`{"tenant_name":%q}`, byName.Name), false},
		{"m-unit", fmt.Sprintf(`{"tenant_id":%q}`, unit.ID), false},                        // inherits: skipped, not failed
		{"m-excluded", fmt.Sprintf(`{"tenant_id":%q}`, excluded.ID), false},                // excluded by policy: skipped
		{"m-malformed", `{"tenant_id": "` + set.ID, true},                                  // cut-off JSON
		{"m-disable", fmt.Sprintf(`{"tenant_id":%q,"enabled":false}`, compliant.ID), true}, // MFA_ALLOW_DISABLE unset
		{"m-unknown-id", `{"tenant_id":"00000000-0000-4000-8000-000000000000"}`, true},
		{"m-unknown-name", `{"tenant_name":"No Such Customer 99999"}`, true},
	}
	var records []map[string]any
	var wantFailed []string
	for _, m := range msgs {
		records = append(records, sqsRecord(t, m.id, m.body))
		if m.fail {
			wantFailed = append(wantFailed, m.id)
		}
	}
	slices.Sort(wantFailed)

	fn := start(t, "worker", st.env(map[string]string{"EXCLUDED_TENANT_IDS": excluded.ID}))
	inv := invoke(t, fn, sqsEvent(t, records...))

	if got := failedIDs(t, inv.body); !slices.Equal(got, wantFailed) {
		t.Errorf("batchItemFailures %v, want exactly %v", got, wantFailed)
	}
	for _, tn := range []sim.Tenant{set, enforceOne, created, byName} {
		if now := mustGet(t, st.sim, tn.ID); !tenant.MFAOn(now.MFAStatus) {
			t.Errorf("%s (%s) is %q after the batch, want MFA on", tn.Name, tn.ID, now.MFAStatus)
		}
	}
	if now := mustGet(t, st.sim, excluded.ID); now.MFAStatus != excluded.MFAStatus {
		t.Errorf("excluded tenant went from %q to %q", excluded.MFAStatus, now.MFAStatus)
	}
	if now := mustGet(t, st.sim, compliant.ID); !tenant.MFAOn(now.MFAStatus) {
		t.Errorf("a refused disable request turned MFA off: %q", now.MFAStatus)
	}
	if got := st.sim.Count("PUT", "/mfa/status"); got != 4 {
		t.Errorf("%d PUTs reached Acronis, want 4 (one per tenant to enable)", got)
	}

	checkEMF(t, inv.emf, "worker", "sqs", false)
	if got := inv.emf.Metrics["TenantsChanged"]; got != 4 {
		t.Errorf("EMF TenantsChanged %v, want 4", got)
	}
	if got := inv.emf.Metrics["TenantsFailed"]; got != 3 {
		t.Errorf("EMF TenantsFailed %v, want 3 (malformed, unknown id, unknown name)", got)
	}
	enabled := map[string]bool{}
	for _, a := range testkit.AuditLines(inv.lines) {
		if a["action"] == "enable" {
			enabled[str(a["tenant_id"])] = true
		}
	}
	for _, tn := range []sim.Tenant{set, enforceOne, created, byName} {
		if !enabled[tn.ID] {
			t.Errorf("no enable audit line for %s", tn.ID)
		}
	}
	fn.Stop()
	lines := fn.Output().Lines()
	checkLogs(t, lines, "worker", "sqs", true)
	if !slices.ContainsFunc(lines, func(l string) bool {
		return strings.Contains(l, "m-malformed") && strings.Contains(l, `"level":"ERROR"`)
	}) {
		t.Error("no ERROR log line names the malformed message")
	}
}

func TestWorkerInitFailure(t *testing.T) {
	t.Parallel()
	fn := start(t, "worker", map[string]string{
		"AWS_REGION": "us-east-1", "ACRONIS_SECRET_ID": "acronis-mfa/acronis", "MFA_DESIRED_STATE": "bogus",
	})
	mark := fn.Output().Mark()
	status, body, err := fn.Invoke(t.Context(), sqsEvent(t, sqsRecord(t, "m-1", `{"tenant_id":"00000000-0000-4000-8000-000000000000"}`)))
	if err != nil {
		t.Fatal(err)
	}
	if status != 502 {
		t.Errorf("emulator answered %d %s, want 502 for a failed init", status, body)
	}
	isJSON := func(l string) bool { _, ok := testkit.JSONObject(l); return ok }
	if _, err := fn.Output().Wait(t.Context(), mark, 10*time.Second, isJSON); err != nil {
		t.Fatal(err)
	}
	fn.Stop()
	var logs []string
	for _, l := range fn.Output().Lines() {
		if isJSON(l) {
			logs = append(logs, l)
		}
	}
	if len(logs) != 1 {
		t.Fatalf("%d JSON lines from a failed init, want exactly 1:\n%s", len(logs), strings.Join(logs, "\n"))
	}
	m, _ := testkit.JSONObject(logs[0])
	msg := str(m["message"])
	if m["level"] != "ERROR" || !strings.Contains(msg, "MFA_DESIRED_STATE") || !strings.Contains(msg, "enabled") || !strings.Contains(msg, "disabled") {
		t.Errorf("init failure line %s: want ERROR naming MFA_DESIRED_STATE and what it accepts", logs[0])
	}
	checkLogs(t, fn.Output().Lines(), "worker", "sqs", false)
}
