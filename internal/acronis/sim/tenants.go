package sim

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	maxUUIDs           = 100
	defaultSearchLimit = 10
)

// apiError is a refusal decided while the tree is locked and written after.
type apiError struct {
	status, code int
	info         string
}

func (e *apiError) write(w http.ResponseWriter) {
	message := http.StatusText(e.status)
	if e.status == http.StatusBadRequest {
		// What is wrong with a request goes where clients show it, as the
		// caller has to fix it.
		message = e.info
	}
	writeError(w, e.status, e.code, message, e.info)
}

func badRequest(info string) *apiError {
	return &apiError{http.StatusBadRequest, http.StatusBadRequest, info}
}

// lookup finds a tenant the API client asks about: 404 (code 1005) when there
// is none, 403 (code 1002) when it lies outside the client's subtree. The
// caller holds mu.
func (s *Server) lookup(id string) (*node, *apiError) {
	n := s.nodes[id]
	switch {
	case n == nil:
		return nil, &apiError{http.StatusNotFound, codeTenantNotFound, "tenant " + id + " not found"}
	case !n.visible:
		return nil, &apiError{http.StatusForbidden, codeAccessDenied, "access to tenant " + id + " is denied"}
	}
	return n, nil
}

// read computes an answer under the tree's read lock and writes it after.
func (s *Server) read(x *exchange, compute func() (any, *apiError)) {
	s.mu.RLock()
	body, aerr := compute()
	s.mu.RUnlock()
	if aerr != nil {
		aerr.write(x.w)
		return
	}
	writeJSON(x.w, http.StatusOK, body)
}

type tenantJSON struct {
	ID              string `json:"id"`
	Name            string `json:"name"`
	Kind            string `json:"kind"`
	ParentID        string `json:"parent_id"`
	Enabled         bool   `json:"enabled"`
	Version         int64  `json:"version"`
	HasChildren     bool   `json:"has_children"`
	MFAStatus       string `json:"mfa_status,omitempty"`
	Language        string `json:"language"`
	AncestralAccess bool   `json:"ancestral_access"`
	CreatedAt       string `json:"created_at"`
	UpdatedAt       string `json:"updated_at"`
	DeletedAt       *bool  `json:"deleted_at"` // always null: the simulator deletes nothing
}

// wire renders a tenant object. Listings leave mfa_status out unless asked for
// lod=full, so a client that forgets it cannot read the tree's state for free.
// The stamps are in every level of detail, the least of which is named after
// them.
func (n *node) wire(full bool) tenantJSON {
	t := tenantJSON{
		ID: n.id, Name: n.name, Kind: kindNames[n.kind], ParentID: n.parentID(),
		Enabled: n.enabled, Version: n.version, HasChildren: len(n.children) > 0,
		Language: "en", AncestralAccess: true,
		CreatedAt: stamp(n.createdAt), UpdatedAt: stamp(n.updatedAt),
	}
	if full {
		t.MFAStatus = mfaNames[n.effectiveState()]
	}
	return t
}

type clientJSON struct {
	ID       string         `json:"id"`
	TenantID string         `json:"tenant_id"`
	Type     string         `json:"type"`
	Status   string         `json:"status"`
	Data     map[string]any `json:"data"`
}

// getClient is GET /clients/{id}.
func (s *Server) getClient(x *exchange, id string) {
	if id != s.clientID {
		writeError(x.w, http.StatusNotFound, http.StatusNotFound, "Not Found", "client "+id+" not found")
		return
	}
	writeJSON(x.w, http.StatusOK, clientJSON{
		ID: s.clientID, TenantID: s.own.id, Type: "api_client", Status: "enabled",
		Data: map[string]any{"client_name": "Acronis MFA enforcer (simulated)"},
	})
}

// getTenant is GET /tenants/{id}.
func (s *Server) getTenant(x *exchange, id string) {
	s.read(x, func() (any, *apiError) {
		n, aerr := s.lookup(id)
		if aerr != nil {
			return nil, aerr
		}
		return n.wire(true), nil
	})
}

// getChildren is GET /tenants/{id}/children: ids, or tenant objects with
// include_details=true.
func (s *Server) getChildren(x *exchange, id string) {
	details := false
	if v := x.r.URL.Query().Get("include_details"); v != "" {
		var err error
		if details, err = strconv.ParseBool(v); err != nil {
			badRequest("include_details must be true or false").write(x.w)
			return
		}
	}
	s.read(x, func() (any, *apiError) {
		n, aerr := s.lookup(id)
		if aerr != nil {
			return nil, aerr
		}
		if details {
			items := make([]tenantJSON, len(n.children))
			for i, c := range n.children {
				items[i] = c.wire(true)
			}
			return map[string]any{"items": items}, nil
		}
		items := make([]string, len(n.children))
		for i, c := range n.children {
			items[i] = c.id
		}
		return map[string]any{"items": items}, nil
	})
}

