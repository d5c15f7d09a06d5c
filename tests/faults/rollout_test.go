//go:build integration

package faults_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/config"
	"acronismfa/internal/sweep"
	"acronismfa/internal/testkit"
)

// The DynamoDB actions of the state table (docs/reference.md, State table).
const (
	dbQuery      = "DynamoDB_20120810.Query"
	dbBatchGet   = "DynamoDB_20120810.BatchGetItem"
	dbGet        = "DynamoDB_20120810.GetItem"
	dbPut        = "DynamoDB_20120810.PutItem"
	dbUpdate     = "DynamoDB_20120810.UpdateItem"
	dbDelete     = "DynamoDB_20120810.DeleteItem"
	snsPublish   = "Publish"
	graceDays    = 7
	graceStarted = "grace_started"
)

var (
	throttledDB = testkit.AWSError{Status: http.StatusBadRequest, Code: "ProvisionedThroughputExceededException"}
	// watchRun is the input of the template's watch schedule.
	watchRun = json.RawMessage(`{"updated_within_minutes": 5}`)
)

// deployment is one test's AWS side: a state table, a notice topic with a
// subscriber, a report bucket if asked, and a proxy of the test's own in front
// of the shared moto, so that the failures it injects and the calls it counts
// are this test's alone while others run.
type deployment struct {
	aws    *testkit.AWSProxy
	table  string
	topic  *testkit.Topic
	bucket string // "" without reports
}

func newDeployment(t *testing.T) *deployment {
	t.Helper()
	cfg := testkit.MotoConfig(t, moto.Endpoint)
	d := &deployment{aws: testkit.NewAWSProxy(t, moto.Endpoint), table: uniqueName("state")}
	d.createTable(t)
	var err error
	if d.topic, err = testkit.NewTopic(t.Context(), cfg, uniqueName("notices")); err != nil {
		t.Fatal(err)
	}
	// Whatever the test expected, its subscriber got nothing more.
	t.Cleanup(func() {
		if more, _ := d.topic.Receive(context.Background(), 1, time.Second); len(more) != 0 {
			t.Errorf("notices nobody expected: %v", more)
		}
	})
	return d
}

// uniqueName is a name for a table, topic or bucket that no other test uses.
func uniqueName(kind string) string { return kind + "-" + strings.ToLower(rand.Text()) }

func (d *deployment) createTable(t *testing.T) {
	t.Helper()
	if err := testkit.CreateStateTable(t.Context(), testkit.MotoConfig(t, moto.Endpoint), d.table); err != nil {
		t.Fatal(err)
	}
}

// via is the same deployment behind another proxy: a second function
// instance whose AWS calls a test orders apart from the first's.
func (d *deployment) via(t *testing.T) *deployment {
	other := *d
	other.aws = testkit.NewAWSProxy(t, moto.Endpoint)
	return &other
}

// start cold-starts fn with the rollout configured (a grace of graceDays, the
// state table, the topic, the bucket) and its AWS calls sent through the
// deployment's proxy, as AWS_ENDPOINT_URL sends them in Lambda.
func (d *deployment) start(t *testing.T, w *world, fn config.Function) *function {
	t.Helper()
	f := w.start(t, fn, map[string]string{"ROLLOUT_GRACE_DAYS": fmt.Sprint(graceDays), "STATE_TABLE": d.table,
		"NOTIFY_TOPIC_ARN": d.topic.ARN, "REPORT_BUCKET": d.bucket})
	f.deps.AWS.BaseEndpoint = aws.String(d.aws.URL)
	f.build(fn)
	return f
}

// failTable makes the state table answer each of actions with e.
func (d *deployment) failTable(e testkit.AWSError, actions ...string) {
	for _, a := range actions {
		d.aws.Fail(a, e, "TableName", d.table)
	}
}

// notices reads the state table's rollout notices: by tenant, whether the
// notice was given (or only claimed).
func (d *deployment) notices(t *testing.T) map[string]bool {
	t.Helper()
	db := dynamodb.NewFromConfig(testkit.MotoConfig(t, moto.Endpoint))
	out, err := db.Query(t.Context(), &dynamodb.QueryInput{TableName: aws.String(d.table),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]dbtypes.AttributeValue{":pk": &dbtypes.AttributeValueMemberS{Value: "notice"}}})
	if err != nil {
		t.Fatalf("read the notices in %s: %v", d.table, err)
	}
	given := map[string]bool{}
	for _, item := range out.Items {
		sk, ok := item["sk"].(*dbtypes.AttributeValueMemberS)
		if !ok {
			t.Fatalf("a notice without a tenant: %v", item)
		}
		_, noticed := item["noticed_at"]
		given[sk.Value] = noticed
	}
	return given
}

