package statestore

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Notice is a tenant's rollout record: a run's claim to give the tenant its
// notice and, once the notice is out, when it was given. The grace deadline is
// not stored: it follows the current ROLLOUT_GRACE_DAYS.
type Notice struct {
	TenantID         string
	TenantName       string
	ClaimedAt        time.Time
	NoticedAt        time.Time // zero while the claim is pending
	UsersWithoutTOTP int
	SweepID          string
}

// Pending reports whether the notice is claimed but not yet given.
func (n Notice) Pending() bool { return n.NoticedAt.IsZero() }

const (
	pkNotice = "notice"
	// noticeRetention is how long a notice stays for housekeeping's sake: past
	// the longest grace there is (365 days), so that TTL never ends a grace.
	noticeRetention = 400 * 24 * time.Hour
	// batchGetLimit is BatchGetItem's limit of keys per request.
	batchGetLimit = 100
	// unprocessedRounds bounds the re-requests of keys DynamoDB left unprocessed
	// (it does so under throttling), and unprocessedBackoff is the pause before
	// the first, doubled before each next one, as AWS asks; the SDK retries
	// whole calls on its own.
	unprocessedRounds  = 5
	unprocessedBackoff = 25 * time.Millisecond
)

func (t *Table) noticeItem(n Notice) map[string]types.AttributeValue {
	m := t.key(pkNotice, n.TenantID)
	m["tenant_name"] = str(n.TenantName)
	m["claimed_at"] = millis(n.ClaimedAt)
	m["users_without_totp"] = num(int64(n.UsersWithoutTOTP))
	m[attrExpires] = epoch(n.ClaimedAt.Add(noticeRetention))
	if n.SweepID != "" {
		m["sweep_id"] = str(n.SweepID)
	}
	if !n.NoticedAt.IsZero() {
		m["noticed_at"] = millis(n.NoticedAt)
	}
	return m
}

// decodeNotice reads a notice item; nil when it has expired.
func decodeNotice(m map[string]types.AttributeValue, now time.Time) (*Notice, error) {
	it := item{m: m}
	n := Notice{
		TenantID:         it.str(attrSK),
		TenantName:       it.optStr("tenant_name"),
		ClaimedAt:        it.millis("claimed_at"),
		UsersWithoutTOTP: int(it.num("users_without_totp")),
		SweepID:          it.optStr("sweep_id"),
	}
	if _, ok := m["noticed_at"]; ok {
		n.NoticedAt = it.millis("noticed_at")
	}
	expired := it.expired(now)
	if it.err != nil {
		return nil, fmt.Errorf("notice item %v: %w", m[attrSK], it.err)
	}
	if expired {
		return nil, nil
	}
	return &n, nil
}

// Notices reads the notices of the tenants ids, in batches of 100. Tenants
// without a notice are absent from the answer.
func (t *Table) Notices(ctx context.Context, ids []string) (map[string]Notice, error) {
	out := make(map[string]Notice, len(ids))
	now := t.Now()
	for start := 0; start < len(ids); start += batchGetLimit {
		keys := make([]map[string]types.AttributeValue, 0, batchGetLimit)
		for _, id := range ids[start:min(start+batchGetLimit, len(ids))] {
			keys = append(keys, t.key(pkNotice, id))
		}
		for round := 0; len(keys) > 0; round++ {
			if round == unprocessedRounds {
				return nil, t.fail("BatchGetItem", fmt.Errorf("%d keys still unprocessed after %d rounds", len(keys), round))
			}
			if round > 0 {
				if err := pause(ctx, unprocessedBackoff<<(round-1)); err != nil {
					return nil, t.fail("BatchGetItem", err)
				}
			}
			resp, err := t.DB.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
				t.Name: {Keys: keys, ConsistentRead: aws.Bool(true)},
			}})
			if err != nil {
				return nil, t.fail("BatchGetItem", err)
			}
			for _, m := range resp.Responses[t.Name] {
				n, err := decodeNotice(m, now)
				if err != nil {
					return nil, t.fail("BatchGetItem", err)
				}
				if n != nil {
					out[n.TenantID] = *n
				}
			}
			keys = resp.UnprocessedKeys[t.Name].Keys
		}
	}
	return out, nil
}

