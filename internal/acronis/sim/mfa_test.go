package sim_test

import (
	"net/http"
	"testing"
	"time"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/testkit"
)

type mfaWire struct {
	MFAStatus     string `json:"mfa_status"`
	UsersCount    int    `json:"users_count"`
	UsersWithTOTP int    `json:"users_with_totp_enabled_count"`
	UpdateAllowed bool   `json:"update_allowed"`
}

func TestGetMFAStatus(t *testing.T) {
	a := newAPI(t, sim.Options{})
	cust := a.add(sim.Tenant{Kind: "customer", Enabled: true, MFAStatus: "setup_required", UsersCount: 4, UsersWithTOTP: 1, UpdateAllowed: true})
	unit := a.add(sim.Tenant{Kind: "unit", ParentID: cust, Enabled: true, UsersCount: 3, UsersWithTOTP: 2, UpdateAllowed: true})
	a.add(sim.Tenant{Kind: "unit", ParentID: unit, Enabled: true, UsersCount: 2, UsersWithTOTP: 2, UpdateAllowed: true})
	p := a.add(sim.Tenant{Kind: "partner", Enabled: true, MFAStatus: "forcibly_disabled", UsersCount: 1, UpdateAllowed: true})
	folder := a.add(sim.Tenant{Kind: "folder", ParentID: p, Enabled: true, UsersCount: 5, UpdateAllowed: true})
	a.add(sim.Tenant{Kind: "customer", ParentID: folder, Enabled: true, MFAStatus: "enabled", UsersCount: 50, UsersWithTOTP: 50, UpdateAllowed: true})

	tests := []struct {
		name string
		id   string
		want mfaWire
	}{
		{"setup_required reads as enabled; units' users count", cust, mfaWire{"enabled", 9, 5, true}},
		{"unit inherits its customer's state and may not be changed", unit, mfaWire{"enabled", 5, 4, false}},
		{"forcibly_disabled reads as disabled; folder users count, its customers' do not", p, mfaWire{"disabled", 6, 0, true}},
		{"folder inherits", folder, mfaWire{"disabled", 5, 0, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := a.get("/tenants/" + tt.id + "/mfa/status")
			var got mfaWire
			decode(t, body, &got)
			if status != http.StatusOK || got != tt.want {
				t.Errorf("status %d, %+v; want %+v", status, got, tt.want)
			}
		})
	}
	status, body := a.get("/tenants/00000000-0000-4000-8000-ffffffffffff/mfa/status")
	wantPlatformError(t, status, body, 404, 1005)
}