// listTenants is GET /tenants: by subtree_root_id (depth order, root first), by
// parent_id or by uuids, narrowed by updated_since, one page of at most limit
// items, then ?after=cursor.
func (s *Server) listTenants(x *exchange, _ string) {
	q := x.r.URL.Query()
	c, aerr := tenantListing.parse(q)
	if aerr != nil {
		aerr.write(x.w)
		return
	}
	f := s.currentFaults()
	if f.SubtreeStatus != 0 && (c.Filter == filterSubtree || q.Has("after")) {
		s.writeFault(x.w, f.SubtreeStatus)
		return
	}
	now := s.now()
	s.read(x, func() (any, *apiError) {
		all, aerr := s.listed(c, f)
		if aerr != nil {
			return nil, aerr
		}
		if c.Since != nil {
			all = updatedAfter(all, *c.Since)
		}
		start, end, after := page(c, f, len(all))
		resp := listResponse[tenantJSON]{Items: make([]tenantJSON, 0, end-start), Timestamp: now.UTC().Format(time.RFC3339)}
		for _, n := range all[start:end] {
			resp.Items = append(resp.Items, n.wire(c.LOD == "full"))
		}
		resp.Paging.Cursors.After = after
		return resp, nil
	})
}

// updatedAfter keeps the tenants updated after since, in a new slice: the
// order it filters may be cached.
func updatedAfter(all []*node, since int64) []*node {
	var out []*node
	for _, n := range all {
		if n.updatedAt > since {
			out = append(out, n)
		}
	}
	return out
}

// listed returns every tenant a listing covers, in order. The caller holds mu;
// the slice may be shared and must not be modified.
func (s *Server) listed(c cursor, f Faults) ([]*node, *apiError) {
	switch c.Filter {
	case filterSubtree:
		root, aerr := s.lookup(c.Value)
		if aerr != nil {
			return nil, aerr
		}
		order := s.subtree(root)
		if len(f.ListEarly) == 0 {
			return order, nil
		}
		early := func(n *node) bool { return n != root && slices.Contains(f.ListEarly, n.id) }
		moved := []*node{root}
		for _, n := range order {
			if early(n) {
				moved = append(moved, n)
			}
		}
		for _, n := range order[1:] {
			if !early(n) {
				moved = append(moved, n)
			}
		}
		return moved, nil
	case filterParent:
		parent, aerr := s.lookup(c.Value)
		if aerr != nil {
			return nil, aerr
		}
		return parent.children, nil
	}
	var out []*node
	seen := make(map[*node]bool)
	for id := range strings.SplitSeq(c.Value, ",") {
		n := s.nodes[id]
		if n == nil || seen[n] {
			continue // unknown ids are left out, not refused
		}
		if !n.visible {
			return nil, &apiError{http.StatusForbidden, codeAccessDenied, "access to tenant " + id + " is denied"}
		}
		seen[n] = true
		out = append(out, n)
	}
	return out, nil
}

type searchItem struct {
	ObjType  string   `json:"obj_type"`
	ID       string   `json:"id"`
	ParentID string   `json:"parent_id"`
	Kind     string   `json:"kind"`
	Name     string   `json:"name"`
	Path     []string `json:"path"` // names from the searched tenant down to the item's parent
}

// search is GET /search?tenant=ROOT&text=T&limit=N: tenants in ROOT's subtree
// (ROOT included) whose name contains T, ignoring case, in depth order.
func (s *Server) search(x *exchange, _ string) {
	q := x.r.URL.Query()
	rootID, text := q.Get("tenant"), q.Get("text")
	if rootID == "" || text == "" {
		badRequest("tenant and text are required").write(x.w)
		return
	}
	limit := defaultSearchLimit
	if q.Has("limit") {
		var err error
		if limit, err = strconv.Atoi(q.Get("limit")); err != nil || limit <= 0 {
			badRequest("limit must be a positive integer").write(x.w)
			return
		}
	}
	text = strings.ToLower(text)
	s.read(x, func() (any, *apiError) {
		root, aerr := s.lookup(rootID)
		if aerr != nil {
			return nil, aerr
		}
		items := []searchItem{}
		for _, n := range s.subtree(root) {
			if len(items) == limit {
				break
			}
			if !strings.Contains(strings.ToLower(n.name), text) {
				continue
			}
			path := []string{}
			for m := n; m != root; m = m.parent {
				path = append(path, m.parent.name)
			}
			for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 {
				path[i], path[j] = path[j], path[i]
			}
			items = append(items, searchItem{
				ObjType: "tenant", ID: n.id, ParentID: n.parentID(),
				Kind: kindNames[n.kind], Name: n.name, Path: path,
			})
		}
		return map[string]any{"items": items}, nil
	})
}

