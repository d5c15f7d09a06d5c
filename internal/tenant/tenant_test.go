package tenant

import (
	"strings"
	"testing"
)

func TestParseID(t *testing.T) {
	const id = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
	tests := []struct {
		in, want string // want "" means refused
	}{
		{id, id},
		{strings.ToUpper(id), id},
		{"3fa85f64-5717-4562-B3FC-2c963f66afa6", id},
		{"", ""},
		{"{" + id + "}", ""},
		{"urn:uuid:" + id, ""},
		{strings.ReplaceAll(id, "-", ""), ""},
		{id[:35], ""},
		{id + "0", ""},
		{"3fa85f64_5717-4562-b3fc-2c963f66afa6", ""}, // a separator in the wrong form
		{"3fa85f64-5717-4562-b3fc-2c963f66afag", ""}, // not hex
		{"3fa85f6-45717-4562-b3fc-2c963f66afa6", ""}, // dashes out of place
		{"3fa85f64-5717-4562-b3fc-2c963f66af\u00e9", ""},
	}
	for _, tt := range tests {
		got, ok := ParseID(tt.in)
		if got != tt.want || ok != (tt.want != "") || ValidID(tt.in) != ok {
			t.Errorf("ParseID(%q) = %q, %v (ValidID %v); want %q", tt.in, got, ok, ValidID(tt.in), tt.want)
		}
	}
}

func TestMFAStates(t *testing.T) {
	for state, on := range map[string]bool{
		MFAEnabled: true, MFASetupRequired: true,
		MFADisabled: false, MFAForciblyDisabled: false, MFADisableInProgress: false, "": false,
	} {
		if MFAOn(state) != on {
			t.Errorf("MFAOn(%q) = %v", state, !on)
		}
	}
	if MFAState(true) != MFAEnabled || MFAState(false) != MFADisabled {
		t.Errorf("MFAState names on %q and off %q", MFAState(true), MFAState(false))
	}
	for _, k := range []Kind{KindRoot, KindPartner, KindFolder, KindCustomer, KindUnit} {
		if k.InheritsMFA() != (k == KindFolder || k == KindUnit) {
			t.Errorf("%s.InheritsMFA() = %v", k, k.InheritsMFA())
		}
	}
	for _, tn := range []Tenant{{ID: "a"}, {ID: "a", ParentID: "a"}} {
		if !tn.IsRoot() {
			t.Errorf("%+v is not the root", tn)
		}
	}
	if (Tenant{ID: "a", ParentID: "b"}).IsRoot() {
		t.Error("a tenant with a parent is the root")
	}
}

func TestUsersWithoutTOTP(t *testing.T) {
	for _, tt := range []struct{ users, totp, want int }{{5, 2, 3}, {3, 3, 0}, {0, 0, 0}, {1, 4, 0}} {
		s := MFAStatus{UsersCount: tt.users, UsersWithTOTPEnabledCount: tt.totp}
		if got := s.UsersWithoutTOTP(); got != tt.want {
			t.Errorf("%d users, %d with TOTP: %d without, want %d", tt.users, tt.totp, got, tt.want)
		}
	}
}

func TestUser(t *testing.T) {
	tests := []struct {
		user  User
		name  string
		needs bool
	}{
		{User{FirstName: "Ada", LastName: "Lovelace", Enabled: true, MFAStatus: MFAEnabled}, "Ada Lovelace", false},
		{User{FirstName: "Ada", Enabled: true, MFAStatus: MFASetupRequired}, "Ada", true},
		{User{LastName: "Lovelace", Enabled: true, MFAStatus: MFADisabled}, "Lovelace", true},
		{User{Login: "ada", Enabled: true}, "", true},
		{User{Login: "ada", MFAStatus: MFASetupRequired}, "", false}, // disabled: cannot log in anyway
	}
	for _, tt := range tests {
		if got := tt.user.Name(); got != tt.name {
			t.Errorf("%+v: Name() = %q, want %q", tt.user, got, tt.name)
		}
		if got := tt.user.NeedsTOTP(); got != tt.needs {
			t.Errorf("%+v: NeedsTOTP() = %v, want %v", tt.user, got, tt.needs)
		}
	}
}
