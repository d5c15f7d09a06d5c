package tenant

import "strings"

// ValidID reports whether s is a tenant id as Acronis writes them: a UUID
// in the 8-4-4-4-12 hex form, in either case. Only that form passes: braces, a
// "urn:uuid:" prefix or missing dashes would give one tenant several spellings,
// and every parser of untrusted input checks ids here before any request.
func ValidID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// ParseID returns s in the one spelling the project uses, lowercase, and
// whether it is a tenant id at all.
func ParseID(s string) (string, bool) {
	if !ValidID(s) {
		return "", false
	}
	return strings.ToLower(s), true
}
