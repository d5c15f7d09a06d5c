package acronis

import (
	"strings"
	"testing"
)

func TestValidTenantID(t *testing.T) {
	const id = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
	tests := []struct {
		in   string
		want bool
	}{
		{id, true},
		{strings.ToUpper(id), true},
		{"00000000-0000-0000-0000-000000000000", true},
		{"", false},
		{id[:35], false},
		{id + "0", false},
		{"3fa85f64-5717-4562-b3fc-2c963f66afag", false},  // not hex
		{"3fa85f6405717-4562-b3fc-2c963f66afa6", false},  // dash missing
		{"3fa85f64-57174-562-b3fc-2c963f66afa6", false},  // dash moved
		{"3fa85f6457174562b3fc2c963f66afa6", false},      // no dashes
		{"{3fa85f64-5717-4562-b3fc-2c963f66afa}", false}, // braces
		{"urn:uuid:3fa85f64-5717-4562-b3fc-2c963f66afa6", false},
		{" 3fa85f64-5717-4562-b3fc-2c963f66afa", false},
		{"3fa85f64-5717-4562-b3fc-2c963f66af\u00e9", false}, // 36 bytes, one of them not ASCII
		{"3fa85f64-5717-4562-b3fc-2c963f66af/.", false},
	}
	for _, tt := range tests {
		if got := ValidTenantID(tt.in); got != tt.want {
			t.Errorf("ValidTenantID(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