// AllNotices reads every notice in the table: a full sweep's one query.
func (t *Table) AllNotices(ctx context.Context) (map[string]Notice, error) {
	out := map[string]Notice{}
	now := t.Now()
	p := dynamodb.NewQueryPaginator(t.DB, &dynamodb.QueryInput{
		TableName:                 aws.String(t.Name),
		KeyConditionExpression:    aws.String("#pk = :pk"),
		ExpressionAttributeNames:  namesIn("#pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(pkNotice)},
		ConsistentRead:            aws.Bool(true),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, t.fail("Query", err)
		}
		for _, m := range page.Items {
			n, err := decodeNotice(m, now)
			if err != nil {
				return nil, t.fail("Query", err)
			}
			if n != nil {
				out[n.TenantID] = *n
			}
		}
	}
	return out, nil
}

const claimCondition = "attribute_not_exists(#pk) OR #exp < :now OR (attribute_not_exists(#noticed) AND #claimed < :stale)"

// Claim records that this run gives the tenant n.TenantID its notice, unless
// another run holds the right: a notice already given, or a claim younger than
// stale (a claim older than that belongs to an invocation that died before
// giving the notice). When another holds it, Claim returns that notice and
// false.
func (t *Table) Claim(ctx context.Context, n Notice, stale time.Duration) (Notice, bool, error) {
	n.NoticedAt = time.Time{}
	now := t.Now()
	_, err := t.DB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                aws.String(t.Name),
		Item:                     t.noticeItem(n),
		ConditionExpression:      aws.String(claimCondition),
		ExpressionAttributeNames: namesIn(claimCondition),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":now":   epoch(now),
			":stale": millis(now.Add(-stale)),
		},
	})
	if err == nil {
		return n, true, nil
	}
	if !conditionFailed(err) {
		return Notice{}, false, t.fail("PutItem", err)
	}
	m, err := t.get(ctx, pkNotice, n.TenantID)
	if err != nil {
		return Notice{}, false, err
	}
	if m == nil {
		// Removed between the two calls: the next run claims it afresh.
		return Notice{}, false, t.fail("PutItem", fmt.Errorf("notice of %s changed while it was claimed", n.TenantID))
	}
	found, err := decodeNotice(m, now)
	if err != nil || found == nil {
		return Notice{}, false, t.fail("GetItem", fmt.Errorf("notice of %s: %v", n.TenantID, err))
	}
	return *found, false, nil
}

const (
	givenUpdate = "SET #noticed = :at, #exp = :expires"
	// ownClaim holds while the claim this run made is still pending.
	ownClaim = "#claimed = :claimed AND attribute_not_exists(#noticed)"
)

// Given marks a notice this run claimed as given at n.NoticedAt.
func (t *Table) Given(ctx context.Context, n Notice) error {
	_, err := t.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(t.Name),
		Key:                      t.key(pkNotice, n.TenantID),
		UpdateExpression:         aws.String(givenUpdate),
		ConditionExpression:      aws.String(ownClaim),
		ExpressionAttributeNames: namesIn(givenUpdate, ownClaim),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":at":      millis(n.NoticedAt),
			":expires": epoch(n.NoticedAt.Add(noticeRetention)),
			":claimed": millis(n.ClaimedAt),
		},
	})
	if conditionFailed(err) {
		return t.fail("UpdateItem", fmt.Errorf("the claim on the notice of %s was taken over", n.TenantID))
	}
	if err != nil {
		return t.fail("UpdateItem", err)
	}
	return nil
}

// Release gives up a claim this run made and could not honour (the notice was
// not published), so that the next run tries again.
func (t *Table) Release(ctx context.Context, n Notice) error {
	return t.delete(ctx, pkNotice, n.TenantID, ownClaim,
		map[string]types.AttributeValue{":claimed": millis(n.ClaimedAt)})
}

// Forget removes a tenant's notice: the tenant was enforced, or reached the
// desired state by other means.
func (t *Table) Forget(ctx context.Context, tenantID string) error {
	return t.delete(ctx, pkNotice, tenantID, "", nil)
}

// pause waits d, or less if ctx ends first.
func pause(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
