package enforce

import "acronismfa/internal/tenant"

// Status is a tenant's status object, as the webhook answers it and the
// command line prints it (docs/reference.md, Webhook). Changed and DryRun
// are set for a request that sets the state.
type Status struct {
	TenantID                  string `json:"tenant_id"`
	MFAStatus                 string `json:"mfa_status"`
	UsersCount                int    `json:"users_count"`
	UsersWithTOTPEnabledCount int    `json:"users_with_totp_enabled_count"`
	UpdateAllowed             bool   `json:"update_allowed"`
	Changed                   *bool  `json:"changed,omitempty"`
	DryRun                    *bool  `json:"dry_run,omitempty"`
}

// StatusOf is the status object of a tenant's mfa/status answer.
func StatusOf(tenantID string, st tenant.MFAStatus) Status {
	return Status{TenantID: tenantID, MFAStatus: st.MFAStatus, UsersCount: st.UsersCount,
		UsersWithTOTPEnabledCount: st.UsersWithTOTPEnabledCount, UpdateAllowed: st.UpdateAllowed}
}

// Answer is the status object that answers a request to set the state: the
// state after it, whether it was written, and whether the run was dry.
func (r Result) Answer(dryRun bool) Status {
	st := StatusOf(r.Tenant.ID, r.Status)
	st.MFAStatus = r.Current
	changed := r.Changed()
	st.Changed, st.DryRun = &changed, &dryRun
	return st
}
