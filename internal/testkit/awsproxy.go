package testkit

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"testing"
)

// AWSProxy stands between a function's AWS SDK and moto. It records every call
// by action, so that a test can tell how often a function calls AWS and which
// actions it uses (what its IAM policy must grant), and it answers chosen
// actions with an AWS error instead of moto's answer, as a throttled or
// failing service would.
type AWSProxy struct {
	URL string // the endpoint to give the SDK (AWS_ENDPOINT_URL) instead of moto's

	srv   *httptest.Server
	moto  *httputil.ReverseProxy
	mu    sync.Mutex
	calls []AWSCall
	fails map[string]*AWSError
}

// AWSCall is one call through an AWSProxy.
type AWSCall struct {
	// Action is the X-Amz-Target of a JSON-protocol call
	// ("secretsmanager.GetSecretValue", "DynamoDB_20120810.PutItem",
	// "AmazonSQS.SendMessageBatch") or the Action of a query-protocol call
	// ("Publish", for SNS); "" for REST calls such as S3's.
	Action string
	// Params are the request's top-level string members ("SecretId",
	// "TableName") or form values ("TopicArn").
	Params map[string]string
}

// AWSError is the answer an AWSProxy gives to an action instead of moto's.
type AWSError struct {
	// Status is 400 for throttling and other client errors, 5xx for a service
	// that is down.
	Status int
	// Code is the AWS error code: "ProvisionedThroughputExceededException",
	// "ThrottlingException", "Throttling", "InternalFailure", "ServiceUnavailable".
	Code string
	// Times is how many calls fail before the action reaches moto again; 0
	// fails every call.
	Times int
}

// NewAWSProxy starts a proxy in front of the moto_server at motoEndpoint for
// the duration of the test.
func NewAWSProxy(t testing.TB, motoEndpoint string) *AWSProxy {
	t.Helper()
	p, err := StartAWSProxy(motoEndpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// StartAWSProxy starts a proxy in front of the moto_server at motoEndpoint
// outside any test, for a TestMain that shares one among its tests; Close
// stops it.
func StartAWSProxy(motoEndpoint string) (*AWSProxy, error) {
	target, err := url.Parse(motoEndpoint)
	if err != nil || target.Host == "" {
		return nil, fmt.Errorf("moto endpoint %q is not a URL: %v", motoEndpoint, err)
	}
	p := &AWSProxy{moto: httputil.NewSingleHostReverseProxy(target), fails: map[string]*AWSError{}}
	p.srv = httptest.NewServer(p)
	p.URL = p.srv.URL
	return p, nil
}

// Close stops the proxy.
func (p *AWSProxy) Close() { p.srv.Close() }

// Fail answers every later call of action with e instead of passing it to
// moto, until e.Times calls have failed; a zero AWSError lets action through
// again.
func (p *AWSProxy) Fail(action string, e AWSError) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.Status == 0 {
		delete(p.fails, action)
		return
	}
	p.fails[action] = &e
}

// Count counts the calls of action that carry every name, value pair of params:
// Count("secretsmanager.GetSecretValue", "SecretId", arn).
func (p *AWSProxy) Count(action string, params ...string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.calls {
		if c.Action != action {
			continue
		}
		match := true
		for i := 0; i+1 < len(params); i += 2 {
			match = match && c.Params[params[i]] == params[i+1]
		}
		if match {
			n++
		}
	}
	return n
}

// Actions counts the calls so far by action.
func (p *AWSProxy) Actions() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for _, c := range p.calls {
		out[c.Action]++
	}
	return out
}

// ServeHTTP records the call, then fails it or passes it to moto.
func (p *AWSProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	target := r.Header.Get("X-Amz-Target")
	call := AWSCall{Action: target, Params: map[string]string{}}
	if target != "" {
		var members map[string]any
		_ = json.Unmarshal(body, &members)
		for k, v := range members {
			if s, ok := v.(string); ok {
				call.Params[k] = s
			}
		}
	} else if form, err := url.ParseQuery(string(body)); err == nil && form.Get("Action") != "" {
		call.Action = form.Get("Action")
		for k := range form {
			call.Params[k] = form.Get(k)
		}
	}

	p.mu.Lock()
	p.calls = append(p.calls, call)
	var fail *AWSError
	if e := p.fails[call.Action]; e != nil && call.Action != "" {
		fail = e
		if e.Times > 0 {
			if e.Times--; e.Times == 0 {
				delete(p.fails, call.Action)
			}
		}
	}
	p.mu.Unlock()

	if fail == nil {
		p.moto.ServeHTTP(w, r)
		return
	}
	requestID := rand.Text()
	message := "injected by the test proxy"
	w.Header().Set("X-Amzn-RequestId", requestID)
	if target != "" {
		answer, _ := json.Marshal(map[string]string{"__type": fail.Code, "message": message})
		w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
		w.Header().Set("X-Amzn-ErrorType", fail.Code)
		// DynamoDB's SDK checks its answers against this checksum.
		w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(answer)), 10))
		w.WriteHeader(fail.Status)
		_, _ = w.Write(answer)
		return
	}
	kind := "Sender"
	if fail.Status >= 500 {
		kind = "Receiver"
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(fail.Status)
	fmt.Fprintf(w, "<ErrorResponse><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>",
		kind, html.EscapeString(fail.Code), message, requestID)
}
