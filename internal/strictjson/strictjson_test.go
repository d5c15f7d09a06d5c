package strictjson

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func TestDecodeObject(t *testing.T) {
	tests := []struct {
		in   string
		keys []string
		err  string // part of the error; "" for success
	}{
		{`{"a": 1, "b": [true]}`, []string{"a", "b"}, ""},
		{` {} `, nil, ""},
		{`{"a": 1, "a": 2}`, nil, `has the key "a" more than once`},
		{`{"a": 1, "\u0061": 2}`, nil, "more than once"},
		{`{"a": 1} {"b": 2}`, nil, "data after the JSON object"},
		{`{"a": 1`, nil, "not valid JSON"},
		{`[1]`, nil, "must be a JSON object, not an array"},
		{`null`, nil, "not null"},
		{`"x"`, nil, "not a string"},
		{`true`, nil, "not a boolean"},
		{`-1`, nil, "not a number"},
		{`{1: 2}`, nil, "not valid JSON"},
		{`{"a" 1}`, nil, "not valid JSON"},
		{`{"a": 1,}`, nil, "not valid JSON"},
		{``, nil, "not valid JSON"},
		{`{"n": 1e999}`, []string{"n"}, ""},
	}
	for _, tt := range tests {
		obj, err := DecodeObject([]byte(tt.in))
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%s: %v", tt.in, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s: error %v, want one saying %q", tt.in, err, tt.err)
		case tt.err == "" && !slices.Equal(obj.Keys, tt.keys):
			t.Errorf("%s: keys %v, want %v", tt.in, obj.Keys, tt.keys)
		}
	}
}

func TestKind(t *testing.T) {
	for raw, want := range map[string]string{
		`null`: "null", `true`: "a boolean", `false`: "a boolean", `"s"`: "a string",
		`[]`: "an array", `{}`: "an object", `-1.5`: "a number",
	} {
		if got := Kind(json.RawMessage(raw)); got != want {
			t.Errorf("Kind(%s) = %s, want %s", raw, got, want)
		}
	}
}

func TestQuoteAndBlank(t *testing.T) {
	if q := Quote(strings.Repeat("x", 10_000)); len(q) > 80 {
		t.Errorf("a 10,000-byte key quoted to %d bytes", len(q))
	}
	if q := Quote(`a"b`); q != `"a\"b"` {
		t.Errorf("Quote = %s", q)
	}
	if !Blank([]byte(" \t\r\n")) || Blank([]byte(" {} ")) || Blank([]byte("\u00a0")) {
		t.Error("Blank must accept JSON whitespace only")
	}
}

// FuzzDecodeObject: whatever is accepted is one valid JSON object with distinct keys.
func FuzzDecodeObject(f *testing.F) {
	for _, seed := range []string{`{"a":1}`, `{"a":1,"a":2}`, `{"a":{"b":[1,2]}} x`, `[]`, ``} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		obj, err := DecodeObject(data)
		if err != nil {
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		seen := map[string]bool{}
		for _, k := range obj.Keys {
			if seen[k] {
				t.Fatalf("accepted a duplicate key %q", k)
			}
			seen[k] = true
			if !json.Valid(obj.Values[k]) {
				t.Fatalf("value of %q is not valid JSON", k)
			}
		}
	})
}
