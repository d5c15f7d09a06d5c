package testkit

import (
	"context"
	"fmt"
	"maps"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// Stack is the AWS side of a deployed stack, in moto: the Acronis credentials
// and webhook keys secrets, the enforce queue, the state table, the notice
// topic with a subscriber, the report bucket, and the environment that points
// each function at them as the template does (docs/reference.md,
// Configuration). The end-to-end tests, the fault suite and the demo all stand
// on it.
type Stack struct {
	Moto             *Moto
	AWS              aws.Config // an SDK configuration aimed at moto, for setup and checks
	AcronisSecretARN string
	WebhookSecretARN string
	QueueURL         string
	Key              []byte // the webhook signing key in the secret
	Topic            *Topic // NOTIFY_TOPIC_ARN, and what its subscriber receives
}

// Names of what NewStack creates.
const (
	AcronisSecretName = "acronis-mfa/acronis"
	WebhookSecretName = "acronis-mfa/webhook"
	QueueName         = "acronis-mfa-enforce"
	StateTableName    = "acronis-mfa-state"
	TopicName         = "acronis-mfa-notices"
	ReportBucket      = "acronis-mfa-reports"
	ReportPrefix      = "reports/" // the template's REPORT_PREFIX
)

// NewStack creates the secrets (acronisJSON, and key as the one signing key),
// the queue, the state table, the topic and the bucket in m.
func NewStack(ctx context.Context, m *Moto, acronisJSON string, key []byte) (*Stack, error) {
	cfg, err := m.Config(ctx)
	if err != nil {
		return nil, err
	}
	s := &Stack{Moto: m, AWS: cfg, Key: key}
	sm := secretsmanager.NewFromConfig(cfg)
	for _, sec := range []struct {
		name, value string
		arn         *string
	}{
		{AcronisSecretName, acronisJSON, &s.AcronisSecretARN},
		{WebhookSecretName, WebhookKeysJSON(key), &s.WebhookSecretARN},
	} {
		out, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(sec.name), SecretString: aws.String(sec.value)})
		if err != nil {
			return nil, fmt.Errorf("create secret %s in moto: %w", sec.name, err)
		}
		*sec.arn = aws.ToString(out.ARN)
	}
	q, err := sqs.NewFromConfig(cfg).CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(QueueName)})
	if err != nil {
		return nil, fmt.Errorf("create queue %s in moto: %w", QueueName, err)
	}
	s.QueueURL = aws.ToString(q.QueueUrl)
	if err := CreateStateTable(ctx, cfg, StateTableName); err != nil {
		return nil, err
	}
	if err := CreateBucket(ctx, cfg, ReportBucket); err != nil {
		return nil, err
	}
	if s.Topic, err = NewTopic(ctx, cfg, TopicName); err != nil {
		return nil, err
	}
	return s, nil
}

// Env is the environment of function fn ("webhook", "worker" or "sweep"):
// moto's SDK variables, the secrets, the state table and the topic, for the
// sweep the queue and the report bucket, then extra on top (an empty value
// removes a variable).
func (s *Stack) Env(fn string, extra map[string]string) map[string]string {
	env := s.Moto.Env()
	env["ACRONIS_SECRET_ID"] = s.AcronisSecretARN
	env["STATE_TABLE"] = StateTableName
	env["NOTIFY_TOPIC_ARN"] = s.Topic.ARN
	switch fn {
	case "webhook":
		env["WEBHOOK_SECRET_ID"] = s.WebhookSecretARN
	case "sweep":
		env["ENFORCE_QUEUE_URL"] = s.QueueURL
		env["REPORT_BUCKET"] = ReportBucket
		env["REPORT_PREFIX"] = ReportPrefix
	}
	maps.Copy(env, extra)
	for k, v := range env {
		if v == "" {
			delete(env, k)
		}
	}
	return env
}
