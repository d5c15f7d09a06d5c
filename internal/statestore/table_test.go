//go:build integration

package statestore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"acronismfa/internal/statestore"
	"acronismfa/internal/testkit"
)

// newTable is a fresh state table in a moto_server of its own, read on a fake clock.
func newTable(t *testing.T) (*statestore.Table, *testkit.Clock) {
	t.Helper()
	m := testkit.NewMoto(t)
	cfg := testkit.MotoConfig(t, m.Endpoint)
	if err := testkit.CreateStateTable(t.Context(), cfg, "state"); err != nil {
		t.Fatal(err)
	}
	clock := testkit.NewClock()
	return &statestore.Table{DB: dynamodb.NewFromConfig(cfg), Name: "state", Now: clock.Now}, clock
}

func TestNoticeLifecycle(t *testing.T) {
	table, clock := newTable(t)
	ctx := t.Context()
	const stale = 15 * time.Minute
	first := statestore.Notice{TenantID: "t-1", TenantName: "Acme", ClaimedAt: clock.Now(), UsersWithoutTOTP: 3, SweepID: "sw-1"}

	if _, ok, err := table.Claim(ctx, first, stale); err != nil || !ok {
		t.Fatalf("first claim: ok %v, %v", ok, err)
	}
	second := first
	second.SweepID = "sw-2"
	got, ok, err := table.Claim(ctx, second, stale)
	if err != nil || ok || !got.Pending() || got.SweepID != "sw-1" {
		t.Fatalf("a second claim while the first is pending: ok %v, found %+v, %v", ok, got, err)
	}

	clock.Advance(time.Minute)
	first.NoticedAt = clock.Now()
	if err := table.Given(ctx, first); err != nil {
		t.Fatal(err)
	}
	clock.Advance(stale + time.Hour) // a given notice never goes stale
	got, ok, err = table.Claim(ctx, second, stale)
	if err != nil || ok || got.Pending() || !got.NoticedAt.Equal(first.NoticedAt) || got.UsersWithoutTOTP != 3 || got.TenantName != "Acme" {
		t.Fatalf("a claim over a given notice: ok %v, found %+v, %v", ok, got, err)
	}
	if err := table.Release(ctx, second); err != nil {
		t.Fatal(err)
	}
	if all, err := table.AllNotices(ctx); err != nil || len(all) != 1 {
		t.Fatalf("a release of someone else's claim removed the notice: %v, %v", all, err)
	}
	if err := table.Forget(ctx, first.TenantID); err != nil {
		t.Fatal(err)
	}
	if all, err := table.AllNotices(ctx); err != nil || len(all) != 0 {
		t.Fatalf("after Forget: %v, %v", all, err)
	}
}

func TestStaleClaimIsTakenOver(t *testing.T) {
	table, clock := newTable(t)
	ctx := t.Context()
	dead := statestore.Notice{TenantID: "t-1", ClaimedAt: clock.Now()}
	if _, ok, err := table.Claim(ctx, dead, 15*time.Minute); err != nil || !ok {
		t.Fatal(ok, err)
	}
	clock.Advance(16 * time.Minute)
	next := statestore.Notice{TenantID: "t-1", ClaimedAt: clock.Now()}
	if _, ok, err := table.Claim(ctx, next, 15*time.Minute); err != nil || !ok {
		t.Fatalf("a claim left by a dead invocation was not taken over: %v, %v", ok, err)
	}
	dead.NoticedAt = clock.Now()
	if err := table.Given(ctx, dead); !errors.Is(err, statestore.ErrUnavailable) {
		t.Fatalf("the dead claim's owner marked a notice it no longer holds: %v", err)
	}
}

func TestNoticesInBatches(t *testing.T) {
	table, clock := newTable(t)
	ctx := t.Context()
	var ids []string
	for i := range 250 {
		id := fmt.Sprintf("t-%03d", i)
		ids = append(ids, id)
		if i%2 == 0 {
			n := statestore.Notice{TenantID: id, ClaimedAt: clock.Now()}
			if _, ok, err := table.Claim(ctx, n, time.Hour); err != nil || !ok {
				t.Fatal(ok, err)
			}
		}
	}
	got, err := table.Notices(ctx, ids)
	if err != nil || len(got) != 125 {
		t.Fatalf("Notices of 250 ids, 125 noticed: %d, %v", len(got), err)
	}
	if _, ok := got["t-001"]; ok {
		t.Error("a tenant without a notice has one")
	}
	clock.Advance(401 * 24 * time.Hour) // past the retention: TTL's job, which readers do not wait for
	if got, err := table.Notices(ctx, ids); err != nil || len(got) != 0 {
		t.Fatalf("expired notices are read: %d, %v", len(got), err)
	}
}

// leavesKeys is DynamoDB under throttling: each BatchGetItem serves only the
// first serve keys and hands the rest back as unprocessed.
type leavesKeys struct {
	*dynamodb.Client
	serve int
	calls int
}

func (d *leavesKeys) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	d.calls++
	for name, ka := range in.RequestItems {
		if len(ka.Keys) <= d.serve {
			continue
		}
		rest := ka
		rest.Keys = ka.Keys[d.serve:]
		ka.Keys = ka.Keys[:d.serve]
		out := &dynamodb.BatchGetItemOutput{Responses: map[string][]map[string]types.AttributeValue{}}
		if len(ka.Keys) > 0 {
			served, err := d.Client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{name: ka}}, opts...)
			if err != nil {
				return nil, err
			}
			out.Responses = served.Responses
		}
		out.UnprocessedKeys = map[string]types.KeysAndAttributes{name: rest}
		return out, nil
	}
	return d.Client.BatchGetItem(ctx, in, opts...)
}

