// Package jsonscan walks JSON that is already known to be valid without
// decoding it: the hot paths of the evaluation runner and the OpenAI client
// use it to find fields in large request and reply bodies cheaply.
package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// SkipSpace returns the index of the first non-space byte at or after i.
func SkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// SkipString returns the index after the string starting at b[i] (a
// quote) and whether it holds escapes. It jumps from quote to quote.
func SkipString(b []byte, i int) (int, bool) {
	escaped := false
	j := i + 1
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return len(b), escaped
		}
		q := j + k
		if bytes.IndexByte(b[j:q], '\\') >= 0 {
			escaped = true
			n := 0
			for p := q - 1; p > i && b[p] == '\\'; p-- {
				n++
			}
			if n%2 == 1 { // an escaped quote: keep going
				j = q + 1
				continue
			}
		}
		return q + 1, escaped
	}
}

// SkipValue returns the index after the value starting at b[i].
func SkipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		end, _ := SkipString(b, i)
		return end
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, _ := SkipString(b, j)
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	default:
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\t' && b[j] != '\r' {
			j++
		}
		return j
	}
}

// ErrNotObject is returned for input that is not a JSON object.
var ErrNotObject = errors.New("not a JSON object")

// ForEachMember calls fn with the key and raw value of each top-level
// member of a JSON object already known to be valid, without allocating
// (except for keys with escapes or invalid UTF-8, which are decoded).
func ForEachMember(b []byte, fn func(key, val []byte) error) error {
	i := SkipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return ErrNotObject
	}
	i++
	for {
		i = SkipSpace(b, i)
		if i >= len(b) {
			return ErrNotObject
		}
		if b[i] == '}' {
			return nil
		}
		if b[i] == ',' {
			i = SkipSpace(b, i+1)
		}
		if i >= len(b) || b[i] != '"' {
			return ErrNotObject
		}
		end, escaped := SkipString(b, i)
		if end-1 <= i || b[end-1] != '"' {
			return ErrNotObject
		}
		key := b[i+1 : end-1]
		if escaped || !utf8.Valid(key) {
			var k string
			if err := json.Unmarshal(b[i:end], &k); err != nil {
				return err
			}
			key = []byte(k)
		}
		i = SkipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return ErrNotObject
		}
		i = SkipSpace(b, i+1)
		vend := SkipValue(b, i)
		if err := fn(key, b[i:vend]); err != nil {
			return err
		}
		i = vend
	}
}
