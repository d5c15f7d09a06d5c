package acronis

import (
	"log/slog"
	"time"
)

// Credentials are an API client's credentials and the data center they belong to.
// They format and log as redacted so that the secret cannot leak through %v or slog.
type Credentials struct {
	BaseURL      string
	ClientID     string
	ClientSecret string
}

// String redacts the client secret.
func (c Credentials) String() string {
	return "acronis.Credentials{BaseURL:" + c.BaseURL + " ClientID:" + c.ClientID + " ClientSecret:REDACTED}"
}

// GoString redacts the client secret under %#v too.
func (c Credentials) GoString() string { return c.String() }

// LogValue redacts the client secret in structured logs.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("base_url", c.BaseURL), slog.String("client_id", c.ClientID))
}

// Stats counts the client's traffic since it was made. Triggers report the
// difference between two snapshots as one invocation's metrics.
type Stats struct {
	Requests  int64 // HTTP requests sent to Acronis, retries and token calls included
	Throttled int64 // answers 429, or 503 with Retry-After
	Errors    int64 // answers >= 500 other than throttling, transport failures, unreadable answers
}

// Sub returns the traffic between an earlier snapshot and s.
func (s Stats) Sub(earlier Stats) Stats {
	return Stats{s.Requests - earlier.Requests, s.Throttled - earlier.Throttled, s.Errors - earlier.Errors}
}

// tokenRenewMargin is how long before expiry a cached token is replaced; Acronis's
// own examples renew with 15 minutes left of a two-hour token.
const tokenRenewMargin = 15 * time.Minute