// received takes want notices off the topic's subscriber (moto delivers them
// while it answers Publish), each checked against its contract, and returns
// them by event, as the sorted ids of the tenants they name. A notice beyond
// those expected shows in a later call, or at the end of the test.
func (d *deployment) received(t *testing.T, want int) map[string][]string {
	t.Helper()
	got, err := d.topic.Receive(t.Context(), want, 10*time.Second)
	if err != nil {
		t.Fatalf("the subscriber: %v", err)
	}
	byEvent, err := testkit.Notices(got)
	if err != nil {
		t.Errorf("a notice breaks its contract: %v", err)
	}
	out := map[string][]string{}
	for event, notices := range byEvent {
		out[event] = testkit.TenantIDs(notices)
	}
	return out
}

// digests is the number of sweep_completed digests the runs publish: one per
// full sweep.
func digests(inputs ...json.RawMessage) int {
	n := 0
	for _, in := range inputs {
		if string(in) == string(scheduled) {
			n++
		}
	}
	return n
}

// rolloutPlan sorts the drifting tenants of a tree, as listed before any run:
// those whose users lack TOTP get a notice before MFA, the others MFA at once.
func rolloutPlan(before []sim.Tenant) (notice, atOnce []string) {
	once, given := testkit.DriftOf(before).Grace(before)
	return testkit.IDs(given), testkit.IDs(once)
}

// checkBuckets: every tenant seen is in exactly one bucket of the summary.
func checkBuckets(t *testing.T, sum sweep.Summary) {
	t.Helper()
	if n := sum.Compliant + sum.Changed + sum.WouldChange + sum.SkippedInherited + sum.SkippedDisabled +
		sum.SkippedExcluded + sum.NotAllowed + sum.Failed + sum.FannedOut + sum.InGrace; n != sum.TenantsSeen || n == 0 {
		t.Errorf("%d tenants seen, %d in the buckets: %+v", sum.TenantsSeen, n, sum)
	}
}

// auditsSince returns f's audit lines after mark.
func auditsSince(f *function, mark int) []audit {
	var out []audit
	for _, l := range f.out.Audits(mark) {
		out = append(out, audit(l))
	}
	return out
}

// checkNotified checks the lines of a run that gave the notices of ids: one
// line about each, a notify line with a deadline graceDays from now and the
// number of its users who lack TOTP.
func checkNotified(t *testing.T, lines []audit, w *world, ids []string) {
	t.Helper()
	tenants := byTenant(lines)
	for _, id := range ids {
		l := tenants[id]
		if len(l) != 1 || l[0].get("action") != "notify" {
			t.Errorf("tenant %s: lines %v, want one notify", id, l)
			continue
		}
		deadline, err := time.Parse(time.RFC3339, l[0].get("deadline"))
		if wait := time.Until(deadline); err != nil || wait < graceDays*24*time.Hour-time.Minute || wait > graceDays*24*time.Hour {
			t.Errorf("tenant %s: deadline %q, want %d days from now", id, l[0].get("deadline"), graceDays)
		}
		tn, _ := w.Sim.Get(id)
		if n, _ := l[0]["users_without_totp"].(float64); int(n) != tn.UsersCount-tn.UsersWithTOTP {
			t.Errorf("tenant %s: users_without_totp %v, the tenant has %d", id, l[0]["users_without_totp"], tn.UsersCount-tn.UsersWithTOTP)
		}
	}
}

// checkUntouched: none of ids had an MFA write, and each has MFA off.
func checkUntouched(t *testing.T, w *world, ids []string) {
	t.Helper()
	puts := acceptedWrites(w.Sim.Requests())
	for _, id := range ids {
		if puts[id] != 0 || w.MFAOn(t, id) {
			t.Errorf("tenant %s, whose users lack TOTP, was enabled without notice (%d writes)", id, puts[id])
		}
	}
}

