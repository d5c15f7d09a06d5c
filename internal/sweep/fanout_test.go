package sweep_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"acronismfa/internal/acronis"
	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/policy"
	"acronismfa/internal/sweep"
	"acronismfa/internal/telemetry"
	"acronismfa/internal/testkit"
	"acronismfa/internal/worker"
)

// recordingSQS passes batches to SQS and remembers their sizes; refuse, when
// set, makes SQS's answer list some entries as failed.
type recordingSQS struct {
	sqs    sweep.SQSAPI
	mu     sync.Mutex
	sizes  []int
	refuse func(body string, attempt int) bool
	tries  map[string]int
}

func (r *recordingSQS) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	r.mu.Lock()
	r.sizes = append(r.sizes, len(in.Entries))
	if r.tries == nil {
		r.tries = map[string]int{}
	}
	var pass []types.SendMessageBatchRequestEntry
	var failed []types.BatchResultErrorEntry
	for _, e := range in.Entries {
		body := aws.ToString(e.MessageBody)
		r.tries[body]++
		if r.refuse != nil && r.refuse(body, r.tries[body]) {
			failed = append(failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError"), Message: aws.String("injected"), SenderFault: false})
		} else {
			pass = append(pass, e)
		}
	}
	r.mu.Unlock()
	out := &sqs.SendMessageBatchOutput{Failed: failed}
	if len(pass) > 0 {
		sent, err := r.sqs.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: in.QueueUrl, Entries: pass}, opts...)
		if err != nil {
			return nil, err
		}
		out.Successful = sent.Successful
		out.Failed = append(out.Failed, sent.Failed...)
	}
	return out, nil
}

// queueEnv is a moto SQS queue and a client of it.
type queueEnv struct {
	client   *sqs.Client
	url      string
	endpoint string
}

func newQueue(t *testing.T) queueEnv {
	t.Helper()
	endpoint := testkit.NewMoto(t).Endpoint
	client := sqs.NewFromConfig(testkit.MotoConfig(t, endpoint))
	q, err := client.CreateQueue(t.Context(), &sqs.CreateQueueInput{QueueName: aws.String("enforce")})
	if err != nil {
		t.Fatal(err)
	}
	return queueEnv{client: client, url: aws.ToString(q.QueueUrl), endpoint: endpoint}
}

// receive takes n messages off the queue, polling until they are all there.
func (q queueEnv) receive(t *testing.T, n int) []types.Message {
	t.Helper()
	var got []types.Message
	deadline := time.Now().Add(30 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		out, err := q.client.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(q.url), MaxNumberOfMessages: 10, VisibilityTimeout: 300})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, out.Messages...)
	}
	if len(got) != n {
		t.Fatalf("received %d messages, want %d", len(got), n)
	}
	return got
}

