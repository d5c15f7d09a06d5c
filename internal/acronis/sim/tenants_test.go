package sim_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/testkit"
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
	CreatedAt   string  `json:"created_at"`
	UpdatedAt   string  `json:"updated_at"`
}

type page struct {
	Items     []tenantWire `json:"items"`
	Timestamp string       `json:"timestamp"`
	Paging    struct {
		Cursors map[string]string `json:"cursors"`
	} `json:"paging"`
}

const unknownID = "00000000-0000-4000-8000-ffffffffffff"

func TestGetTenant(t *testing.T) {
	clock := testkit.NewClock()
	a := newAPI(t, sim.Options{Now: clock.Now})
	root := a.sim.RootID()
	clock.Advance(90 * time.Minute)
	cust := a.add(sim.Tenant{Name: "Acme", Kind: "customer", Enabled: true, MFAStatus: "setup_required", UpdateAllowed: true, Version: 7})
	hidden, _ := a.sim.Get(root)
	outside := a.add(sim.Tenant{Name: "Someone Else", Kind: "partner", ParentID: hidden.ParentID, Enabled: true})

	mfa := func(s string) *string { return &s }
	for _, want := range []tenantWire{
		{ID: root, Name: "Sim Partner", Kind: "partner", ParentID: hidden.ParentID, Enabled: true, Version: 1, HasChildren: true, MFAStatus: mfa("enabled"),
			CreatedAt: "2024-01-01T00:00:00Z", UpdatedAt: "2024-01-01T00:00:00Z"}, // older than anything Generate makes
		{ID: cust, Name: "Acme", Kind: "customer", ParentID: root, Enabled: true, Version: 7, MFAStatus: mfa("setup_required"),
			CreatedAt: "2026-01-01T01:30:00Z", UpdatedAt: "2026-01-01T01:30:00Z"},
	} {
		status, body := a.get("/tenants/" + want.ID)
		var got tenantWire
		decode(t, body, &got)
		if status != http.StatusOK || got.MFAStatus == nil || *got.MFAStatus != *want.MFAStatus || !strings.Contains(string(body), `"deleted_at":null`) {
			t.Errorf("status %d %s, want mfa_status %s and deleted_at null", status, body, *want.MFAStatus)
		}
		if got.MFAStatus, want.MFAStatus = nil, nil; got != want {
			t.Errorf("tenant %+v, want %+v", got, want)
		}
	}
	status, body := a.get("/tenants/" + unknownID)
	wantPlatformError(t, status, body, 404, 1005)
	for _, id := range []string{hidden.ParentID, outside} {
		for _, path := range []string{"/tenants/" + id, "/tenants/" + id + "/mfa/status", "/tenants/" + id + "/children",
			"/tenants?subtree_root_id=" + id, "/tenants?uuids=" + id, "/search?text=x&tenant=" + id} {
			status, body = a.get(path)
			wantPlatformError(t, status, body, 403, 1002)
		}
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
	for name, tn := range map[string]sim.Tenant{
		"duplicate id":               {ID: "dup", Kind: "customer"},
		"unknown parent":             {Kind: "customer", ParentID: "nope"},
		"unknown kind":               {Kind: "reseller"},
		"second root":                {Kind: "root"},
		"unknown MFA state":          {Kind: "customer", MFAStatus: "on"},
		"more TOTP users than users": {Kind: "customer", UsersCount: 1, UsersWithTOTP: 2},
		"id with a slash":            {ID: "a/b", Kind: "customer"},
		"updated before created":     {Kind: "customer", CreatedAt: testkit.Epoch, UpdatedAt: testkit.Epoch.Add(-time.Second)},
	} {
		if err := s.Add(tn); err == nil {
			t.Errorf("%s: Add succeeded, want an error", name)
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
	for calls, path := 1, "/tenants?"+query; ; calls++ {
		status, body := a.get(path)
		var p page
		decode(t, body, &p)
		if status != http.StatusOK || p.Timestamp == "" {
			t.Fatalf("GET %s: status %d, want 200 with a timestamp: %.200s", path, status, body)
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
	a.sim.ResetRequests()
	items, calls := listAll(t, a, "subtree_root_id="+a.sim.RootID()+"&lod=full&limit=5000")
	if len(all) != 12000 || calls != 3 || a.sim.Count("GET", "/tenants") != 3 || len(items) != len(all) {
		t.Fatalf("%d of %d tenants listed in %d calls (%d recorded), want 12000 in 3 pages of 5000",
			len(items), len(all), calls, a.sim.Count("GET", "/tenants"))
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
	ids := func(items []tenantWire) string {
		var out []string
		for _, it := range items {
			out = append(out, it.ID)
		}
		return strings.Join(out, ",")
	}
	tests := []struct {
		query string
		calls int
		ids   string // "" to check only the count
		items int
	}{
		{"subtree_root_id=" + root + "&lod=full", 2, "", 5104}, // 5000 a page by default
		{"subtree_root_id=" + root + "&limit=100000", 2, "", 5104},
		{"parent_id=" + p, 1, c1 + "," + c2, 2},
		{"parent_id=" + p + "&limit=1", 2, c1 + "," + c2, 2},
		{"lod=full&uuids=" + c2 + "," + unknownID + "," + p, 1, c2 + "," + p, 2}, // unknown ids left out
	}
	for _, tt := range tests {
		items, calls := listAll(t, a, tt.query)
		if calls != tt.calls || len(items) != tt.items || tt.ids != "" && ids(items) != tt.ids {
			t.Errorf("%s: %d calls for %s, want %d for %d items %s", tt.query, calls, ids(items), tt.calls, tt.items, tt.ids)
		}
		if full := strings.Contains(tt.query, "lod=full"); (items[0].MFAStatus != nil) != full {
			t.Errorf("%s: items carry mfa_status: %t, want %t", tt.query, !full, full)
		}
	}
}

func TestListingRefusals(t *testing.T) {
	a := newAPI(t, sim.Options{})
	root := a.sim.RootID()
	a.add(sim.Tenant{Kind: "customer"})
	_, body := a.get("/tenants?subtree_root_id=" + root + "&limit=1")
	var p page
	decode(t, body, &p)
	cursor := p.Paging.Cursors["after"]
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
	}
	for _, tt := range []struct {
		name, query  string
		status, code int
	}{
		{"no filter", "lod=full", 400, 400},
		{"subtree and parent", "subtree_root_id=" + root + "&parent_id=" + root, 400, 400},
		{"uuids and parent", "uuids=" + root + "&parent_id=" + root, 400, 400},
		{"empty filter", "parent_id=", 400, 400},
		{"limit zero", "subtree_root_id=" + root + "&limit=0", 400, 400},
		{"limit negative", "subtree_root_id=" + root + "&limit=-5", 400, 400},
		{"limit not a number", "subtree_root_id=" + root + "&limit=ten", 400, 400},
		{"bad lod", "subtree_root_id=" + root + "&lod=everything", 400, 400},
		{"101 uuids", "uuids=" + strings.Join(many, ","), 400, 400},
		{"garbage cursor", "after=not-a-cursor", 400, 400},
		{"cursor with a filter", "after=" + cursor + "&subtree_root_id=" + root, 400, 400},
		{"unknown subtree root", "subtree_root_id=" + unknownID, 404, 1005},
		{"unknown parent", "parent_id=" + unknownID, 404, 1005},
	} {
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
	if status, body = a.get("/tenants/" + c + "/children"); status != http.StatusOK || string(body) != `{"items":[]}` {
		t.Errorf("leaf children: status %d %s, want an empty list", status, body)
	}
	status, body = a.get("/tenants/" + p + "/children?include_details=maybe")
	wantPlatformError(t, status, body, 400, 400)
	status, body = a.get("/tenants/" + unknownID + "/children")
	wantPlatformError(t, status, body, 404, 1005)
}

func TestSearch(t *testing.T) {
	a := newAPI(t, sim.Options{})
	p := a.add(sim.Tenant{Name: "Reseller", Kind: "partner", Enabled: true})
	exact := a.add(sim.Tenant{Name: "Acme Corp", Kind: "customer", ParentID: p, Enabled: true})
	a.add(sim.Tenant{Name: "ACME Corp EU", Kind: "customer", Enabled: true})
	for i := range 12 {
		a.add(sim.Tenant{Name: fmt.Sprintf("Shop %02d", i), Kind: "customer", Enabled: true})
	}
	type item struct {
		ObjType  string   `json:"obj_type"`
		ID       string   `json:"id"`
		ParentID string   `json:"parent_id"`
		Kind     string   `json:"kind"`
		Name     string   `json:"name"`
		Path     []string `json:"path"` // names from the searched tenant down to the item's parent
	}
	search := func(query string) []item {
		t.Helper()
		status, body := a.get("/search?" + query)
		var r struct{ Items []item }
		if decode(t, body, &r); status != http.StatusOK || r.Items == nil {
			t.Fatalf("search %s: status %d: %s", query, status, body)
		}
		return r.Items
	}
	root := "tenant=" + a.sim.RootID()
	got := search(root + "&text=acme+corp") // case-insensitive substring
	if len(got) != 2 || fmt.Sprint(got[1]) != fmt.Sprint(item{"tenant", exact, p, "customer", "Acme Corp", []string{"Sim Partner", "Reseller"}}) {
		t.Errorf("search acme corp: %+v, want ACME Corp EU and %s in Sim Partner/Reseller", got, exact)
	}
	for query, want := range map[string]int{
		root + "&text=shop": 10, root + "&text=shop&limit=3": 3, // 10 by default
		"tenant=" + p + "&text=EU": 0, root + "&text=nothing+like+this": 0,
	} {
		if got := search(query); len(got) != want {
			t.Errorf("search %s: %d items, want %d", query, len(got), want)
		}
	}
	for _, query := range []string{"text=acme", root + "&text=shop&limit=none"} {
		status, body := a.get("/search?" + query)
		wantPlatformError(t, status, body, 400, 400)
	}
}

func TestRoutes(t *testing.T) {
	a := newAPI(t, sim.Options{ClientID: "my-client"})
	status, body := a.get("/clients/my-client")
	var c struct {
		ID       string `json:"id"`
		TenantID string `json:"tenant_id"`
	}
	if decode(t, body, &c); status != http.StatusOK || c.ID != "my-client" || c.TenantID != a.sim.RootID() {
		t.Errorf("status %d, client %s: want id my-client and tenant_id %s", status, body, a.sim.RootID())
	}
	for _, path := range []string{"/clients/someone-else", "/nothing", "/tenants/x/mfa", "/tenants//children", "/tenants/x/mfa/status/extra"} {
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
	if got := a.sim.Requests(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Requests() =\n%v\nwant\n%v", got, want)
	}
	for _, c := range []struct {
		method, suffix string
		want           int
	}{{"GET", "/mfa/status", 1}, {"PUT", "/mfa/status", 1}, {"GET", "/tenants", 1}, {"POST", "/idp/token", 1}, {"DELETE", "/mfa/status", 0}} {
		if n := a.sim.Count(c.method, c.suffix); n != c.want {
			t.Errorf("Count(%s, %s) = %d, want %d", c.method, c.suffix, n, c.want)
		}
	}
	a.sim.ResetRequests()
	if n := len(a.sim.Requests()); n != 0 {
		t.Errorf("%d requests after ResetRequests", n)
	}
}

func TestUpdatedSince(t *testing.T) {
	clock := testkit.NewClock()
	a := newAPI(t, sim.Options{Now: clock.Now})
	a.sim.Generate(sim.TreeSpec{Seed: 9, Size: 50})
	quiet := a.sim.All()[1:] // a day to a year old
	clock.Advance(time.Hour)
	early := a.add(sim.Tenant{Kind: "partner", Enabled: true}) // created at 01:00:00
	listAll(t, a, "subtree_root_id="+a.sim.RootID())           // caches the order that late must join
	clock.Advance(time.Second)
	late := a.add(sim.Tenant{Kind: "customer", ParentID: early}) // at 01:00:01
	a.putMFA(quiet[0].ID, `{"enabled":false}`)                   // no stamp by default
	a.putMFA(quiet[0].ID, `{"enabled":true}`)
	clock.Advance(time.Minute)
	var everyone []string
	for _, tn := range a.sim.All()[1:] {
		everyone = append(everyone, tn.ID)
	}

	sub := "subtree_root_id=" + a.sim.RootID() + "&updated_since="
	tests := []struct {
		query string
		want  []string
		calls int
	}{
		{sub + "2026-01-01T00:55:00Z", []string{early, late}, 1},
		{sub + "2026-01-01T01:00:00Z", []string{late}, 1}, // strictly after
		{sub + "2026-01-01T01:00:00", []string{late}, 1},  // no zone: UTC
		{sub + url.QueryEscape("2026-01-01T03:00:00+02:00"), []string{late}, 1},
		{sub + "2026-01-01T00:59:59.5Z", []string{early, late}, 1},
		{sub + "2026-01-01T01:00:01Z", nil, 1},
		{sub + "2026-01-01T00:55:00Z&limit=1", []string{early, late}, 2}, // the cursor carries it
		{"parent_id=" + early + "&updated_since=2026-01-01T00:00:00Z", []string{late}, 1},
		{"uuids=" + quiet[0].ID + "," + late + "&updated_since=2026-01-01T00:00:00Z", []string{late}, 1},
		{sub + "2024-12-31T00:00:00Z", everyone, 1}, // all but the client's own tenant, two years old
	}
	for _, tt := range tests {
		items, calls := listAll(t, a, tt.query)
		var got []string
		for _, it := range items {
			got = append(got, it.ID)
		}
		if strings.Join(got, ",") != strings.Join(tt.want, ",") || calls != tt.calls {
			t.Errorf("%s: listed %v in %d calls, want %v in %d", tt.query, got, calls, tt.want, tt.calls)
		}
	}
	_, body := a.get("/tenants?" + sub + "2026-01-01T00:00:00Z&limit=1")
	var p page
	if decode(t, body, &p); p.Timestamp != "2026-01-01T01:01:01Z" {
		t.Errorf("timestamp %q, want the server's time of the listing", p.Timestamp)
	}
	for _, query := range []string{sub + "yesterday", sub, sub + "2026-13-01T00:00:00Z",
		"after=" + p.Paging.Cursors["after"] + "&updated_since=2026-01-01T00:00:00Z"} {
		status, body := a.get("/tenants?" + query)
		wantPlatformError(t, status, body, 400, 400)
		var e struct{ Error struct{ Message string } }
		if decode(t, body, &e); !strings.Contains(e.Error.Message, "updated_since") {
			t.Errorf("%s: message %q, want it to name updated_since", query, e.Error.Message)
		}
	}
}
