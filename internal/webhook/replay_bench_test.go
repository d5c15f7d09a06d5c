//go:build integration

package webhook_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"acronismfa/internal/testkit"
)

// BenchmarkReplayRecords measures what replay records cost a webhook request
// (make bench): signed PUTs that change nothing, each with a new webhook-id,
// on the webhook as production wires it, with STATE_TABLE unset and set (moto's
// DynamoDB on loopback), and the repeat of a request already answered. It
// reports the DynamoDB calls per request; the added latency is the difference
// of the time per request with the records on and off.
func BenchmarkReplayRecords(b *testing.B) {
	for _, tt := range []struct {
		name   string
		table  string
		repeat bool
	}{
		{"records=off", "", false},
		{"records=on", "state", false},
		{"records=on/repeat", "state", true},
	} {
		b.Run(tt.name, func(b *testing.B) {
			s := newReplayStack(b, tt.table)
			req := testkit.WebhookRequest(keyA, time.Now(), http.MethodPut, testkit.OnCustomer, `{"enabled": true}`)
			if resp := s.call(b, 0, req); resp.StatusCode != http.StatusOK {
				b.Fatalf("%d %s", resp.StatusCode, resp.Body)
			}
			before, sent := s.aws.Actions(), len(s.acr.Sim.Requests())
			b.ResetTimer()
			for i := range b.N {
				if !tt.repeat {
					req = testkit.WebhookRequest(keyA, time.Now(), http.MethodPut, testkit.OnCustomer, `{"enabled": true}`)
				}
				if resp := s.call(b, i%2, req); resp.StatusCode != http.StatusOK {
					b.Fatalf("%d %s", resp.StatusCode, resp.Body)
				}
			}
			b.StopTimer()
			calls := 0
			for action, n := range s.aws.Actions() {
				op, ok := strings.CutPrefix(action, "DynamoDB_20120810.")
				if d := n - before[action]; ok && d > 0 {
					calls += d
					b.ReportMetric(float64(d)/float64(b.N), op+"/op")
				}
			}
			b.ReportMetric(float64(calls)/float64(b.N), "dynamodb-calls/op")
			b.ReportMetric(float64(len(s.acr.Sim.Requests())-sent)/float64(b.N), "acronis-requests/op")
		})
	}
}
