package sim_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"acronismfa/internal/acronis/sim"
)

type tenantWire struct {
	ID          string  `json:"id"`
	Name        string  `json:"name"`
	Kind        string  `json:"kind"`
	ParentID    string  `json:"parent_id"`
	Enabled     bool    `json:"enabled"`
	Version     int64   `json:"version"`
	HasChildren bool    `json:"has_children"`
	MFAStatus   *string `json:"mfa_status"`
}

type page struct {
	Items     []tenantWire `json:"items"`
	Timestamp string       `json:"timestamp"`
	Paging    struct {
		Cursors map[string]string `json:"cursors"`
	} `json:"paging"`
}

func TestGetTenant(t *testing.T) {
	a := newAPI(t, sim.Options{})
	root := a.sim.RootID()
	cust := a.add(sim.Tenant{Name: "Acme", Kind: "customer", Enabled: true, MFAStatus: "setup_required", UpdateAllowed: true, Version: 7})
	hidden, _ := a.sim.Get(root)
	outside := a.add(sim.Tenant{Name: "Someone Else", Kind: "partner", ParentID: hidden.ParentID, Enabled: true})

	status, body := a.get("/tenants/" + root)
	if status != http.StatusOK {
		t.Fatalf("own tenant: status %d: %s", status, body)
	}
	var own tenantWire
	decode(t, body, &own)
	if own.ID != root || own.Name != "Sim Partner" || own.Kind != "partner" || !own.Enabled ||
		own.ParentID != hidden.ParentID || !own.HasChildren || own.MFAStatus == nil || *own.MFAStatus != "enabled" {
		t.Errorf("own tenant %s", body)
	}

	status, body = a.get("/tenants/" + cust)
	var c tenantWire
	decode(t, body, &c)
	if status != http.StatusOK || c.Name != "Acme" || c.Kind != "customer" || c.ParentID != root || c.Version != 7 ||
		c.HasChildren || c.MFAStatus == nil || *c.MFAStatus != "setup_required" {
		t.Errorf("customer: status %d %s", status, body)
	}

	status, body = a.get("/tenants/00000000-0000-4000-8000-ffffffffffff")
	wantPlatformError(t, status, body, 404, 1005)
	for _, id := range []string{hidden.ParentID, outside} {
		status, body = a.get("/tenants/" + id)
		wantPlatformError(t, status, body, 403, 1002)
		status, body = a.get("/tenants/" + id + "/mfa/status")
		wantPlatformError(t, status, body, 403, 1002)
		status, body = a.get("/tenants/" + id + "/children")
		wantPlatformError(t, status, body, 403, 1002)
		status, body = a.get("/tenants?subtree_root_id=" + id)
		wantPlatformError(t, status, body, 403, 1002)
	}
	if h, ok := a.sim.Get(hidden.ParentID); !ok || h.Kind != "root" || h.ParentID != h.ID {
		t.Errorf("hidden root %+v: want kind root, its own parent", h)
	}
}

