package ingest

import (
	"bytes"
	"errors"
	"slices"
)

// errSyntax is returned by the canonicalizer on input that is not JSON.
var errSyntax = errors.New("invalid JSON")

// Canonical returns raw with object keys sorted (by their bytes as written)
// and insignificant whitespace removed; strings and numbers keep their
// written form. Invalid JSON is returned unchanged, so Canonical never
// fails. It scans once and allocates little, because stores call it for
// every record they insert.
func Canonical(raw []byte) []byte {
	c := canonicalizer{in: raw}
	out, err := c.value(make([]byte, 0, len(raw)))
	if err != nil {
		return raw
	}
	c.space()
	if c.pos != len(c.in) {
		return raw
	}
	return out
}

type canonicalizer struct {
	in    []byte
	pos   int
	depth int
}

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 10000

// member is one key/value pair of an object, as offsets into the output.
type member struct{ keyStart, keyEnd, end int }

func (c *canonicalizer) space() {
	for c.pos < len(c.in) {
		switch c.in[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

func (c *canonicalizer) value(out []byte) ([]byte, error) {
	c.space()
	if c.pos >= len(c.in) {
		return out, errSyntax
	}
	switch b := c.in[c.pos]; {
	case b == '{':
		return c.object(out)
	case b == '[':
		return c.array(out)
	case b == '"':
		return c.string(out)
	case b == 't':
		return c.literal(out, "true")
	case b == 'f':
		return c.literal(out, "false")
	case b == 'n':
		return c.literal(out, "null")
	case b == '-' || (b >= '0' && b <= '9'):
		return c.number(out)
	}
	return out, errSyntax
}

func (c *canonicalizer) literal(out []byte, lit string) ([]byte, error) {
	if !bytes.HasPrefix(c.in[c.pos:], []byte(lit)) {
		return out, errSyntax
	}
	c.pos += len(lit)
	return append(out, lit...), nil
}

func (c *canonicalizer) number(out []byte) ([]byte, error) {
	start := c.pos
	for c.pos < len(c.in) {
		switch b := c.in[c.pos]; {
		case b >= '0' && b <= '9', b == '-', b == '+', b == '.', b == 'e', b == 'E':
			c.pos++
			continue
		}
		break
	}
	return append(out, c.in[start:c.pos]...), nil
}

func (c *canonicalizer) string(out []byte) ([]byte, error) {
	start := c.pos
	c.pos++ // opening quote
	for c.pos < len(c.in) {
		switch c.in[c.pos] {
		case '\\':
			c.pos += 2
		case '"':
			c.pos++
			return append(out, c.in[start:c.pos]...), nil
		default:
			c.pos++
		}
	}
	return out, errSyntax
}

func (c *canonicalizer) array(out []byte) ([]byte, error) {
	if c.depth++; c.depth > maxDepth {
		return out, errSyntax
	}
	defer func() { c.depth-- }()
	c.pos++
	out = append(out, '[')
	c.space()
	if c.pos < len(c.in) && c.in[c.pos] == ']' {
		c.pos++
		return append(out, ']'), nil
	}
	for {
		var err error
		if out, err = c.value(out); err != nil {
			return out, err
		}
		c.space()
		if c.pos >= len(c.in) {
			return out, errSyntax
		}
		switch c.in[c.pos] {
		case ',':
			c.pos++
			out = append(out, ',')
		case ']':
			c.pos++
			return append(out, ']'), nil
		default:
			return out, errSyntax
		}
	}
}

func (c *canonicalizer) object(out []byte) ([]byte, error) {
	if c.depth++; c.depth > maxDepth {
		return out, errSyntax
	}
	defer func() { c.depth-- }()
	c.pos++
	out = append(out, '{')
	base := len(out)
	c.space()
	if c.pos < len(c.in) && c.in[c.pos] == '}' {
		c.pos++
		return append(out, '}'), nil
	}
	var members []member
	for {
		c.space()
		if c.pos >= len(c.in) || c.in[c.pos] != '"' {
			return out, errSyntax
		}
		m := member{keyStart: len(out)}
		var err error
		if out, err = c.string(out); err != nil {
			return out, err
		}
		m.keyEnd = len(out)
		c.space()
		if c.pos >= len(c.in) || c.in[c.pos] != ':' {
			return out, errSyntax
		}
		c.pos++
		out = append(out, ':')
		if out, err = c.value(out); err != nil {
			return out, err
		}
		m.end = len(out)
		members = append(members, m)
		c.space()
		if c.pos >= len(c.in) {
			return out, errSyntax
		}
		if c.in[c.pos] == '}' {
			c.pos++
			break
		}
		if c.in[c.pos] != ',' {
			return out, errSyntax
		}
		c.pos++
		out = append(out, ',')
	}
	key := func(m member) []byte { return out[m.keyStart:m.keyEnd] }
	cmp := func(a, b member) int { return bytes.Compare(key(a), key(b)) }
	if !slices.IsSortedFunc(members, cmp) {
		body := slices.Clone(out[base:])
		slices.SortStableFunc(members, cmp)
		out = out[:base]
		for i, m := range members {
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, body[m.keyStart-base:m.end-base]...)
		}
	}
	return append(out, '}'), nil
}
