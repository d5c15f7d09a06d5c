package sim_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/testkit"
)

type userWire struct {
	ID        string  `json:"id"`
	TenantID  string  `json:"tenant_id"`
	Login     string  `json:"login"`
	Enabled   bool    `json:"enabled"`
	Activated bool    `json:"activated"`
	MFAStatus *string `json:"mfa_status"`
	Contact   *struct {
		Email     string `json:"email"`
		FirstName string `json:"firstname"`
		LastName  string `json:"lastname"`
	} `json:"contact"`
	CreatedAt string  `json:"created_at"`
	UpdatedAt string  `json:"updated_at"`
	DeletedAt *string `json:"deleted_at"`
	Version   int64   `json:"version"`
}

// listUsers pages through GET /users and returns every item and the number of calls.
func listUsers(t testing.TB, a *api, query string) ([]userWire, int) {
	t.Helper()
	var items []userWire
	for calls, path := 1, "/users?"+query; ; calls++ {
		status, body := a.get(path)
		var p struct {
			Items     []userWire
			Timestamp string
			Paging    struct{ Cursors map[string]string }
		}
		if decode(t, body, &p); status != http.StatusOK || p.Timestamp == "" || p.Items == nil {
			t.Fatalf("GET %s: status %d, want 200 with items and a timestamp: %.200s", path, status, body)
		}
		items = append(items, p.Items...)
		after, ok := p.Paging.Cursors["after"]
		if !ok {
			return items, calls
		}
		path = "/users?after=" + url.QueryEscape(after)
	}
}

// simUsers is every user of the tenants, in order, as the Server derives them.
func simUsers(s *sim.Server, tenants ...string) []sim.User {
	var out []sim.User
	for _, id := range tenants {
		out = append(out, s.Users(id)...)
	}
	return out
}

var login = regexp.MustCompile(`^user\d{2,}\.[0-9a-f]{8}$`)

