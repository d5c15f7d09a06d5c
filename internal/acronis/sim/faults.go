package sim

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Faults make the Server misbehave on purpose. The zero value is a healthy API
// whose injected 429 and 503 answers ask to retry at once ("Retry-After: 0").
//
// Faults act in this order: BeforeRequest, Latency, FailNth, then for API
// routes ThrottleFirst and HoldTenants, all before the request's token is
// checked; after it, ThrottleEvery and UnavailableEvery, then the faults of
// each route. Counts restart at every SetFaults.
type Faults struct {
	// BeforeRequest, when set, runs before each API request (token calls
	// excluded) with its number, counted from 1. It runs before the request's
	// token is checked, so a hook that revokes tokens fails that request too,
	// and concurrently for concurrent requests.
	BeforeRequest func(n int)
	// Latency delays every request, token calls included. A request whose
	// context ends first is abandoned unanswered.
	Latency time.Duration
	// FailNth answers chosen requests instead of serving them.
	FailNth []NthFailure
	// ThrottleFirst answers each API request 429 the first time its method and
	// path (the query aside) arrive: every request is retried once, whatever
	// the order in which concurrent requests come.
	ThrottleFirst bool
	// HoldTenants leaves every request about these tenants (the /tenants/{id}
	// routes) unanswered until its caller gives up.
	HoldTenants []string

	// ThrottleEvery answers every Nth API request with 429, UnavailableEvery
	// with 503. N counts API requests that carried a valid token, so a test
	// knows exactly which request fails; token calls and 401s do not count.
	// Throttling wins when both hit.
	ThrottleEvery    int
	UnavailableEvery int
	// RetryAfter is the Retry-After of every injected 429 and 503, in seconds:
	// 0 asks to retry at once, a negative value leaves the header out.
	RetryAfter int
	// RetryAfterDate sends Retry-After as an HTTP date, RetryAfter seconds
	// after the Server's clock, instead of as seconds.
	RetryAfterDate bool

	// FailTenants answers every GET and PUT of a tenant's mfa/status with the
	// given HTTP status (403 and 404 with their platform codes).
	FailTenants map[string]int
	// LoseWriteAnswers makes the MFA PUTs of these tenants land, then answers
	// them 502, as a gateway that lost Acronis's answer would.
	LoseWriteAnswers []string
	// EmptyWriteStatus, when 200 or 204, answers an MFA PUT that succeeds with
	// this status and no body, as Acronis answers some of its other writes.
	EmptyWriteStatus int

	// OmitTokenFields leaves these fields ("expires_in", "expires_on",
	// "access_token", "id_token") out of token answers.
	OmitTokenFields []string
	// CredentialsRefusal is how the token endpoint refuses credentials it does
	// not know; zero means 401 invalid_client. Acronis documents 400, 401 and
	// 403 with an OAuth error.
	CredentialsRefusal OAuthRefusal

	// SubtreeStatus, when non-zero, answers GET /tenants?subtree_root_id=… and
	// every GET /tenants?after=… with this status, so that callers must fall
	// back to walking children.
	SubtreeStatus int
	// UsersStatus, when non-zero, answers every GET /users with this status
	// once the query is found valid.
	UsersStatus int
	// LoopCursors, when n > 0, gives page n+1 of a listing (of tenants or of
	// users) the cursor that page 1 gave, so that paging cycles over n cursors
	// forever (with n = 1 the cursor repeats at once). A listing of fewer
	// pages is not affected.
	LoopCursors int
	// OverlapPages starts every page of a listing after the first with the
	// last item of the page before, as offset paging does when a tenant is
	// added earlier in the order meanwhile. With a limit of 1 every page
	// repeats the one before and the listing never ends.
	OverlapPages bool
	// ListEarly puts these tenants right after the root of a subtree listing
	// that holds them, before their parents, as a tenant moved to another
	// branch during the listing would be.
	ListEarly []string
}

// NthFailure answers chosen requests of one method and path instead of
// serving them.
type NthFailure struct {
	Method string
	Path   string // as in Request.Path: "/api/2/tenants/<id>/mfa/status", "/api/2/idp/token"
	Nth    []int  // which of its requests fail, counted from 1, whatever their token
	// Status is answered with the platform error body (429 and 503 with
	// Retry-After, 3xx with a Location back to the same request). A 2xx status
	// comes with a JSON body cut short that no client can read; HangUp closes
	// the connection without an answer.
	Status int
}

// HangUp as an NthFailure's Status closes the connection without answering.
const HangUp = -1

// OAuthRefusal is a token endpoint's refusal: a status and an OAuth error code.
type OAuthRefusal struct {
	Status int
	Error  string // "invalid_client", "unauthorized_client", "access_denied", …
}

// faultState is the faults in force and the counts behind them; the Server
// guards it with faultMu.
type faultState struct {
	Faults
	scripted  map[string]map[int]int // method and path -> nth -> status
	seen      map[string]int         // requests per method and path
	throttled map[string]bool        // method and path already answered 429 by ThrottleFirst
	arrivals  int                    // API requests, for BeforeRequest
	apiCount  int                    // API requests with a valid token, for ThrottleEvery and UnavailableEvery
}

