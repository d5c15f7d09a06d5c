package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Space is the whitespace JSON allows between tokens.
const Space = " \t\r\n"

// Blank reports whether data holds nothing but JSON whitespace.
func Blank(data []byte) bool { return len(bytes.Trim(data, Space)) == 0 }

// Object is a decoded JSON object: its members' raw values by key, and the keys
// in document order so that errors about them come out the same every time.
type Object struct {
	Keys   []string
	Values map[string]json.RawMessage
}

// DecodeObject decodes data as exactly one JSON object whose keys are all
// distinct, with nothing but whitespace after it. encoding/json's Unmarshal
// would quietly keep the last duplicate, so the members are walked with the
// decoder's token stream instead.
func DecodeObject(data []byte) (Object, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // a number is only ever named in an error; don't let 1e999 fail as a float
	tok, err := dec.Token()
	if err != nil {
		return Object{}, syntaxError(err)
	}
	if tok != json.Delim('{') {
		return Object{}, fmt.Errorf("must be a JSON object, not %s", tokenKind(tok))
	}
	obj := Object{Values: map[string]json.RawMessage{}}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return Object{}, syntaxError(err)
		}
		// The decoder only yields a string in key position; anything else is an
		// error above. The check keeps a surprise from becoming a panic.
		key, ok := tok.(string)
		if !ok {
			return Object{}, fmt.Errorf("is not valid JSON: %s where a key belongs", tokenKind(tok))
		}
		if _, dup := obj.Values[key]; dup {
			return Object{}, fmt.Errorf("has the key %s more than once", Quote(key))
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return Object{}, syntaxError(err)
		}
		obj.Keys = append(obj.Keys, key)
		obj.Values[key] = raw
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return Object{}, syntaxError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Object{}, errors.New("has data after the JSON object")
	}
	return obj, nil
}

func syntaxError(err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("is not valid JSON: %v", err)
}

// tokenKind names the JSON type of a token from a decoder that uses UseNumber.
func tokenKind(tok json.Token) string {
	switch tok.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	}
	if tok == json.Delim('[') {
		return "an array"
	}
	return "an object"
}

// Kind names the JSON type of a raw value as the decoder produced it: valid
// JSON, starting at its first byte.
func Kind(raw json.RawMessage) string {
	switch raw[0] {
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	case '"':
		return "a string"
	case '[':
		return "an array"
	case '{':
		return "an object"
	}
	return "a number"
}

// Quote quotes untrusted text for an error message, cut so that a pasted blob
// cannot flood the response or the log line.
func Quote(s string) string {
	const limit = 64
	if len(s) > limit {
		return fmt.Sprintf("%q...", s[:limit])
	}
	return fmt.Sprintf("%q", s)
}