func TestUsersListing(t *testing.T) {
	clock := testkit.NewClock()
	a := newAPI(t, sim.Options{Now: clock.Now})
	own := a.sim.RootID()
	p := a.add(sim.Tenant{Kind: "partner", Enabled: true, UsersCount: 1})
	c := a.add(sim.Tenant{Kind: "customer", ParentID: p, UsersCount: 3, UsersWithTOTP: 1})
	clock.Advance(time.Hour)
	u := a.add(sim.Tenant{Kind: "unit", ParentID: c, UsersCount: 2, UsersWithTOTP: 2})
	big := a.add(sim.Tenant{Kind: "customer", UsersCount: 4100, UsersWithTOTP: 4000})
	a.add(sim.Tenant{Kind: "customer", ParentID: p}) // no users

	// Depth order: p and big below own, then c below p, then u below c.
	all := simUsers(a.sim, own, p, big, c, u)
	ids := func(users []sim.User) []string {
		var out []string
		for _, u := range users {
			out = append(out, u.ID)
		}
		return out
	}
	tests := []struct {
		query string
		want  []string
		calls int
	}{
		{"subtree_root_tenant_id=" + own + "&lod=full", ids(all), 3}, // 2000 a page by default
		{"subtree_root_tenant_id=" + own + "&limit=5000", ids(all), 3},
		{"subtree_root_tenant_id=" + p + "&lod=full&limit=2", ids(simUsers(a.sim, p, c, u)), 3},
		{"subtree_root_tenant_id=" + c + "&tenant_id=" + u, ids(simUsers(a.sim, c, u)), 1}, // tenant_id does not filter
		{"subtree_root_tenant_id=" + p + "&updated_since=2026-01-01T00:00:00Z", ids(simUsers(a.sim, u)), 1},
		{"lod=full&uuids=" + all[5].ID + "," + unknownID + ",not-a-uuid," + all[0].ID + "," + all[5].ID, []string{all[5].ID, all[0].ID}, 1},
		{"uuids=" + all[5].ID + "," + all[0].ID + "&limit=1", []string{all[5].ID, all[0].ID}, 2},
		{"uuids=" + all[5].ID + "," + all[0].ID + "&updated_since=2026-01-01T00:00:00Z", []string{all[5].ID}, 1},
		{"subtree_root_tenant_id=" + u + "&updated_since=2026-01-01T01:00:00Z", nil, 1},
	}
	for _, tt := range tests {
		items, calls := listUsers(t, a, tt.query)
		var got []string
		for _, it := range items {
			got = append(got, it.ID)
		}
		if !slices.Equal(got, tt.want) || calls != tt.calls {
			t.Errorf("%.80s: %d users in %d calls, want %d in %d", tt.query, len(got), calls, len(tt.want), tt.calls)
		}
		if full := strings.Contains(tt.query, "lod=full"); len(items) > 0 && (items[0].MFAStatus != nil || items[0].Contact != nil) != full {
			t.Errorf("%.80s: items carry mfa_status and contact: %t, want %t", tt.query, !full, full)
		}
	}

	items, _ := listUsers(t, a, "subtree_root_tenant_id="+p+"&lod=full")
	below := simUsers(a.sim, p, c, u)
	if len(items) != len(below) {
		t.Fatalf("%d users listed below p, want %d", len(items), len(below))
	}
	logins := map[string]bool{}
	for i, it := range items {
		want := below[i]
		created := map[bool]string{true: "2026-01-01T01:00:00Z", false: "2026-01-01T00:00:00Z"}[it.TenantID == u]
		if it.ID != want.ID || it.TenantID != want.TenantID || it.Login != want.Login || !it.Enabled || !it.Activated ||
			*it.MFAStatus != want.MFAStatus || it.Contact.Email != want.Email || it.Contact.FirstName != want.FirstName ||
			it.Contact.LastName != want.LastName || it.CreatedAt != created || it.UpdatedAt != created || it.DeletedAt != nil || it.Version != 1 {
			t.Errorf("user %d: %+v, want %+v created at %s", i, it, want, created)
		}
		if !uuidV4.MatchString(it.ID) || !login.MatchString(it.Login) || it.Contact.Email != it.Login+"@example.com" || logins[it.Login] {
			t.Errorf("user %d: id %s, login %s, email %s: want a UUID and a unique login of its own at example.com", i, it.ID, it.Login, it.Contact.Email)
		}
		logins[it.Login] = true
	}
	if mfa := fmt.Sprint(statuses(a.sim.Users(c))); mfa != "[enabled setup_required setup_required]" {
		t.Errorf("users of a tenant with 3 users, 1 with TOTP: %s; want those with TOTP first", mfa)
	}
	if a.sim.Users(unknownID) != nil {
		t.Error("an unknown tenant has users")
	}
}

func statuses(users []sim.User) []string {
	var out []string
	for _, u := range users {
		out = append(out, u.MFAStatus)
	}
	return out
}

