//go:build integration

package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/tenant"
	"acronismfa/internal/testkit"
)

func TestWorker(t *testing.T) {
	t.Parallel()
	w := newWorld(t, sim.TreeSpec{Seed: 23, Size: 300})
	all := w.sim.All()
	var customers []sim.Tenant
	for _, d := range testkit.DriftOf(all).Fixable {
		if d.Kind == "customer" {
			customers = append(customers, d)
		}
	}
	if len(customers) < 5 {
		t.Fatalf("the generated tree has %d drifting customers, want 5", len(customers))
	}
	set, enforceOne, created, byName, excluded := customers[0], customers[1], customers[2], customers[3], customers[4]
	unit := all[slices.IndexFunc(all, func(tn sim.Tenant) bool { return tn.Kind == "unit" })]
	compliant := all[slices.IndexFunc(all, func(tn sim.Tenant) bool {
		return tn.Kind == "customer" && tn.Enabled && tn.UpdateAllowed && tenant.MFAOn(tn.MFAStatus)
	})]

	msgs := []struct {
		id, body string
		fail     bool // the contract wants it in batchItemFailures
	}{
		{"m-set", fmt.Sprintf(`{"tenant_id":%q,"enabled":true}`, set.ID), false},
		{"m-enforce", fmt.Sprintf(`{"tenant_id":%q}`, enforceOne.ID), false},
		{"m-event", testkit.TenantCreated(fmt.Sprintf(`{"tenant_id":%q}`, created.ID)), false},
		{"m-name", fmt.Sprintf(`{"tenant_name":%q}`, byName.Name), false},
		{"m-unit", fmt.Sprintf(`{"tenant_id":%q}`, unit.ID), false},                        // inherits: skipped, not failed
		{"m-excluded", fmt.Sprintf(`{"tenant_id":%q}`, excluded.ID), false},                // excluded by policy: skipped
		{"m-malformed", `{"tenant_id": "` + set.ID, true},                                  // cut-off JSON
		{"m-disable", fmt.Sprintf(`{"tenant_id":%q,"enabled":false}`, compliant.ID), true}, // MFA_ALLOW_DISABLE unset
		{"m-unknown-id", `{"tenant_id":"00000000-0000-4000-8000-000000000000"}`, true},
		{"m-unknown-name", `{"tenant_name":"No Such Customer 99999"}`, true},
	}
	var batch events.SQSEvent
	var wantFailed []string
	for _, m := range msgs {
		batch.Records = append(batch.Records, testkit.SQSRecord(m.id, m.body))
		if m.fail {
			wantFailed = append(wantFailed, m.id)
		}
	}
	slices.Sort(wantFailed)

	fn := w.start(t, "worker", map[string]string{"EXCLUDED_TENANT_IDS": excluded.ID})
	enabled := []string{set.ID, enforceOne.ID, created.ID, byName.ID}
	slices.Sort(enabled)
	r, err := w.local.RunBatch(t.Context(), fn, batch, testkit.BatchExpect{Failed: wantFailed, Enable: enabled})
	if err != nil {
		t.Error(err)
	}
	checkEMF(t, r.EMF, "worker", "sqs")
	if got := r.EMF.Metrics; got["TenantsChanged"] != 4 || got["TenantsFailed"] != 3 {
		t.Errorf("EMF TenantsChanged %v TenantsFailed %v, want 4 and 3 (malformed, unknown id, unknown name)", got["TenantsChanged"], got["TenantsFailed"])
	}
	checkLogs(t, fn, "worker", "sqs", true)
}

// A bad configuration stops the function at init with one log line that names
// the variable and what it accepts.
func TestWorkerInitFailure(t *testing.T) {
	t.Parallel()
	fn := start(t, "worker", map[string]string{
		"AWS_REGION": "us-east-1", "ACRONIS_SECRET_ID": "acronis-mfa/acronis", "MFA_DESIRED_STATE": "bogus",
	})
	mark := fn.Output().Mark()
	status, body, err := fn.Invoke(t.Context(), []byte(`{"Records": []}`))
	if err != nil || status != 502 {
		t.Errorf("emulator answered %d %s (%v), want 502 for a failed init", status, body, err)
	}
	isJSON := func(l string) bool { _, ok := testkit.JSONObject(l); return ok }
	if _, err := fn.Output().Wait(t.Context(), mark, 10*time.Second, isJSON); err != nil {
		t.Fatal(err)
	}
	checkLogs(t, fn, "worker", "sqs", false)
	logs := slices.DeleteFunc(fn.Output().Lines(), func(l string) bool { return !isJSON(l) })
	if len(logs) != 1 {
		t.Fatalf("%d JSON lines from a failed init, want exactly 1:\n%s", len(logs), strings.Join(logs, "\n"))
	}
	m, _ := testkit.JSONObject(logs[0])
	if msg := str(m["message"]); m["level"] != "ERROR" || !strings.Contains(msg, "MFA_DESIRED_STATE") ||
		!strings.Contains(msg, "enabled") || !strings.Contains(msg, "disabled") {
		t.Errorf("init failure line %s: want ERROR naming MFA_DESIRED_STATE and what it accepts", logs[0])
	}
}
