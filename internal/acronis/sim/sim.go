package sim

import (
	"crypto/rand"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options configure a Server. Zero values take the defaults.
type Options struct {
	ClientID, ClientSecret string        // defaults "sim-client", "sim-secret"
	TokenTTL               time.Duration // default 2h, as the real tokens live
	// Now is the clock that token expiry, listing timestamps and the tenants'
	// created_at and updated_at follow; tests pass a fake one to expire tokens
	// or let a fleet go quiet without waiting.
	Now func() time.Time
	// MFAChangeUpdates makes an MFA PUT that changes a tenant's state set its
	// updated_at to now, so that a listing of recent changes shows it. Whether
	// the real API does is not documented; by default it does not, the reading
	// under which a watch on updated_since cannot see MFA being switched.
	MFAChangeUpdates bool
}

// Tenant is a tenant as tests create and inspect it.
//
// Enabled and UpdateAllowed are taken as given, so a zero Tenant is a disabled
// tenant whose MFA setting the API client may not change: set them.
type Tenant struct {
	ID, Name, Kind, ParentID string
	Enabled                  bool
	// MFAStatus is the tenant object's state: disabled, forcibly_disabled,
	// setup_required or enabled ("" on Add means disabled). Folders and units
	// have none of their own: Add ignores it and Get reports the state of their
	// nearest ancestor that is neither.
	MFAStatus                 string
	UsersCount, UsersWithTOTP int
	UpdateAllowed             bool
	Version                   int64
	// CreatedAt and UpdatedAt are created_at and updated_at, to the second.
	// Add stamps zero ones with the Server's clock, as a tenant created in the
	// console now; a test may back-date a tenant instead. A zero UpdatedAt is
	// CreatedAt.
	CreatedAt, UpdatedAt time.Time
}

// Server is the simulated API. Its methods are safe for concurrent use.
type Server struct {
	now              func() time.Time
	ttl              time.Duration
	clientID         string
	mfaChangeUpdates bool

	mu     sync.RWMutex // guards the tree below
	nodes  map[string]*node
	hidden *node // the data center's root, which the API client may not see
	own    *node // the API client's own tenant
	gen    uint64
	seq    [kindCount]int // last generated name number per kind

	orderMu  sync.Mutex // guards the depth-order cache; taken inside mu
	orderGen uint64
	orders   map[*node]*order

	authMu  sync.Mutex
	secret  string
	tokens  map[string]time.Time // access token -> expiry
	issued  int
	secrets map[string]bool // every credential and token seen on the wire

	faultMu sync.Mutex
	faults  faultState

	recMu       sync.Mutex
	record      []Request
	recEpoch    uint64
	inFlight    int
	maxInFlight int
}

// maxCachedOrders bounds the depth-order cache: a sweep lists one subtree, so a
// handful of entries covers every realistic use without growing without end.
const maxCachedOrders = 8

// New returns a Server whose API client lives in a partner tenant "Sim Partner"
// (enabled, MFA enabled), below a data center root that the client may not see.
func New(opts Options) *Server {
	if opts.ClientID == "" {
		opts.ClientID = "sim-client"
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = "sim-secret"
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = 2 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{
		now:              opts.Now,
		ttl:              opts.TokenTTL,
		clientID:         opts.ClientID,
		mfaChangeUpdates: opts.MFAChangeUpdates,
		secret:           opts.ClientSecret,
		nodes:            make(map[string]*node),
		orders:           make(map[*node]*order),
		tokens:           make(map[string]time.Time),
		secrets:          make(map[string]bool),
	}
	s.SetFaults(Faults{})
	// The data center and the client's partner predate anything Generate
	// stamps, which goes a year back.
	since := s.now().AddDate(-2, 0, 0).Unix()
	s.hidden = &node{id: randomUUID(), name: "Data Center Root", kind: kindRoot, state: mfaDisabled, enabled: true, version: 1,
		createdAt: since, updatedAt: since}
	s.own = &node{
		id: randomUUID(), name: "Sim Partner", kind: kindPartner, state: mfaEnabled,
		enabled: true, updateAllowed: true, visible: true, version: 1, parent: s.hidden,
		createdAt: since, updatedAt: since,
	}
	s.hidden.children = []*node{s.own}
	s.nodes[s.hidden.id] = s.hidden
	s.nodes[s.own.id] = s.own
	return s
}

// RootID is the API client's own tenant: what GET /clients/{id} reports as
// tenant_id, and the default root of a sweep.
func (s *Server) RootID() string { return s.own.id }

// ClientID is the API client's id.
func (s *Server) ClientID() string { return s.clientID }

// ClientSecret is the API client's current secret.
func (s *Server) ClientSecret() string {
	s.authMu.Lock()
	defer s.authMu.Unlock()
	return s.secret
}

// SetClientSecret rotates the secret: from now on only the new one gets tokens.
// Tokens already issued stay valid until they expire, as with the real API.
func (s *Server) SetClientSecret(secret string) {
	s.authMu.Lock()
	defer s.authMu.Unlock()
	s.secret = secret
}

// ExpireTokens makes every token issued so far invalid: their next use gets 401.
func (s *Server) ExpireTokens() {
	s.authMu.Lock()
	defer s.authMu.Unlock()
	clear(s.tokens)
}

// TokensIssued counts the tokens handed out since New.
func (s *Server) TokensIssued() int {
	s.authMu.Lock()
	defer s.authMu.Unlock()
	return s.issued
}

// Secrets returns every credential and token that crossed the wire since New:
// the values of Authorization headers and their credential parts, and the
// access and id tokens issued, so that tests can make sure none is written
// where it must not be.
func (s *Server) Secrets() []string {
	s.authMu.Lock()
	defer s.authMu.Unlock()
	return slices.Collect(maps.Keys(s.secrets))
}

// noteCredentials remembers an Authorization header and its credentials.
func (s *Server) noteCredentials(authorization string) {
	if authorization == "" {
		return
	}
	s.authMu.Lock()
	defer s.authMu.Unlock()
	s.secrets[authorization] = true
	if _, cred, ok := strings.Cut(authorization, " "); ok && cred != "" {
		s.secrets[cred] = true
	}
}

// Add inserts a tenant below t.ParentID (the API client's own tenant when
// empty). An empty ID gets a random UUID. Kinds are partner, folder, customer
// and unit; a parent that is not in the client's subtree (such as the hidden
// root, Get(RootID()).ParentID) makes a tenant the client may not see. It may
// be called while the Server serves: the next listing shows the tenant.
func (s *Server) Add(t Tenant) error {
	_, err := s.Create(t)
	return err
}

// Create is Add that returns the tenant as created: its id, name and stamps,
// as the console shows a tenant someone just created in it.
func (s *Server) Create(t Tenant) (Tenant, error) {
	k, ok := parseKind(t.Kind)
	if !ok || k == kindRoot {
		return Tenant{}, fmt.Errorf("sim: add tenant %q: kind %q is not partner, folder, customer or unit", t.ID, t.Kind)
	}
	if t.UsersCount < 0 || t.UsersWithTOTP < 0 || t.UsersWithTOTP > t.UsersCount {
		return Tenant{}, fmt.Errorf("sim: add tenant %q: need 0 <= UsersWithTOTP (%d) <= UsersCount (%d)", t.ID, t.UsersWithTOTP, t.UsersCount)
	}
	state := mfaInherit
	if !k.inherits() {
		if t.MFAStatus == "" {
			state = mfaDisabled
		} else if state, ok = parseMFA(t.MFAStatus); !ok {
			return Tenant{}, fmt.Errorf("sim: add tenant %q: unknown MFA status %q", t.ID, t.MFAStatus)
		}
	}
	if strings.ContainsAny(t.ID, "/?#,% ") {
		return Tenant{}, fmt.Errorf("sim: add tenant %q: the id must fit in a URL path segment and a comma-separated list", t.ID)
	}
	created := s.now().Unix()
	if !t.CreatedAt.IsZero() {
		created = t.CreatedAt.Unix()
	}
	updated := created
	if !t.UpdatedAt.IsZero() {
		updated = t.UpdatedAt.Unix()
	}
	if updated < created {
		return Tenant{}, fmt.Errorf("sim: add tenant %q: updated at %v, before it was created at %v", t.ID, t.UpdatedAt, t.CreatedAt)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	parent := s.own
	if t.ParentID != "" {
		if parent = s.nodes[t.ParentID]; parent == nil {
			return Tenant{}, fmt.Errorf("sim: add tenant %q: parent %q does not exist", t.ID, t.ParentID)
		}
	}
	if t.ID == "" {
		t.ID = randomUUID()
	}
	if _, dup := s.nodes[t.ID]; dup {
		return Tenant{}, fmt.Errorf("sim: add tenant %q: id already exists", t.ID)
	}
	if t.Name == "" {
		t.Name = kindTitles[k] + " " + t.ID
	}
	if t.Version <= 0 {
		t.Version = 1
	}
	n := &node{
		id: t.ID, name: t.Name, kind: k, state: state,
		enabled: t.Enabled, updateAllowed: t.UpdateAllowed,
		users: int32(t.UsersCount), usersTOTP: int32(t.UsersWithTOTP), version: t.Version,
		createdAt: created, updatedAt: updated,
	}
	s.attach(parent, n)
	return n.tenant(), nil
}

// attach links n below parent; the caller holds mu for writing. The new
// generation drops every cached depth order.
func (s *Server) attach(parent, n *node) {
	n.parent = parent
	n.visible = parent.visible
	parent.children = append(parent.children, n)
	s.nodes[n.id] = n
	s.gen++
}

// Get returns a tenant's current state, hidden root included.
func (s *Server) Get(id string) (Tenant, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := s.nodes[id]
	if n == nil {
		return Tenant{}, false
	}
	return n.tenant(), true
}

// All returns the API client's subtree, its own tenant first, in depth order:
// the order GET /tenants?subtree_root_id=RootID() pages through.
func (s *Server) All() []Tenant {
	s.mu.RLock()
	defer s.mu.RUnlock()
	order := s.subtree(s.own)
	out := make([]Tenant, len(order))
	for i, n := range order {
		out[i] = n.tenant()
	}
	return out
}

// SetMFA forces a tenant's MFA state for test setup: no request is recorded and
// the version stays. It panics on an unknown tenant, an unknown state or a
// folder or unit (which have no state of their own), since each is a broken test.
func (s *Server) SetMFA(id, status string) {
	state, ok := parseMFA(status)
	if !ok {
		panic(fmt.Sprintf("sim: SetMFA(%q, %q): unknown MFA status", id, status))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nodes[id]
	switch {
	case n == nil:
		panic(fmt.Sprintf("sim: SetMFA(%q): no such tenant", id))
	case n.kind.inherits():
		panic(fmt.Sprintf("sim: SetMFA(%q): a %s inherits its MFA state from its parent", id, kindNames[n.kind]))
	}
	n.state = state
}

// order is a subtree in depth order, and where each tenant's users end in the
// users listing of the subtree, worked out when first listed.
type order struct {
	nodes    []*node
	userEnds []int
}

// subtree returns root and everything below it in depth (breadth-first) order.
// The slice is cached until the tree's shape changes, so that paging through
// 100,000 tenants costs one walk, not one per page. Callers hold mu and must
// not modify the slice.
func (s *Server) subtree(root *node) []*node {
	s.orderMu.Lock()
	defer s.orderMu.Unlock()
	return s.cachedOrder(root).nodes
}

// subtreeUsers is subtree with userEnds for its nodes, cached alike.
func (s *Server) subtreeUsers(root *node) ([]*node, []int) {
	s.orderMu.Lock()
	defer s.orderMu.Unlock()
	o := s.cachedOrder(root)
	if o.userEnds == nil {
		o.userEnds = userEnds(o.nodes)
	}
	return o.nodes, o.userEnds
}

// cachedOrder returns root's order, walking the tree when it is not cached;
// the caller holds orderMu.
func (s *Server) cachedOrder(root *node) *order {
	if s.orderGen != s.gen {
		clear(s.orders)
		s.orderGen = s.gen
	}
	if o, ok := s.orders[root]; ok {
		return o
	}
	nodes := []*node{root}
	for i := 0; i < len(nodes); i++ {
		nodes = append(nodes, nodes[i].children...)
	}
	if len(s.orders) >= maxCachedOrders {
		clear(s.orders)
	}
	o := &order{nodes: nodes}
	s.orders[root] = o
	return o
}

// randomUUID returns a random version 4 UUID in its text form.
func randomUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return formatUUID(b)
}

func formatUUID(b [16]byte) string {
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const hexdigits = "0123456789abcdef"
	var out [36]byte
	j := 0
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out[j] = '-'
			j++
		}
		out[j], out[j+1] = hexdigits[c>>4], hexdigits[c&0x0f]
		j += 2
	}
	return string(out[:])
}
