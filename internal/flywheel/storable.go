package flywheel

import (
	"bytes"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Limits on what the service stores. Both databases are held to the same
// rules, so a record SQLite would keep is never one Postgres refuses.
const (
	// MaxIDBytes is the longest workload_id, client_id, idempotency key or
	// other identifier accepted, in bytes.
	MaxIDBytes = 255
	// MaxNameBytes is the longest name (a model, a tool, a filter value
	// other than an id) accepted, in bytes.
	MaxNameBytes = 1024
	// MaxRecordBytes is the largest record accepted: its request and
	// response JSON together, in bytes.
	MaxRecordBytes = 16 << 20
	// MaxRecordCount is the largest number of records a data split may
	// ask for (eval_size, min_total_records, limit).
	MaxRecordCount = 1_000_000_000
)

// CheckText returns "" when s can be stored as text: valid UTF-8, no NUL
// character and, when max > 0, at most max bytes. Otherwise it returns the
// reason, fit to follow a field name.
func CheckText(s string, max int) string {
	if max > 0 && len(s) > max {
		return fmt.Sprintf("longer than %d bytes (%d)", max, len(s))
	}
	if !utf8.ValidString(s) {
		return fmt.Sprintf("not valid UTF-8 (byte offset %d)", invalidOffset([]byte(s)))
	}
	if i := indexNUL(s); i >= 0 {
		return fmt.Sprintf("contains a NUL character (byte offset %d)", i)
	}
	return ""
}

func indexNUL(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return i
		}
	}
	return -1
}

func invalidOffset(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}

// CheckJSON returns "" for path and reason when every string of the JSON
// text raw (object keys included) can be stored: valid UTF-8 and no NUL,
// written or as the escape \u0000. Otherwise path locates the first bad
// string below the top ("messages[0].content"; "" for the top) and reason
// says what is wrong. raw should be JSON (callers parse it first); it is
// not validated, but text that is not JSON and holds bad bytes gives the
// reason "invalid JSON", never a panic.
func CheckJSON(raw []byte) (path, reason string) {
	if utf8.Valid(raw) && !bytes.Contains(raw, []byte(`\u0000`)) && bytes.IndexByte(raw, 0) < 0 {
		return "", "" // the common case, in one pass
	}
	w := jsonWalker{in: raw}
	w.value("")
	if w.reason == "" && !w.syntax {
		return "", ""
	}
	if w.reason == "" {
		return "", "invalid JSON"
	}
	return w.path, w.reason
}

// CheckRecord returns the field and reason of the first thing in r that
// cannot be stored (an id that is empty, too long, not UTF-8 or holds a
// NUL; a request or response too large or with such a string), or "" and
// "" when r can be stored.
func CheckRecord(r LogRecord) (field, reason string) {
	for _, f := range []struct{ name, value string }{{"workload_id", r.WorkloadID}, {"client_id", r.ClientID}} {
		if f.value == "" {
			return f.name, "empty"
		}
		if reason := CheckText(f.value, MaxIDBytes); reason != "" {
			return f.name, reason
		}
	}
	if n := len(r.Request) + len(r.Response); n > MaxRecordBytes {
		return "", fmt.Sprintf("record larger than %d bytes (%d)", MaxRecordBytes, n)
	}
	for _, f := range []struct {
		name string
		raw  []byte
	}{{"request", r.Request}, {"response", r.Response}} {
		if path, reason := CheckJSON(f.raw); reason != "" {
			return joinPath(f.name, path), reason
		}
	}
	return "", ""
}

func joinPath(base, path string) string {
	switch {
	case path == "":
		return base
	case base == "", path[0] == '[':
		return base + path
	}
	return base + "." + path
}

// jsonWalker finds the first string of a JSON text that cannot be stored,
// with its path. It never panics on bad input; it sets syntax instead.
type jsonWalker struct {
	in     []byte
	pos    int
	depth  int
	path   string
	reason string
	syntax bool
}

const jsonWalkerMaxDepth = 10000

