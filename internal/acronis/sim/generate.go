package sim

import (
	"encoding/binary"
	"maps"
	"math"
	"math/rand/v2"
	"strconv"
)

// TreeSpec describes a generated tenant tree.
type TreeSpec struct {
	Seed int64
	Size int // tenants to create under the API client's own tenant
	// Fractions of the generated tenants. Zero means the default in
	// parentheses; a negative value means none.
	Partners, Folders, Units float64 // (0.05, 0.05, 0.15); the rest are customers
	Disabled                 float64 // enabled: false (0.03)
	// Drift is the fraction of tenants with a setting of their own (not folders
	// or units) whose MFA is off: "disabled", a fifth of them "forcibly_disabled".
	// The others are "enabled", or "setup_required" where users lack TOTP. (0.10)
	Drift  float64
	Locked float64 // update_allowed: false (0.01)
}

// maxContainerDepth keeps generated partner and folder chains as shallow as
// real reseller hierarchies: at most this many levels below the client's tenant.
const maxContainerDepth = 4

func fraction(v, def float64) float64 {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return min(v, 1)
}

// Generate adds spec.Size tenants below the API client's own tenant. The same
// seed gives the same tree with the same ids on a fresh Server. Partners hold
// partners, folders and customers; folders hold partners and customers;
// customers hold units, and units hold units. Names are unique per Server
// ("Customer 00042"); every tenant but a folder has 0 to 50 users.
//
// The fleet is quiet: every tenant was created and last updated between 1 and
// 365 days before the Server's clock reads at the time of the call, at
// offsets the seed decides, so that a listing of the last day's changes
// finds nothing generated.
func (s *Server) Generate(spec TreeSpec) {
	if spec.Size <= 0 {
		return
	}
	r := rand.New(rand.NewPCG(uint64(spec.Seed), 0x5eed_acc0_5eed_acc0))
	count := func(f, def float64) int { return int(math.Round(float64(spec.Size) * fraction(f, def))) }
	nPartners := min(count(spec.Partners, 0.05), spec.Size)
	nFolders := min(count(spec.Folders, 0.05), spec.Size-nPartners)
	nUnits := min(count(spec.Units, 0.15), spec.Size-nPartners-nFolders)
	nCustomers := spec.Size - nPartners - nFolders - nUnits
	if nCustomers == 0 {
		// Units live in customers; with no room for customers the units become them.
		nCustomers, nUnits = nUnits, 0
	}
	g := generator{
		s: s, r: r,
		// A stream of its own, so that the stamps leave ids and shapes as
		// they were for each seed.
		stamps:   rand.New(rand.NewPCG(uint64(spec.Seed), 0x57a3_95ed_57a3_95ed)),
		now:      s.now().Unix(),
		disabled: fraction(spec.Disabled, 0.03),
		drift:    fraction(spec.Drift, 0.10),
		locked:   fraction(spec.Locked, 0.01),
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.nodes) < spec.Size {
		// Growing the index once beats rehashing it many times on the way.
		grown := make(map[string]*node, len(s.nodes)+spec.Size)
		maps.Copy(grown, s.nodes)
		s.nodes = grown
	}
	partners := make([]*node, 1, 1+nPartners)
	partners[0] = s.own
	containers := make([]*node, 1, 1+nPartners+nFolders)
	containers[0] = s.own
	// Partners and folders interleave so that each can land in the other.
	for left, leftPartners := nPartners+nFolders, nPartners; left > 0; left-- {
		if r.IntN(left) < leftPartners {
			leftPartners--
			n := g.add(shallow(containers[r.IntN(len(containers))], true), kindPartner)
			partners = append(partners, n)
			containers = append(containers, n)
		} else {
			containers = append(containers, g.add(shallow(partners[r.IntN(len(partners))], false), kindFolder))
		}
	}
	customers := make([]*node, 0, nCustomers)
	for range nCustomers {
		customers = append(customers, g.add(containers[r.IntN(len(containers))], kindCustomer))
	}
	units := make([]*node, 0, nUnits)
	for range nUnits {
		parent := customers[r.IntN(len(customers))]
		if len(units) > 0 && r.IntN(5) == 0 {
			parent = units[r.IntN(len(units))]
		}
		units = append(units, g.add(parent, kindUnit))
	}
}

// shallow returns n, or its nearest ancestor that still has room below it for
// another level of partners or folders and, unless folderOK, is no folder.
func shallow(n *node, folderOK bool) *node {
	depth := 0 // the client's own tenant is at depth 1
	for m := n; m.kind != kindRoot; m = m.parent {
		depth++
	}
	for depth > maxContainerDepth || (!folderOK && n.kind == kindFolder) {
		n = n.parent
		depth--
	}
	return n
}

type generator struct {
	s                       *Server
	r, stamps               *rand.Rand
	now                     int64 // Unix seconds
	disabled, drift, locked float64
}

// add creates one tenant below parent; the caller holds s.mu for writing.
func (g *generator) add(parent *node, k kind) *node {
	r := g.r
	n := &node{
		kind:          k,
		enabled:       r.Float64() >= g.disabled,
		updateAllowed: r.Float64() >= g.locked,
		version:       1 + int64(r.IntN(9)),
	}
	const day = 24 * 60 * 60
	age := day + g.stamps.Int64N(364*day+1) // since it was created, in seconds
	n.createdAt = g.now - age
	n.updatedAt = g.now - day - g.stamps.Int64N(age-day+1)
	if k != kindFolder {
		n.users = int32(r.IntN(51))
	}
	switch {
	case k.inherits():
		n.usersTOTP = int32(r.IntN(int(n.users) + 1))
	case r.Float64() < g.drift:
		n.state = mfaDisabled
		if r.IntN(5) == 0 {
			n.state = mfaForciblyDisabled
		}
		n.usersTOTP = int32(r.IntN(int(n.users)/2 + 1))
	default:
		n.usersTOTP = n.users
		if r.IntN(10) < 3 {
			n.usersTOTP = int32(r.IntN(int(n.users) + 1))
		}
		n.state = mfaEnabled
		if n.usersTOTP < n.users {
			n.state = mfaSetupRequired
		}
	}
	for {
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], r.Uint64())
		binary.BigEndian.PutUint64(b[8:], r.Uint64())
		n.id = formatUUID(b)
		if g.s.nodes[n.id] == nil {
			break
		}
	}
	g.s.seq[k]++
	n.name = name(k, g.s.seq[k])
	g.s.attach(parent, n)
	return n
}

// name formats a generated name, "Customer 00042": one allocation, since a
// 100,000-tenant tree makes 100,000 of them.
func name(k kind, n int) string {
	var buf [32]byte
	b := append(buf[:0], kindTitles[k]...)
	b = append(b, ' ')
	var num [20]byte
	digits := strconv.AppendInt(num[:0], int64(n), 10)
	for range 5 - len(digits) {
		b = append(b, '0')
	}
	return string(append(b, digits...))
}
