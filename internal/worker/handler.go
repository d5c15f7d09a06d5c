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

// Acronis is the part of the Acronis client the worker uses beyond enforcement.
type Acronis interface {
	FindTenantByName(ctx context.Context, rootID, name string) (tenant.Tenant, error)
	OwnTenantID(ctx context.Context) (string, error)
	Stats() acronis.Stats
}

// Handler processes SQS batches of enforcement requests (docs/reference.md,
// Worker messages).
type Handler struct {
	Acronis  Acronis
	Enforcer *enforce.Enforcer
	Desired  bool
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
	tenantID  string // the message's, or found by its name
}

// batch is one invocation's work and what it reports.
type batch struct {
	*Handler
	metrics *telemetry.Metrics
	mu      sync.Mutex
	failed  []events.SQSBatchItemFailure
}

func (b *batch) fail(messageID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failed = append(b.failed, events.SQSBatchItemFailure{ItemIdentifier: messageID})
}

// Handle enforces every message of the batch and lists those that failed or
// could not be parsed, so that SQS retries them and finally dead-letters them.
func (h *Handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	b := &batch{Handler: h, metrics: telemetry.NewMetrics(h.Namespace, telemetry.Worker)}
	before := h.Acronis.Stats()
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-h.Reserve))
		defer cancel()
	}
	jobs := b.parse(ctx, ev.Records)
	b.resolveNames(ctx, jobs)
	b.enforce(ctx, jobs)

	enforce.CountRequests(b.metrics, h.Acronis.Stats().Sub(before))
	if err := b.metrics.Write(h.Out, h.Now()); err != nil {
		h.Logger.ErrorContext(ctx, "write metrics", "error", err)
	}
	h.Logger.InfoContext(ctx, "batch done", "messages", len(ev.Records), "failed", len(b.failed))
	return events.SQSEventResponse{BatchItemFailures: b.failed}, nil
}

// parse reads every message; one that cannot be parsed fails at once.
func (b *batch) parse(ctx context.Context, records []events.SQSMessage) []job {
	jobs := make([]job, 0, len(records))
	for _, rec := range records {
		msg, err := ParseMessage(rec.Body)
		if err != nil {
			b.Logger.ErrorContext(ctx, "unparseable message", "message_id", rec.MessageId, "error", err)
			b.metrics.Add(telemetry.MetricTenantsFailed, 1)
			b.fail(rec.MessageId)
			continue
		}
		jobs = append(jobs, job{messageID: rec.MessageId, msg: msg, tenantID: msg.TenantID})
	}
	return jobs
}

// enforce runs the jobs whose tenant is known. Messages about one tenant run
// one after another, in batch order, so that two writes to one switch never
// race; different tenants run at once.
func (b *batch) enforce(ctx context.Context, jobs []job) {
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
	slots := make(chan struct{}, max(b.Concurrency, 1))
	var wg sync.WaitGroup
	for _, id := range order {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			for _, j := range groups[id] {
				b.run(ctx, j)
			}
		})
	}
	wg.Wait()
}

// run enforces one message and reports it.
func (b *batch) run(ctx context.Context, j job) {
	req := enforce.IDRequest{ID: j.tenantID, Intent: b.intent(j.msg), SweepID: j.msg.SweepID}
	if j.msg.TenantID != "" {
		req.Name = j.msg.TenantName // sent with the id: checked against the tenant
	}
	res := b.Enforcer.EnforceID(ctx, req)
	enforce.Audit(ctx, b.Logger, res, j.msg.SweepID, b.Enforcer.Rules.DryRun)
	enforce.Count(b.metrics, res)
	// A refusal fails an explicit request, whose caller must learn the state
	// was not set; for policy-driven enforcement it is an answer like the
	// sweep's not_allowed, which no retry would change. A tenant in grace is
	// acknowledged: its audit line names the deadline.
	if res.Err != nil || res.Decision.Outcome == policy.NotAllowed && j.msg.Enabled != nil {
		b.logFailure(ctx, j, res.Decision.Reason, res.Err)
		b.fail(j.messageID)
	}
}

// logFailure logs why a message goes back to the queue, with what ties it to its
// origin: whoever reads the dead-letter queue starts from the message id.
func (h *Handler) logFailure(ctx context.Context, j job, reason string, err error) {
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

// resolveNames finds the id of every job that names its tenant by name only,
// concurrently. A job whose name is not found exactly once fails, and keeps an
// empty tenantID.
func (b *batch) resolveNames(ctx context.Context, jobs []job) {
	var root string
	var rootErr error
	var once sync.Once
	rootID := func() (string, error) {
		once.Do(func() {
			root = b.RootTenantID
			if root == "" {
				root, rootErr = b.Acronis.OwnTenantID(ctx)
			}
		})
		return root, rootErr
	}
	unresolved := func(j job, err error) {
		b.logFailure(ctx, j, "tenant name not resolved", err)
		res := enforce.Result{Tenant: tenant.Tenant{Name: j.msg.TenantName}, Intent: b.intent(j.msg), Err: err}
		enforce.Audit(ctx, b.Logger, res, j.msg.SweepID, b.Enforcer.Rules.DryRun)
		enforce.Count(b.metrics, res)
		b.fail(j.messageID)
	}
	slots := make(chan struct{}, max(b.Concurrency, 1))
	var wg sync.WaitGroup
	for i := range jobs {
		if jobs[i].tenantID != "" {
			continue
		}
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			j := &jobs[i]
			root, err := rootID()
			if err != nil {
				unresolved(*j, fmt.Errorf("find the root tenant to look up %q: %w", j.msg.TenantName, err))
				return
			}
			t, err := b.Acronis.FindTenantByName(ctx, root, j.msg.TenantName)
			if err != nil {
				unresolved(*j, err)
				return
			}
			j.tenantID = t.ID
		})
	}
	wg.Wait()
}
