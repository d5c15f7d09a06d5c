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
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// AWSProxy stands between a function's AWS SDK and moto. It records every call
// by action, so that a test can tell how often a function calls AWS and which
// actions it uses (what its IAM policy must grant), and it answers chosen
// actions with an AWS error instead of moto's answer, as a throttled or
// failing service would. It passes one DynamoDB call at a time, which makes
// moto's conditional writes atomic, as DynamoDB's are.
type AWSProxy struct {
	URL string // the endpoint to give the SDK (AWS_ENDPOINT_URL) instead of moto's

	srv      *httptest.Server
	moto     *httputil.ReverseProxy
	dynamoDB sync.Mutex // held by the DynamoDB call being passed to moto
	mu       sync.Mutex
	calls    []AWSCall
	fails    []*failure
	before   func(AWSCall)
}

// failure is an AWSError given to the calls of action that carry params.
type failure struct {
	action string
	params []string // name, value pairs
	err    AWSError
}

// AWSCall is one call through an AWSProxy.
type AWSCall struct {
	// Action is the X-Amz-Target of a JSON-protocol call
	// ("secretsmanager.GetSecretValue", "DynamoDB_20120810.PutItem",
	// "AmazonSQS.SendMessageBatch"), the Action of a query-protocol call
	// ("Publish", for SNS), or "s3." and the operation of an S3 call, which
	// is REST ("s3.PutObject", "s3.UploadPart", "s3.CopyObject").
	Action string
	// Params are the request's top-level string members ("SecretId",
	// "TableName"), the form values of a query-protocol call ("TopicArn"), or
	// the Bucket and Key of an S3 call (and the PartNumber of a part). A
	// DynamoDB call also has the pk and
	// sk of its Key or Item, and a batch call the TableName of the one table
	// it names, so that a test can pick out the calls about one item or table.
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
	p := &AWSProxy{moto: httputil.NewSingleHostReverseProxy(target)}
	p.srv = httptest.NewServer(p)
	p.URL = p.srv.URL
	return p, nil
}

// Close stops the proxy.
func (p *AWSProxy) Close() { p.srv.Close() }

// Fail answers every later call of action that carries every name, value pair
// of params with e instead of passing it to moto, until e.Times calls have
// failed: Fail("s3.UploadPart", e, "Bucket", bucket). A zero AWSError lets those
// calls through again. When several failures match a call, the first set
// answers it.
func (p *AWSProxy) Fail(action string, e AWSError, params ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fails = slices.DeleteFunc(p.fails, func(f *failure) bool {
		return f.action == action && slices.Equal(f.params, params)
	})
	if e.Status != 0 {
		p.fails = append(p.fails, &failure{action: action, params: slices.Clone(params), err: e})
	}
}

// Before has hook see every later call before it is failed or passed to moto;
// the call waits for hook to return, which lets a test put the calls of
// functions that run at once in the order it wants. A nil hook removes it.
func (p *AWSProxy) Before(hook func(AWSCall)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.before = hook
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
		if c.has(params) {
			n++
		}
	}
	return n
}

// has reports whether the call carries every name, value pair of params.
func (c AWSCall) has(params []string) bool {
	for i := 0; i+1 < len(params); i += 2 {
		if c.Params[params[i]] != params[i+1] {
			return false
		}
	}
	return true
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
	call := readCall(r, body)

	p.mu.Lock()
	p.calls = append(p.calls, call)
	hook := p.before
	p.mu.Unlock()
	if hook != nil {
		hook(call)
	}
	p.mu.Lock()
	var fail *AWSError
	for i, f := range p.fails {
		if f.action != call.Action || !call.has(f.params) {
			continue
		}
		e := f.err
		fail = &e
		if f.err.Times > 0 {
			if f.err.Times--; f.err.Times == 0 {
				p.fails = slices.Delete(p.fails, i, i+1)
			}
		}
		break
	}
	p.mu.Unlock()

	if fail == nil {
		if strings.HasPrefix(call.Action, dynamoDBPrefix) {
			// moto checks a condition and writes the item in two steps, which
			// its threads may interleave: two conditional writes of one item
			// can both succeed, as they never do in DynamoDB. One DynamoDB
			// call at a time gives the tests DynamoDB's atomicity.
			p.dynamoDB.Lock()
			defer p.dynamoDB.Unlock()
		}
		p.moto.ServeHTTP(w, r)
		return
	}
	requestID := rand.Text()
	message := "injected by the test proxy"
	w.Header().Set("X-Amzn-RequestId", requestID)
	switch {
	case r.Header.Get("X-Amz-Target") != "":
		answer, _ := json.Marshal(map[string]string{"__type": fail.Code, "message": message})
		w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
		w.Header().Set("X-Amzn-ErrorType", fail.Code)
		// DynamoDB's SDK checks its answers against this checksum.
		w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(answer)), 10))
		w.WriteHeader(fail.Status)
		_, _ = w.Write(answer)
	case strings.HasPrefix(call.Action, s3Prefix):
		w.Header().Set("X-Amz-Request-Id", requestID)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(fail.Status)
		if r.Method != http.MethodHead {
			fmt.Fprintf(w, "<Error><Code>%s</Code><Message>%s</Message><RequestId>%s</RequestId></Error>",
				html.EscapeString(fail.Code), message, requestID)
		}
	default:
		kind := "Sender"
		if fail.Status >= 500 {
			kind = "Receiver"
		}
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(fail.Status)
		fmt.Fprintf(w, "<ErrorResponse><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>",
			kind, html.EscapeString(fail.Code), message, requestID)
	}
}