// checkFailed: the tenant has one failed line that says why.
func checkFailed(t *testing.T, lines []audit, id, reason string) {
	t.Helper()
	if len(lines) != 1 || lines[0].get("action") != "failed" || !strings.Contains(lines[0].get("reason"), reason) || lines[0].get("error") == "" {
		t.Errorf("tenant %s: lines %v, want one failed line whose reason names %q", id, lines, reason)
	}
}

// TestRolloutStateTableFaults: with the state table throttled, missing or
// down, a sweep enables nobody whose users lack TOTP, gives no notice it
// cannot record, fails each tenant it could not decide with a reason that
// names the state table, and still counts every tenant in one bucket; once the
// fault is lifted, the next run gives every notice, once.
func TestRolloutStateTableFaults(t *testing.T) {
	t.Parallel()
	allActions := []string{dbQuery, dbBatchGet, dbGet, dbPut, dbUpdate, dbDelete}
	tests := []struct {
		name   string
		input  json.RawMessage
		fail   []string // the actions failing, with err
		err    testkit.AWSError
		create bool // STATE_TABLE names no table until the fault is lifted
		// published: the notices go out, but their record cannot be
		// completed; the next run must not give them again.
		published bool
	}{
		{name: "Query throttled", input: scheduled, fail: []string{dbQuery}, err: throttledDB},
		{name: "PutItem throttled", input: scheduled, fail: []string{dbPut}, err: throttledDB},
		{name: "BatchGetItem throttled in a watch run", input: watchRun, fail: []string{dbBatchGet}, err: throttledDB},
		{name: "UpdateItem throttled", input: scheduled, fail: []string{dbUpdate}, err: throttledDB, published: true},
		{name: "table missing", input: scheduled, create: true},
		{name: "DynamoDB down", input: scheduled, fail: allActions, err: testkit.AWSError{Status: http.StatusInternalServerError, Code: "InternalServerError"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, testkit.AcronisOptions{})
			notice, atOnce := rolloutPlan(w.Sim.All())
			d := newDeployment(t)
			if tt.create {
				d.table = uniqueName("missing")
			}
			d.failTable(tt.err, tt.fail...)
			f := d.start(t, w, config.Sweep)

			sum, err := f.sweep(t.Context(), tt.input)
			if err != nil {
				t.Fatalf("sweep: %v", err)
			}
			calls := 0
			for _, a := range append(tt.fail, dbQuery) {
				calls += d.aws.Count(a, "TableName", d.table)
			}
			if calls == 0 {
				t.Fatalf("the fault never fired: no call of %v", tt.fail)
			}
			checkBuckets(t, sum)
			all := audits(t, f)
			lines := byTenant(all)
			checkUntouched(t, w, notice)
			for _, id := range notice {
				checkFailed(t, lines[id], id, "state table")
			}
			// A tenant whose users all have TOTP locks nobody out: it may be
			// enabled at once; if not, it fails like the others.
			puts := acceptedWrites(w.Sim.Requests())
			for _, id := range atOnce {
				if l := lines[id]; len(l) == 1 && l[0].get("action") == "enable" && puts[id] == 1 {
					continue
				}
				checkFailed(t, lines[id], id, "state table")
				if puts[id] != 0 {
					t.Errorf("tenant %s failed after %d writes", id, puts[id])
				}
			}
			failed := 0
			for _, l := range all {
				if l.get("action") == "failed" {
					failed++
					if !strings.Contains(l.get("reason"), "state table") {
						t.Errorf("tenant %s failed for %q, not for the state table", l.get("tenant_id"), l.get("reason"))
					}
				}
			}
			if sum.Failed != failed || sum.Notified != 0 || sum.InGrace != 0 {
				t.Errorf("summary failed %d, notified %d, in grace %d; want %d failed as the audit says, none notified", sum.Failed, sum.Notified, sum.InGrace, failed)
			}
			// Nothing is published that was not claimed in the table first.
			published := 0
			if tt.published {
				published = len(notice)
			}
			if got := d.received(t, published+digests(tt.input))[graceStarted]; len(got) != published {
				t.Errorf("grace_started notices for %v, want %d", got, published)
			}
			if !tt.create {
				given := d.notices(t)
				for id, g := range given {
					if g || !tt.published {
						t.Errorf("tenant %s: a notice recorded (given: %v) although the run failed it", id, g)
					}
				}
				if tt.published && len(given) != len(notice) {
					t.Errorf("claims %v for the published notices of %v", given, notice)
				}
			}

			// The fault lifted, the next run gives every notice that is due.
			d.failTable(testkit.AWSError{}, tt.fail...)
			if tt.create {
				d.createTable(t)
			}
			mark := f.out.Mark()
			sum, err = f.sweep(t.Context(), tt.input)
			if err != nil {
				t.Fatalf("sweep after the fault: %v", err)
			}
			checkBuckets(t, sum)
			checkUntouched(t, w, notice)
			for _, id := range atOnce {
				if n := acceptedWrites(w.Sim.Requests())[id]; n != 1 || !w.MFAOn(t, id) {
					t.Errorf("tenant %s, whose users all have TOTP: %d writes over both runs, want 1", id, n)
				}
			}
			due := len(notice) // the notices the first run did not give
			if tt.published {
				due = 0
			}
			got := d.received(t, due+digests(tt.input))[graceStarted]
			given := d.notices(t)
			if tt.published {
				// Claimed and published, but not marked given: another run
				// may be giving it, so this one waits, and says nothing more.
				if len(got) != 0 || sum.InGrace != len(notice) || sum.Notified != 0 || sum.Failed != 0 {
					t.Errorf("second notices %v; summary %+v", got, sum)
				}
				return
			}
			if !slices.Equal(got, notice) || sum.Notified != len(notice) || sum.InGrace != len(notice) || sum.Failed != 0 {
				t.Errorf("grace_started for %v, summary notified %d, in grace %d, failed %d; want one notice each for %v",
					got, sum.Notified, sum.InGrace, sum.Failed, notice)
			}
			checkNotified(t, auditsSince(f, mark), w, notice)
			if len(given) != len(notice) {
				t.Errorf("notices recorded %v, want those of %v", given, notice)
			}
			for id, g := range given {
				if !g || !slices.Contains(notice, id) {
					t.Errorf("tenant %s: notice given %v", id, g)
				}
			}
		})
	}
}

