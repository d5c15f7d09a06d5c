package tenant

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

// MFAState names a wanted MFA state the way the API and the configuration do.
func MFAState(on bool) string {
	if on {
		return MFAEnabled
	}
	return MFADisabled
}

// Tenant is a tenant as GET /tenants and GET /tenants/{id} return it, reduced to
// the fields this project uses.
type Tenant struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Kind        Kind   `json:"kind"`
	ParentID    string `json:"parent_id"`
	Enabled     bool   `json:"enabled"`
	HasChildren bool   `json:"has_children"`
	MFAStatus   string `json:"mfa_status"`
}

// IsRoot reports whether t is the top of the data center: its own parent.
func (t Tenant) IsRoot() bool { return t.ParentID == "" || t.ParentID == t.ID }

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
	return max(s.UsersCount-s.UsersWithTOTPEnabledCount, 0)
}
