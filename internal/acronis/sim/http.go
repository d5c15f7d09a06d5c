package sim

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	apiPrefix = "/api/2"
	tokenPath = apiPrefix + "/idp/token"

	codeAccessDenied   = 1002
	codeTenantNotFound = 1005
)

// handler serves one API route; id is the {id} segment of the path, if any.
type handler func(s *Server, x *exchange, id string)

type route struct {
	segments []string // "{id}" matches any non-empty segment
	methods  map[string]handler
}

var routes = []route{
	{[]string{"clients", "{id}"}, map[string]handler{http.MethodGet: (*Server).getClient}},
	{[]string{"tenants"}, map[string]handler{http.MethodGet: (*Server).listTenants}},
	{[]string{"tenants", "{id}"}, map[string]handler{http.MethodGet: (*Server).getTenant}},
	{[]string{"tenants", "{id}", "children"}, map[string]handler{http.MethodGet: (*Server).getChildren}},
	{[]string{"tenants", "{id}", "mfa", "status"}, map[string]handler{
		http.MethodGet: (*Server).getMFA,
		http.MethodPut: (*Server).putMFA,
	}},
	{[]string{"search"}, map[string]handler{http.MethodGet: (*Server).search}},
	{[]string{"users"}, map[string]handler{http.MethodGet: (*Server).listUsers}},
}

// maxBody is the largest request body the simulator reads.
const maxBody = 64 << 10

// ServeHTTP answers one request the way the Acronis API would.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	isToken := r.URL.Path == tokenPath
	x := s.arrive(w, r, !isToken)
	defer s.depart(x)
	// Go's server notices a caller that hung up only once the body is read, so it
	// is read before the latency: a request given up on ends at once instead of
	// holding its connection, and whoever waits for the server to close, for the
	// whole delay. One byte over the handlers' limit keeps their check working.
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.noteCredentials(r.Header.Get("Authorization"))
	if !isToken {
		if n, before := s.arrival(); before != nil {
			before(n)
		}
	}
	f := s.currentFaults()
	if !wait(r.Context(), f.Latency) {
		return
	}
	if status := s.scripted(r); status != 0 {
		s.answerScripted(x, status)
		return
	}
	if isToken {
		s.issueToken(x, f)
		return
	}

	h, id, allow := match(r.Method, r.URL.EscapedPath())
	switch {
	case allow == "":
		writeError(x.w, http.StatusNotFound, http.StatusNotFound, "Not Found", "no such route")
		return
	case h == nil:
		x.w.Header().Set("Allow", allow)
		writeError(x.w, http.StatusMethodNotAllowed, http.StatusMethodNotAllowed, "Method Not Allowed", r.Method+" is not supported here")
		return
	}
	if s.throttleFirst(r) {
		s.writeFault(x.w, http.StatusTooManyRequests)
		return
	}
	if held(f, r.URL.Path, id) {
		<-r.Context().Done()
		return
	}
	if !s.authenticate(x) {
		return
	}
	if status := s.injectedStatus(); status != 0 {
		s.writeFault(x.w, status)
		return
	}
	h(s, x, id)
}

// wait sleeps for d unless ctx ends first, and reports whether it slept fully.
func wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// match finds the route of an escaped path, so that an id holding an escaped
// "/" stays one segment. allow is empty when no route has this path, and lists
// the route's methods when it has one; h is nil when method is not among them.
func match(method, escapedPath string) (h handler, id, allow string) {
	rest, ok := strings.CutPrefix(escapedPath, apiPrefix+"/")
	if !ok {
		return nil, "", ""
	}
	segs := strings.Split(rest, "/")
	for _, rt := range routes {
		if len(rt.segments) != len(segs) {
			continue
		}
		id = ""
		matched := true
		for i, want := range rt.segments {
			// EscapedPath is always validly escaped.
			seg, _ := url.PathUnescape(segs[i])
			switch {
			case want == "{id}" && seg != "":
				id = seg
			case want != seg:
				matched = false
			}
		}
		if !matched {
			continue
		}
		return rt.methods[method], id, strings.Join(slices.Sorted(maps.Keys(rt.methods)), ", ")
	}
	return nil, "", ""
}