// TestRolloutNoticeNotPublished: a notice that cannot be published (SNS down,
// or the Acronis users listing it names failing) is not recorded, and its
// tenant fails, untouched, while the tenants whose users all have TOTP are
// enabled; the next run, the fault gone, gives each notice once.
func TestRolloutNoticeNotPublished(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		fault  func(w *world, d *deployment, on bool)
		reason string // of the failed lines
		digest int    // the first run's sweep_completed digests: none with SNS down
	}{
		{"SNS down", func(_ *world, d *deployment, on bool) {
			e := testkit.AWSError{Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable"}
			if !on {
				e = testkit.AWSError{}
			}
			d.aws.Fail(snsPublish, e, "TopicArn", d.topic.ARN)
		}, "rollout: notice not published", 0},
		{"users listing failing", func(w *world, _ *deployment, on bool) {
			if on {
				w.Sim.SetFaults(sim.Faults{UsersStatus: http.StatusInternalServerError})
			} else {
				w.Sim.SetFaults(sim.Faults{})
			}
		}, "HTTP 500", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, testkit.AcronisOptions{})
			notice, atOnce := rolloutPlan(w.Sim.All())
			d := newDeployment(t)
			tt.fault(w, d, true)
			f := d.start(t, w, config.Sweep)

			sum, err := f.sweep(t.Context(), scheduled)
			if err != nil {
				t.Fatalf("sweep: %v", err)
			}
			checkBuckets(t, sum)
			lines := byTenant(audits(t, f))
			checkUntouched(t, w, notice)
			for _, id := range notice {
				checkFailed(t, lines[id], id, "")
				l := lines[id]
				if len(l) != 1 {
					continue
				}
				if !strings.Contains(l[0].get("error"), "notice not published") || !strings.Contains(l[0].get("reason")+" "+l[0].get("error"), tt.reason) {
					t.Errorf("tenant %s: reason %q, error %q; want the notice named unpublished, and %q", id, l[0].get("reason"), l[0].get("error"), tt.reason)
				}
				// No grace started: the next run's notice sets the deadline.
				if deadline := l[0].get("deadline"); deadline != "" {
					t.Errorf("tenant %s: its notice not given, the failed line names the deadline %s all the same", id, deadline)
				}
			}
			for _, id := range atOnce {
				if l := lines[id]; len(l) != 1 || l[0].get("action") != "enable" || !w.MFAOn(t, id) {
					t.Errorf("tenant %s, whose users all have TOTP: lines %v, want one enable", id, l)
				}
			}
			if sum.Failed != len(notice) || sum.Changed != len(atOnce) || sum.Notified != 0 || sum.InGrace != 0 {
				t.Errorf("summary %+v; want %d failed, %d changed, none notified", sum, len(notice), len(atOnce))
			}
			if given := d.notices(t); len(given) != 0 {
				t.Errorf("notices recorded although none was published: %v", given)
			}
			if got := d.received(t, tt.digest)[graceStarted]; len(got) != 0 {
				t.Errorf("grace_started for %v while publishing failed", got)
			}

			tt.fault(w, d, false)
			mark := f.out.Mark()
			if sum, err = f.sweep(t.Context(), scheduled); err != nil {
				t.Fatalf("sweep after the fault: %v", err)
			}
			checkBuckets(t, sum)
			checkUntouched(t, w, notice)
			if got := d.received(t, len(notice)+digests(scheduled))[graceStarted]; !slices.Equal(got, notice) || sum.Notified != len(notice) || sum.Failed != 0 {
				t.Errorf("grace_started for %v, summary %+v; want one notice each for %v", got, sum, notice)
			}
			checkNotified(t, auditsSince(f, mark), w, notice)
			if given := d.notices(t); len(given) != len(notice) || slices.Contains(slices.Collect(maps.Values(given)), false) {
				t.Errorf("notices recorded %v, want every one of %v given", given, notice)
			}
		})
	}
}

