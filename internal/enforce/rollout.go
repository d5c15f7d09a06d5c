package enforce

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"acronismfa/internal/notify"
	"acronismfa/internal/policy"
	"acronismfa/internal/statestore"
	"acronismfa/internal/tenant"
)

// Rollout is what giving notice before enforcement takes (docs/reference.md,
// Rollout): the state table's notices, the topic, and the users listing.
type Rollout struct {
	Notices Notices
	// Notifier publishes notices; nil without NOTIFY_TOPIC_ARN, when a notice
	// is only recorded (and audited).
	Notifier  Notifier
	Directory Directory
	Now       func() time.Time
}

// Notices is the state table's side of the rollout.
type Notices interface {
	Notices(ctx context.Context, ids []string) (map[string]statestore.Notice, error)
	Claim(ctx context.Context, n statestore.Notice, stale time.Duration) (statestore.Notice, bool, error)
	Given(ctx context.Context, n statestore.Notice) error
	Release(ctx context.Context, n statestore.Notice) error
	Forget(ctx context.Context, tenantID string) error
}

// Notifier publishes a notice.
type Notifier interface {
	Publish(ctx context.Context, n notify.Notice) error
}

// Directory lists users and the tenants they belong to.
type Directory interface {
	Users(ctx context.Context, rootTenantID string) iter.Seq2[tenant.User, error]
	Children(ctx context.Context, id string) ([]tenant.Tenant, error)
}

const (
	// claimStale is when a claim on a notice that was never given is taken
	// over: longer than any invocation, which is what held it.
	claimStale = 15 * time.Minute
	// maxListedUsers bounds the users a notice names.
	maxListedUsers = 50
)

// notice returns the tenant's notice: from the request's bulk read, or read now.
func (r *Rollout) notice(ctx context.Context, req Request) (*statestore.Notice, error) {
	notices := req.Notices
	if notices == nil {
		var err error
		if notices, err = r.Notices.Notices(ctx, []string{req.Tenant.ID}); err != nil {
			return nil, fmt.Errorf("read the rollout notice: %w", err)
		}
	}
	n, ok := notices[req.Tenant.ID]
	if !ok {
		return nil, nil
	}
	return &n, nil
}

// give gives the tenant its notice: it claims it in the state table (so that
// overlapping runs give one notice), lists the users who lack TOTP, publishes
// and records the notice. A notice that cannot be published is released, and
// the tenant fails: neither enforced nor in grace, and the next run tries
// again. One published but not recorded keeps its claim, and is given again
// once the claim is stale: at least once, never zero times.
func (e *Enforcer) give(ctx context.Context, req Request, facts policy.Facts, res *Result) {
	r, t := e.Rollout, req.Tenant
	n := statestore.Notice{TenantID: t.ID, TenantName: t.Name, ClaimedAt: facts.Now,
		UsersWithoutTOTP: res.Status.UsersWithoutTOTP(), SweepID: req.SweepID}
	held, claimed, err := r.Notices.Claim(ctx, n, claimStale)
	if err != nil {
		res.Err = fmt.Errorf("record the notice: %w", err)
		return
	}
	if !claimed {
		// Another run gave it, or is giving it: no second notice.
		facts.Notice = noticeFacts(&held, facts.Now)
		res.Decision = e.Rules.Decide(facts, req.Intent)
		return
	}
	if err := r.publish(ctx, t, res, req.SweepID); err != nil {
		if rerr := r.Notices.Release(ctx, n); rerr != nil {
			err = errors.Join(err, fmt.Errorf("release the claim on the notice: %w", rerr))
		}
		res.Err = err
		return
	}
	n.NoticedAt = facts.Now
	if err := r.Notices.Given(ctx, n); err != nil {
		res.Err = fmt.Errorf("the notice was published but not recorded, and will be given again: %w", err)
		return
	}
	res.Notified = true
}

