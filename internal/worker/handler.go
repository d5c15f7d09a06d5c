package worker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"acronismfa/internal/acronis"
	"acronismfa/internal/enforce"
	"acronismfa/internal/policy"
	"acronismfa/internal/telemetry"
	"acronismfa/internal/tenant"
)

// Acronis is the part of the Acronis client the worker uses.
type Acronis interface {
	enforce.API
	FindTenantByName(ctx context.Context, rootID, name string) (tenant.Tenant, error)
	OwnTenantID(ctx context.Context) (string, error)
	Stats() acronis.Stats
}

// Handler processes SQS batches of enforcement requests (docs/reference.md, Worker messages).
type Handler struct {
	Acronis Acronis
	Rules   policy.Rules
	Desired bool
	// RootTenantID is where tenant names are looked up; "" means the API
	// client's own tenant.
	RootTenantID string
	// Concurrency is how many tenants of a batch are worked on at once.
	Concurrency int
	Logger      *slog.Logger
	Namespace   string
	Out         io.Writer
	Now         func() time.Time
	// Reserve is kept free before the invocation deadline to answer with the
	// failures listed, rather than be cut off by Lambda and have SQS retry all.
	Reserve time.Duration
}

// job is one message on its way through the batch.
type job struct {
	messageID string
	msg       Message
	tenantID  string
}

// Handle enforces every message of the batch and lists those that failed or
// could not be parsed, so that SQS retries them and finally dead-letters them.
func (h *Handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	metrics := telemetry.NewMetrics(h.Namespace, "worker", "sqs")
	before := h.Acronis.Stats()
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-h.Reserve))
		defer cancel()
	}

	var (
		mu     sync.Mutex
		failed []events.SQSBatchItemFailure
	)
	fail := func(messageID string) {
		mu.Lock()
		failed = append(failed, events.SQSBatchItemFailure{ItemIdentifier: messageID})
		mu.Unlock()
	}

	jobs := make([]job, 0, len(ev.Records))
	for _, rec := range ev.Records {
		msg, err := ParseMessage(rec.Body)
		if err != nil {
			h.Logger.ErrorContext(ctx, "unparseable message", "message_id", rec.MessageId, "error", err)
			metrics.Add(telemetry.MetricTenantsFailed, 1)
			fail(rec.MessageId)
			continue
		}
		jobs = append(jobs, job{messageID: rec.MessageId, msg: msg, tenantID: msg.TenantID})
	}
	h.resolveNames(ctx, jobs, func(j job, err error) {
		h.failed(ctx, j, "tenant name not resolved", err)
		res := enforce.Result{TenantName: j.msg.TenantName, Intent: h.intent(j.msg), Err: err}
		enforce.Audit(ctx, h.Logger, res, j.msg.SweepID, h.Rules.DryRun)
		enforce.Count(metrics, res)
		fail(j.messageID)
	})

	// Messages about one tenant run one after another, in batch order, so that
	// two writes to one switch never race; different tenants run at once.
	groups := map[string][]job{}
	var order []string
	for _, j := range jobs {
		if j.tenantID == "" {
			continue
		}
		if _, ok := groups[j.tenantID]; !ok {
			order = append(order, j.tenantID)
		}
		groups[j.tenantID] = append(groups[j.tenantID], j)
	}
	enf := enforce.Enforcer{API: h.Acronis, Rules: h.Rules}
	slots := make(chan struct{}, max(h.Concurrency, 1))
	var wg sync.WaitGroup
	for _, id := range order {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			for _, j := range groups[id] {
				res := enf.EnforceID(ctx, j.tenantID, h.intent(j.msg))
				enforce.Audit(ctx, h.Logger, res, j.msg.SweepID, h.Rules.DryRun)
				enforce.Count(metrics, res)
				// A refusal fails an explicit request, whose caller must learn the
				// state was not set; for policy-driven enforcement it is an answer
				// like the sweep's not_allowed, which no retry would change.
				if res.Err != nil || res.Decision.Outcome == policy.NotAllowed && j.msg.Enabled != nil {
					h.failed(ctx, j, res.Decision.Reason, res.Err)
					fail(j.messageID)
				}
			}
		})
	}
	wg.Wait()

	enforce.CountRequests(metrics, h.Acronis.Stats().Sub(before))
	if err := metrics.Write(h.Out, h.Now()); err != nil {
		h.Logger.ErrorContext(ctx, "write metrics", "error", err)
	}
	h.Logger.InfoContext(ctx, "batch done", "messages", len(ev.Records), "failed", len(failed))
	return events.SQSEventResponse{BatchItemFailures: failed}, nil
}

// failed logs why a message goes back to the queue, with what ties it to its
// origin: whoever reads the dead-letter queue starts from the message id.
func (h *Handler) failed(ctx context.Context, j job, reason string, err error) {
	attrs := []any{"message_id", j.messageID, "shape", j.msg.Kind, "reason", reason,
		"tenant_id", j.tenantID, "tenant_name", j.msg.TenantName}
	if j.msg.EventID != "" {
		attrs = append(attrs, "event_id", j.msg.EventID, "detail_type", j.msg.DetailType)
	}
	if j.msg.SweepID != "" {
		attrs = append(attrs, "sweep_id", j.msg.SweepID)
	}
	if err != nil {
		attrs = append(attrs, "error", err.Error())
	}
	h.Logger.ErrorContext(ctx, "message failed", attrs...)
}

// intent is what a message asks for: the state it names, or MFA_DESIRED_STATE
// by policy.
func (h *Handler) intent(m Message) policy.Intent {
	if m.Enabled != nil {
		return policy.Intent{Enable: *m.Enabled, Origin: policy.ByCaller}
	}
	return policy.Intent{Enable: h.Desired, Origin: policy.ByPolicy}
}

// resolveNames finds the id of every job that names its tenant, concurrently.
// A job whose name is not found exactly once is reported to failed and keeps an
// empty tenantID.
func (h *Handler) resolveNames(ctx context.Context, jobs []job, failed func(job, error)) {
	var root string
	var rootErr error
	var once sync.Once
	rootID := func() (string, error) {
		once.Do(func() {
			root = h.RootTenantID
			if root == "" {
				root, rootErr = h.Acronis.OwnTenantID(ctx)
			}
		})
		return root, rootErr
	}
	slots := make(chan struct{}, max(h.Concurrency, 1))
	var wg sync.WaitGroup
	for i := range jobs {
		if jobs[i].msg.TenantName == "" {
			continue
		}
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			j := &jobs[i]
			root, err := rootID()
			if err != nil {
				failed(*j, fmt.Errorf("find the root tenant to look up %q: %w", j.msg.TenantName, err))
				return
			}
			t, err := h.Acronis.FindTenantByName(ctx, root, j.msg.TenantName)
			if err != nil {
				failed(*j, err)
				return
			}
			j.tenantID = t.ID
		})
	}
	wg.Wait()
}
