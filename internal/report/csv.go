package report

import (
	"bufio"
	"io"
	"strconv"
	"strings"
	"time"
)

// Header is the report's first row.
var Header = []string{"tenant_id", "tenant_name", "kind", "parent_id", "tenant_enabled", "mfa_status",
	"outcome", "reason", "users_count", "users_without_totp", "grace_deadline"}

// Row is one tenant's line.
type Row struct {
	TenantID      string
	TenantName    string
	Kind          string
	ParentID      string
	TenantEnabled bool
	MFAStatus     string // after the run, as far as the sweep knows it
	Outcome       string // the summary bucket
	Reason        string
	// Users is the tenant's mfa/status user counts, nil where the sweep did
	// not read them.
	Users         *Users
	GraceDeadline time.Time // zero outside grace
}

// Users are a tenant's user counts from its mfa/status.
type Users struct {
	Count       int
	WithoutTOTP int
}

// Writer writes the report as CSV per RFC 4180, UTF-8 with CRLF line ends.
// encoding/csv is not used: with CRLF line ends it drops a lone carriage
// return inside a field, and the report keeps every character of a name.
type Writer struct {
	w      *bufio.Writer
	fields [11]string
	err    error
}

// NewWriter returns a writer to w that has written the header.
func NewWriter(w io.Writer) (*Writer, error) {
	rw := &Writer{w: bufio.NewWriter(w)}
	rw.record(Header)
	return rw, rw.err
}

// record writes one line, quoting a field that holds a comma, a quote, a
// carriage return or a line feed, or begins with a space.
func (w *Writer) record(fields []string) {
	for i, f := range fields {
		if i > 0 {
			w.w.WriteByte(',')
		}
		if f == "" || !strings.ContainsAny(f, ",\"\r\n") && f[0] != ' ' {
			w.w.WriteString(f)
			continue
		}
		w.w.WriteByte('"')
		w.w.WriteString(strings.ReplaceAll(f, `"`, `""`))
		w.w.WriteByte('"')
	}
	_, err := w.w.WriteString("\r\n")
	if w.err == nil {
		w.err = err
	}
}

// Write writes one row. Rows are buffered: Flush writes them out.
func (w *Writer) Write(r Row) error {
	f := w.fields[:0]
	f = append(f, cell(r.TenantID), cell(r.TenantName), cell(r.Kind), cell(r.ParentID),
		strconv.FormatBool(r.TenantEnabled), cell(r.MFAStatus), cell(r.Outcome), cell(r.Reason))
	if r.Users != nil {
		f = append(f, strconv.Itoa(r.Users.Count), strconv.Itoa(r.Users.WithoutTOTP))
	} else {
		f = append(f, "", "")
	}
	deadline := ""
	if !r.GraceDeadline.IsZero() {
		deadline = r.GraceDeadline.UTC().Format(time.RFC3339)
	}
	w.record(append(f, deadline))
	return w.err
}

// Flush writes the buffered rows out and reports any error of the writes so far.
func (w *Writer) Flush() error {
	if err := w.w.Flush(); w.err == nil {
		w.err = err
	}
	return w.err
}

// cell makes a value safe for the report: invalid UTF-8 is replaced rather
// than dropped, and a value a spreadsheet would run as a formula (one that
// begins with =, +, -, @, a tab or a carriage return) is prefixed with ', as
// OWASP advises for CSV injection. Tenant names are typed by customers.
func cell(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
