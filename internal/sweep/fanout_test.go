//go:build integration

package sweep_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"acronismfa/internal/acronis"
	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/enforce"
	"acronismfa/internal/policy"
	"acronismfa/internal/sweep"
	"acronismfa/internal/telemetry"
	"acronismfa/internal/testkit"
	"acronismfa/internal/worker"
)

// recordingSQS passes batches on to a queue and remembers their sizes; the
// entries refuse picks are answered as failed, as SQS does, instead of sent.
type recordingSQS struct {
	sqs    sweep.SQSAPI
	refuse func(body string, try int) bool // nil: none
	mu     sync.Mutex
	sizes  []int
	tries  map[string]int
}

func (r *recordingSQS) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	out := &sqs.SendMessageBatchOutput{}
	var pass []types.SendMessageBatchRequestEntry
	r.mu.Lock()
	r.sizes = append(r.sizes, len(in.Entries))
	if r.tries == nil {
		r.tries = map[string]int{}
	}
	for _, e := range in.Entries {
		body := aws.ToString(e.MessageBody)
		r.tries[body]++
		if r.refuse != nil && r.refuse(body, r.tries[body]) {
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError"), Message: aws.String("injected")})
		} else {
			pass = append(pass, e)
		}
	}
	r.mu.Unlock()
	if len(pass) == 0 {
		return out, nil
	}
	sent, err := r.sqs.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: in.QueueUrl, Entries: pass}, opts...)
	if err != nil {
		return nil, err
	}
	out.Successful, out.Failed = sent.Successful, append(out.Failed, sent.Failed...)
	return out, nil
}

// queue is a moto SQS queue and a client of it.
type queue struct {
	moto   *testkit.Moto
	client *sqs.Client
	url    string
}

func newQueue(t *testing.T) queue {
	t.Helper()
	m := testkit.NewMoto(t)
	client := sqs.NewFromConfig(testkit.MotoConfig(t, m.Endpoint))
	q, err := client.CreateQueue(t.Context(), &sqs.CreateQueueInput{QueueName: aws.String("enforce")})
	if err != nil {
		t.Fatal(err)
	}
	return queue{moto: m, client: client, url: aws.ToString(q.QueueUrl)}
}

// receive takes n message bodies off the queue, polling until they are all there.
func (q queue) receive(t *testing.T, n int) []string {
	t.Helper()
	var got []string
	for deadline := time.Now().Add(30 * time.Second); len(got) < n && time.Now().Before(deadline); {
		out, err := q.client.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(q.url), MaxNumberOfMessages: 10, VisibilityTimeout: 300, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			got = append(got, aws.ToString(m.Body))
		}
	}
	if len(got) != n {
		t.Fatalf("received %d messages, want %d", len(got), n)
	}
	return got
}

