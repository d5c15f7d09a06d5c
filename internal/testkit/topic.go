package testkit

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Topic is an SNS topic in moto with a queue subscribed to it, which receives
// what an email or HTTPS subscriber would.
type Topic struct {
	ARN      string
	sqs      *sqs.Client
	queueURL string
}

// Published is one notice as a subscriber receives it: the SNS envelope read.
type Published struct {
	Message string // the "default" document of a MessageStructure json publish
	Subject string
	Event   string // the "event" message attribute
}

// NewTopic creates a topic and a queue subscribed to it.
func NewTopic(ctx context.Context, cfg aws.Config, name string) (*Topic, error) {
	sn, q := sns.NewFromConfig(cfg), sqs.NewFromConfig(cfg)
	topic, err := sn.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(name)})
	if err != nil {
		return nil, fmt.Errorf("create topic %s in moto: %w", name, err)
	}
	queue, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + "-subscriber")})
	if err != nil {
		return nil, fmt.Errorf("create the subscriber queue in moto: %w", err)
	}
	attrs, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: queue.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		return nil, err
	}
	if _, err := sn.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"),
		Endpoint: aws.String(attrs.Attributes["QueueArn"])}); err != nil {
		return nil, fmt.Errorf("subscribe the queue: %w", err)
	}
	return &Topic{ARN: aws.ToString(topic.TopicArn), sqs: q, queueURL: aws.ToString(queue.QueueUrl)}, nil
}

// Receive polls the subscriber until n notices have arrived or timeout passes.
// The timeout ends the polling, never a poll under way: a poll cut off after
// the queue handed it messages would hide them from every later poll for the
// queue's visibility timeout.
func (t *Topic) Receive(ctx context.Context, n int, timeout time.Duration) ([]Published, error) {
	deadline := time.Now().Add(timeout)
	var out []Published
	for len(out) < n {
		if !time.Now().Before(deadline) {
			return out, fmt.Errorf("%d of %d notices received within %s", len(out), n, timeout)
		}
		resp, err := t.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(t.queueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			return out, fmt.Errorf("%d of %d notices received: %w", len(out), n, err)
		}
		for _, m := range resp.Messages {
			var env struct {
				Message           string
				Subject           string
				MessageAttributes map[string]struct{ Value string }
			}
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &env); err != nil {
				return out, fmt.Errorf("not an SNS envelope: %s", aws.ToString(m.Body))
			}
			out = append(out, Published{Message: env.Message, Subject: env.Subject, Event: env.MessageAttributes["event"].Value})
			if _, err := t.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(t.queueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}