// authenticate checks the bearer token and answers 401 when it is not good.
func (s *Server) authenticate(x *exchange) bool {
	scheme, token, _ := strings.Cut(x.r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "bearer") || token == "" {
		x.w.Header().Set("WWW-Authenticate", `Bearer realm="sim"`)
		writeError(x.w, http.StatusUnauthorized, http.StatusUnauthorized, "Unauthorized", "a bearer access token is required")
		return false
	}
	s.authMu.Lock()
	expiry, known := s.tokens[token]
	valid := known && s.now().Before(expiry)
	if known && !valid {
		delete(s.tokens, token)
	}
	s.authMu.Unlock()
	if !valid {
		x.stale = true
		x.w.Header().Set("WWW-Authenticate", `Bearer realm="sim", error="invalid_token"`)
		writeError(x.w, http.StatusUnauthorized, http.StatusUnauthorized, "Unauthorized", "the access token is invalid or expired")
		return false
	}
	return true
}

// tokenResponse is a token answer before tokenAnswer renders it.
type tokenResponse struct {
	AccessToken, TokenType, IDToken string
	ExpiresOn, ExpiresIn            int64
}

type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// issueToken is POST /idp/token: the client credentials grant with HTTP Basic.
func (s *Server) issueToken(x *exchange, f Faults) {
	r := x.r
	if r.Method != http.MethodPost {
		x.w.Header().Set("Allow", http.MethodPost)
		writeJSON(x.w, http.StatusMethodNotAllowed, oauthError{"invalid_request", "the token endpoint takes POST"})
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		writeJSON(x.w, http.StatusBadRequest, oauthError{"invalid_request", "Content-Type must be application/x-www-form-urlencoded"})
		return
	}
	r.Body = http.MaxBytesReader(x.w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		writeJSON(x.w, http.StatusBadRequest, oauthError{"invalid_request", "the form body cannot be read"})
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		writeJSON(x.w, http.StatusBadRequest, oauthError{"unsupported_grant_type", "grant_type must be client_credentials"})
		return
	}
	id, secret, ok := r.BasicAuth()
	s.authMu.Lock()
	ok = ok && subtle.ConstantTimeCompare([]byte(id), []byte(s.clientID)) == 1 &&
		subtle.ConstantTimeCompare([]byte(secret), []byte(s.secret)) == 1
	var resp tokenResponse
	if ok {
		expiry := s.now().Add(s.ttl)
		resp = tokenResponse{
			AccessToken: rand.Text() + rand.Text(),
			TokenType:   "bearer",
			ExpiresOn:   expiry.Unix(),
			ExpiresIn:   int64(s.ttl / time.Second),
			IDToken:     rand.Text() + rand.Text(),
		}
		s.tokens[resp.AccessToken] = expiry
		s.issued++
		s.secrets[resp.AccessToken] = true
		s.secrets[resp.IDToken] = true
	}
	s.authMu.Unlock()
	if !ok {
		refusal := f.CredentialsRefusal.orDefault()
		if refusal.Status == http.StatusUnauthorized {
			x.w.Header().Set("WWW-Authenticate", `Basic realm="sim"`)
		}
		writeJSON(x.w, refusal.Status, oauthError{refusal.Error, "client authentication failed"})
		return
	}
	x.w.Header().Set("Cache-Control", "no-store")
	writeJSON(x.w, http.StatusOK, tokenAnswer(f, resp))
}

type platformError struct {
	Error platformErrorBody `json:"error"`
}

type platformErrorBody struct {
	Code    int            `json:"code"`
	Domain  string         `json:"domain"`
	Message string         `json:"message"`
	Details errorDetails   `json:"details"`
	Context map[string]any `json:"context"`
}

type errorDetails struct {
	Info string `json:"info"`
}

// writeError answers with the platform error body.
func writeError(w http.ResponseWriter, status, code int, message, info string) {
	writeJSON(w, status, platformError{platformErrorBody{
		Code: code, Domain: "PlatformAccountServer", Message: message,
		Details: errorDetails{Info: info}, Context: map[string]any{},
	}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only the Server's own wire structs get here, and they always marshal.
		panic("sim: marshal answer: " + err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