func TestAddRefuses(t *testing.T) {
	s := sim.New(sim.Options{})
	if err := s.Add(sim.Tenant{ID: "dup", Kind: "customer"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		t    sim.Tenant
	}{
		{"duplicate id", sim.Tenant{ID: "dup", Kind: "customer"}},
		{"unknown parent", sim.Tenant{Kind: "customer", ParentID: "nope"}},
		{"unknown kind", sim.Tenant{Kind: "reseller"}},
		{"second root", sim.Tenant{Kind: "root"}},
		{"unknown MFA state", sim.Tenant{Kind: "customer", MFAStatus: "on"}},
		{"more TOTP users than users", sim.Tenant{Kind: "customer", UsersCount: 1, UsersWithTOTP: 2}},
		{"id with a slash", sim.Tenant{ID: "a/b", Kind: "customer"}},
	}
	for _, tt := range tests {
		if err := s.Add(tt.t); err == nil {
			t.Errorf("%s: Add succeeded, want an error", tt.name)
		}
	}
	if n := len(s.All()); n != 2 {
		t.Errorf("tree holds %d tenants after refused adds, want 2", n)
	}
}

// listAll pages through a listing and returns every item and the number of calls.
func listAll(t testing.TB, a *api, query string) ([]tenantWire, int) {
	t.Helper()
	var items []tenantWire
	calls := 0
	path := "/tenants?" + query
	for {
		calls++
		status, body := a.get(path)
		if status != http.StatusOK {
			t.Fatalf("GET %s: status %d: %s", path, status, body)
		}
		var p page
		decode(t, body, &p)
		if p.Timestamp == "" {
			t.Fatalf("page without timestamp: %.200s", body)
		}
		items = append(items, p.Items...)
		after, ok := p.Paging.Cursors["after"]
		if !ok {
			return items, calls
		}
		if after == "" {
			t.Fatal("empty after cursor: absent is how the last page is told")
		}
		path = "/tenants?after=" + url.QueryEscape(after)
	}
}

func TestSubtreePaging(t *testing.T) {
	a := newAPI(t, sim.Options{})
	a.sim.Generate(sim.TreeSpec{Seed: 1, Size: 11999})
	all := a.sim.All()
	if len(all) != 12000 {
		t.Fatalf("All() = %d tenants, want 12000", len(all))
	}
	a.sim.ResetRequests()

	items, calls := listAll(t, a, "subtree_root_id="+a.sim.RootID()+"&lod=full&limit=5000")
	if calls != 3 || a.sim.Count("GET", "/tenants") != 3 {
		t.Errorf("%d calls (%d recorded), want 3 for 12000 tenants in pages of 5000", calls, a.sim.Count("GET", "/tenants"))
	}
	if len(items) != len(all) {
		t.Fatalf("listed %d tenants, want %d", len(items), len(all))
	}
	depth := map[string]int{all[0].ParentID: -1}
	for i, it := range items {
		if it.ID != all[i].ID {
			t.Fatalf("item %d is %s, want %s: listing and All() disagree on depth order", i, it.ID, all[i].ID)
		}
		d, ok := depth[it.ParentID]
		if !ok {
			t.Fatalf("item %d (%s) listed before its parent", i, it.ID)
		}
		depth[it.ID] = d + 1
		if i > 0 && depth[it.ID] < depth[items[i-1].ID] {
			t.Fatalf("item %d at depth %d follows depth %d: not in depth order", i, depth[it.ID], depth[items[i-1].ID])
		}
		if it.MFAStatus == nil || *it.MFAStatus != all[i].MFAStatus {
			t.Fatalf("item %d mfa_status %v, want %q", i, it.MFAStatus, all[i].MFAStatus)
		}
	}
	if items[0].ID != a.sim.RootID() {
		t.Errorf("first item %s, want the subtree root", items[0].ID)
	}
}

func TestListingDefaultsAndFilters(t *testing.T) {
	a := newAPI(t, sim.Options{})
	root := a.sim.RootID()
	p := a.add(sim.Tenant{Name: "P", Kind: "partner", Enabled: true, MFAStatus: "enabled"})
	c1 := a.add(sim.Tenant{Name: "C1", Kind: "customer", ParentID: p, Enabled: true})
	c2 := a.add(sim.Tenant{Name: "C2", Kind: "customer", ParentID: p, Enabled: true})
	a.sim.Generate(sim.TreeSpec{Seed: 3, Size: 5100})

	items, calls := listAll(t, a, "subtree_root_id="+root+"&lod=full")
	if calls != 2 || len(items) != 5104 {
		t.Errorf("default limit: %d calls for %d items, want 2 calls (5000 per page) for 5104", calls, len(items))
	}
	items, calls = listAll(t, a, "subtree_root_id="+root+"&limit=100000")
	if calls != 2 {
		t.Errorf("limit above 5000: %d calls, want 2: pages are capped at 5000", calls)
	}
	if items[0].MFAStatus != nil {
		t.Errorf("without lod=full, items carry mfa_status")
	}

	ids := func(items []tenantWire) string {
		var out []string
		for _, it := range items {
			out = append(out, it.ID)
		}
		return strings.Join(out, ",")
	}
	items, _ = listAll(t, a, "parent_id="+p)
	if got, want := ids(items), c1+","+c2; got != want {
		t.Errorf("parent_id: %s, want %s", got, want)
	}
	items, _ = listAll(t, a, "parent_id="+p+"&limit=1")
	if got, want := ids(items), c1+","+c2; got != want {
		t.Errorf("parent_id paged by 1: %s, want %s", got, want)
	}
	items, _ = listAll(t, a, "lod=full&uuids="+c2+",00000000-0000-4000-8000-ffffffffffff,"+p)
	if got, want := ids(items), c2+","+p; got != want {
		t.Errorf("uuids: %s, want %s (unknown ids left out)", got, want)
	}
}

func TestListingRefusals(t *testing.T) {
	a := newAPI(t, sim.Options{})
	root := a.sim.RootID()
	status, body := a.get("/tenants?subtree_root_id=" + root + "&limit=1")
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	a.add(sim.Tenant{Kind: "customer"})
	_, body = a.get("/tenants?subtree_root_id=" + root + "&limit=1")
	var p page
	decode(t, body, &p)
	cursor := p.Paging.Cursors["after"]

	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
	}
	tests := []struct {
		name, query string
		status      int
		code        int
	}{
		{"no filter", "lod=full", 400, 400},
		{"subtree and parent", "subtree_root_id=" + root + "&parent_id=" + root, 400, 400},
		{"uuids and parent", "uuids=" + root + "&parent_id=" + root, 400, 400},
		{"limit zero", "subtree_root_id=" + root + "&limit=0", 400, 400},
		{"limit negative", "subtree_root_id=" + root + "&limit=-5", 400, 400},
		{"limit not a number", "subtree_root_id=" + root + "&limit=ten", 400, 400},
		{"bad lod", "subtree_root_id=" + root + "&lod=everything", 400, 400},
		{"101 uuids", "uuids=" + strings.Join(many, ","), 400, 400},
		{"garbage cursor", "after=not-a-cursor", 400, 400},
		{"cursor with a filter", "after=" + cursor + "&subtree_root_id=" + root, 400, 400},
		{"unknown subtree root", "subtree_root_id=00000000-0000-4000-8000-ffffffffffff", 404, 1005},
		{"unknown parent", "parent_id=00000000-0000-4000-8000-ffffffffffff", 404, 1005},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := a.get("/tenants?" + tt.query)
			wantPlatformError(t, status, body, tt.status, tt.code)
		})
	}
}