// invocation is one run of a function, for the overlap tests.
type invocation struct {
	fn    config.Function
	input json.RawMessage // a sweep's
	batch events.SQSEvent // a worker's
}

// invoke runs r on f and returns the messages that failed.
func (r invocation) invoke(t *testing.T, f *function) []string {
	if r.fn == config.Worker {
		resp, err := f.worker(t.Context(), r.batch)
		if err != nil {
			t.Errorf("worker: %v", err)
		}
		return failed(resp)
	}
	sum, err := f.sweep(t.Context(), r.input)
	if err != nil {
		t.Errorf("sweep: %v", err)
	}
	checkBuckets(t, sum)
	return nil
}

// covers reports whether the run decides about tenant id.
func (r invocation) covers(id string) bool {
	return r.fn == config.Sweep || slices.ContainsFunc(r.batch.Records, func(m events.SQSMessage) bool { return m.Body == enforceMsg(id) })
}

// TestRolloutOverlappingRuns runs two invocations at once against one state
// table and topic, as a watch run overlaps a full sweep, or two worker
// instances get messages about the same tenants: every tenant whose users lack
// TOTP gets one notice, every other is written once and audited once, and a
// message failed because the other run held the tenant succeeds when SQS
// delivers it again.
func TestRolloutOverlappingRuns(t *testing.T) {
	t.Parallel()
	var bodies []string
	for _, tn := range testkit.FixtureTenants()[:10] { // the template's batch size
		bodies = append(bodies, enforceMsg(tn.ID))
	}
	batch := testkit.SQSBatch(bodies...)
	tests := []struct {
		name string
		runs [2]invocation
	}{
		{"watch run and full sweep", [2]invocation{{fn: config.Sweep, input: watchRun}, {fn: config.Sweep, input: scheduled}}},
		{"two workers", [2]invocation{{fn: config.Worker, batch: batch}, {fn: config.Worker, batch: batch}}},
		{"worker and full sweep", [2]invocation{{fn: config.Worker, batch: batch}, {fn: config.Sweep, input: scheduled}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, testkit.AcronisOptions{})
			// Every request takes a moment, so that the runs overlap.
			w.Sim.SetFaults(sim.Faults{Latency: 20 * time.Millisecond})
			var notice, atOnce []string
			all, once := rolloutPlan(w.Sim.All())
			for _, id := range all {
				if tt.runs[0].covers(id) || tt.runs[1].covers(id) {
					notice = append(notice, id)
				}
			}
			for _, id := range once {
				if tt.runs[0].covers(id) || tt.runs[1].covers(id) {
					atOnce = append(atOnce, id)
				}
			}
			d := newDeployment(t)
			fs := []*function{d.start(t, w, tt.runs[0].fn), d.start(t, w, tt.runs[1].fn)}
			retries := make([][]string, 2)
			var wg sync.WaitGroup
			for i, r := range tt.runs {
				wg.Go(func() { retries[i] = r.invoke(t, fs[i]) })
			}
			wg.Wait()
			// SQS delivers the failed messages again.
			for i, ids := range retries {
				var again events.SQSEvent
				for _, rec := range tt.runs[i].batch.Records {
					if slices.Contains(ids, rec.MessageId) {
						again.Records = append(again.Records, rec)
					}
				}
				if len(again.Records) > 0 {
					if left := (invocation{fn: config.Worker, batch: again}).invoke(t, fs[i]); len(left) != 0 {
						t.Errorf("messages %v failed again when SQS retried them", left)
					}
				}
			}

			var lines []audit
			for _, f := range fs {
				lines = append(lines, audits(t, f)...)
			}
			tenants := byTenant(lines)
			checkUntouched(t, w, notice)
			puts := acceptedWrites(w.Sim.Requests())
			for _, id := range atOnce {
				if n := countAction(tenants[id], "enable"); n != 1 || puts[id] != 1 || !w.MFAOn(t, id) {
					t.Errorf("tenant %s: %d writes, %d enable lines, want one each: %v", id, puts[id], n, tenants[id])
				}
			}
			for _, id := range notice {
				if n := countAction(tenants[id], "notify"); n != 1 {
					t.Errorf("tenant %s: %d notify lines, want 1: %v", id, n, tenants[id])
				}
			}
			if got := d.received(t, len(notice)+digests(tt.runs[0].input, tt.runs[1].input))[graceStarted]; !slices.Equal(got, notice) {
				t.Errorf("grace_started for %v, want exactly one for each of %v", got, notice)
			}
		})
	}
}

