package acronis

import (
	"context"
	"encoding/hex"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"

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

// page is one page of a listing.
type page[T any] struct {
	Items  []T `json:"items"`
	Paging struct {
		Cursors struct {
			After string `json:"after"` // absent on the last page
		} `json:"cursors"`
	} `json:"paging"`
}

// ListOptions narrow a subtree listing.
type ListOptions struct {
	PageSize int // tenants per page; 0 asks for 5000
	// UpdatedSince lists only the tenants created or updated after it; zero
	// lists them all.
	UpdatedSince time.Time
}

// Subtree lists rootID and every tenant under it, ordered by depth, each once.
// Only one page is held at a time, and the ids listed so far. On failure it
// yields one error and stops; paging cursors that loop are an ErrUpstream
// failure.
func (c *Client) Subtree(ctx context.Context, rootID string, o ListOptions) iter.Seq2[tenant.Tenant, error] {
	return func(yield func(tenant.Tenant, error) bool) {
		const op = "GET /tenants"
		if _, err := segment(op, rootID); err != nil {
			yield(tenant.Tenant{}, err)
			return
		}
		limit := o.PageSize
		if limit <= 0 {
			limit = defaultPageSize
		}
		r := request{op: op, tenantID: rootID, method: http.MethodGet, path: "/tenants", query: url.Values{
			"subtree_root_id": {rootID},
			"lod":             {"full"},
			"limit":           {strconv.Itoa(limit)},
		}}
		if !o.UpdatedSince.IsZero() {
			r.query.Set("updated_since", o.UpdatedSince.UTC().Format(time.RFC3339))
		}
		listPages(ctx, c, r, func(t tenant.Tenant) string { return t.ID }, yield)
	}
}

// listPages pages through the listing r starts and yields its items, each id
// once, holding one page at a time. On failure it yields one error and the
// zero T, and stops; paging cursors that loop are an ErrUpstream failure.
func listPages[T any](ctx context.Context, c *Client, r request, id func(T) string, yield func(T, error) bool) {
	var zero T
	// Pages overlap when the tree changes while it is paged; each item is
	// yielded once all the same.
	var listed idSet
	cursors := map[string]bool{}
	for {
		p, err := call[page[T]](ctx, c, r)
		if err != nil {
			yield(zero, err)
			return
		}
		for _, item := range p.Items {
			if listed.add(id(item)) && !yield(item, nil) {
				return
			}
		}
		after := p.Paging.Cursors.After
		if after == "" {
			return
		}
		// Paging from a cursor seen before leads back over the same pages,
		// forever.
		if cursors[after] {
			e := r.fail(ErrUpstream)
			e.Message = "paging cursors loop: a cursor seen before in this listing cannot lead to new items"
			yield(zero, e)
			return
		}
		cursors[after] = true
		// The cursor carries the filters.
		r.query = url.Values{"after": {after}}
	}
}

// Children lists the direct children of a tenant, with details.
func (c *Client) Children(ctx context.Context, id string) ([]tenant.Tenant, error) {
	const op = "GET /tenants/{id}/children"
	seg, err := segment(op, id)
	if err != nil {
		return nil, err
	}
	children, err := call[page[tenant.Tenant]](ctx, c, request{
		op: op, tenantID: id, method: http.MethodGet,
		path:  "/tenants/" + seg + "/children",
		query: url.Values{"include_details": {"true"}},
	})
	return children.Items, err
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
		Items []searchHit `json:"items"`
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
	matches := exactTenants(found.Items, name)
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

// searchHit is an item of GET /search: a tenant or a user.
type searchHit struct {
	ObjType  string      `json:"obj_type"`
	ID       string      `json:"id"`
	ParentID string      `json:"parent_id"`
	Kind     tenant.Kind `json:"kind"`
	Name     string      `json:"name"`
}

// exactTenants keeps the tenants named exactly name: search also finds users
// and names that merely contain the text, in any case.
func exactTenants(hits []searchHit, name string) []tenant.Tenant {
	var out []tenant.Tenant
	for _, h := range hits {
		if h.ObjType == "tenant" && h.Name == name {
			out = append(out, tenant.Tenant{ID: h.ID, Name: h.Name, Kind: h.Kind, ParentID: h.ParentID})
		}
	}
	return out
}

// idSet is the set of ids a listing has yielded. UUIDs, which all of
// Acronis's ids are, take 16 bytes each, so that a 100,000-tenant listing costs
// a few megabytes; anything else is kept as it is.
type idSet struct {
	uuids map[[16]byte]struct{}
	other map[string]struct{}
}

// add adds id and reports whether it was new.
func (s *idSet) add(id string) bool {
	if key, ok := uuidKey(id); ok {
		return addNew(&s.uuids, key)
	}
	return addNew(&s.other, id)
}

func addNew[K comparable](set *map[K]struct{}, k K) bool {
	if _, seen := (*set)[k]; seen {
		return false
	}
	if *set == nil {
		*set = make(map[K]struct{})
	}
	(*set)[k] = struct{}{}
	return true
}

// uuidKey is the 16 bytes of a UUID in its text form, whatever its case.
func uuidKey(id string) (key [16]byte, ok bool) {
	if !tenant.ValidID(id) {
		return key, false
	}
	var digits [32]byte
	n := 0
	for i := 0; i < len(id); i++ {
		if id[i] != '-' {
			digits[n] = id[i]
			n++
		}
	}
	_, err := hex.Decode(key[:], digits[:])
	return key, err == nil
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
	st, empty, err := callMaybeEmpty[tenant.MFAStatus](ctx, c, request{
		op: op, tenantID: id, method: http.MethodPut,
		path: "/tenants/" + seg + "/mfa/status", body: body, contentType: "application/json",
		// Acronis answers some of its writes with an empty 200 or a 204: the
		// write is done, and sending it again would change nothing.
		emptyOK: true,
	})
	if err == nil && empty {
		return c.MFAStatus(ctx, id)
	}
	return st, err
}
