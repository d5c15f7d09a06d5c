package acronis

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"

	"acronismfa/internal/tenant"
)

const (
	// defaultPageSize is the API's own default and, per its documentation, the
	// page size of a whole-tree read.
	defaultPageSize = 5000
	// searchLimit is how many search hits are read. Search matches substrings
	// of names and contacts, so exact matches can hide among partial ones.
	searchLimit = 100
)

// segment escapes an id as one path segment. Empty and dot ids are refused: they
// would address another route ("/tenants/" lists tenants, ".." walks up).
func segment(op, id string) (string, error) {
	if id == "" || id == "." || id == ".." {
		return "", &Error{Op: op, TenantID: id, Class: ErrBadRequest, Message: "invalid id"}
	}
	return url.PathEscape(id), nil
}

// OwnTenantID returns the tenant the API client was created in: the default root
// of a sweep. It is read once per Client.
func (c *Client) OwnTenantID(ctx context.Context) (string, error) {
	c.mu.Lock()
	id := c.ownTenant
	c.mu.Unlock()
	if id != "" {
		return id, nil
	}
	const op = "GET /clients/{id}"
	t, err := c.token(ctx)
	if err != nil {
		return "", err
	}
	seg, err := segment(op, t.clientID)
	if err != nil {
		return "", err
	}
	client, err := call[struct {
		TenantID string `json:"tenant_id"`
	}](ctx, c, request{op: op, method: http.MethodGet, path: "/clients/" + seg})
	if err != nil {
		return "", err
	}
	if client.TenantID == "" {
		return "", &Error{Op: op, Class: ErrUpstream, Message: "answer has no tenant_id"}
	}
	c.mu.Lock()
	c.ownTenant = client.TenantID
	c.mu.Unlock()
	return client.TenantID, nil
}

// Tenant reads one tenant.
func (c *Client) Tenant(ctx context.Context, id string) (tenant.Tenant, error) {
	const op = "GET /tenants/{id}"
	seg, err := segment(op, id)
	if err != nil {
		return tenant.Tenant{}, err
	}
	return call[tenant.Tenant](ctx, c, request{op: op, tenantID: id, method: http.MethodGet, path: "/tenants/" + seg})
}

type tenantPage struct {
	Items  []tenant.Tenant `json:"items"`
	Paging struct {
		Cursors struct {
			After string `json:"after"`
		} `json:"cursors"`
	} `json:"paging"`
}

// Subtree lists rootID and every tenant under it, ordered by depth, limit per
// page (5000 when limit <= 0). Only one page is held at a time. On failure it
// yields one error and stops.
func (c *Client) Subtree(ctx context.Context, rootID string, limit int) iter.Seq2[tenant.Tenant, error] {
	return func(yield func(tenant.Tenant, error) bool) {
		const op = "GET /tenants"
		if _, err := segment(op, rootID); err != nil {
			yield(tenant.Tenant{}, err)
			return
		}
		if limit <= 0 {
			limit = defaultPageSize
		}
		r := request{op: op, tenantID: rootID, method: http.MethodGet, path: "/tenants", query: url.Values{
			"subtree_root_id": {rootID},
			"lod":             {"full"},
			"limit":           {strconv.Itoa(limit)},
		}}
		for {
			page, err := call[tenantPage](ctx, c, r)
			if err != nil {
				yield(tenant.Tenant{}, err)
				return
			}
			for _, t := range page.Items {
				if !yield(t, nil) {
					return
				}
			}
			after := page.Paging.Cursors.After
			if after == "" {
				return
			}
			// A cursor that does not move would page forever.
			if after == r.query.Get("after") {
				e := r.fail(ErrUpstream)
				e.Message = "paging cursor did not advance"
				yield(tenant.Tenant{}, e)
				return
			}
			// The cursor carries the filters.
			r.query = url.Values{"after": {after}}
		}
	}
}

