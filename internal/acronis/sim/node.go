package sim

import "time"

// kind and mfaState are small enums rather than strings so that a 100,000-tenant
// tree stays within tens of megabytes.
type kind uint8

const (
	kindRoot kind = iota
	kindPartner
	kindFolder
	kindCustomer
	kindUnit
	kindCount
)

var (
	kindNames  = [kindCount]string{"root", "partner", "folder", "customer", "unit"}
	kindTitles = [kindCount]string{"Root", "Partner", "Folder", "Customer", "Unit"}
)

func parseKind(s string) (kind, bool) {
	for k, name := range kindNames {
		if s == name {
			return kind(k), true
		}
	}
	return 0, false
}

// inherits reports whether tenants of this kind take their MFA setting from
// their parent, which is why the API refuses to change it on them.
func (k kind) inherits() bool { return k == kindFolder || k == kindUnit }

type mfaState uint8

const (
	mfaInherit mfaState = iota // folders and units
	mfaDisabled
	mfaForciblyDisabled
	mfaSetupRequired
	mfaEnabled
)

var mfaNames = [...]string{"", "disabled", "forcibly_disabled", "setup_required", "enabled"}

func parseMFA(s string) (mfaState, bool) {
	for st, name := range mfaNames {
		if s == name && st != int(mfaInherit) {
			return mfaState(st), true
		}
	}
	return 0, false
}

// on reports whether the state makes two-factor login mandatory: a tenant whose
// users still have to set up TOTP has MFA switched on all the same.
func (st mfaState) on() bool { return st == mfaEnabled || st == mfaSetupRequired }

type node struct {
	id, name                        string
	parent                          *node // nil only for the hidden root
	children                        []*node
	version                         int64
	createdAt, updatedAt            int64 // Unix seconds: the API's stamps carry no finer part
	users, usersTOTP                int32
	kind                            kind
	state                           mfaState
	enabled, updateAllowed, visible bool // visible: inside the API client's subtree
}

func (n *node) parentID() string {
	if n.parent == nil {
		return n.id // the real root is its own parent
	}
	return n.parent.id
}

// effectiveState is the tenant's own state, or for a folder or unit the state
// of its nearest ancestor that has one.
func (n *node) effectiveState() mfaState {
	for m := n; m != nil; m = m.parent {
		if !m.kind.inherits() {
			return m.state
		}
	}
	return mfaDisabled
}

// userCounts adds up the tenant's users and those of its folders and units,
// which share its MFA setting; tenants of other kinds below them do not.
func (n *node) userCounts() (users, totp int) {
	users, totp = int(n.users), int(n.usersTOTP)
	for _, c := range n.children {
		if c.kind.inherits() {
			u, t := c.userCounts()
			users += u
			totp += t
		}
	}
	return users, totp
}

func (n *node) tenant() Tenant {
	return Tenant{
		ID: n.id, Name: n.name, Kind: kindNames[n.kind], ParentID: n.parentID(),
		Enabled: n.enabled, MFAStatus: mfaNames[n.effectiveState()],
		UsersCount: int(n.users), UsersWithTOTP: int(n.usersTOTP),
		UpdateAllowed: n.updateAllowed, Version: n.version,
		CreatedAt: time.Unix(n.createdAt, 0).UTC(), UpdatedAt: time.Unix(n.updatedAt, 0).UTC(),
	}
}

// stamp renders Unix seconds as the API writes its times, "2026-01-01T00:00:00Z".
func stamp(sec int64) string { return time.Unix(sec, 0).UTC().Format(time.RFC3339) }