type mfaStatusJSON struct {
	MFAStatus     string `json:"mfa_status"`
	UsersCount    int    `json:"users_count"`
	UsersWithTOTP int    `json:"users_with_totp_enabled_count"`
	UpdateAllowed bool   `json:"update_allowed"`
}

// mfaStatus renders GET/PUT mfa/status. This endpoint knows only enabled and
// disabled: setup_required counts as enabled, forcibly_disabled as disabled.
// update_allowed is false for folders and units, whose setting is their parent's.
func (n *node) mfaStatus() mfaStatusJSON {
	users, totp := n.userCounts()
	st := mfaStatusJSON{
		MFAStatus: "disabled", UsersCount: users, UsersWithTOTP: totp,
		UpdateAllowed: n.updateAllowed && !n.kind.inherits(),
	}
	if n.effectiveState().on() {
		st.MFAStatus = "enabled"
	}
	return st
}

// failedTenant answers for a tenant named in Faults.FailTenants.
func (s *Server) failedTenant(x *exchange, id string) bool {
	f := s.currentFaults()
	status, ok := f.FailTenants[id]
	if ok {
		s.writeFault(x.w, status)
	}
	return ok
}

// getMFA is GET /tenants/{id}/mfa/status.
func (s *Server) getMFA(x *exchange, id string) {
	if s.failedTenant(x, id) {
		return
	}
	s.read(x, func() (any, *apiError) {
		n, aerr := s.lookup(id)
		if aerr != nil {
			return nil, aerr
		}
		return n.mfaStatus(), nil
	})
}

// putMFA is PUT /tenants/{id}/mfa/status with exactly {"enabled": bool}.
//
// The real API's answer for folders and units is undocumented; the simulator
// refuses them with 403 and code 1002 (access denied), the same answer as for a
// tenant whose update_allowed is false, because in both cases the client may
// not change this tenant's setting. A disabled tenant (enabled: false) can
// still be changed.
//
// Enabling sets "enabled" when every user already has TOTP and "setup_required"
// otherwise; both read back as "enabled" from mfa/status. Disabling sets
// "disabled". A change bumps the version, and updated_at with
// Options.MFAChangeUpdates; asking for the state in force changes neither.
func (s *Server) putMFA(x *exchange, id string) {
	if s.failedTenant(x, id) {
		return
	}
	if mt, _, _ := mime.ParseMediaType(x.r.Header.Get("Content-Type")); mt != "application/json" {
		writeError(x.w, http.StatusUnsupportedMediaType, http.StatusUnsupportedMediaType,
			http.StatusText(http.StatusUnsupportedMediaType), "Content-Type must be application/json")
		return
	}
	enabled, err := decodeMFABody(http.MaxBytesReader(x.w, x.r.Body, maxBody))
	if err != nil {
		badRequest(err.Error()).write(x.w)
		return
	}

	s.mu.Lock()
	st, aerr := s.setMFA(id, enabled)
	s.mu.Unlock()
	f := s.currentFaults()
	switch {
	case aerr != nil:
		aerr.write(x.w)
	case slices.Contains(f.LoseWriteAnswers, id):
		s.writeFault(x.w, http.StatusBadGateway)
	case f.EmptyWriteStatus != 0:
		x.w.WriteHeader(f.EmptyWriteStatus)
	default:
		writeJSON(x.w, http.StatusOK, st)
	}
}

// setMFA applies a PUT; the caller holds mu for writing.
func (s *Server) setMFA(id string, enabled bool) (mfaStatusJSON, *apiError) {
	n, aerr := s.lookup(id)
	switch {
	case aerr != nil:
		return mfaStatusJSON{}, aerr
	case n.kind.inherits():
		return mfaStatusJSON{}, &apiError{http.StatusForbidden, codeAccessDenied,
			"MFA cannot be changed on a " + kindNames[n.kind] + ": it inherits the setting of its parent"}
	case !n.updateAllowed:
		return mfaStatusJSON{}, &apiError{http.StatusForbidden, codeAccessDenied,
			"the API client may not change MFA of tenant " + id}
	}
	if n.state.on() != enabled {
		switch users, totp := n.userCounts(); {
		case !enabled:
			n.state = mfaDisabled
		case totp < users:
			n.state = mfaSetupRequired
		default:
			n.state = mfaEnabled
		}
		n.version++
		if s.mfaChangeUpdates {
			n.updatedAt = s.now().Unix()
		}
	}
	return n.mfaStatus(), nil
}

// decodeMFABody reads {"enabled": bool} and nothing else.
func decodeMFABody(r io.Reader) (bool, error) {
	var body struct {
		Enabled *bool `json:"enabled"`
	}
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return false, errors.New("body must be {\"enabled\": true|false}: " + err.Error())
	}
	if body.Enabled == nil {
		return false, errors.New("enabled is required")
	}
	if _, err := dec.Token(); err != io.EOF {
		return false, errors.New("body must hold one JSON object")
	}
	return *body.Enabled, nil
}
