// Package acronis is the client of the Acronis Account Management API v2: access
// tokens, tenant listing, and the tenant MFA switch. Every failure leaves this
// package as one of the error classes in errors.go, so all triggers map them alike.
package acronis

import (
	"log/slog"
	"time"
)

// Kind is a tenant kind as the API names it.
type Kind string

// Tenant kinds.
const (
	KindRoot     Kind = "root"
	KindPartner  Kind = "partner"
	KindFolder   Kind = "folder"
	KindCustomer Kind = "customer"
	KindUnit     Kind = "unit"
)

// InheritsMFA reports whether tenants of this kind take their MFA setting from
// their parent: the API refuses the MFA PUT for them.
func (k Kind) InheritsMFA() bool { return k == KindFolder || k == KindUnit }

// MFA states. The tenant object uses disabled, forcibly_disabled, setup_required
// and enabled; the mfa/status endpoint uses disabled, disable_in_progress and enabled.
const (
	MFADisabled          = "disabled"
	MFAForciblyDisabled  = "forcibly_disabled"
	MFASetupRequired     = "setup_required"
	MFAEnabled           = "enabled"
	MFADisableInProgress = "disable_in_progress"
)

// MFAOn reports whether an MFA state means two-factor login is required: an
// enabled tenant whose users still have to set up TOTP is on all the same.
func MFAOn(state string) bool { return state == MFAEnabled || state == MFASetupRequired }

// Tenant is a tenant as GET /tenants and GET /tenants/{id} return it, reduced to
// the fields this project uses.
type Tenant struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Kind        Kind   `json:"kind"`
	ParentID    string `json:"parent_id"`
	Enabled     bool   `json:"enabled"`
	Version     int64  `json:"version"`
	HasChildren bool   `json:"has_children"`
	MFAStatus   string `json:"mfa_status"`
}

// MFAStatus is the body of GET and PUT /tenants/{id}/mfa/status.
type MFAStatus struct {
	MFAStatus                 string `json:"mfa_status"`
	UsersCount                int    `json:"users_count"`
	UsersWithTOTPEnabledCount int    `json:"users_with_totp_enabled_count"`
	UpdateAllowed             bool   `json:"update_allowed"`
}

// UsersWithoutTOTP is how many users would be locked out until they set up TOTP
// if MFA were enforced on the tenant now.
func (s MFAStatus) UsersWithoutTOTP() int {
	if n := s.UsersCount - s.UsersWithTOTPEnabledCount; n > 0 {
		return n
	}
	return 0
}

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
