package report_test

import (
	"bytes"
	"encoding/csv"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"acronismfa/internal/report"
)

func write(t *testing.T, rows ...report.Row) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := report.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReportFormat(t *testing.T) {
	deadline := time.Date(2026, 12, 6, 4, 0, 0, 0, time.FixedZone("CET", 3600))
	got := write(t,
		report.Row{TenantID: "t-1", TenantName: "Acme", Kind: "customer", ParentID: "p", TenantEnabled: true,
			MFAStatus: "enabled", Outcome: "changed", Reason: "MFA enabled by policy", Users: &report.Users{Count: 5, WithoutTOTP: 3}},
		report.Row{TenantID: "t-2", TenantName: "Beta", Kind: "unit", ParentID: "t-1", MFAStatus: "disabled",
			Outcome: "in_grace", Reason: "grace", GraceDeadline: deadline},
	)
	want := "tenant_id,tenant_name,kind,parent_id,tenant_enabled,mfa_status,outcome,reason,users_count,users_without_totp,grace_deadline\r\n" +
		"t-1,Acme,customer,p,true,enabled,changed,MFA enabled by policy,5,3,\r\n" +
		"t-2,Beta,unit,t-1,false,disabled,in_grace,grace,,,2026-12-06T03:00:00Z\r\n"
	if string(got) != want {
		t.Errorf("\n got %q\nwant %q", got, want)
	}
}

// Tenant names are typed by customers: whatever they hold comes back from a
// standard CSV reader as the same text, but never as a formula, and never as
// invalid UTF-8.
func TestHostileNamesRoundTrip(t *testing.T) {
	names := map[string]string{
		`Smith, Jones & Co`:      `Smith, Jones & Co`,
		`"Quoted" Ltd`:           `"Quoted" Ltd`,
		"Line\nBreak\r\nGmbH":    "Line\nBreak\r\nGmbH",
		`=HYPERLINK("http://x")`: `'=HYPERLINK("http://x")`,
		"+1 Corp":                "'+1 Corp",
		"-2 Corp":                "'-2 Corp",
		"@SUM(A1)":               "'@SUM(A1)",
		"\tTabbed":               "'\tTabbed",
		"\rReturned":             "'\rReturned",
		"Bad \xff\xfe UTF-8":     "Bad \uFFFD UTF-8",
		"Ünïcødé 株式会社":           "Ünïcødé 株式会社",
		" leading space":         " leading space",
		"":                       "",
	}
	var rows []report.Row
	var want []string
	for in, out := range names {
		rows = append(rows, report.Row{TenantID: "t", TenantName: in})
		want = append(want, out)
	}
	records, err := csv.NewReader(bytes.NewReader(write(t, rows...))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(records[0], report.Header) || len(records) != len(rows)+1 {
		t.Fatalf("header %q, %d records", records[0], len(records))
	}
	for i, rec := range records[1:] {
		// encoding/csv reads a quoted \r\n as \n, as RFC 4180 readers may.
		if w := strings.ReplaceAll(want[i], "\r\n", "\n"); rec[1] != w {
			t.Errorf("name %q came back as %q, want %q", rows[i].TenantName, rec[1], w)
		}
	}
}

func TestLoneCarriageReturnIsKept(t *testing.T) {
	got := write(t, report.Row{TenantID: "t", TenantName: "\rReturned"})
	if !bytes.Contains(got, []byte("t,\"'\rReturned\",")) {
		t.Errorf("%q", got)
	}
}

// FuzzRowRoundTrip: any tenant name and reason come back from a standard CSV
// reader whole, in one record, and never begin as a formula.
func FuzzRowRoundTrip(f *testing.F) {
	f.Add("Acme", "reason")
	f.Add("=1+2,\"x\"\r\n", "\xff\r")
	f.Fuzz(func(t *testing.T, name, reason string) {
		records, err := csv.NewReader(bytes.NewReader(write(t, report.Row{TenantID: "t", TenantName: name, Reason: reason}))).ReadAll()
		if err != nil || len(records) != 2 || len(records[1]) != len(report.Header) {
			t.Fatalf("%q, %q: %d records, %v", name, reason, len(records), err)
		}
		for _, got := range []string{records[1][1], records[1][7]} {
			if !utf8.ValidString(got) || got != "" && strings.ContainsRune("=+-@\t\r", rune(got[0])) {
				t.Fatalf("%q, %q: cell %q", name, reason, got)
			}
		}
		if want := strings.ReplaceAll(strings.ToValidUTF8(name, "\uFFFD"), "\r\n", "\n"); strings.TrimPrefix(records[1][1], "'") != want && records[1][1] != want {
			t.Fatalf("name %q came back as %q", name, records[1][1])
		}
	})
}