func TestPutMFA(t *testing.T) {
	a := newAPI(t, sim.Options{})
	newTenant := func(tn sim.Tenant) string {
		if tn.Kind == "" {
			tn.Kind = "customer"
		}
		return a.add(tn)
	}
	tests := []struct {
		name        string
		tenant      sim.Tenant
		contentType string
		body        string
		status      int
		code        int    // platform code of a refusal
		state       string // tenant state afterwards
		version     int64  // tenant version afterwards (created at 1)
	}{
		{"enable, every user has TOTP", sim.Tenant{Enabled: true, UpdateAllowed: true, UsersCount: 2, UsersWithTOTP: 2}, "application/json", `{"enabled":true}`, 200, 0, "enabled", 2},
		{"enable, users lack TOTP", sim.Tenant{Enabled: true, UpdateAllowed: true, UsersCount: 3, UsersWithTOTP: 1}, "application/json", `{"enabled": true}`, 200, 0, "setup_required", 2},
		{"enable forcibly disabled", sim.Tenant{Enabled: true, UpdateAllowed: true, MFAStatus: "forcibly_disabled"}, "application/json; charset=utf-8", `{"enabled":true}`, 200, 0, "enabled", 2},
		{"disable", sim.Tenant{Enabled: true, UpdateAllowed: true, MFAStatus: "setup_required"}, "application/json", `{"enabled":false}`, 200, 0, "disabled", 2},
		{"already enabled changes nothing", sim.Tenant{Enabled: true, UpdateAllowed: true, MFAStatus: "enabled"}, "application/json", `{"enabled":true}`, 200, 0, "enabled", 1},
		{"disabled tenant may still change", sim.Tenant{Enabled: false, UpdateAllowed: true}, "application/json", `{"enabled":true}`, 200, 0, "enabled", 2},
		{"partner", sim.Tenant{Kind: "partner", Enabled: true, UpdateAllowed: true}, "application/json", `{"enabled":true}`, 200, 0, "enabled", 2},
		{"folder refused", sim.Tenant{Kind: "folder", Enabled: true, UpdateAllowed: true}, "application/json", `{"enabled":true}`, 403, 1002, "enabled", 1},
		{"unit refused", sim.Tenant{Kind: "unit", Enabled: true, UpdateAllowed: true}, "application/json", `{"enabled":false}`, 403, 1002, "enabled", 1},
		{"update not allowed", sim.Tenant{Enabled: true, UpdateAllowed: false}, "application/json", `{"enabled":true}`, 403, 1002, "disabled", 1},
		{"unknown field", sim.Tenant{Enabled: true, UpdateAllowed: true}, "application/json", `{"enabled":true,"force":true}`, 400, 400, "disabled", 1},
		{"enabled missing", sim.Tenant{Enabled: true, UpdateAllowed: true}, "application/json", `{}`, 400, 400, "disabled", 1},
		{"enabled not a bool", sim.Tenant{Enabled: true, UpdateAllowed: true}, "application/json", `{"enabled":"true"}`, 400, 400, "disabled", 1},
		{"enabled null", sim.Tenant{Enabled: true, UpdateAllowed: true}, "application/json", `{"enabled":null}`, 400, 400, "disabled", 1},
		{"two objects", sim.Tenant{Enabled: true, UpdateAllowed: true}, "application/json", `{"enabled":true}{"enabled":false}`, 400, 400, "disabled", 1},
		{"not JSON", sim.Tenant{Enabled: true, UpdateAllowed: true}, "application/json", `enabled=true`, 400, 400, "disabled", 1},
		{"form content type", sim.Tenant{Enabled: true, UpdateAllowed: true}, "application/x-www-form-urlencoded", `{"enabled":true}`, 415, 415, "disabled", 1},
		{"no content type", sim.Tenant{Enabled: true, UpdateAllowed: true}, "", `{"enabled":true}`, 415, 415, "disabled", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := newTenant(tt.tenant)
			resp, body := a.do(http.MethodPut, "/tenants/"+id+"/mfa/status", tt.contentType, tt.body)
			if tt.code != 0 {
				wantPlatformError(t, resp.StatusCode, body, tt.status, tt.code)
			} else {
				// The answer is what a GET says now.
				_, read := a.get("/tenants/" + id + "/mfa/status")
				var got, now mfaWire
				decode(t, body, &got)
				decode(t, read, &now)
				want := map[bool]string{true: "enabled", false: "disabled"}[tt.state == "enabled" || tt.state == "setup_required"]
				if resp.StatusCode != tt.status || got.MFAStatus != want || got != now {
					t.Errorf("status %d %s, then GET %s; want %d with mfa_status %s", resp.StatusCode, body, read, tt.status, want)
				}
			}
			after, _ := a.sim.Get(id)
			if after.MFAStatus != tt.state || after.Version != tt.version {
				t.Errorf("tenant afterwards: state %s version %d, want %s version %d", after.MFAStatus, after.Version, tt.state, tt.version)
			}
		})
	}

	status, body := a.putMFA("00000000-0000-4000-8000-ffffffffffff", `{"enabled":true}`)
	wantPlatformError(t, status, body, 404, 1005)
}

func TestSetMFA(t *testing.T) {
	a := newAPI(t, sim.Options{})
	id := a.add(sim.Tenant{Kind: "customer", Enabled: true, UpdateAllowed: true})
	a.sim.ResetRequests()
	a.sim.SetMFA(id, "forcibly_disabled")
	if got, _ := a.sim.Get(id); got.MFAStatus != "forcibly_disabled" || got.Version != 1 {
		t.Errorf("after SetMFA: %+v", got)
	}
	if n := len(a.sim.Requests()); n != 0 {
		t.Errorf("SetMFA recorded %d requests", n)
	}

	folder := a.add(sim.Tenant{Kind: "folder", Enabled: true})
	for _, bad := range [][2]string{{id, "on"}, {"nope", "enabled"}, {folder, "enabled"}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("SetMFA(%q, %q) did not panic", bad[0], bad[1])
				}
			}()
			a.sim.SetMFA(bad[0], bad[1])
		}()
	}
}

func TestMFAChangeUpdates(t *testing.T) {
	for _, stamps := range []bool{false, true} {
		clock := testkit.NewClock()
		a := newAPI(t, sim.Options{Now: clock.Now, MFAChangeUpdates: stamps})
		id := a.add(sim.Tenant{Kind: "customer", Enabled: true, UpdateAllowed: true, MFAStatus: "enabled"})
		clock.Advance(time.Minute)
		a.putMFA(id, `{"enabled":true}`) // no change: nothing to stamp
		if got, _ := a.sim.Get(id); !got.UpdatedAt.Equal(testkit.Epoch) {
			t.Errorf("MFAChangeUpdates %t: a PUT that changes nothing stamped updated_at %v", stamps, got.UpdatedAt)
		}
		clock.Advance(time.Minute)
		a.putMFA(id, `{"enabled":false}`)
		want := testkit.Epoch
		if stamps {
			want = clock.Now()
		}
		if got, _ := a.sim.Get(id); !got.UpdatedAt.Equal(want) || !got.CreatedAt.Equal(testkit.Epoch) || got.Version != 2 {
			t.Errorf("MFAChangeUpdates %t: created %v, updated %v, version %d; want updated %v, version 2",
				stamps, got.CreatedAt, got.UpdatedAt, got.Version, want)
		}
	}
}