// SetFaults replaces the faults in force and restarts their counts. f is
// copied: the caller may go on changing its maps and slices.
func (s *Server) SetFaults(f Faults) {
	f.FailTenants = maps.Clone(f.FailTenants)
	f.HoldTenants = slices.Clone(f.HoldTenants)
	f.LoseWriteAnswers = slices.Clone(f.LoseWriteAnswers)
	f.OmitTokenFields = slices.Clone(f.OmitTokenFields)
	f.ListEarly = slices.Clone(f.ListEarly)
	st := faultState{Faults: f, scripted: map[string]map[int]int{}, seen: map[string]int{}, throttled: map[string]bool{}}
	for _, nf := range f.FailNth {
		key := nf.Method + " " + nf.Path
		if st.scripted[key] == nil {
			st.scripted[key] = map[int]int{}
		}
		for _, n := range nf.Nth {
			st.scripted[key][n] = nf.Status
		}
	}
	st.FailNth = nil // kept as scripted
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.faults = st
}

func (s *Server) currentFaults() Faults {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return s.faults.Faults
}

// arrival counts an API request and returns its number and the hook to run.
func (s *Server) arrival() (int, func(int)) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.faults.arrivals++
	return s.faults.arrivals, s.faults.BeforeRequest
}

// scripted counts a request by method and path and returns the status
// FailNth gives it, 0 for none.
func (s *Server) scripted(r *http.Request) int {
	key := r.Method + " " + r.URL.Path
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.faults.seen[key]++
	return s.faults.scripted[key][s.faults.seen[key]]
}

// throttleFirst reports whether this is the first arrival of r's method and path.
func (s *Server) throttleFirst(r *http.Request) bool {
	key := r.Method + " " + r.URL.Path
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	if !s.faults.ThrottleFirst || s.faults.throttled[key] {
		return false
	}
	s.faults.throttled[key] = true
	return true
}

// injectedStatus counts one authenticated API request and says whether the
// faults in force make it fail with 429 or 503.
func (s *Server) injectedStatus() int {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.faults.apiCount++
	switch f := s.faults; {
	case f.ThrottleEvery > 0 && f.apiCount%f.ThrottleEvery == 0:
		return http.StatusTooManyRequests
	case f.UnavailableEvery > 0 && f.apiCount%f.UnavailableEvery == 0:
		return http.StatusServiceUnavailable
	}
	return 0
}

// answerScripted gives a request the answer FailNth chose for it.
func (s *Server) answerScripted(x *exchange, status int) {
	switch {
	case status == HangUp:
		// The server closes the connection of a handler that aborts before
		// writing anything, and logs nothing for this value.
		panic(http.ErrAbortHandler)
	case status >= 200 && status < 300:
		x.w.Header().Set("Content-Type", "application/json")
		x.w.WriteHeader(status)
		_, _ = x.w.Write([]byte(`{"items": [{"id": "`))
	case status >= 300 && status < 400:
		x.w.Header().Set("Location", x.r.URL.RequestURI())
		s.writeFault(x.w, status)
	default:
		s.writeFault(x.w, status)
	}
}

// writeFault answers with an injected failure status.
func (s *Server) writeFault(w http.ResponseWriter, status int) {
	code := status
	switch status {
	case http.StatusForbidden:
		code = codeAccessDenied
	case http.StatusNotFound:
		code = codeTenantNotFound
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		if f := s.currentFaults(); f.RetryAfter >= 0 {
			v := strconv.Itoa(f.RetryAfter)
			if f.RetryAfterDate {
				v = s.now().Add(time.Duration(f.RetryAfter) * time.Second).UTC().Format(http.TimeFormat)
			}
			w.Header().Set("Retry-After", v)
		}
	}
	writeError(w, status, code, http.StatusText(status), "injected by the simulator")
}

// held reports whether path names a tenant whose requests are held.
func held(f Faults, path, id string) bool {
	return id != "" && strings.HasPrefix(path, apiPrefix+"/tenants/") && slices.Contains(f.HoldTenants, id)
}

// tokenAnswer renders a token answer without the fields f omits.
func tokenAnswer(f Faults, resp tokenResponse) map[string]any {
	out := map[string]any{
		"access_token": resp.AccessToken,
		"token_type":   resp.TokenType,
		"expires_on":   resp.ExpiresOn,
		"expires_in":   resp.ExpiresIn,
		"id_token":     resp.IDToken,
	}
	for _, k := range f.OmitTokenFields {
		delete(out, k)
	}
	return out
}

// orDefault fills in the documented refusal of unknown credentials.
func (r OAuthRefusal) orDefault() OAuthRefusal {
	if r.Status == 0 {
		r.Status = http.StatusUnauthorized
	}
	if r.Error == "" {
		r.Error = "invalid_client"
	}
	return r
}
