package awstest

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

func TestMotoAnswersSQS(t *testing.T) {
	endpoint := Moto(t)
	client := sqs.NewFromConfig(Config(t, endpoint))
	out, err := client.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: new(string)})
	if err == nil {
		t.Fatalf("an empty queue name was accepted: %v", out.QueueUrl)
	}
	name := "q"
	if _, err := client.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: &name}); err != nil {
		t.Fatalf("create queue: %v", err)
	}
	Reset(t, endpoint)
	list, err := client.ListQueues(context.Background(), &sqs.ListQueuesInput{})
	if err != nil {
		t.Fatalf("list queues: %v", err)
	}
	if len(list.QueueUrls) != 0 {
		t.Fatalf("reset left queues: %v", list.QueueUrls)
	}
}