// drifting lists the tenants the listing shows drifting, sorted, from the
// simulator's records; those whose update Acronis does not allow are among
// them, as the listing cannot tell.
func drifting(all []sim.Tenant) []string {
	var ids []string
	for _, t := range all {
		if listedDrifting(t) {
			ids = append(ids, t.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

func TestFanoutHandsDriftingTenantsToTheWorker(t *testing.T) {
	acr := testkit.NewAcronis(t, testkit.AcronisOptions{Tree: &sim.TreeSpec{Seed: 21, Size: 1200}})
	q := newQueue(t)
	want, before := drifting(acr.Sim.All()), expect(acr.Sim.All(), acr.Sim.RootID(), false)

	// The SQS client is built as the sweep function builds it, from the
	// standard configuration, with only AWS_ENDPOINT_URL_SQS pointing at moto.
	q.moto.Setenv(t)
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1") // nothing listens: only the SQS endpoint may be used
	t.Setenv("AWS_ENDPOINT_URL_SQS", q.moto.Endpoint)
	cfg, err := awsconfig.LoadDefaultConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingSQS{sqs: sqs.NewFromConfig(cfg)}
	r := newRig(acr, policy.Rules{})
	r.h.Sweeper.InlineLimit = 100
	r.h.Sweeper.Fanout = &sweep.Fanout{SQS: rec, QueueURL: q.url, Concurrency: 4, Attempts: 3}
	inv := r.run(t, lambdacontext.NewContext(t.Context(), &lambdacontext.LambdaContext{AwsRequestID: "sweep-42"}), `{}`)
	if sum := inv.sum; inv.err != nil || sum.FannedOut != len(want) || sum.FannedOut != before.Changed+before.NotAllowed ||
		sum.Changed != 0 || sum.Failed != 0 || accounted(sum) != sum.TenantsSeen {
		t.Fatalf("summary %+v (%v): want the %d drifting tenants fanned out and nothing else", sum, inv.err, len(want))
	}
	if n := acr.Sim.Count("GET", "/mfa/status") + acr.Sim.Count("PUT", "/mfa/status"); n != 0 {
		t.Fatalf("the sweep asked Acronis %d times about single tenants; the worker should", n)
	}
	if len(rec.sizes) != (len(want)+9)/10 || slices.ContainsFunc(rec.sizes, func(n int) bool { return n < 1 || n > 10 }) {
		t.Fatalf("batches of %v messages for %d tenants; SQS takes 1 to 10 a batch", rec.sizes, len(want))
	}

	// What the worker receives is exactly the drifting tenants, with the sweep's id.
	bodies := q.receive(t, len(want))
	var got []string
	for _, b := range bodies {
		m, err := worker.ParseMessage(b)
		if err != nil || m.SweepID != "sweep-42" || m.Enabled != nil {
			t.Fatalf("message %s (%v): want one the worker parses, with the sweep id and no explicit state", b, err)
		}
		got = append(got, m.TenantID)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("fanned out %v, want the drifting tenants %v", got, want)
	}

	// Fed to the worker, they are all enforced.
	out := testkit.NewOutput(nil)
	w := &worker.Handler{Acronis: acr.Client, Enforcer: &enforce.Enforcer{API: acr.Client}, Desired: true, Concurrency: 10,
		Logger: telemetry.NewLogger(out, "worker", "sqs", slog.LevelInfo), Namespace: namespace, Out: out, Now: testkit.NewClock().Now}
	for batch := range slices.Chunk(bodies, 10) {
		resp, err := w.Handle(t.Context(), testkit.SQSBatch(batch...))
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("worker: %v, failures %v", err, testkit.FailedIDs(resp))
		}
	}
	if after := expect(acr.Sim.All(), acr.Sim.RootID(), false); after.Changed != 0 || after.NotAllowed != before.NotAllowed {
		t.Fatalf("after the worker: %d tenants still drift, %d refused (want 0 and %d)", after.Changed, after.NotAllowed, before.NotAllowed)
	}
	if audits := out.Audits(0); len(audits) == 0 || slices.ContainsFunc(audits, func(a map[string]any) bool { return a["sweep_id"] != "sweep-42" }) {
		t.Fatalf("the worker's audit lines do not all carry the sweep id: %v", audits)
	}
}

func TestFanoutRetriesRefusedEntriesAndReportsTheRest(t *testing.T) {
	acr := testkit.NewAcronis(t, testkit.AcronisOptions{Tree: &sim.TreeSpec{Seed: 22, Size: 300}})
	q := newQueue(t)
	want := drifting(acr.Sim.All())
	if len(want) < 3 {
		t.Fatalf("tree too small: %d drifting", len(want))
	}
	lost := want[0]
	// Every entry is refused once; one tenant's entry always.
	rec := &recordingSQS{sqs: q.client, refuse: func(body string, try int) bool { return try == 1 || strings.Contains(body, lost) }}
	r := newRig(acr, policy.Rules{})
	r.h.Sweeper.InlineLimit = 10
	r.h.Sweeper.Fanout = &sweep.Fanout{SQS: rec, QueueURL: q.url, Concurrency: 2, Attempts: 3}
	inv := r.run(t, t.Context(), `{}`)
	if inv.err != nil || inv.sum.FannedOut != len(want)-1 || inv.sum.Failed != 1 {
		t.Fatalf("summary %+v (%v): want %d fanned out and 1 failed", inv.sum, inv.err, len(want)-1)
	}
	if !slices.ContainsFunc(inv.audits, func(a map[string]any) bool {
		return a["tenant_id"] == lost && a["action"] == "failed" && strings.Contains(a["error"].(string), "InternalError: injected")
	}) {
		t.Fatalf("the lost message's tenant is not audited as failed, with SQS's reason: %v", inv.audits)
	}
	q.receive(t, len(want)-1)
}

// Once the deadline is near, what is under way is finished and every drifting
// tenant not yet started goes to the queue.
func TestDeadlineHandsTheRestToTheQueue(t *testing.T) {
	acr := testkit.NewAcronis(t, testkit.AcronisOptions{Tree: &sim.TreeSpec{Seed: 24, Size: 2000}, Client: acronis.Options{MaxInFlight: 8}})
	q := newQueue(t)
	acr.Sim.SetFaults(sim.Faults{Latency: 20 * time.Millisecond})
	want := drifting(acr.Sim.All())
	r := newRig(acr, policy.Rules{})
	s := &r.h.Sweeper
	s.Fanout = &sweep.Fanout{SQS: q.client, QueueURL: q.url, Concurrency: 4, Attempts: 3}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	// The clock reaches the reserve before the deadline as the first write
	// reaches Acronis, however slow this machine is; the real deadline, far
	// off, cuts nothing.
	deadline, _ := ctx.Deadline()
	s.Reserve = 2 * time.Second
	clock := testkit.NewClock()
	clock.Set(deadline.Add(-time.Minute))
	s.Now = func() time.Time {
		if acr.Sim.Count("PUT", "/mfa/status") > 0 {
			clock.Set(deadline.Add(-s.Reserve))
		}
		return clock.Now()
	}
	inv := r.run(t, ctx, `{}`)
	sum := inv.sum
	if inv.err != nil || sum.FannedOut == 0 || sum.Changed == 0 || sum.Failed != 0 {
		t.Fatalf("summary %+v (%v): want some tenants enforced inline, the rest fanned out, none failed", sum, inv.err)
	}
	if sum.Changed+sum.NotAllowed+sum.FannedOut != len(want) || accounted(sum) != sum.TenantsSeen {
		t.Fatalf("changed %d + not allowed %d + fanned out %d != %d drifting: %+v",
			sum.Changed, sum.NotAllowed, sum.FannedOut, len(want), sum)
	}
	if puts := acr.Sim.Count("PUT", "/mfa/status"); puts != sum.Changed {
		t.Fatalf("%d PUTs for %d tenants changed inline", puts, sum.Changed)
	}
	q.receive(t, sum.FannedOut)
}