// Children lists the direct children of a tenant, with details.
func (c *Client) Children(ctx context.Context, id string) ([]tenant.Tenant, error) {
	const op = "GET /tenants/{id}/children"
	seg, err := segment(op, id)
	if err != nil {
		return nil, err
	}
	page, err := call[tenantPage](ctx, c, request{
		op: op, tenantID: id, method: http.MethodGet,
		path:  "/tenants/" + seg + "/children",
		query: url.Values{"include_details": {"true"}},
	})
	return page.Items, err
}

// FindTenantByName finds the one tenant under rootID whose name is exactly name.
// No match fails with ErrNotFound, several with ErrBadRequest: a name that is not
// unique cannot say which tenant is meant. So does a search with too many partial
// matches to see them all.
func (c *Client) FindTenantByName(ctx context.Context, rootID, name string) (tenant.Tenant, error) {
	const op = "GET /search"
	if _, err := segment(op, rootID); err != nil {
		return tenant.Tenant{}, err
	}
	found, err := call[struct {
		Items []struct {
			ObjType  string      `json:"obj_type"`
			ID       string      `json:"id"`
			ParentID string      `json:"parent_id"`
			Kind     tenant.Kind `json:"kind"`
			Name     string      `json:"name"`
		} `json:"items"`
	}](ctx, c, request{op: op, tenantID: rootID, method: http.MethodGet, path: "/search", query: url.Values{
		"tenant": {rootID},
		"text":   {name},
		"limit":  {strconv.Itoa(searchLimit)},
	}})
	if err != nil {
		return tenant.Tenant{}, err
	}
	// Search matches parts of names and answers at most searchLimit items: on a
	// full answer a second tenant of exactly this name may be among those left
	// out, and enforcing on the first would change the wrong tenant.
	if len(found.Items) >= searchLimit {
		return tenant.Tenant{}, &Error{Op: op, Class: ErrBadRequest,
			Message: fmt.Sprintf("the search for %q under %s found %d or more names containing it, more than one answer holds: cannot tell whether the name is unique; send tenant_id instead",
				name, rootID, searchLimit)}
	}
	var matches []tenant.Tenant
	for _, it := range found.Items {
		if it.ObjType == "tenant" && it.Name == name {
			matches = append(matches, tenant.Tenant{ID: it.ID, Name: it.Name, Kind: it.Kind, ParentID: it.ParentID})
		}
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		return tenant.Tenant{}, &Error{Op: op, Class: ErrNotFound,
			Message: fmt.Sprintf("no tenant named %q under %s", name, rootID)}
	default:
		return tenant.Tenant{}, &Error{Op: op, Class: ErrBadRequest,
			Message: fmt.Sprintf("%d tenants named %q under %s: ambiguous", len(matches), name, rootID)}
	}
}

// MFAStatus reads the MFA state of a tenant.
func (c *Client) MFAStatus(ctx context.Context, id string) (tenant.MFAStatus, error) {
	const op = "GET /tenants/{id}/mfa/status"
	seg, err := segment(op, id)
	if err != nil {
		return tenant.MFAStatus{}, err
	}
	return call[tenant.MFAStatus](ctx, c, request{op: op, tenantID: id, method: http.MethodGet, path: "/tenants/" + seg + "/mfa/status"})
}

// SetMFA turns MFA on or off for a tenant and returns the new state. Setting the
// same state twice is harmless, which is why the PUT is retried like a read.
func (c *Client) SetMFA(ctx context.Context, id string, enabled bool) (tenant.MFAStatus, error) {
	const op = "PUT /tenants/{id}/mfa/status"
	seg, err := segment(op, id)
	if err != nil {
		return tenant.MFAStatus{}, err
	}
	// The API rejects unknown fields; this is the whole body.
	body := []byte(`{"enabled":` + strconv.FormatBool(enabled) + `}`)
	return call[tenant.MFAStatus](ctx, c, request{
		op: op, tenantID: id, method: http.MethodPut,
		path: "/tenants/" + seg + "/mfa/status", body: body, contentType: "application/json",
	})
}
