package openai

import (
	"bytes"
	"errors"

	"github.com/flywheel-go/flywheel/internal/jsonscan"
)

// errNotObjectJSON is returned for input that is not an object.
var errNotObjectJSON = jsonscan.ErrNotObject

// forEachMember calls fn with each top-level member of a valid JSON object.
func forEachMember(b []byte, fn func(key, val []byte) error) error {
	return jsonscan.ForEachMember(b, fn)
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
