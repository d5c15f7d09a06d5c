package sim

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// User is a user account as GET /users lists it.
//
// Users are not stored: 100,000 tenants of up to 50 users each would not fit
// in the memory the tree is allowed. A tenant's users follow from its id and
// its UsersCount and UsersWithTOTP, the same on every Server: the first
// UsersWithTOTP have set up TOTP (mfa_status "enabled"), the others have not
// ("setup_required"). Every user is enabled and activated, and carries its
// tenant's created_at as its created_at and updated_at.
type User struct {
	ID, TenantID, Login, Email, FirstName, LastName string
	MFAStatus                                       string
}

// Users returns the users of one tenant, without those of the tenants below
// it; nil for an unknown tenant.
func (s *Server) Users(tenantID string) []User {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := s.nodes[tenantID]
	if n == nil {
		return nil
	}
	b := userBaseOf(n)
	out := make([]User, n.users)
	for i := range out {
		out[i] = n.user(&b, i)
	}
	return out
}

var (
	firstNames = [...]string{"Ada", "Alan", "Barbara", "Claude", "Donald", "Edsger", "Frances", "Grace",
		"John", "Katherine", "Ken", "Leslie", "Margaret", "Niklaus", "Radia", "Tony"}
	lastNames = [...]string{"Allen", "Dijkstra", "Hamilton", "Hoare", "Hopper", "Johnson", "Kay", "Knuth",
		"Lamport", "Liskov", "Lovelace", "Perlman", "Shannon", "Thompson", "Turing", "Wirth", "Zuse"}
)

// userBase is what a tenant's users derive from: a hash of its id.
type userBase [sha256.Size]byte

func userBaseOf(n *node) userBase { return sha256.Sum256([]byte("sim user\x00" + n.id)) }

// id is the id of user i: 12 bytes of the base, version bits set, then i, so
// that an id tells its tenant and its index (see usersByID).
func (b *userBase) id(i int) [16]byte {
	var u [16]byte
	copy(u[:12], b[:12])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	binary.BigEndian.PutUint32(u[12:], uint32(i))
	return u
}

// user derives user i of n; b is userBaseOf(n).
func (n *node) user(b *userBase, i int) User {
	// The login is unique across tenants, as Acronis's are, yet says which
	// user of its tenant it is.
	login := fmt.Sprintf("user%02d.%s", i+1, hex.EncodeToString(b[12:16]))
	u := User{
		ID: formatUUID(b.id(i)), TenantID: n.id, Login: login, Email: login + "@example.com",
		FirstName: firstNames[(int(b[16])+i)%len(firstNames)],
		LastName:  lastNames[(int(b[17])+3*i)%len(lastNames)],
		MFAStatus: mfaNames[mfaSetupRequired],
	}
	if i < int(n.usersTOTP) {
		u.MFAStatus = mfaNames[mfaEnabled]
	}
	return u
}

type userJSON struct {
	ID        string       `json:"id"`
	TenantID  string       `json:"tenant_id"`
	Login     string       `json:"login"`
	Enabled   bool         `json:"enabled"`
	Activated bool         `json:"activated"`
	MFAStatus string       `json:"mfa_status,omitempty"`
	Contact   *contactJSON `json:"contact,omitempty"`
	CreatedAt string       `json:"created_at"`
	UpdatedAt string       `json:"updated_at"`
	DeletedAt *bool        `json:"deleted_at"` // always null
	Version   int64        `json:"version"`
}

type contactJSON struct {
	Email     string `json:"email"`
	FirstName string `json:"firstname"`
	LastName  string `json:"lastname"`
}

// wire renders a user of n. What the lower levels of detail hold is not
// documented; as with tenants, the simulator takes the strict reading and
// gives what this project reads (the user's MFA state and contact) only at
// lod=full, so that a client that forgets to ask for it notices.
func (u User) wire(n *node, full bool) userJSON {
	w := userJSON{
		ID: u.ID, TenantID: u.TenantID, Login: u.Login, Enabled: true, Activated: true,
		CreatedAt: stamp(n.createdAt), UpdatedAt: stamp(n.createdAt), Version: 1,
	}
	if full {
		w.MFAStatus = u.MFAStatus
		w.Contact = &contactJSON{Email: u.Email, FirstName: u.FirstName, LastName: u.LastName}
	}
	return w
}

