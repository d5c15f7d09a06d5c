package sim

import (
	"net/http"
	"strings"
)

// Request is one request as the Server saw it.
type Request struct {
	Method, Path, Query string // Path without host, e.g. "/api/2/tenants/<id>/mfa/status"
	Status              int    // 0 while in flight, or when no answer came (the caller gave up, or the connection was hung up)
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
