package sim

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Listing filters, as they travel in a cursor.
const (
	filterSubtree     = "subtree_root_id"
	filterParent      = "parent_id"
	filterUUIDs       = "uuids"
	filterUserSubtree = "subtree_root_tenant_id"
)

// listing is what a paged listing accepts: GET /tenants or GET /users.
type listing struct {
	resource string   // which listing a cursor belongs to
	filters  []string // mutually exclusive, and one is required
	// limit is the page size by default, and the largest: a larger limit is
	// cut to it, and the caller pages.
	limit int
}

var (
	tenantListing = listing{"tenants", []string{filterUUIDs, filterParent, filterSubtree}, 5000}
	// tenant_id is no filter of GET /users (it only qualifies external_ids):
	// alone it leaves the listing without one.
	userListing = listing{"users", []string{filterUUIDs, filterUserSubtree}, 2000}
)

// cursor is the state of a listing: ?after=… carries the filters with it, as
// the real API's does. It is opaque to callers. The position is an offset into
// the listing's order, so a tenant added between two pages can shift it, much
// as changes during a real listing go unseen or repeat.
type cursor struct {
	Resource string `json:"r"` // a cursor pages only the listing that gave it
	Filter   string `json:"f"`
	Value    string `json:"v"`
	Since    *int64 `json:"s,omitempty"` // updated_since in Unix seconds, see parse
	Offset   int    `json:"o"`
	Limit    int    `json:"l"`
	LOD      string `json:"d,omitempty"`
	Page     int    `json:"p"` // the page it leads to, counted from 1, for the listing faults
}

func (c cursor) encode() string {
	b, _ := json.Marshal(c) // a struct of strings and ints always marshals
	return base64.RawURLEncoding.EncodeToString(b)
}

func (l listing) decodeCursor(s string) (cursor, bool) {
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(b, &c) != nil {
		return cursor{}, false
	}
	return c, c.Resource == l.resource && slices.Contains(l.filters, c.Filter) && c.Value != "" &&
		c.Offset >= 0 && c.Limit > 0 && c.Limit <= l.limit && c.Page > 1 && validLOD(c.LOD)
}

func validLOD(lod string) bool {
	return lod == "" || lod == "stamps" || lod == "basic" || lod == "full"
}

type listResponse[T any] struct {
	Items     []T    `json:"items"`
	Timestamp string `json:"timestamp"` // the server's time of the listing
	Paging    paging `json:"paging"`
}

type paging struct {
	Cursors pageCursors `json:"cursors"`
}

type pageCursors struct {
	After string `json:"after,omitempty"` // absent on the last page
}

// parse reads a listing's query: a fresh one or a continuation.
//
// updated_since keeps what was updated strictly after it: the API says
// "updated after", and whether that includes the instant itself is not
// documented. A time without a zone is UTC, as the API's examples write them.
// Stamps are whole seconds, so the cursor keeps the filter in seconds: a stamp
// is after 12:00:00.5 exactly when it is after 12:00:00.
func (l listing) parse(q url.Values) (cursor, *apiError) {
	var c cursor
	if q.Has("after") {
		for _, f := range l.filters {
			if q.Has(f) {
				return c, badRequest("after already carries the filters; " + f + " cannot be given with it")
			}
		}
		if q.Has("updated_since") {
			return c, badRequest("after already carries the filters; updated_since cannot be given with it")
		}
		var ok bool
		if c, ok = l.decodeCursor(q.Get("after")); !ok {
			return c, badRequest("invalid paging cursor")
		}
	} else {
		c = cursor{Resource: l.resource, Limit: l.limit, Page: 1}
		for _, f := range l.filters {
			if !q.Has(f) {
				continue
			}
			if c.Filter != "" {
				return c, badRequest(c.Filter + " and " + f + " are mutually exclusive")
			}
			c.Filter, c.Value = f, q.Get(f)
			if c.Value == "" {
				return c, badRequest(f + " is empty")
			}
		}
		if c.Filter == "" {
			return c, badRequest("one of " + strings.Join(l.filters, ", ") + " is required")
		}
		if c.Filter == filterUUIDs && strings.Count(c.Value, ",") >= maxUUIDs {
			return c, badRequest("uuids takes at most 100 ids")
		}
		if q.Has("updated_since") {
			since, err := parseTimestamp(q.Get("updated_since"))
			if err != nil {
				return c, badRequest("updated_since must be an RFC 3339 timestamp such as 2026-01-01T00:00:00Z, not " + strconv.Quote(q.Get("updated_since")))
			}
			sec := since.Unix()
			c.Since = &sec
		}
	}
	if q.Has("lod") {
		c.LOD = q.Get("lod")
		if !validLOD(c.LOD) {
			return c, badRequest("lod must be stamps, basic or full")
		}
	}
	if q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n <= 0 {
			return c, badRequest("limit must be a positive integer")
		}
		c.Limit = min(n, l.limit)
	}
	return c, nil
}

// parseTimestamp reads RFC 3339, or the same without a zone as UTC.
func parseTimestamp(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	return time.ParseInLocation("2006-01-02T15:04:05.999999999", v, time.UTC)
}

// page cuts the page c asks for out of a listing of total items, as the faults
// in force shape it: where it starts and ends, and the cursor to the next
// page, "" on the last.
func page(c cursor, f Faults, total int) (start, end int, after string) {
	start = min(c.Offset, total)
	if f.OverlapPages && c.Page > 1 {
		start = max(start-1, 0)
	}
	end = min(start+c.Limit, total)
	next := c
	next.Offset, next.Page = end, c.Page+1
	if f.LoopCursors > 0 && c.Page == f.LoopCursors+1 {
		// Back to what page 1 pointed at.
		next.Offset, next.Page = min(c.Limit, total), 2
	} else if end == total {
		return start, end, ""
	}
	return start, end, next.encode()
}
