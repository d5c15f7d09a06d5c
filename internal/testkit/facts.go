package testkit

// This file holds what the end-to-end tests expect and the demo reports,
// worked out on the simulator's tree and the functions' log lines, apart from
// the code under test.

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/tenant"
)

// Drift is the tenants of a tree whose own MFA setting is off.
type Drift struct {
	Fixable   []sim.Tenant // enabled, changeable and not excluded: policy turns these on
	Suspended int          // enabled false: policy leaves them alone
	Locked    int          // update_allowed false: not allowed
}

// DriftOf sorts the tenants of all with MFA off; those in the subtrees of
// excluded are neither fixable nor counted.
func DriftOf(all []sim.Tenant, excluded ...string) Drift {
	byID := map[string]sim.Tenant{}
	for _, t := range all {
		byID[t.ID] = t
	}
	inExcluded := func(t sim.Tenant) bool {
		for range len(all) + 1 { // bounded walk up to the root
			if slices.Contains(excluded, t.ID) {
				return true
			}
			p, ok := byID[t.ParentID]
			if !ok {
				return false
			}
			t = p
		}
		return false
	}
	var d Drift
	for _, t := range all {
		switch {
		case t.Kind == "unit" || t.Kind == "folder" || tenant.MFAOn(t.MFAStatus) || inExcluded(t):
		case !t.Enabled:
			d.Suspended++
		case !t.UpdateAllowed:
			d.Locked++
		default:
			d.Fixable = append(d.Fixable, t)
		}
	}
	return d
}

func (d Drift) String() string {
	return fmt.Sprintf("%d to fix, plus %d suspended and %d locked (update_allowed: false) that policy leaves alone",
		len(d.Fixable), d.Suspended, d.Locked)
}

// IDs are the fixable tenants' ids, sorted.
func (d Drift) IDs() []string { return IDs(d.Fixable) }

// IDs are the tenants' ids, sorted.
func IDs(tenants []sim.Tenant) []string {
	var ids []string
	for _, t := range tenants {
		ids = append(ids, t.ID)
	}
	slices.Sort(ids)
	return ids
}

// Grace splits the fixable tenants as a rollout with a grace treats them
// (docs/reference.md, Rollout): those where enabling MFA locks nobody out are
// enabled at once, the others get notice first.
func (d Drift) Grace(all []sim.Tenant) (atOnce, notice []sim.Tenant) {
	totals := IndexUsers(all)
	for _, t := range d.Fixable {
		if users, totp := totals.Of(t); users == totp {
			atOnce = append(atOnce, t)
		} else {
			notice = append(notice, t)
		}
	}
	return atOnce, notice
}

// UserTotals is what Acronis reports for t: its users and those of the folders
// and units below it, which share its setting, and how many have TOTP.
func UserTotals(all []sim.Tenant, t sim.Tenant) (users, totp int) {
	return IndexUsers(all).Of(t)
}

// UserIndex holds the folders and units of a tree by their parent's id, so
// that the user totals of many tenants read the tree once.
type UserIndex map[string][]sim.Tenant

// IndexUsers indexes all for UserIndex.Of.
func IndexUsers(all []sim.Tenant) UserIndex {
	m := UserIndex{}
	for _, c := range all {
		if c.ParentID != c.ID && (c.Kind == "unit" || c.Kind == "folder") {
			m[c.ParentID] = append(m[c.ParentID], c)
		}
	}
	return m
}

// Of is UserTotals of t.
func (m UserIndex) Of(t sim.Tenant) (users, totp int) {
	users, totp = t.UsersCount, t.UsersWithTOTP
	for _, c := range m[t.ID] {
		u, p := m.Of(c)
		users, totp = users+u, totp+p
	}
	return users, totp
}

// MFAStates maps every tenant of s with a setting of its own to its MFA state;
// units and folders, which show their parent's, are left out.
func MFAStates(s *sim.Server) map[string]string {
	m := map[string]string{}
	for _, t := range s.All() {
		if t.Kind != "unit" && t.Kind != "folder" {
			m[t.ID] = t.MFAStatus
		}
	}
	return m
}

// Changed lists the tenants whose state differs between two MFAStates, sorted.
func Changed(before, after map[string]string) []string {
	var ids []string
	for id, s := range after {
		if before[id] != s {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// TenantUsers is a tenant and a number of its users.
type TenantUsers struct {
	Name  string // the tenant's name, or its id when the audit line has none
	Users int
}

func (t TenantUsers) String() string { return fmt.Sprintf("%s (%d)", t.Name, t.Users) }

// TOTPDebt reads from audit lines who must now set up TOTP: per tenant enabled
// (or that would be, in a dry run) its users without TOTP, most first, and
// their sum.
func TOTPDebt(audits []map[string]any) (total int, tenants []TenantUsers) {
	return UsersWithoutTOTP(audits, "enable", "would_enable")
}

// UsersWithoutTOTP reads from the audit lines of these actions the users
// without TOTP per tenant, most first, and their sum.
func UsersWithoutTOTP(audits []map[string]any, actions ...string) (total int, tenants []TenantUsers) {
	for _, a := range audits {
		if action, _ := a["action"].(string); !slices.Contains(actions, action) {
			continue
		}
		n, _ := a["users_without_totp"].(float64)
		name, _ := a["tenant_name"].(string)
		if name == "" {
			name, _ = a["tenant_id"].(string)
		}
		total += int(n)
		tenants = append(tenants, TenantUsers{name, int(n)})
	}
	slices.SortStableFunc(tenants, func(a, b TenantUsers) int { return cmp.Compare(b.Users, a.Users) })
	return total, tenants
}

// Routes counts requests by method and route, with ids as {id}:
// "GET /tenants/{id}/mfa/status" and "POST /idp/token".
func Routes(reqs []sim.Request) map[string]int {
	out := map[string]int{}
	for _, r := range reqs {
		segs := strings.Split(strings.TrimPrefix(r.Path, "/api/2"), "/")
		for i, seg := range segs {
			if tenant.ValidID(seg) {
				segs[i] = "{id}"
			}
		}
		out[r.Method+" "+strings.Join(segs, "/")]++
	}
	return out
}

// FailureReason says why the worker failed message messageID, from the ERROR
// line it logs with the message id: the reason or message, and the error; ""
// when there is no such line.
func FailureReason(lines []string, messageID string) string {
	for _, l := range lines {
		if m, ok := JSONObject(l); ok && m["message_id"] == messageID && m["level"] == "ERROR" {
			why := fmt.Sprint(cmp.Or(m["reason"], m["message"]))
			if e, ok := m["error"]; ok {
				why += fmt.Sprintf(": %v", e)
			}
			return why
		}
	}
	return ""
}