func TestChildren(t *testing.T) {
	a := newAPI(t, sim.Options{})
	p := a.add(sim.Tenant{Name: "P", Kind: "partner", Enabled: true, MFAStatus: "disabled"})
	c := a.add(sim.Tenant{Name: "C", Kind: "customer", ParentID: p, Enabled: true, MFAStatus: "enabled"})
	f := a.add(sim.Tenant{Name: "F", Kind: "folder", ParentID: p, Enabled: true})

	status, body := a.get("/tenants/" + p + "/children")
	var ids struct{ Items []string }
	decode(t, body, &ids)
	if status != http.StatusOK || strings.Join(ids.Items, ",") != c+","+f {
		t.Errorf("children: status %d %s, want [%s %s]", status, body, c, f)
	}

	status, body = a.get("/tenants/" + p + "/children?include_details=true")
	var details struct{ Items []tenantWire }
	decode(t, body, &details)
	if status != http.StatusOK || len(details.Items) != 2 || details.Items[0].Name != "C" ||
		*details.Items[0].MFAStatus != "enabled" || *details.Items[1].MFAStatus != "disabled" {
		t.Errorf("children with details: status %d %s (the folder reports its parent's state)", status, body)
	}

	status, body = a.get("/tenants/" + c + "/children")
	if status != http.StatusOK || string(body) != `{"items":[]}` {
		t.Errorf("leaf children: status %d %s, want an empty list", status, body)
	}
	status, body = a.get("/tenants/00000000-0000-4000-8000-ffffffffffff/children")
	wantPlatformError(t, status, body, 404, 1005)
}

