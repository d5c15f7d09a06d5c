package sweep

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"

	"acronismfa/internal/tenant"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// SQSAPI is the part of the SQS client that fan-out uses.
type SQSAPI interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// maxBatch is SQS's limit of entries in one SendMessageBatch.
const maxBatch = 10

// Fanout hands drifting tenants to the worker queue, so that a fleet larger than
// one invocation can enforce is spread over the worker's concurrency.
type Fanout struct {
	SQS      SQSAPI
	QueueURL string
	// Concurrency is how many SendMessageBatch calls may be in flight at once.
	Concurrency int
	// Attempts is how often an entry is sent before it counts as failed; the SDK
	// already retries whole calls, these are the per-entry failures it reports.
	Attempts int
}

// message is the worker's policy-only shape (docs/reference.md, Worker messages, shape 2) with
// the sweep id for correlating audit lines.
type message struct {
	TenantID string `json:"tenant_id"`
	SweepID  string `json:"sweep_id"`
}

// sendResult says whether a tenant's message is on the queue.
type sendResult struct {
	Tenant tenant.Tenant
	Err    error
}

// run sends every tenant from tenants in batches of up to ten and reports each
// once on results. It returns when tenants is closed and every batch is answered.
func (f *Fanout) run(ctx context.Context, sweepID string, tenants <-chan tenant.Tenant, results chan<- sendResult) {
	slots := make(chan struct{}, max(f.Concurrency, 1))
	var wg sync.WaitGroup
	batch := make([]tenant.Tenant, 0, maxBatch)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		b := batch
		batch = make([]tenant.Tenant, 0, maxBatch)
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			for _, r := range f.send(ctx, sweepID, b) {
				results <- r
			}
		})
	}
	for t := range tenants {
		batch = append(batch, t)
		if len(batch) == maxBatch {
			flush()
		}
	}
	flush()
	wg.Wait()
}

// send delivers one batch, retrying the entries SQS reports as failed.
func (f *Fanout) send(ctx context.Context, sweepID string, tenants []tenant.Tenant) []sendResult {
	out := make([]sendResult, 0, len(tenants))
	pending := tenants
	var lastErr map[string]error // by tenant id
	for attempt := 0; attempt < max(f.Attempts, 1) && len(pending) > 0; attempt++ {
		entries := make([]types.SendMessageBatchRequestEntry, len(pending))
		for i, t := range pending {
			body, _ := json.Marshal(message{TenantID: t.ID, SweepID: sweepID})
			entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(string(body))}
		}
		resp, err := f.SQS.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(f.QueueURL), Entries: entries})
		lastErr = make(map[string]error, len(pending))
		if err != nil {
			for _, t := range pending {
				lastErr[t.ID] = fmt.Errorf("fan out to %s: %w", f.QueueURL, err)
			}
			if ctx.Err() != nil {
				break
			}
			continue
		}
		// Only an entry SQS lists as successful is on the queue; anything else is
		// sent again, so no tenant is reported as fanned out by omission.
		sent := make(map[string]bool, len(resp.Successful))
		for _, e := range resp.Successful {
			sent[aws.ToString(e.Id)] = true
		}
		refused := make(map[string]string, len(resp.Failed))
		for _, e := range resp.Failed {
			refused[aws.ToString(e.Id)] = aws.ToString(e.Code) + ": " + aws.ToString(e.Message)
		}
		retry := pending[:0:0]
		for i, t := range pending {
			key := strconv.Itoa(i)
			if sent[key] {
				out = append(out, sendResult{Tenant: t})
				continue
			}
			reason, ok := refused[key]
			if !ok {
				reason = "no answer for this entry"
			}
			lastErr[t.ID] = fmt.Errorf("fan out to %s: SQS refused the message: %s", f.QueueURL, reason)
			retry = append(retry, t)
		}
		pending = retry
	}
	for _, t := range pending {
		out = append(out, sendResult{Tenant: t, Err: lastErr[t.ID]})
	}
	return out
}