// TestRolloutLeaseCoversTheConfirmingRead puts two worker instances' calls
// about one tenant in the order that overlapping runs can take: both read
// the tenant's switch off, then one takes the write lease, writes and gives
// the lease back before the other asks for it. The tenant must be written
// once and audited once (docs/reference.md, State table): the second run's
// reading is stale by the time it holds the lease.
func TestRolloutLeaseCoversTheConfirmingRead(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testkit.AcronisOptions{})
	id := testkit.Twin1 // no user lacks TOTP: MFA at once
	first := newDeployment(t)
	second := first.via(t)
	lease := "write#" + id
	secondAsked := make(chan struct{})
	var once sync.Once
	// The first run's lease waits for the second run to have read the
	// switch and asked for the lease too.
	first.aws.Before(func(c testkit.AWSCall) {
		if c.Action == dbPut && c.Params["pk"] == lease {
			select {
			case <-secondAsked:
			case <-time.After(10 * time.Second):
			}
		}
	})
	// The second run's lease goes through once the first has given its own
	// back.
	db := dynamodb.NewFromConfig(testkit.MotoConfig(t, moto.Endpoint))
	second.aws.Before(func(c testkit.AWSCall) {
		if c.Action != dbPut || c.Params["pk"] != lease {
			return
		}
		once.Do(func() { close(secondAsked) })
		poll := time.NewTicker(10 * time.Millisecond)
		defer poll.Stop()
		for deadline := time.After(10 * time.Second); ; {
			out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(first.table),
				Key: map[string]dbtypes.AttributeValue{"pk": &dbtypes.AttributeValueMemberS{Value: lease}, "sk": &dbtypes.AttributeValueMemberS{Value: "lease"}}})
			if err == nil && first.aws.Count(dbDelete, "pk", lease) > 0 && len(out.Item) == 0 {
				return
			}
			select {
			case <-deadline:
				return
			case <-poll.C:
			}
		}
	})
	fs := []*function{first.start(t, w, config.Worker), second.start(t, w, config.Worker)}
	var wg sync.WaitGroup
	for _, f := range fs {
		wg.Go(func() {
			if _, err := f.worker(t.Context(), testkit.SQSBatch(enforceMsg(id))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if first.aws.Count(dbPut, "pk", lease) == 0 {
		t.Fatal("the first run took no lease")
	}
	var enables []audit
	for _, f := range fs {
		for _, l := range audits(t, f) {
			if l.get("action") == "enable" {
				enables = append(enables, l)
			}
		}
	}
	if n := acceptedWrites(w.Sim.Requests())[id]; n != 1 || len(enables) != 1 {
		t.Errorf("tenant %s: %d MFA writes and %d enable lines, want 1 and 1: %v", id, n, len(enables), enables)
	}
}

// TestRolloutWorker: a {"tenant_id"} message about a tenant whose users lack
// TOTP gives the notice and is acknowledged; one about a tenant in grace is
// acknowledged with a skipped line that names the deadline, at no notice and
// no write; with SNS down, such a message fails, so that SQS retries it, and
// its tenant is untouched until the retry gives the notice.
func TestRolloutWorker(t *testing.T) {
	t.Parallel()
	w := newWorld(t, testkit.AcronisOptions{})
	d := newDeployment(t)
	f := d.start(t, w, config.Worker)
	contoso, twin := testkit.Contoso, testkit.Twin1

	resp, err := f.worker(t.Context(), testkit.SQSBatch(enforceMsg(contoso), createdMsg(twin)))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("batch: failures %v, %v", failed(resp), err)
	}
	lines := byTenant(audits(t, f))
	checkNotified(t, lines[contoso], w, []string{contoso})
	if l := lines[twin]; len(l) != 1 || l[0].get("action") != "enable" || !w.MFAOn(t, twin) {
		t.Errorf("tenant %s, whose users all have TOTP: lines %v, want one enable", twin, l)
	}
	if got := d.received(t, 1)[graceStarted]; !slices.Equal(got, []string{contoso}) {
		t.Errorf("grace_started for %v, want one for %s", got, contoso)
	}
	deadline := lines[contoso][0].get("deadline")

	// In grace: acknowledged, with the deadline, and nothing else.
	mark := f.out.Mark()
	resp, err = f.worker(t.Context(), testkit.SQSBatch(enforceMsg(contoso)))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("a message about a tenant in grace: failures %v, %v", failed(resp), err)
	}
	if l := auditsSince(f, mark); len(l) != 1 || l[0].get("action") != "skipped" || l[0].get("deadline") != deadline ||
		!strings.Contains(l[0].get("reason"), deadline) {
		t.Errorf("lines %v, want one skipped line naming the deadline %s", l, deadline)
	}
	checkUntouched(t, w, []string{contoso})
	if n := d.aws.Count(snsPublish, "TopicArn", d.topic.ARN); n != 1 {
		t.Errorf("%d notices published, want only the first: none for a tenant already in grace", n)
	}

	// SNS down: the messages fail, and their tenants wait for the retry.
	ids := []string{testkit.OffCustomer, testkit.Foldered}
	batch := testkit.SQSBatch(enforceMsg(ids[0]), createdMsg(ids[1]))
	d.aws.Fail(snsPublish, testkit.AWSError{Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable"}, "TopicArn", d.topic.ARN)
	mark = f.out.Mark()
	resp, err = f.worker(t.Context(), batch)
	if got := failed(resp); err != nil || !slices.Equal(got, []string{"m0", "m1"}) {
		t.Errorf("with SNS down: failures %v, %v; want both messages", got, err)
	}
	tenants := byTenant(auditsSince(f, mark))
	for _, id := range ids {
		checkFailed(t, tenants[id], id, "rollout: notice not published")
	}
	checkUntouched(t, w, ids)
	if given := d.notices(t); len(given) != 1 || !given[contoso] {
		t.Errorf("notices recorded %v, want only %s's", given, contoso)
	}

	d.aws.Fail(snsPublish, testkit.AWSError{}, "TopicArn", d.topic.ARN)
	mark = f.out.Mark()
	if resp, err = f.worker(t.Context(), batch); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("the retry: failures %v, %v", failed(resp), err)
	}
	checkNotified(t, auditsSince(f, mark), w, ids)
	checkUntouched(t, w, ids)
	if got := d.received(t, 2)[graceStarted]; !slices.Equal(got, ids) {
		t.Errorf("grace_started for %v, want one each for %v", got, ids)
	}
}
