package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"github.com/flywheel-go/flywheel/internal/jsonscan"
	"unicode/utf8"
)

// errNotObjectJSON is returned for input that is not an object.
var errNotObjectJSON = errors.New("not a JSON object")

// forEachMember calls fn with the key (raw, still quoted when escaped) and
// raw value of each top-level member of a JSON object already known to be
// valid, without allocating. Keys with escapes or invalid UTF-8 are
// decoded first.
func forEachMember(b []byte, fn func(key, val []byte) error) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errNotObjectJSON
	}
	i++
	for {
		i = skipSpace(b, i)
		if i >= len(b) {
			return errNotObjectJSON
		}
		if b[i] == '}' {
			return nil
		}
		if b[i] == ',' {
			i = skipSpace(b, i+1)
		}
		if i >= len(b) || b[i] != '"' {
			return errNotObjectJSON
		}
		end, escaped := skipString(b, i)
		if end-1 <= i || b[end-1] != '"' {
			return errNotObjectJSON
		}
		key := b[i+1 : end-1]
		if escaped || !utf8.Valid(key) {
			var k string
			if err := json.Unmarshal(b[i:end], &k); err != nil {
				return err
			}
			key = []byte(k)
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return errNotObjectJSON
		}
		i = skipSpace(b, i+1)
		vend := skipValue(b, i)
		if err := fn(key, b[i:vend]); err != nil {
			return err
		}
		i = vend
	}
}

// keyIs reports whether a member key matches name the way encoding/json
// matches field names (exactly or case-insensitively).
func keyIs(key []byte, name string) bool {
	return string(key) == name || bytes.EqualFold(key, []byte(name))
}

// splitArray splits a JSON array, already known to be valid JSON, into
// the raw bytes of its elements.
func splitArray(b []byte) ([][]byte, error) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return nil, errNotArrayJSON
	}
	i++
	var out [][]byte
	for {
		i = skipSpace(b, i)
		if i >= len(b) {
			return nil, errNotArrayJSON
		}
		switch b[i] {
		case ']':
			return out, nil
		case ',':
			i = skipSpace(b, i+1)
		}
		end := skipValue(b, i)
		out = append(out, b[i:end])
		i = end
	}
}

// errNotArrayJSON is returned by splitArray for input that is not an array.
var errNotArrayJSON = errors.New("not a JSON array")

func skipSpace(b []byte, i int) int { return jsonscan.SkipSpace(b, i) }

func skipString(b []byte, i int) (int, bool) { return jsonscan.SkipString(b, i) }

func skipValue(b []byte, i int) int { return jsonscan.SkipValue(b, i) }