func (w *jsonWalker) done() bool { return w.reason != "" || w.syntax }

func (w *jsonWalker) space() {
	for w.pos < len(w.in) {
		switch w.in[w.pos] {
		case ' ', '\t', '\n', '\r':
			w.pos++
		default:
			return
		}
	}
}

func (w *jsonWalker) value(path string) {
	w.space()
	if w.pos >= len(w.in) {
		w.syntax = true
		return
	}
	switch w.in[w.pos] {
	case '{':
		w.object(path)
	case '[':
		w.array(path)
	case '"':
		w.string(path)
	default:
		// A number or a literal: skip to the next delimiter.
		start := w.pos
		for w.pos < len(w.in) {
			switch w.in[w.pos] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				if w.pos == start {
					w.syntax = true
				}
				return
			case 0:
				w.path, w.reason = path, "contains a NUL character"
				return
			}
			w.pos++
		}
	}
}

func (w *jsonWalker) object(path string) {
	if w.depth++; w.depth > jsonWalkerMaxDepth {
		w.syntax = true
		return
	}
	defer func() { w.depth-- }()
	w.pos++ // {
	w.space()
	if w.pos < len(w.in) && w.in[w.pos] == '}' {
		w.pos++
		return
	}
	for !w.done() {
		w.space()
		if w.pos >= len(w.in) || w.in[w.pos] != '"' {
			w.syntax = true
			return
		}
		key := w.string(joinPath(path, "(key)"))
		if w.done() {
			return
		}
		w.space()
		if w.pos >= len(w.in) || w.in[w.pos] != ':' {
			w.syntax = true
			return
		}
		w.pos++
		if len(key) > 64 {
			key = key[:64] + "…"
		}
		w.value(joinPath(path, key))
		if w.next('}') {
			return
		}
	}
}

func (w *jsonWalker) array(path string) {
	if w.depth++; w.depth > jsonWalkerMaxDepth {
		w.syntax = true
		return
	}
	defer func() { w.depth-- }()
	w.pos++ // [
	w.space()
	if w.pos < len(w.in) && w.in[w.pos] == ']' {
		w.pos++
		return
	}
	for i := 0; !w.done(); i++ {
		w.value(path + "[" + strconv.Itoa(i) + "]")
		if w.next(']') {
			return
		}
	}
}

// next reads the separator after a member or element: it skips a comma and
// returns false while more follow; it returns true at closer (which it
// skips), at the end of the input or on anything else (both syntax errors),
// or when the walk is done.
func (w *jsonWalker) next(closer byte) bool {
	w.space()
	if w.done() {
		return true
	}
	if w.pos >= len(w.in) {
		w.syntax = true
		return true
	}
	switch w.in[w.pos] {
	case ',':
		w.pos++
		return false
	case closer:
		w.pos++
		return true
	}
	w.syntax = true
	return true
}

// string checks the string at pos and returns its text as written (for
// paths; escapes are left as they are).
func (w *jsonWalker) string(path string) string {
	w.pos++ // opening quote
	start := w.pos
	for w.pos < len(w.in) {
		b := w.in[w.pos]
		switch {
		case b == '"':
			s := string(w.in[start:w.pos])
			w.pos++
			return s
		case b == '\\':
			if w.pos+1 >= len(w.in) {
				w.syntax = true
				return ""
			}
			if w.in[w.pos+1] == 'u' && bytes.HasPrefix(w.in[w.pos+2:], []byte("0000")) {
				w.path, w.reason = path, `contains a NUL character (\u0000)`
				return ""
			}
			w.pos += 2
		case b == 0:
			w.path, w.reason = path, "contains a NUL character"
			return ""
		case b < utf8.RuneSelf:
			w.pos++
		default:
			r, n := utf8.DecodeRune(w.in[w.pos:])
			if r == utf8.RuneError && n <= 1 {
				w.path, w.reason = path, fmt.Sprintf("not valid UTF-8 (byte 0x%02x)", b)
				return ""
			}
			w.pos += n
		}
	}
	w.syntax = true
	return ""
}
