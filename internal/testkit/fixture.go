package testkit

import (
	"encoding/json"
	"testing"

	"acronismfa/internal/acronis/sim"
)

// The fixture tree, below the API client's own tenant "Sim Partner" (a partner
// with MFA on):
//
//	own ─┬─ PartnerA (partner, on) ─┬─ OffCustomer (customer, off, 5 users, 2 with TOTP) ── Unit
//	     │                          ├─ OnCustomer (customer, on, 3 users, 3 with TOTP)
//	     │                          ├─ Contoso "Contoso Ltd" (customer, off, 12 users, none with TOTP)
//	     │                          ├─ ContosoHoldings "Contoso Ltd Holdings" (customer, off)
//	     │                          ├─ Twin1, Twin2 (customers, off, both "Twin Corp")
//	     │                          └─ Broken (customer, off, 1 user: tests make Acronis fail on it)
//	     ├─ PartnerB (partner, off) ─┬─ Locked (customer, off, update_allowed false)
//	     │                           ├─ Suspended (customer, off, enabled false, 1 user)
//	     │                           └─ Folder ── Foldered (customer, off, 2 users, none with TOTP)
//	     └─ ExcludedPartner (partner, off) ── ExcludedChild (customer, off, 4 users)
//
// and Outsider, a customer beside own that the API client may not see; Unknown
// is no tenant at all.
const (
	PartnerA        = "f0000000-0000-4000-8000-000000000001"
	OffCustomer     = "f0000000-0000-4000-8000-000000000002"
	Unit            = "f0000000-0000-4000-8000-000000000003"
	OnCustomer      = "f0000000-0000-4000-8000-000000000004"
	Contoso         = "f0000000-0000-4000-8000-000000000005"
	ContosoHoldings = "f0000000-0000-4000-8000-000000000006"
	Twin1           = "f0000000-0000-4000-8000-000000000007"
	Twin2           = "f0000000-0000-4000-8000-000000000008"
	Broken          = "f0000000-0000-4000-8000-000000000009"
	PartnerB        = "f0000000-0000-4000-8000-00000000000a"
	Locked          = "f0000000-0000-4000-8000-00000000000b"
	Suspended       = "f0000000-0000-4000-8000-00000000000c"
	Folder          = "f0000000-0000-4000-8000-00000000000d"
	Foldered        = "f0000000-0000-4000-8000-00000000000e"
	ExcludedPartner = "f0000000-0000-4000-8000-00000000000f"
	ExcludedChild   = "f0000000-0000-4000-8000-000000000010"
	Outsider        = "f0000000-0000-4000-8000-000000000011"
	Unknown         = "f0000000-0000-4000-8000-0000000000ff"
)

// FixtureTenants is the fixture tree, parents before children; ParentID ""
// stands for the API client's own tenant and "-" for the hidden root above it.
func FixtureTenants() []sim.Tenant {
	on, off := "enabled", "disabled"
	customer := func(id, name, parent, mfa string, users, totp int) sim.Tenant {
		return sim.Tenant{ID: id, Name: name, Kind: "customer", ParentID: parent, Enabled: true, UpdateAllowed: true,
			MFAStatus: mfa, UsersCount: users, UsersWithTOTP: totp}
	}
	partner := func(id, name, mfa string) sim.Tenant {
		return sim.Tenant{ID: id, Name: name, Kind: "partner", Enabled: true, UpdateAllowed: true, MFAStatus: mfa}
	}
	locked := customer(Locked, "Locked", PartnerB, off, 0, 0)
	locked.UpdateAllowed = false
	suspended := customer(Suspended, "Suspended", PartnerB, off, 1, 0)
	suspended.Enabled = false
	return []sim.Tenant{
		partner(PartnerA, "Partner A", on),
		customer(OffCustomer, "Off Customer", PartnerA, off, 5, 2),
		{ID: Unit, Name: "Unit", Kind: "unit", ParentID: OffCustomer, Enabled: true, UpdateAllowed: true},
		customer(OnCustomer, "On Customer", PartnerA, on, 3, 3),
		customer(Contoso, "Contoso Ltd", PartnerA, off, 12, 0),
		customer(ContosoHoldings, "Contoso Ltd Holdings", PartnerA, off, 0, 0),
		customer(Twin1, "Twin Corp", PartnerA, off, 0, 0),
		customer(Twin2, "Twin Corp", PartnerA, off, 0, 0),
		customer(Broken, "Broken", PartnerA, off, 1, 0),
		partner(PartnerB, "Partner B", off),
		locked,
		suspended,
		{ID: Folder, Name: "Folder B", Kind: "folder", ParentID: PartnerB, Enabled: true, UpdateAllowed: true},
		customer(Foldered, "Foldered", Folder, off, 2, 0),
		partner(ExcludedPartner, "Excluded Partner", off),
		customer(ExcludedChild, "Excluded Child", ExcludedPartner, off, 4, 0),
		customer(Outsider, "Outsider", "-", off, 0, 0),
	}
}

// AddFixture adds the fixture tree to s.
func AddFixture(t testing.TB, s *sim.Server) {
	t.Helper()
	own, _ := s.Get(s.RootID())
	for _, tn := range FixtureTenants() {
		if tn.ParentID == "-" {
			tn.ParentID = own.ParentID
		}
		if err := s.Add(tn); err != nil {
			t.Fatal(err)
		}
	}
}

// NewFixture is NewAcronis with the fixture tree.
func NewFixture(t testing.TB, o AcronisOptions) *Acronis {
	t.Helper()
	a := NewAcronis(t, o)
	AddFixture(t, a.Sim)
	return a
}

// CredentialsJSON is an Acronis credentials secret.
func CredentialsJSON(baseURL, clientID, clientSecret string) string {
	b, _ := json.Marshal(map[string]string{"base_url": baseURL, "client_id": clientID, "client_secret": clientSecret})
	return string(b)
}
