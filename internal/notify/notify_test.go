package notify_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"acronismfa/internal/notify"
)

func TestSubjectIsOneLineOfASCIIUnder100(t *testing.T) {
	for _, in := range []string{
		"MFA on Ünïcødé GmbH 株式会社 from 2026-12-06",
		"line\nbreak\tand\rreturn",
		strings.Repeat("long tenant name ", 20),
	} {
		got := notify.Subject(in)
		if utf8.RuneCountInString(got) >= 100 || strings.ContainsAny(got, "\n\r\t") {
			t.Errorf("Subject(%q) = %q", in, got)
		}
		for _, r := range got {
			if r < 0x20 || r > 0x7e {
				t.Errorf("Subject(%q) holds %q", in, r)
			}
		}
	}
}

func TestDocumentsNameTheirEventFirst(t *testing.T) {
	deadline := time.Date(2026, 12, 6, 4, 0, 0, 0, time.FixedZone("CET", 3600))
	for _, tc := range []struct {
		notice notify.Notice
		want   string
	}{
		{notify.GraceStarted{TenantID: "t", TenantName: "Acme", Deadline: deadline, UsersCount: 3, UsersWithoutTOTP: 2, SweepID: "s"},
			`{"event":"grace_started","tenant_id":"t","tenant_name":"Acme","deadline":"2026-12-06T03:00:00Z","users_count":3,"users_without_totp":2,"users":[],"users_truncated":false,"sweep_id":"s"}`},
		{notify.Enforced{TenantID: "t", TenantName: "Acme", NotifiedAt: deadline, UsersWithoutTOTP: 2, SweepID: "s"},
			`{"event":"enforced","tenant_id":"t","tenant_name":"Acme","notified_at":"2026-12-06T03:00:00Z","users_without_totp":2,"sweep_id":"s"}`},
		{notify.SweepCompleted{Summary: json.RawMessage(`{"changed":1}`), SweepID: "s", Text: "words"},
			`{"event":"sweep_completed","summary":{"changed":1},"sweep_id":"s"}`},
	} {
		got, err := json.Marshal(tc.notice)
		if err != nil || string(got) != tc.want {
			t.Errorf("\n got %s, %v\nwant %s", got, err, tc.want)
		}
	}
}
