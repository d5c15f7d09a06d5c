package sim_test

import (
	"bytes"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"testing"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/testkit"
)

// generated returns the generated tenants with the client's own tenant id,
// which is random per Server, replaced by "OWN".
func generated(spec sim.TreeSpec) []sim.Tenant {
	s := sim.New(sim.Options{Now: testkit.NewClock().Now})
	s.Generate(spec)
	all := s.All()
	for i := range all {
		if all[i].ParentID == s.RootID() {
			all[i].ParentID = "OWN"
		}
	}
	return all[1:]
}

func TestGenerateIsDeterministic(t *testing.T) {
	a := generated(sim.TreeSpec{Seed: 42, Size: 3000})
	b := generated(sim.TreeSpec{Seed: 42, Size: 3000})
	c := generated(sim.TreeSpec{Seed: 43, Size: 3000})
	if len(a) != 3000 {
		t.Fatalf("generated %d tenants, want 3000", len(a))
	}
	if !reflect.DeepEqual(a, b) {
		t.Error("the same seed gave different trees")
	}
	same := 0
	for i := range a {
		if a[i].ID == c[i].ID {
			same++
		}
	}
	if same != 0 || reflect.DeepEqual(a, c) {
		t.Errorf("seeds 42 and 43 share %d ids: want different trees", same)
	}

	s := sim.New(sim.Options{})
	s.Generate(sim.TreeSpec{Seed: 1, Size: 500})
	s.Generate(sim.TreeSpec{Seed: 1, Size: 500}) // on the same Server: new ids and names
	names, ids := map[string]bool{}, map[string]bool{}
	for _, tn := range s.All() {
		names[tn.Name], ids[tn.ID] = true, true
	}
	if len(s.All()) != 1001 || len(names) != 1001 || len(ids) != 1001 {
		t.Errorf("%d tenants, %d names, %d ids; want 1001 of each", len(s.All()), len(names), len(ids))
	}
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestGenerateShape(t *testing.T) {
	const size = 20000
	clock := testkit.NewClock()
	s := sim.New(sim.Options{Now: clock.Now})
	s.Generate(sim.TreeSpec{Seed: 7, Size: size})
	all := s.All()
	if len(all) != size+1 {
		t.Fatalf("%d tenants, want %d and the client's own", len(all), size)
	}
	byID := map[string]sim.Tenant{all[0].ID: all[0]}
	depth := map[string]int{all[0].ID: 0}
	kinds := map[string]int{}
	names := map[string]bool{}
	var disabled, locked, ownState, off, forcibly, maxContainerDepth int
	stamps := map[bool]int{} // updated since created or not
	allowedParents := map[string][]string{
		"partner":  {"partner", "folder"},
		"folder":   {"partner"},
		"customer": {"partner", "folder"},
		"unit":     {"customer", "unit"},
	}
	for _, tn := range all[1:] {
		parent, ok := byID[tn.ParentID]
		if !ok {
			t.Fatalf("%s listed before its parent %s", tn.Name, tn.ParentID)
		}
		byID[tn.ID] = tn
		depth[tn.ID] = depth[parent.ID] + 1
		if !slices.Contains(allowedParents[tn.Kind], parent.Kind) {
			t.Errorf("%s (%s) is in a %s", tn.Name, tn.Kind, parent.Kind)
		}
		if tn.Kind == "partner" || tn.Kind == "folder" {
			maxContainerDepth = max(maxContainerDepth, depth[tn.ID])
		}
		if !uuidV4.MatchString(tn.ID) {
			t.Fatalf("id %q is not a version 4 UUID", tn.ID)
		}
		if names[tn.Name] {
			t.Fatalf("name %q used twice", tn.Name)
		}
		names[tn.Name] = true
		if tn.UsersCount < 0 || tn.UsersCount > 50 || tn.UsersWithTOTP < 0 || tn.UsersWithTOTP > tn.UsersCount {
			t.Fatalf("%s: %d users, %d with TOTP", tn.Name, tn.UsersCount, tn.UsersWithTOTP)
		}
		// A quiet fleet: created and last updated a day to a year ago.
		if yearAgo, dayAgo := clock.Now().AddDate(0, 0, -365), clock.Now().AddDate(0, 0, -1); tn.CreatedAt.Before(yearAgo) ||
			tn.UpdatedAt.Before(tn.CreatedAt) || tn.UpdatedAt.After(dayAgo) {
			t.Fatalf("%s: created %v, updated %v; want both between %v and %v", tn.Name, tn.CreatedAt, tn.UpdatedAt, yearAgo, dayAgo)
		}
		stamps[tn.CreatedAt != tn.UpdatedAt]++
		kinds[tn.Kind]++
		if !tn.Enabled {
			disabled++
		}
		if !tn.UpdateAllowed {
			locked++
		}
		if tn.Kind == "folder" || tn.Kind == "unit" {
			if tn.MFAStatus != byID[tn.ParentID].MFAStatus {
				t.Fatalf("%s reports %s, its parent %s", tn.Name, tn.MFAStatus, byID[tn.ParentID].MFAStatus)
			}
			continue
		}
		ownState++
		switch tn.MFAStatus {
		case "disabled":
			off++
		case "forcibly_disabled":
			off++
			forcibly++
		case "enabled":
			if tn.UsersWithTOTP != tn.UsersCount {
				t.Errorf("%s is enabled with users lacking TOTP; that is setup_required", tn.Name)
			}
		case "setup_required":
		default:
			t.Fatalf("%s: state %q", tn.Name, tn.MFAStatus)
		}
	}

	wantKinds := map[string]int{"partner": 1000, "folder": 1000, "unit": 3000, "customer": 15000}
	if !reflect.DeepEqual(kinds, wantKinds) {
		t.Errorf("kinds %v, want %v", kinds, wantKinds)
	}
	near := func(what string, got int, of int, want float64) {
		t.Helper()
		if f := float64(got) / float64(of); math.Abs(f-want) > want/4 {
			t.Errorf("%s: %.4f, want about %.4f", what, f, want)
		}
	}
	near("disabled", disabled, size, 0.03)
	near("locked", locked, size, 0.01)
	near("drift", off, ownState, 0.10)
	near("forcibly_disabled among drift", forcibly, off, 0.2)
	if stamps[true] < size*9/10 {
		t.Errorf("%d of %d tenants updated since they were created, want most", stamps[true], size)
	}
	if maxContainerDepth < 3 || maxContainerDepth > 5 {
		t.Errorf("partners and folders nest %d deep below the client's tenant, want 3 to 5", maxContainerDepth)
	}
}

func TestGenerateOverrides(t *testing.T) {
	tree := generated(sim.TreeSpec{Seed: 1, Size: 1000, Partners: 0.2, Units: -1, Drift: -1, Disabled: -1, Locked: 1})
	kinds := map[string]int{}
	for _, tn := range tree {
		kinds[tn.Kind]++
		if tn.MFAStatus != "enabled" && tn.MFAStatus != "setup_required" {
			t.Fatalf("%s is %s with Drift < 0", tn.Name, tn.MFAStatus)
		}
		if !tn.Enabled || tn.UpdateAllowed {
			t.Fatalf("%s: enabled %v, update_allowed %v; want every tenant enabled and locked", tn.Name, tn.Enabled, tn.UpdateAllowed)
		}
	}
	if want := map[string]int{"partner": 200, "folder": 50, "customer": 750}; !reflect.DeepEqual(kinds, want) {
		t.Errorf("kinds %v, want %v", kinds, want)
	}
}

func TestMemoryOf100kTenants(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 100,000 tenants")
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := sim.New(sim.Options{})
	s.Generate(sim.TreeSpec{Seed: 1, Size: 100_000})
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(s)
	if mb := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / (1 << 20); mb > 40 {
		t.Errorf("100,000 tenants take %.1f MB of heap, want at most 40", mb)
	} else {
		t.Logf("100,000 tenants take %.1f MB of heap", mb)
	}
}

func BenchmarkGenerate100k(b *testing.B) {
	for b.Loop() {
		s := sim.New(sim.Options{})
		s.Generate(sim.TreeSpec{Seed: 1, Size: 100_000})
	}
}

// BenchmarkListSubtree100k serves the 21 pages of a 100,000-tenant subtree, as
// a sweep reads them: the simulator's own cost, without HTTP or decoding.
func BenchmarkListSubtree100k(b *testing.B) {
	a := newAPI(b, sim.Options{})
	s := a.sim
	s.Generate(sim.TreeSpec{Seed: 1, Size: 100_000})
	afterKey := []byte(`"after":"`)
	for b.Loop() {
		calls := 0
		path := "/api/2/tenants?lod=full&subtree_root_id=" + s.RootID()
		for path != "" {
			calls++
			req := httptest.NewRequest(http.MethodGet, path, nil)
			req.Header.Set("Authorization", "Bearer "+a.token)
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d: %.200s", rec.Code, rec.Body)
			}
			path = ""
			body := rec.Body.Bytes()
			if i := bytes.LastIndex(body, afterKey); i >= 0 {
				cursor, _, _ := bytes.Cut(body[i+len(afterKey):], []byte(`"`))
				path = "/api/2/tenants?after=" + string(cursor)
			}
		}
		if calls != 21 {
			b.Fatalf("%d calls, want 21", calls)
		}
	}
}