// Keys DynamoDB leaves unprocessed are asked for again, a bounded number of
// times.
func TestNoticesUnprocessedKeys(t *testing.T) {
	table, clock := newTable(t)
	ctx := t.Context()
	var ids []string
	for i := range 10 {
		ids = append(ids, fmt.Sprintf("t-%d", i))
		if _, ok, err := table.Claim(ctx, statestore.Notice{TenantID: ids[i], ClaimedAt: clock.Now()}, time.Hour); err != nil || !ok {
			t.Fatal(ok, err)
		}
	}
	throttled := &leavesKeys{Client: table.DB.(*dynamodb.Client), serve: 4}
	table.DB = throttled
	if got, err := table.Notices(ctx, ids); err != nil || len(got) != 10 || throttled.calls != 3 {
		t.Fatalf("%d notices, %v, in %d calls; want all 10 in 3 calls of 4", len(got), err, throttled.calls)
	}
	throttled.serve, throttled.calls = 0, 0
	if _, err := table.Notices(ctx, ids); !errors.Is(err, statestore.ErrUnavailable) || throttled.calls != 5 {
		t.Fatalf("keys never served: %v after %d calls, want the table unavailable after 5", err, throttled.calls)
	}
}

func TestReplayLifecycle(t *testing.T) {
	table, clock := newTable(t)
	ctx := t.Context()
	r := statestore.Replay{ID: "msg_1", Method: "PUT", Path: "/tenants/x/mfa", BodySHA256: "ab",
		Deadline: clock.Now().Add(30 * time.Second), Expires: clock.Now().Add(10 * time.Minute)}
	if found, err := table.BeginReplay(ctx, r); err != nil || found != nil {
		t.Fatalf("first request: %+v, %v", found, err)
	}
	found, err := table.BeginReplay(ctx, r)
	if err != nil || found == nil || found.Done || !found.SameRequest(r) {
		t.Fatalf("while in progress: %+v, %v", found, err)
	}
	if err := table.FinishReplay(ctx, r, 200, `{"changed":true}`); err != nil {
		t.Fatal(err)
	}
	other := r
	other.Path = "/tenants/y/mfa"
	found, err = table.BeginReplay(ctx, other)
	if err != nil || found == nil || !found.Done || found.Status != 200 || found.Body != `{"changed":true}` || found.SameRequest(other) {
		t.Fatalf("after the answer, on another route: %+v, %v", found, err)
	}
	clock.Advance(11 * time.Minute)
	if found, err := table.BeginReplay(ctx, other); err != nil || found != nil {
		t.Fatalf("a record past its 10 minutes still counts: %+v, %v", found, err)
	}
}

func TestReplayLeftInProgress(t *testing.T) {
	table, clock := newTable(t)
	ctx := t.Context()
	r := statestore.Replay{ID: "msg_2", Method: "GET", Path: "/tenants/x/mfa",
		Deadline: clock.Now().Add(3 * time.Second), Expires: clock.Now().Add(10 * time.Minute)}
	if found, err := table.BeginReplay(ctx, r); err != nil || found != nil {
		t.Fatal(found, err)
	}
	clock.Advance(4 * time.Second) // the invocation died at its deadline
	retry := r
	retry.Deadline = clock.Now().Add(3 * time.Second)
	if found, err := table.BeginReplay(ctx, retry); err != nil || found != nil {
		t.Fatalf("a record left in progress past its deadline blocks the retry: %+v, %v", found, err)
	}
	if err := table.ReleaseReplay(ctx, retry); err != nil {
		t.Fatal(err)
	}
	if found, err := table.BeginReplay(ctx, retry); err != nil || found != nil {
		t.Fatalf("a released request is not served afresh: %+v, %v", found, err)
	}
}

func TestUnreachableTableFailsClosed(t *testing.T) {
	table, clock := newTable(t)
	table.Name = "missing"
	_, _, err := table.Claim(t.Context(), statestore.Notice{TenantID: "t", ClaimedAt: clock.Now()}, time.Minute)
	if !errors.Is(err, statestore.ErrUnavailable) {
		t.Fatalf("claim on a missing table: %v", err)
	}
	_, err = table.BeginReplay(t.Context(), statestore.Replay{ID: "m", Method: "GET", Deadline: clock.Now(), Expires: clock.Now()})
	if !errors.Is(err, statestore.ErrUnavailable) {
		t.Fatalf("begin on a missing table: %v", err)
	}
}

func TestLease(t *testing.T) {
	table, clock := newTable(t)
	ctx := t.Context()
	if ok, err := table.Lease(ctx, "t-1", "sweep-a", time.Minute); err != nil || !ok {
		t.Fatalf("first lease: %v, %v", ok, err)
	}
	if ok, err := table.Lease(ctx, "t-1", "watch-b", time.Minute); err != nil || ok {
		t.Fatalf("a second holder got the lease: %v, %v", ok, err)
	}
	if err := table.Unlease(ctx, "t-1", "watch-b"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := table.Lease(ctx, "t-1", "watch-b", time.Minute); ok {
		t.Fatal("a holder gave back a lease it did not hold")
	}
	if err := table.Unlease(ctx, "t-1", "sweep-a"); err != nil {
		t.Fatal(err)
	}
	if ok, err := table.Lease(ctx, "t-1", "watch-b", time.Minute); err != nil || !ok {
		t.Fatalf("a lease given back is not free: %v, %v", ok, err)
	}
	clock.Advance(2 * time.Minute) // watch-b died holding it
	if ok, err := table.Lease(ctx, "t-1", "sweep-c", time.Minute); err != nil || !ok {
		t.Fatalf("a lapsed lease is not free: %v, %v", ok, err)
	}
}
