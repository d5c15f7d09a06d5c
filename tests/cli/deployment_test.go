//go:build integration

package cli

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"acronismfa/internal/testkit"
)

// An operator who sweeps from a laptop with the deployment's variables in the
// shell, credentials from Secrets Manager included, sweeps inline: nothing
// goes to the worker's queue or to the report bucket, and the topic gets the
// sweep's digest, as after the function's sweeps.
func TestSweepWithTheDeploymentsVariables(t *testing.T) {
	acr := testkit.NewFixture(t, testkit.AcronisOptions{})
	m := testkit.NewMoto(t)
	st, err := testkit.NewStack(t.Context(), m, acr.CredentialsJSON(), []byte("cli-test-signing-key-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	// Without the state table there is no grace: the digest is the one notice.
	drifting := len(testkit.DriftOf(acr.Sim.All()).Fixable)
	env := st.Env("sweep", map[string]string{"STATE_TABLE": "", "SWEEP_INLINE_LIMIT": "1"})
	r := run(t, t.Context(), env, "sweep", "--json")
	var sum struct {
		Changed   int     `json:"changed"`
		FannedOut int     `json:"fanned_out"`
		Report    *string `json:"report"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || r.code != 0 {
		t.Fatalf("sweep: exit %d, %v:\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	if sum.Changed != drifting || sum.FannedOut != 0 || sum.Report != nil {
		t.Errorf("changed %d, fanned out %d, report %v: want the %d drifting tenants changed here and no report", sum.Changed, sum.FannedOut, sum.Report, drifting)
	}

	attrs, err := sqs.NewFromConfig(st.AWS).GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(st.QueueURL),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages}})
	if err != nil || attrs.Attributes["ApproximateNumberOfMessages"] != "0" {
		t.Errorf("the worker's queue holds %v messages (%v), want none", attrs.Attributes, err)
	}
	objects, err := s3.NewFromConfig(st.AWS).ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String(testkit.ReportBucket)})
	if err != nil || len(objects.Contents) != 0 {
		t.Errorf("the report bucket holds %d objects (%v), want none", len(objects.Contents), err)
	}
	got, err := st.Topic.Receive(t.Context(), 1, 10*time.Second)
	if err != nil || len(got) != 1 || got[0].Event != "sweep_completed" {
		t.Fatalf("notices %+v (%v), want the sweep_completed digest", got, err)
	}
	var digest struct {
		Summary struct{ Changed int }
	}
	if err := json.Unmarshal([]byte(got[0].Message), &digest); err != nil || digest.Summary.Changed != drifting {
		t.Errorf("digest %s (%v), want the summary with changed %d", got[0].Message, err, drifting)
	}
}
