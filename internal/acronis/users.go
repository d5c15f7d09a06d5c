package acronis

import (
	"context"
	"iter"
	"net/http"
	"net/url"
	"strconv"

	"acronismfa/internal/tenant"
)

// usersPageSize is the API's default and largest page of users.
const usersPageSize = 2000

// userJSON is a user as GET /users lists it at lod=full.
type userJSON struct {
	ID        string `json:"id"`
	TenantID  string `json:"tenant_id"`
	Login     string `json:"login"`
	Enabled   bool   `json:"enabled"`
	MFAStatus string `json:"mfa_status"`
	Contact   struct {
		Email     string `json:"email"`
		FirstName string `json:"firstname"` // may be null
		LastName  string `json:"lastname"`
	} `json:"contact"`
}

// Users lists the users of rootTenantID and of every tenant below it: for a
// partner, its customers' users too; keep those whose TenantID is of interest.
// Like Subtree, it holds one page at a time, yields each user once, and on
// failure yields one error and stops.
func (c *Client) Users(ctx context.Context, rootTenantID string) iter.Seq2[tenant.User, error] {
	return func(yield func(tenant.User, error) bool) {
		const op = "GET /users"
		if _, err := segment(op, rootTenantID); err != nil {
			yield(tenant.User{}, err)
			return
		}
		r := request{op: op, tenantID: rootTenantID, method: http.MethodGet, path: "/users", query: url.Values{
			"subtree_root_tenant_id": {rootTenantID},
			"lod":                    {"full"},
			"limit":                  {strconv.Itoa(usersPageSize)},
		}}
		listPages(ctx, c, r, func(u userJSON) string { return u.ID }, func(u userJSON, err error) bool {
			return yield(tenant.User{
				ID: u.ID, TenantID: u.TenantID, Login: u.Login, Email: u.Contact.Email,
				FirstName: u.Contact.FirstName, LastName: u.Contact.LastName,
				Enabled: u.Enabled, MFAStatus: u.MFAStatus,
			}, err)
		})
	}
}