// drifting lists the tenants the listing shows drifting, from the simulator's
// records; those whose update Acronis does not allow are among them, as the
// listing cannot tell.
func drifting(all []sim.Tenant) []string {
	want := map[string]bool{}
	for _, t := range all {
		on := t.MFAStatus == "enabled" || t.MFAStatus == "setup_required"
		if t.Kind != "unit" && t.Kind != "folder" && t.Enabled && !on {
			want[t.ID] = true
		}
	}
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// sqsFromEnvironment builds the SQS client the way the sweep function does, from
// the standard configuration, with only AWS_ENDPOINT_URL_SQS pointing at moto.
func sqsFromEnvironment(t *testing.T, endpoint string) *sqs.Client {
	t.Helper()
	for k, v := range (&testkit.Moto{Endpoint: endpoint}).Env() {
		t.Setenv(k, v)
	}
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1") // nothing listens: only the SQS endpoint may be used
	t.Setenv("AWS_ENDPOINT_URL_SQS", endpoint)
	cfg, err := awsconfig.LoadDefaultConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return sqs.NewFromConfig(cfg)
}

func TestFanoutHandsDriftingTenantsToTheWorker(t *testing.T) {
	env := testkit.NewAcronis(t, testkit.AcronisOptions{Tree: &sim.TreeSpec{Seed: 21, Size: 1200}})
	q := newQueue(t)
	want := drifting(env.Sim.All())
	expected := expect(env.Sim.All(), nil, false)

	rec := &recordingSQS{sqs: sqsFromEnvironment(t, q.endpoint)}
	s := newSweeper(env, policy.Rules{}, &audits{})
	s.InlineLimit = 100
	s.Fanout = &sweep.Fanout{SQS: rec, QueueURL: q.url, Concurrency: 4, Attempts: 3}
	sum, err := s.Run(t.Context(), sweep.Run{RootTenantID: env.Sim.RootID(), SweepID: "sweep-42"})
	if err != nil {
		t.Fatal(err)
	}
	if sum.FannedOut != len(want) || sum.Changed != 0 || sum.Failed != 0 {
		t.Fatalf("fanned out %d, changed %d, failed %d; want %d fanned out and nothing else", sum.FannedOut, sum.Changed, sum.Failed, len(want))
	}
	if sum.FannedOut != expected.Changed+expected.NotAllowed || accounted(sum) != sum.TenantsSeen {
		t.Fatalf("summary %+v does not account for the tree", sum)
	}
	if n := env.Sim.Count("", "/mfa/status"); n != 0 {
		t.Fatalf("the sweep asked Acronis %d times about single tenants; the worker should", n)
	}
	for _, size := range rec.sizes {
		if size < 1 || size > 10 {
			t.Fatalf("a batch of %d messages; SQS takes 1 to 10", size)
		}
	}
	if len(rec.sizes) != (len(want)+9)/10 {
		t.Fatalf("%d batches for %d messages", len(rec.sizes), len(want))
	}

	// What the worker receives is exactly the drifting tenants, with the sweep's id.
	msgs := q.receive(t, len(want))
	var got []string
	batch := events.SQSEvent{}
	for i, m := range msgs {
		parsed, err := worker.ParseMessage(aws.ToString(m.Body))
		if err != nil {
			t.Fatalf("the worker cannot parse a fan-out message: %v", err)
		}
		if parsed.SweepID != "sweep-42" || parsed.Enabled != nil {
			t.Fatalf("message %+v: want the sweep id and no explicit state", parsed)
		}
		got = append(got, parsed.TenantID)
		batch.Records = append(batch.Records, events.SQSMessage{MessageId: strconv.Itoa(i), Body: aws.ToString(m.Body)})
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("fanned out %d tenants, %d of them not the drifting ones", len(got), len(got)-len(intersect(got, want)))
	}

	// Fed to the worker, they are all enforced.
	var logs bytes.Buffer
	worker := &worker.Handler{Acronis: env.Client, Desired: true, Concurrency: 10,
		Logger: telemetry.NewLogger(&logs, "worker", "sqs", slog.LevelInfo), Namespace: "test", Out: &logs, Now: time.Now}
	for start := 0; start < len(batch.Records); start += 10 {
		part := events.SQSEvent{Records: batch.Records[start:min(start+10, len(batch.Records))]}
		resp, err := worker.Handle(t.Context(), part)
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("worker: %v, failures %v", err, resp.BatchItemFailures)
		}
	}
	if after := expect(env.Sim.All(), nil, false); after.Changed != 0 || after.NotAllowed != expected.NotAllowed {
		t.Fatalf("after the worker: %d tenants still drift, %d refused (want 0 and %d)", after.Changed, after.NotAllowed, expected.NotAllowed)
	}
	if !bytes.Contains(logs.Bytes(), []byte(`"sweep_id":"sweep-42"`)) {
		t.Fatal("the worker's audit lines do not carry the sweep id")
	}
}

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func TestFanoutRetriesRefusedEntriesAndReportsTheRest(t *testing.T) {
	env := testkit.NewAcronis(t, testkit.AcronisOptions{Tree: &sim.TreeSpec{Seed: 22, Size: 300}})
	q := newQueue(t)
	want := drifting(env.Sim.All())
	if len(want) < 3 {
		t.Fatalf("tree too small: %d drifting", len(want))
	}
	lost := want[0]
	rec := &recordingSQS{sqs: q.client, refuse: func(body string, attempt int) bool {
		// Every entry is refused once; one tenant's entry always.
		return attempt == 1 || bytes.Contains([]byte(body), []byte(lost))
	}}
	a := &audits{}
	s := newSweeper(env, policy.Rules{}, a)
	s.InlineLimit = 10
	s.Fanout = &sweep.Fanout{SQS: rec, QueueURL: q.url, Concurrency: 2, Attempts: 3}
	sum, err := s.Run(t.Context(), sweep.Run{RootTenantID: env.Sim.RootID(), SweepID: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if sum.FannedOut != len(want)-1 || sum.Failed != 1 {
		t.Fatalf("fanned out %d, failed %d; want %d and 1", sum.FannedOut, sum.Failed, len(want)-1)
	}
	if len(a.fails) != 1 || a.fails[0].TenantID != lost {
		t.Fatalf("the lost message's tenant is not audited as failed: %+v", a.fails)
	}
	q.receive(t, len(want)-1)
}

func TestDryRunNeverFansOut(t *testing.T) {
	env := testkit.NewAcronis(t, testkit.AcronisOptions{Tree: &sim.TreeSpec{Seed: 23, Size: 300}})
	rec := &recordingSQS{sqs: failingSQS{}}
	s := newSweeper(env, policy.Rules{}, &audits{})
	s.InlineLimit = 10
	s.Fanout = &sweep.Fanout{SQS: rec, QueueURL: "unused", Concurrency: 2, Attempts: 1}
	sum, err := s.Run(t.Context(), sweep.Run{RootTenantID: env.Sim.RootID(), DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if sum.FannedOut != 0 || len(rec.sizes) != 0 || sum.WouldChange != expect(env.Sim.All(), nil, true).WouldChange {
		t.Fatalf("a dry run sent %d batches: %+v", len(rec.sizes), sum)
	}
}

func TestDeadlineHandsTheRestToTheQueue(t *testing.T) {
	env := testkit.NewAcronis(t, testkit.AcronisOptions{Tree: &sim.TreeSpec{Seed: 24, Size: 2000}, Client: acronis.Options{MaxInFlight: 8}})
	q := newQueue(t)
	env.Sim.SetFaults(sim.Faults{Latency: 20 * time.Millisecond})
	want := drifting(env.Sim.All())
	s := newSweeper(env, policy.Rules{}, &audits{})
	s.Fanout = &sweep.Fanout{SQS: q.client, QueueURL: q.url, Concurrency: 4, Attempts: 3}
	s.Reserve = 2 * time.Second
	ctx, cancel := context.WithTimeout(t.Context(), 2500*time.Millisecond)
	defer cancel()
	sum, err := s.Run(ctx, sweep.Run{RootTenantID: env.Sim.RootID(), SweepID: "late"})
	if err != nil {
		t.Fatal(err)
	}
	if sum.FannedOut == 0 || sum.Changed == 0 {
		t.Fatalf("want some tenants enforced inline and the rest fanned out: %+v", sum)
	}
	// Cut-off writes may have landed; they are failures, never silent.
	if sum.Changed+sum.NotAllowed+sum.FannedOut+sum.Failed != len(want) || accounted(sum) != sum.TenantsSeen {
		t.Fatalf("changed %d + fanned out %d + failed %d != %d drifting: %+v", sum.Changed, sum.FannedOut, sum.Failed, len(want), sum)
	}
	q.receive(t, sum.FannedOut)
}

// failingSQS fails every call, for runs that must not send.
type failingSQS struct{}

func (failingSQS) SendMessageBatch(context.Context, *sqs.SendMessageBatchInput, ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	return nil, errors.New("no queue here")
}
