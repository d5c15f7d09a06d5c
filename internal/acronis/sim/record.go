package sim

import (
	"maps"
	"net/http"
	"strings"
	"time"
)

// Faults make the Server misbehave on purpose. The zero value is a healthy API.
type Faults struct {
	// Latency delays every request, token calls included. A request whose
	// context ends first is abandoned unanswered.
	Latency time.Duration
	// ThrottleEvery answers every Nth API request with 429, UnavailableEvery with
	// 503, both with Retry-After. N counts API requests that carried a valid
	// token since SetFaults, so a test knows exactly which request fails; token
	// calls and 401s do not count. Throttling wins when both hit.
	ThrottleEvery    int
	UnavailableEvery int
	RetryAfter       int // seconds in Retry-After (default 1)
	// FailTenants answers every GET and PUT of a tenant's mfa/status with the
	// given HTTP status (403 and 404 with their platform codes).
	FailTenants map[string]int
	// SubtreeStatus, when non-zero, answers GET /tenants?subtree_root_id=… and
	// every GET /tenants?after=… with this status, so that callers must fall
	// back to walking children.
	SubtreeStatus int
}

// SetFaults replaces the faults in force and restarts the count behind
// ThrottleEvery and UnavailableEvery.
func (s *Server) SetFaults(f Faults) {
	if f.RetryAfter <= 0 {
		f.RetryAfter = 1
	}
	f.FailTenants = maps.Clone(f.FailTenants) // the caller may go on changing its map
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.faults = f
	s.apiCount = 0
}

func (s *Server) currentFaults() Faults {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return s.faults
}

// injectedStatus counts one authenticated API request and says whether the
// faults in force make it fail with 429 or 503.
func (s *Server) injectedStatus() int {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.apiCount++
	switch f := s.faults; {
	case f.ThrottleEvery > 0 && s.apiCount%f.ThrottleEvery == 0:
		return http.StatusTooManyRequests
	case f.UnavailableEvery > 0 && s.apiCount%f.UnavailableEvery == 0:
		return http.StatusServiceUnavailable
	}
	return 0
}

// Request is one request as the Server saw it.
type Request struct {
	Method, Path, Query string // Path without host, e.g. "/api/2/tenants/<id>/mfa/status"
	Status              int    // 0 while in flight, or when the caller gave up during Latency
	Stale               bool   // a bearer token was sent but was expired, revoked or unknown (401)
}

// Requests returns a copy of the record, in arrival order, token calls included.
func (s *Server) Requests() []Request {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	return append([]Request(nil), s.record...)
}

// Count counts the recorded requests whose Method is method and whose Path ends
// with pathSuffix: Count("PUT", "/mfa/status") counts MFA writes, and
// Count("GET", "/tenants") only the listing calls, since a tenant's own path
// ends with its id.
func (s *Server) Count(method, pathSuffix string) int {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	n := 0
	for _, r := range s.record {
		if r.Method == method && strings.HasSuffix(r.Path, pathSuffix) {
			n++
		}
	}
	return n
}

// ResetRequests empties the record and restarts the in-flight high-water mark
// from the requests being served right now.
func (s *Server) ResetRequests() {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	s.record = nil
	s.recEpoch++
	s.maxInFlight = s.inFlight
}

// MaxInFlight is the largest number of API requests (token calls excluded) that
// were being served at once since New or ResetRequests.
func (s *Server) MaxInFlight() int {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	return s.maxInFlight
}

// exchange is one request's trip through the Server, from arrival to answer.
type exchange struct {
	w     *statusWriter
	r     *http.Request
	api   bool // not a token call
	idx   int  // its slot in the record
	epoch uint64
	stale bool
}

func (s *Server) arrive(w http.ResponseWriter, r *http.Request, api bool) *exchange {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	x := &exchange{w: &statusWriter{ResponseWriter: w}, r: r, api: api, idx: len(s.record), epoch: s.recEpoch}
	s.record = append(s.record, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery})
	if api {
		s.inFlight++
		s.maxInFlight = max(s.maxInFlight, s.inFlight)
	}
	return x
}

// depart runs after the answer is written, so a request counts as in flight
// for as long as its caller waits for it.
func (s *Server) depart(x *exchange) {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	if x.epoch == s.recEpoch {
		s.record[x.idx].Status = x.w.status
		s.record[x.idx].Stale = x.stale
	}
	if x.api {
		s.inFlight--
	}
}

// statusWriter remembers the status it was given, for the record.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}
