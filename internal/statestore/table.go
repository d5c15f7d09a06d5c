package statestore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// ErrUnavailable is wrapped by every failure to read or write the table
// (throttled, down, refused): callers fail closed on it.
var ErrUnavailable = errors.New("state table unavailable")

// DynamoDB is the part of the DynamoDB client the table uses.
type DynamoDB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

// Table is the state table.
type Table struct {
	DB   DynamoDB
	Name string
	Now  func() time.Time
}

// The key schema: a partition key pk and a sort key sk, both strings, and the
// TTL attribute expires_at (epoch seconds).
const (
	attrPK      = "pk"
	attrSK      = "sk"
	attrExpires = "expires_at"
)

// names aliases every attribute an expression names: DynamoDB reserves
// hundreds of words (STATUS, PATH, …), and an alias can never collide.
var names = map[string]string{
	"#pk": attrPK, "#exp": attrExpires, "#claimed": "claimed_at", "#noticed": "noticed_at",
	"#phase": "phase", "#deadline": "deadline", "#status": "answer_status", "#body": "answer_body",
	"#holder": "holder",
}

// namesIn returns the aliases of names that expr uses, as DynamoDB refuses
// unused ones.
func namesIn(exprs ...string) map[string]string {
	out := map[string]string{}
	for alias, name := range names {
		for _, e := range exprs {
			if strings.Contains(e, alias) {
				out[alias] = name
			}
		}
	}
	return out
}

func (t *Table) key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: str(pk), attrSK: str(sk)}
}

func (t *Table) fail(op string, err error) error {
	return fmt.Errorf("%w: %s %s: %w", ErrUnavailable, op, t.Name, err)
}

// conditionFailed reports whether err is DynamoDB refusing a conditional write.
func conditionFailed(err error) bool {
	var cf *types.ConditionalCheckFailedException
	return errors.As(err, &cf)
}

// get reads one item with a strongly consistent read, nil when there is none.
func (t *Table) get(ctx context.Context, pk, sk string) (map[string]types.AttributeValue, error) {
	out, err := t.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(t.Name), Key: t.key(pk, sk), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, t.fail("GetItem", err)
	}
	if len(out.Item) == 0 {
		return nil, nil
	}
	return out.Item, nil
}

func (t *Table) delete(ctx context.Context, pk, sk string, cond string, values map[string]types.AttributeValue) error {
	in := &dynamodb.DeleteItemInput{TableName: aws.String(t.Name), Key: t.key(pk, sk)}
	if cond != "" {
		in.ConditionExpression = aws.String(cond)
		in.ExpressionAttributeNames = namesIn(cond)
		in.ExpressionAttributeValues = values
	}
	_, err := t.DB.DeleteItem(ctx, in)
	if err != nil && !conditionFailed(err) {
		return t.fail("DeleteItem", err)
	}
	return nil
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func millis(t time.Time) types.AttributeValue { return num(t.UnixMilli()) }

func epoch(t time.Time) types.AttributeValue { return num(t.Unix()) }

// item reads attributes of an item, remembering the first that is missing or
// of the wrong type, so that a decoder reads all fields and then checks once.
type item struct {
	m   map[string]types.AttributeValue
	err error
}

func (it *item) fail(name, want string) {
	if it.err == nil {
		it.err = fmt.Errorf("attribute %s: want %s", name, want)
	}
}

func (it *item) str(name string) string {
	v, ok := it.m[name].(*types.AttributeValueMemberS)
	if !ok {
		it.fail(name, "a string")
		return ""
	}
	return v.Value
}

// optStr is a string attribute that may be absent.
func (it *item) optStr(name string) string {
	if _, ok := it.m[name]; !ok {
		return ""
	}
	return it.str(name)
}

func (it *item) num(name string) int64 {
	v, ok := it.m[name].(*types.AttributeValueMemberN)
	if !ok {
		it.fail(name, "a number")
		return 0
	}
	n, err := strconv.ParseInt(v.Value, 10, 64)
	if err != nil {
		it.fail(name, "a whole number")
	}
	return n
}

func (it *item) millis(name string) time.Time { return time.UnixMilli(it.num(name)).UTC() }

// expired reports whether the item's expires_at has passed.
func (it *item) expired(now time.Time) bool {
	return !now.Before(time.Unix(it.num(attrExpires), 0))
}
