package eval

import (
	"encoding/json"
	"errors"
	"unicode/utf8"

	"github.com/flywheel-go/flywheel/internal/jsonscan"
)

// member is one top-level member of a JSON object: its key and the raw
// bytes of its value (a sub-slice of the input).
type member struct {
	key string
	val []byte
}

// errNotObjectJSON is returned by splitObject for input that is not an
// object.
var errNotObjectJSON = jsonscan.ErrNotObject

// splitObject splits a JSON object, already known to be valid JSON, into
// its top-level members without decoding the values. It is much cheaper
// than decoding into a map of raw messages, which copies and re-validates
// every value.
func splitObject(b []byte) ([]member, error) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, errNotObjectJSON
	}
	i++
	out := make([]member, 0, 8)
	for {
		i = skipSpace(b, i)
		if i >= len(b) {
			return nil, errNotObjectJSON
		}
		if b[i] == '}' {
			return out, nil
		}
		if b[i] == ',' {
			i = skipSpace(b, i+1)
		}
		if i >= len(b) || b[i] != '"' {
			return nil, errNotObjectJSON
		}
		end, escaped := skipString(b, i)
		if end-1 <= i || b[end-1] != '"' {
			return nil, errNotObjectJSON
		}
		var key string
		if escaped || !utf8.Valid(b[i:end]) {
			if err := json.Unmarshal(b[i:end], &key); err != nil {
				return nil, err
			}
		} else {
			key = string(b[i+1 : end-1])
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return nil, errNotObjectJSON
		}
		i = skipSpace(b, i+1)
		vend := skipValue(b, i)
		// A repeated key keeps its first place and its last value, as
		// encoding/json does.
		dup := false
		for k := range out {
			if out[k].key == key {
				out[k].val, dup = b[i:vend], true
			}
		}
		if !dup {
			out = append(out, member{key: key, val: b[i:vend]})
		}
		i = vend
	}
}

// forEachMember calls fn with each top-level member of a valid JSON object.
func forEachMember(b []byte, fn func(key, val []byte) error) error {
	return jsonscan.ForEachMember(b, fn)
}

// get returns the value of key, or nil.
func get(ms []member, key string) []byte {
	for _, m := range ms {
		if m.key == key {
			return m.val
		}
	}
	return nil
}

func skipSpace(b []byte, i int) int { return jsonscan.SkipSpace(b, i) }

func skipString(b []byte, i int) (int, bool) { return jsonscan.SkipString(b, i) }

func skipValue(b []byte, i int) int { return jsonscan.SkipValue(b, i) }

// forEachElement calls fn with each element of a JSON array already known
// to be valid.
func forEachElement(b []byte, fn func(val []byte) error) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return errors.New("not a JSON array")
	}
	i++
	for {
		i = skipSpace(b, i)
		if i >= len(b) {
			return errors.New("not a JSON array")
		}
		switch b[i] {
		case ']':
			return nil
		case ',':
			i = skipSpace(b, i+1)
		}
		end := skipValue(b, i)
		if err := fn(b[i:end]); err != nil {
			return err
		}
		i = end
	}
}

// parseValue decodes a JSON value already known to be valid into maps,
// slices, strings, bools, nil and json.Number, as a json.Decoder with
// UseNumber does, without its per-call set-up.
func parseValue(b []byte) (any, error) {
	i := skipSpace(b, 0)
	if i >= len(b) {
		return nil, errors.New("empty JSON value")
	}
	b = b[i:skipValue(b, i)]
	switch b[0] {
	case '{':
		m := map[string]any{}
		err := forEachMember(b, func(k, val []byte) error {
			v, err := parseValue(val)
			m[string(k)] = v
			return err
		})
		return m, err
	case '[':
		l := []any{}
		err := forEachElement(b, func(e []byte) error {
			v, err := parseValue(e)
			l = append(l, v)
			return err
		})
		return l, err
	case '"':
		var s string
		if plain(b) {
			return string(b[1 : len(b)-1]), nil
		}
		err := json.Unmarshal(b, &s)
		return s, err
	case 't':
		return true, nil
	case 'f':
		return false, nil
	case 'n':
		return nil, nil
	}
	return json.Number(string(b)), nil
}

// plain reports whether a JSON string literal has no escapes and only
// printable ASCII.
func plain(b []byte) bool {
	if len(b) < 2 {
		return false
	}
	for _, c := range b[1 : len(b)-1] {
		if c == '\\' || c == '"' || c < 0x20 || c >= 0x80 {
			return false
		}
	}
	return true
}