// publish sends the grace_started notice, naming the users who lack TOTP.
func (r *Rollout) publish(ctx context.Context, t tenant.Tenant, res *Result, sweepID string) error {
	if r.Notifier == nil {
		return nil
	}
	users, total, err := r.usersWithoutTOTP(ctx, t)
	if err != nil {
		return fmt.Errorf("%w: list the users who lack TOTP: %w", errNotPublished, err)
	}
	doc := notify.GraceStarted{TenantID: t.ID, TenantName: t.Name, Deadline: res.Decision.Deadline,
		UsersCount: res.Status.UsersCount, UsersWithoutTOTP: res.Status.UsersWithoutTOTP(),
		UsersTruncated: total > len(users), UsersNotListed: total - len(users), SweepID: sweepID}
	for _, u := range users {
		doc.Users = append(doc.Users, notify.User{ID: u.ID, Login: u.Login, Email: u.Email, Name: u.Name()})
	}
	if err := r.Notifier.Publish(ctx, doc); err != nil {
		return fmt.Errorf("%w: %w", errNotPublished, err)
	}
	return nil
}

// usersWithoutTOTP lists, up to maxListedUsers, the enabled users of the
// tenant's own who still have to set up TOTP, and counts them all.
func (r *Rollout) usersWithoutTOTP(ctx context.Context, t tenant.Tenant) ([]tenant.User, int, error) {
	var users []tenant.User
	total := 0
	for u, err := range OwnUsers(ctx, r.Directory, t) {
		if err != nil {
			return nil, 0, err
		}
		if !u.NeedsTOTP() {
			continue
		}
		total++
		if len(users) < maxListedUsers {
			users = append(users, u)
		}
	}
	return users, total, nil
}

// OwnUsers lists the users of the tenant and of its own folders and units:
// those its MFA switch applies to. A partner's subtree also holds its
// customers' users, who are not its own.
func OwnUsers(ctx context.Context, dir Directory, t tenant.Tenant) iter.Seq2[tenant.User, error] {
	return func(yield func(tenant.User, error) bool) {
		own := map[string]bool{t.ID: true}
		if t.Kind != tenant.KindCustomer {
			// Customers hold only units, so a customer's whole subtree is its
			// own. Other kinds also hold tenants with switches of their own.
			for queue := []string{t.ID}; len(queue) > 0; queue = queue[1:] {
				children, err := dir.Children(ctx, queue[0])
				if err != nil {
					yield(tenant.User{}, err)
					return
				}
				for _, c := range children {
					if c.Kind.InheritsMFA() {
						own[c.ID] = true
						queue = append(queue, c.ID)
					}
				}
			}
		}
		for u, err := range dir.Users(ctx, t.ID) {
			if err != nil {
				yield(tenant.User{}, err)
				return
			}
			if (t.Kind == tenant.KindCustomer || own[u.TenantID]) && !yield(u, nil) {
				return
			}
		}
	}
}

// close ends a grace: the tenant was enforced, so its notice goes, and an
// enforced notice tells whoever got the first one.
func (r *Rollout) close(ctx context.Context, req Request, n statestore.Notice, usersWithoutTOTP int) error {
	var err error
	if !n.Pending() && r.Notifier != nil {
		err = r.Notifier.Publish(ctx, notify.Enforced{TenantID: n.TenantID, TenantName: req.Tenant.Name,
			NotifiedAt: n.NoticedAt, UsersWithoutTOTP: usersWithoutTOTP, SweepID: req.SweepID})
		if err != nil {
			err = fmt.Errorf("MFA is on, but the enforced notice was not published: %w", err)
		}
	}
	return errors.Join(err, r.Forget(ctx, n.TenantID))
}

// Forget removes the notice of a tenant that reached the desired state by
// other means. A failure leaves a stale notice, which only shortens a later
// grace: callers audit it and go on.
func (r *Rollout) Forget(ctx context.Context, tenantID string) error {
	if err := r.Notices.Forget(ctx, tenantID); err != nil {
		return fmt.Errorf("remove the rollout notice: %w", err)
	}
	return nil
}
