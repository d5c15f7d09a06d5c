package tenant

// User is a user account as GET /users?subtree_root_tenant_id=… lists it at
// lod=full, reduced to what a rollout notice tells about it.
type User struct {
	ID        string
	TenantID  string
	Login     string
	Email     string
	FirstName string
	LastName  string
	Enabled   bool
	MFAStatus string
}

// NeedsTOTP reports whether the user still has to set up TOTP: an enabled
// user whose user mfa_status is anything but enabled. Such a user is locked
// out once MFA is on for their tenant; a disabled user cannot log in anyway.
func (u User) NeedsTOTP() bool { return u.Enabled && u.MFAStatus != MFAEnabled }

// Name is the user's full name as far as the API knows it.
func (u User) Name() string {
	switch {
	case u.FirstName == "":
		return u.LastName
	case u.LastName == "":
		return u.FirstName
	}
	return u.FirstName + " " + u.LastName
}