func TestUsersRefusals(t *testing.T) {
	a := newAPI(t, sim.Options{})
	own := a.sim.RootID()
	hidden, _ := a.sim.Get(own)
	outsider := a.add(sim.Tenant{Kind: "customer", ParentID: hidden.ParentID, UsersCount: 1})
	other := a.add(sim.Tenant{Kind: "customer", UsersCount: 3})
	// Cursors of listings by uuids, which both endpoints take.
	cursor := func(path string) string {
		_, body := a.get(path)
		var p page
		decode(t, body, &p)
		return p.Paging.Cursors["after"]
	}
	usersCursor := cursor("/users?uuids=" + a.sim.Users(other)[0].ID + "," + a.sim.Users(other)[1].ID + "&limit=1")
	tenantsCursor := cursor("/tenants?uuids=" + own + "," + other + "&limit=1")
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
	}
	for _, tt := range []struct {
		name, path   string
		status, code int
	}{
		{"no filter", "/users?lod=full", 400, 400},
		{"tenant_id alone", "/users?tenant_id=" + own, 400, 400},
		{"subtree and uuids", "/users?subtree_root_tenant_id=" + own + "&uuids=" + unknownID, 400, 400},
		{"empty filter", "/users?subtree_root_tenant_id=", 400, 400},
		{"101 uuids", "/users?uuids=" + strings.Join(many, ","), 400, 400},
		{"limit zero", "/users?subtree_root_tenant_id=" + own + "&limit=0", 400, 400},
		{"bad lod", "/users?subtree_root_tenant_id=" + own + "&lod=all", 400, 400},
		{"bad updated_since", "/users?subtree_root_tenant_id=" + own + "&updated_since=now", 400, 400},
		{"garbage cursor", "/users?after=not-a-cursor", 400, 400},
		{"a tenants cursor", "/users?after=" + tenantsCursor, 400, 400},
		{"a users cursor on tenants", "/tenants?after=" + usersCursor, 400, 400},
		{"cursor with a filter", "/users?after=" + usersCursor + "&uuids=" + unknownID, 400, 400},
		{"unknown tenant", "/users?subtree_root_tenant_id=" + unknownID, 404, 1005},
		{"tenant out of sight", "/users?subtree_root_tenant_id=" + outsider, 403, 1002},
		{"user out of sight", "/users?uuids=" + a.sim.Users(outsider)[0].ID, 403, 1002},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body := a.get(tt.path)
			wantPlatformError(t, status, body, tt.status, tt.code)
		})
	}
	for _, status := range []int{403, 503} {
		a.sim.SetFaults(sim.Faults{UsersStatus: status})
		for _, path := range []string{"/users?subtree_root_tenant_id=" + own, "/users?after=" + usersCursor} {
			got, body := a.get(path)
			wantPlatformError(t, got, body, status, map[int]int{403: 1002, 503: 503}[status])
		}
		if got, _ := a.get("/tenants?subtree_root_id=" + own); got != http.StatusOK {
			t.Errorf("tenants listing while users fail: status %d", got)
		}
	}
}

// TestUsersMatchMFACounts checks what a rollout notice relies on: the users
// listed below a tenant that belong to it or to its own folders and units are
// exactly those its mfa/status counts, and those with TOTP are those the
// listing says have it enabled.
func TestUsersMatchMFACounts(t *testing.T) {
	a := newAPI(t, sim.Options{})
	a.sim.Generate(sim.TreeSpec{Seed: 21, Size: 400, Folders: 0.1, Units: 0.3})
	all := a.sim.All()
	byID := map[string]sim.Tenant{}
	for _, tn := range all {
		byID[tn.ID] = tn
	}
	// sharing reports whether id takes its MFA setting from root: it is root,
	// or a folder or unit whose chain of folders and units leads up to root.
	sharing := func(root, id string) bool {
		for ; id != root; id = byID[id].ParentID {
			if k := byID[id].Kind; k != "folder" && k != "unit" {
				return false
			}
		}
		return true
	}
	checked := map[string]int{}
	for _, tn := range all {
		status, body := a.get("/tenants/" + tn.ID + "/mfa/status")
		var st mfaWire
		if decode(t, body, &st); status != http.StatusOK {
			t.Fatalf("mfa/status of %s: %d", tn.Name, status)
		}
		items, _ := listUsers(t, a, "subtree_root_tenant_id="+tn.ID+"&lod=full")
		var users, totp, below int
		for _, u := range items {
			switch {
			case sharing(tn.ID, u.TenantID):
				users++
				if *u.MFAStatus == "enabled" {
					totp++
				}
			case byID[u.TenantID].ID == "":
				t.Fatalf("%s lists a user of %s, which is no tenant of the tree", tn.Name, u.TenantID)
			default:
				below++
			}
		}
		if users != st.UsersCount || totp != st.UsersWithTOTP {
			t.Errorf("%s (%s): listing has %d users, %d with TOTP; mfa/status counts %d and %d",
				tn.Name, tn.Kind, users, totp, st.UsersCount, st.UsersWithTOTP)
		}
		if tn.Kind == "partner" && below > 0 {
			checked["partner with customers' users below"]++
		}
		if users > tn.UsersCount {
			checked["tenant counting folders' or units' users"]++
		}
	}
	if checked["partner with customers' users below"] == 0 || checked["tenant counting folders' or units' users"] == 0 {
		t.Errorf("the tree did not have the cases the check is for: %v", checked)
	}
}
