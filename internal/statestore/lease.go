package statestore

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

const (
	pkLeasePrefix = "write#"
	skLease       = "lease"
	leaseFree     = "attribute_not_exists(#pk) OR #exp < :now"
	ownLease      = "#holder = :holder"
)

// Lease takes the right to write a tenant's MFA switch for ttl, unless another
// holder has it: overlapping runs (a watch run and a full sweep, the sweep's
// fan-out and a watch run) then write a tenant once, and audit it once. A lease
// left by a holder that died lapses after ttl.
func (t *Table) Lease(ctx context.Context, tenantID, holder string, ttl time.Duration) (bool, error) {
	now := t.Now()
	m := t.key(pkLeasePrefix+tenantID, skLease)
	m["holder"], m[attrExpires] = str(holder), epoch(now.Add(ttl))
	_, err := t.DB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 aws.String(t.Name),
		Item:                      m,
		ConditionExpression:       aws.String(leaseFree),
		ExpressionAttributeNames:  namesIn(leaseFree),
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": epoch(now)},
	})
	switch {
	case err == nil:
		return true, nil
	case conditionFailed(err):
		return false, nil
	}
	return false, t.fail("PutItem", err)
}

// Unlease gives a lease back.
func (t *Table) Unlease(ctx context.Context, tenantID, holder string) error {
	return t.delete(ctx, pkLeasePrefix+tenantID, skLease, ownLease,
		map[string]types.AttributeValue{":holder": str(holder)})
}