// listUsers is GET /users: the users of subtree_root_tenant_id and of every
// tenant below it (tenants in depth order, each tenant's users in turn), or
// those of uuids, narrowed by updated_since, paged like GET /tenants.
func (s *Server) listUsers(x *exchange, _ string) {
	c, aerr := userListing.parse(x.r.URL.Query())
	if aerr != nil {
		aerr.write(x.w)
		return
	}
	f := s.currentFaults()
	if f.UsersStatus != 0 {
		s.writeFault(x.w, f.UsersStatus)
		return
	}
	now := s.now()
	full := c.LOD == "full"
	s.read(x, func() (any, *apiError) {
		resp := listResponse[userJSON]{Timestamp: now.UTC().Format(time.RFC3339)}
		if c.Filter == filterUUIDs {
			found, aerr := s.usersByID(c.Value)
			if aerr != nil {
				return nil, aerr
			}
			if c.Since != nil {
				found = slices.DeleteFunc(found, func(r userRef) bool { return r.n.createdAt <= *c.Since })
			}
			start, end, after := page(c, f, len(found))
			resp.Items = make([]userJSON, 0, end-start)
			for _, r := range found[start:end] {
				b := userBaseOf(r.n)
				resp.Items = append(resp.Items, r.n.user(&b, r.i).wire(r.n, full))
			}
			resp.Paging.Cursors.After = after
			return resp, nil
		}
		root, aerr := s.lookup(c.Value)
		if aerr != nil {
			return nil, aerr
		}
		var nodes []*node
		var ends []int
		if c.Since == nil {
			nodes, ends = s.subtreeUsers(root)
		} else {
			// Users' updated_at is their tenant's created_at.
			nodes = slices.DeleteFunc(slices.Clone(s.subtree(root)), func(n *node) bool { return n.createdAt <= *c.Since })
			ends = userEnds(nodes)
		}
		total := 0
		if len(ends) > 0 {
			total = ends[len(ends)-1]
		}
		start, end, after := page(c, f, total)
		resp.Items = make([]userJSON, 0, end-start)
		// The first tenant whose users reach past start holds the first user.
		k, _ := slices.BinarySearch(ends, start+1)
		for p := start; p < end; k++ {
			n, first := nodes[k], 0
			if k > 0 {
				first = ends[k-1]
			}
			b := userBaseOf(n)
			for ; p < end && p < ends[k]; p++ {
				resp.Items = append(resp.Items, n.user(&b, p-first).wire(n, full))
			}
		}
		resp.Paging.Cursors.After = after
		return resp, nil
	})
}

// userEnds is, for each tenant of nodes, the number of users up to and
// including its own: where its users end in a listing of them all.
func userEnds(nodes []*node) []int {
	ends := make([]int, len(nodes))
	total := 0
	for i, n := range nodes {
		total += int(n.users)
		ends[i] = total
	}
	return ends
}

// userRef is user i of tenant n.
type userRef struct {
	n *node
	i int
}

// usersByID finds users by id, in the order asked, each once. Unknown ids are
// left out, as GET /tenants?uuids leaves them; a user of a tenant the API
// client may not see is refused. Since ids are not stored, every tenant is
// hashed to find whose ids these are: a cost paid per request, fine for at
// most 100 ids. The caller holds mu.
func (s *Server) usersByID(list string) ([]userRef, *apiError) {
	byPrefix := make(map[[12]byte]*node, len(s.nodes))
	for _, n := range s.nodes {
		b := userBaseOf(n)
		first := b.id(0)
		byPrefix[[12]byte(first[:12])] = n
	}
	var out []userRef
	seen := make(map[[16]byte]bool)
	for id := range strings.SplitSeq(list, ",") {
		u, ok := parseUUID(id)
		n := byPrefix[[12]byte(u[:12])]
		i := int(binary.BigEndian.Uint32(u[12:]))
		if !ok || n == nil || i >= int(n.users) || seen[u] {
			continue
		}
		if !n.visible {
			return nil, &apiError{http.StatusForbidden, codeAccessDenied, "access to user " + id + " is denied"}
		}
		seen[u] = true
		out = append(out, userRef{n, i})
	}
	return out, nil
}

// parseUUID reads a UUID in its 8-4-4-4-12 text form, in either case.
func parseUUID(s string) ([16]byte, bool) {
	var u [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	_, err := hex.Decode(u[:], []byte(s[:8]+s[9:13]+s[14:18]+s[19:23]+s[24:]))
	return u, err == nil
}
