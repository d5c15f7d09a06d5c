package testkit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/aws/aws-lambda-go/events"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/tenant"
)

// SweepExpect is what a sweep must do.
type SweepExpect struct {
	DryRun bool
	Seen   int      // tenants listed; 0: the whole tree
	Enable []string // the tenants it switches on, or would in a dry run; sorted
	// InGrace and Notified are its counts of them.
	InGrace, Notified int
	// Notices are the tenants of the notices it publishes besides its digest,
	// by event; nil: none are looked for (a dry run or a watch run publishes
	// none).
	Notices map[string][]string
}

// SweepRun is what a sweep did, as its answer, the simulator, S3 and the
// topic's subscriber show it.
type SweepRun struct {
	Invocation
	Summary SweepSummary
	Before  Drift               // the tree's drift before the sweep
	Routes  map[string]int      // its Acronis requests (see Routes)
	Report  Report              // a full sweep's report
	Notices map[string][]Notice // what it published, by event
}

// RunSweep sends the sweep function f event, reads what it did, and checks it
// against want: the summary's counts, the tenants switched, one
// listing request, a confirming read of each tenant it switches or notifies
// (or would) and of no other, a PUT per switch, a full sweep's report (see
// ReadReport), and the notices, its digest among them (see CheckDigest).
func (l *Local) RunSweep(ctx context.Context, f *Function, event []byte, want SweepExpect) (SweepRun, error) {
	s, stack := l.Sim, l.Stack
	r := SweepRun{Before: DriftOf(s.All())}
	states, mark := MFAStates(s), len(s.Requests())
	var err error
	if r.Invocation, r.Summary, err = f.Sweep(ctx, event); err != nil {
		return r, err
	}
	r.Routes = Routes(s.Requests()[mark:])
	if r.Summary.UpdatedSince == "" {
		if r.Report, err = stack.ReadReport(ctx, r.Summary); err != nil {
			return r, err
		}
	}
	if want.Notices != nil {
		total := 1
		for _, ids := range want.Notices {
			total += len(ids)
		}
		if r.Notices, err = stack.ReceiveNotices(ctx, total); err != nil {
			return r, err
		}
		if err := CheckDigest(r.Notices, r.Summary); err != nil {
			return r, err
		}
		for event, ids := range want.Notices {
			if got := TenantIDs(r.Notices[event]); !slices.Equal(got, ids) || len(r.Notices) != len(want.Notices)+1 {
				return r, fmt.Errorf("%s notices for %v (and %d kinds of notice), want %v", event, got, len(r.Notices), ids)
			}
		}
	}
	n, done, left, reads, changes := r.Summary.Counts, "changed", "would_change", len(want.Enable)+want.Notified, want.Enable
	if want.DryRun {
		done, left, reads, changes = left, done, len(want.Enable)+want.InGrace, nil
	}
	changed := Changed(states, MFAStates(s))
	return r, errors.Join(allOn(s, changes),
		check(r.Summary.DryRun == want.DryRun && n["tenants_seen"] == cmp.Or(want.Seen, len(s.All())),
			"dry_run %v, tenants_seen %d; want %v, %d", r.Summary.DryRun, n["tenants_seen"], want.DryRun, cmp.Or(want.Seen, len(s.All()))),
		check(n[done] == len(want.Enable) && n[left] == 0 && n["failed"] == 0 && n["in_grace"] == want.InGrace && n["notified"] == want.Notified,
			"summary %s, want %s %d, in_grace %d, notified %d, no failure", r.Summary.JSON, done, len(want.Enable), want.InGrace, want.Notified),
		check(slices.Equal(changed, changes), "the sweep switched %v, want %v", changed, changes),
		check(r.Routes["GET /tenants"] == 1 && r.Routes["GET /tenants/{id}/mfa/status"] == reads && r.Routes["PUT /tenants/{id}/mfa/status"] == len(changes),
			"Acronis requests %v, want one listing, %d confirming reads and %d PUTs", r.Routes, reads, len(changes)))
}

// BatchExpect is what a worker batch must do.
type BatchExpect struct {
	Failed []string // the message ids it gives back to SQS, sorted
	Enable []string // the tenants it switches on, sorted
	// Notices are the tenants of the notices it publishes, by event; nil:
	// none are looked for.
	Notices map[string][]string
}

// BatchRun is what a worker batch did.
type BatchRun struct {
	Invocation
	Failed  []string            // the message ids it gave back, sorted
	Notices map[string][]Notice // what it published, by event
}

// RunBatch sends the worker function f batch and checks what it did against
// want: the failures, each with an ERROR line that says why; the
// tenants switched, with one PUT and one enable audit line each; the notices.
func (l *Local) RunBatch(ctx context.Context, f *Function, batch events.SQSEvent, want BatchExpect) (BatchRun, error) {
	s, stack := l.Sim, l.Stack
	var r BatchRun
	states, puts := MFAStates(s), s.Count("PUT", "/mfa/status")
	var err error
	if r.Invocation, r.Failed, err = f.Worker(ctx, batch); err != nil {
		return r, err
	}
	var errs []error
	if want.Notices != nil {
		total := 0
		for _, ids := range want.Notices {
			total += len(ids)
		}
		if r.Notices, err = stack.ReceiveNotices(ctx, total); err != nil {
			return r, err
		}
		for event, ids := range want.Notices {
			got := TenantIDs(r.Notices[event])
			errs = append(errs, check(slices.Equal(got, ids) && len(r.Notices) == len(want.Notices),
				"%s notices for %v (and %d kinds of notice), want %v", event, got, len(r.Notices), ids))
		}
	}
	for _, id := range r.Failed {
		errs = append(errs, check(FailureReason(r.Lines, id) != "", "no ERROR line says why message %s failed", id))
	}
	var enabled []string
	for _, a := range r.Audits() {
		if id, _ := a["tenant_id"].(string); a["action"] == "enable" {
			enabled = append(enabled, id)
		}
	}
	slices.Sort(enabled)
	changed := Changed(states, MFAStates(s))
	return r, errors.Join(append(errs, allOn(s, want.Enable),
		check(slices.Equal(r.Failed, want.Failed), "batchItemFailures %v, want exactly %v", r.Failed, want.Failed),
		check(slices.Equal(changed, want.Enable) && slices.Equal(enabled, want.Enable) && s.Count("PUT", "/mfa/status")-puts == len(want.Enable),
			"the batch switched %v, audited enable for %v, with %d PUTs; want %v", changed, enabled, s.Count("PUT", "/mfa/status")-puts, want.Enable))...)
}

// allOn checks that the tenants ids have MFA on.
func allOn(s *sim.Server, ids []string) error {
	for _, id := range ids {
		if t, _ := s.Get(id); !tenant.MFAOn(t.MFAStatus) {
			return fmt.Errorf("%s has MFA %q, want it on", id, t.MFAStatus)
		}
	}
	return nil
}

func check(ok bool, format string, args ...any) error {
	if ok {
		return nil
	}
	return fmt.Errorf(format, args...)
}