func TestSearch(t *testing.T) {
	a := newAPI(t, sim.Options{})
	p := a.add(sim.Tenant{Name: "Reseller", Kind: "partner", Enabled: true})
	exact := a.add(sim.Tenant{Name: "Acme Corp", Kind: "customer", ParentID: p, Enabled: true})
	a.add(sim.Tenant{Name: "ACME Corp EU", Kind: "customer", Enabled: true})
	a.add(sim.Tenant{Name: "Beta", Kind: "customer", Enabled: true})
	for i := range 12 {
		a.add(sim.Tenant{Name: fmt.Sprintf("Shop %02d", i), Kind: "customer", Enabled: true})
	}

	type item struct {
		ObjType  string   `json:"obj_type"`
		ID       string   `json:"id"`
		ParentID string   `json:"parent_id"`
		Kind     string   `json:"kind"`
		Name     string   `json:"name"`
		Path     []string `json:"path"`
	}
	search := func(query string) []item {
		t.Helper()
		status, body := a.get("/search?" + query)
		if status != http.StatusOK {
			t.Fatalf("search %s: status %d: %s", query, status, body)
		}
		var r struct{ Items []item }
		decode(t, body, &r)
		return r.Items
	}
	root := "tenant=" + a.sim.RootID()

	got := search(root + "&text=acme+corp")
	if len(got) != 2 {
		t.Fatalf("search acme corp: %d items, want 2 (case-insensitive substring)", len(got))
	}
	var exacts []item
	for _, it := range got {
		if it.ObjType == "tenant" && it.Name == "Acme Corp" {
			exacts = append(exacts, it)
		}
	}
	if len(exacts) != 1 || exacts[0].ID != exact || exacts[0].ParentID != p || exacts[0].Kind != "customer" ||
		strings.Join(exacts[0].Path, "/") != "Sim Partner/Reseller" {
		t.Errorf("exact match %+v, want %s in Sim Partner/Reseller", exacts, exact)
	}
	if got := search(root + "&text=shop"); len(got) != 10 {
		t.Errorf("search shop: %d items, want the default limit of 10", len(got))
	}
	if got := search(root + "&text=shop&limit=3"); len(got) != 3 {
		t.Errorf("search shop limit 3: %d items", len(got))
	}
	if got := search("tenant=" + p + "&text=EU"); len(got) != 0 {
		t.Errorf("search below Reseller found %+v outside its subtree", got)
	}
	if got := search(root + "&text=nothing+like+this"); got == nil || len(got) != 0 {
		t.Errorf("no match: %+v, want an empty list", got)
	}

	status, body := a.get("/search?text=acme")
	wantPlatformError(t, status, body, 400, 400)
	hidden, _ := a.sim.Get(a.sim.RootID())
	status, body = a.get("/search?tenant=" + hidden.ParentID + "&text=acme")
	wantPlatformError(t, status, body, 403, 1002)
}

func TestRoutes(t *testing.T) {
	a := newAPI(t, sim.Options{})
	for _, path := range []string{"/nothing", "/tenants/x/mfa", "/tenants//children", "/tenants/x/mfa/status/extra"} {
		status, body := a.get(path)
		wantPlatformError(t, status, body, 404, 404)
	}
	resp, body := a.do(http.MethodDelete, "/tenants/"+a.sim.RootID()+"/mfa/status", "", "")
	wantPlatformError(t, resp.StatusCode, body, 405, 405)
	if allow := resp.Header.Get("Allow"); allow != "GET, PUT" {
		t.Errorf("Allow: %q, want \"GET, PUT\"", allow)
	}
	resp, body = a.do(http.MethodPost, "/tenants", "application/json", "{}")
	wantPlatformError(t, resp.StatusCode, body, 405, 405)
}

func TestRecord(t *testing.T) {
	a := newAPI(t, sim.Options{})
	root := a.sim.RootID()
	a.get("/tenants/" + root + "/mfa/status")
	a.putMFA(root, `{"enabled":true}`)
	a.get("/tenants?subtree_root_id=" + root)
	a.get("/nowhere")

	want := []sim.Request{
		{Method: "POST", Path: "/api/2/idp/token", Status: 200},
		{Method: "GET", Path: "/api/2/tenants/" + root + "/mfa/status", Status: 200},
		{Method: "PUT", Path: "/api/2/tenants/" + root + "/mfa/status", Status: 200},
		{Method: "GET", Path: "/api/2/tenants", Query: "subtree_root_id=" + root, Status: 200},
		{Method: "GET", Path: "/api/2/nowhere", Status: 404},
	}
	got := a.sim.Requests()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Requests() =\n%v\nwant\n%v", got, want)
	}
	counts := []struct {
		method, suffix string
		want           int
	}{
		{"GET", "/mfa/status", 1},
		{"PUT", "/mfa/status", 1},
		{"GET", "/tenants", 1},
		{"POST", "/idp/token", 1},
		{"DELETE", "/mfa/status", 0},
	}
	for _, c := range counts {
		if n := a.sim.Count(c.method, c.suffix); n != c.want {
			t.Errorf("Count(%s, %s) = %d, want %d", c.method, c.suffix, n, c.want)
		}
	}
	a.sim.ResetRequests()
	if n := len(a.sim.Requests()); n != 0 {
		t.Errorf("%d requests after ResetRequests", n)
	}
}

// Clients look at Content-Type before they decode an error body.
func TestErrorContentType(t *testing.T) {
	a := newAPI(t, sim.Options{})
	resp, body := a.do(http.MethodGet, "/tenants/unknown", "", "")
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" || !json.Valid(body) {
		t.Errorf("error answer: Content-Type %q, body %s", ct, body)
	}
}