// readCall names the call and reads its parameters.
func readCall(r *http.Request, body []byte) AWSCall {
	call := AWSCall{Action: r.Header.Get("X-Amz-Target"), Params: map[string]string{}}
	if call.Action != "" {
		var members map[string]json.RawMessage
		_ = json.Unmarshal(body, &members)
		for k, v := range members {
			var s string
			if json.Unmarshal(v, &s) == nil {
				call.Params[k] = s
			}
		}
		readDynamoDB(members, call.Params)
		return call
	}
	if form, err := url.ParseQuery(string(body)); err == nil && form.Get("Action") != "" &&
		strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		call.Action = form.Get("Action")
		for k := range form {
			call.Params[k] = form.Get(k)
		}
		return call
	}
	// The functions' one REST service is S3, which the SDK addresses by path
	// on a loopback endpoint: /bucket/key.
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	call.Action = s3Prefix + s3Operation(r.Method, key != "", r.URL.Query(), r.Header.Get("X-Amz-Copy-Source") != "")
	call.Params["Bucket"], call.Params["Key"] = bucket, key
	if n := r.URL.Query().Get("partNumber"); n != "" {
		call.Params["PartNumber"] = n
	}
	return call
}

// readDynamoDB adds the pk and sk of a DynamoDB call's Key or Item, and the
// table of a batch call that names one.
func readDynamoDB(members map[string]json.RawMessage, params map[string]string) {
	for _, name := range []string{"Key", "Item"} {
		var item map[string]struct{ S *string }
		if json.Unmarshal(members[name], &item) != nil {
			continue
		}
		for _, attr := range []string{"pk", "sk"} {
			if v := item[attr].S; v != nil {
				params[attr] = *v
			}
		}
	}
	var tables map[string]json.RawMessage
	if json.Unmarshal(members["RequestItems"], &tables) == nil && len(tables) == 1 {
		for name := range tables {
			params["TableName"] = name
		}
	}
}

const (
	s3Prefix       = "s3."
	dynamoDBPrefix = "DynamoDB_20120810."
)

// s3Operation names an S3 REST call by its method, whether it names an
// object, its subresources and whether it copies.
func s3Operation(method string, object bool, q url.Values, copies bool) string {
	switch {
	case method == http.MethodPut && q.Has("partNumber") && copies:
		return "UploadPartCopy"
	case method == http.MethodPut && q.Has("partNumber"):
		return "UploadPart"
	case method == http.MethodPut && copies:
		return "CopyObject"
	case method == http.MethodPut && object:
		return "PutObject"
	case method == http.MethodPut:
		return "CreateBucket"
	case method == http.MethodPost && q.Has("uploads"):
		return "CreateMultipartUpload"
	case method == http.MethodPost && q.Has("uploadId"):
		return "CompleteMultipartUpload"
	case method == http.MethodPost && q.Has("delete"):
		return "DeleteObjects"
	case method == http.MethodDelete && q.Has("uploadId"):
		return "AbortMultipartUpload"
	case method == http.MethodDelete && object:
		return "DeleteObject"
	case method == http.MethodDelete:
		return "DeleteBucket"
	case method == http.MethodHead && object:
		return "HeadObject"
	case method == http.MethodHead:
		return "HeadBucket"
	case object && q.Has("uploadId"):
		return "ListParts"
	case object:
		return "GetObject"
	case q.Has("uploads"):
		return "ListMultipartUploads"
	case q.Get("list-type") == "2":
		return "ListObjectsV2"
	}
	return "ListObjects"
}
