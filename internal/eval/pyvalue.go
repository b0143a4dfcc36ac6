package eval

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// pyKind is the Python type of a value decoded by Python's json module,
// which the bfcl checker mode compares the way BFCL's Python code does.
type pyKind uint8

const (
	pyNone pyKind = iota
	pyBool
	pyInt
	pyFloat
	pyStr
	pyList
	pyDict
)

// String names the kind as Python's type() does.
func (k pyKind) String() string {
	return [...]string{"NoneType", "bool", "int", "float", "str", "list", "dict"}[k]
}

// pyVal is a JSON value as Python's json.loads returns it: integers and
// floats are distinct types, and objects keep their keys in order (a
// repeated key keeps its first position and its last value).
type pyVal struct {
	kind pyKind
	b    bool
	i    *big.Int
	f    float64
	s    string
	list []pyVal // pyList elements
	keys []string
	vals []pyVal // pyDict values, parallel to keys
}

// get returns the value of key in a dict.
func (v pyVal) get(key string) (pyVal, bool) {
	if i := slices.Index(v.keys, key); i >= 0 {
		return v.vals[i], true
	}
	return pyVal{}, false
}

// has reports whether a dict has key.
func (v pyVal) has(key string) bool { return slices.Contains(v.keys, key) }

// pyEqual is Python's ==: numbers (bool, int, float) compare by value
// across types, lists element by element, dicts by key set and values.
func pyEqual(a, b pyVal) bool {
	if a.isNumber() && b.isNumber() {
		return numCmpEqual(a, b)
	}
	if a.kind != b.kind {
		return false
	}
	switch a.kind {
	case pyNone:
		return true
	case pyStr:
		return a.s == b.s
	case pyList:
		if len(a.list) != len(b.list) {
			return false
		}
		for i := range a.list {
			if !pyEqual(a.list[i], b.list[i]) {
				return false
			}
		}
		return true
	case pyDict:
		if len(a.keys) != len(b.keys) {
			return false
		}
		for i, k := range a.keys {
			bv, ok := b.get(k)
			if !ok || !pyEqual(a.vals[i], bv) {
				return false
			}
		}
		return true
	}
	return false
}

func (v pyVal) isNumber() bool { return v.kind == pyBool || v.kind == pyInt || v.kind == pyFloat }

// numCmpEqual compares two Python numbers exactly.
func numCmpEqual(a, b pyVal) bool {
	if a.kind == pyFloat && b.kind == pyFloat {
		return a.f == b.f
	}
	if a.kind != pyFloat && b.kind != pyFloat {
		return a.intValue().Cmp(b.intValue()) == 0
	}
	if a.kind == pyFloat {
		a, b = b, a
	}
	// a is an integer (or bool), b a float.
	if math.IsNaN(b.f) || math.IsInf(b.f, 0) || b.f != math.Trunc(b.f) {
		return false
	}
	bf := new(big.Float).SetFloat64(b.f)
	bi, _ := bf.Int(nil)
	return a.intValue().Cmp(bi) == 0
}

func (v pyVal) intValue() *big.Int {
	switch v.kind {
	case pyBool:
		if v.b {
			return big.NewInt(1)
		}
		return big.NewInt(0)
	case pyInt:
		return v.i
	}
	return big.NewInt(0)
}

// pyIn is Python's "v in list".
func pyIn(v pyVal, list []pyVal) bool {
	return slices.ContainsFunc(list, func(e pyVal) bool { return pyEqual(v, e) })
}

// repr renders the value roughly as Python's repr does, for details.
func (v pyVal) repr() string {
	switch v.kind {
	case pyNone:
		return "None"
	case pyBool:
		if v.b {
			return "True"
		}
		return "False"
	case pyInt:
		return v.i.String()
	case pyFloat:
		switch {
		case math.IsNaN(v.f):
			return "nan"
		case math.IsInf(v.f, 1):
			return "inf"
		case math.IsInf(v.f, -1):
			return "-inf"
		}
		s := strconv.FormatFloat(v.f, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eEn") {
			s += ".0"
		}
		return s
	case pyStr:
		return strconv.Quote(v.s)
	case pyList:
		parts := make([]string, len(v.list))
		for i, e := range v.list {
			parts[i] = e.repr()
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case pyDict:
		parts := make([]string, len(v.keys))
		for i, k := range v.keys {
			parts[i] = strconv.Quote(k) + ": " + v.vals[i].repr()
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return "?"
}

// pyFromAny converts a value decoded by parseValue (json.Number numbers)
// to a pyVal. Map keys are sorted (the order of an answer's keys never
// changes a verdict).
func pyFromAny(a any) pyVal {
	switch x := a.(type) {
	case nil:
		return pyVal{kind: pyNone}
	case bool:
		return pyVal{kind: pyBool, b: x}
	case json.Number:
		return pyNumber(string(x))
	case float64:
		return pyVal{kind: pyFloat, f: x}
	case string:
		return pyVal{kind: pyStr, s: x}
	case []any:
		l := make([]pyVal, len(x))
		for i, e := range x {
			l[i] = pyFromAny(e)
		}
		return pyVal{kind: pyList, list: l}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		vals := make([]pyVal, len(keys))
		for i, k := range keys {
			vals[i] = pyFromAny(x[k])
		}
		return pyVal{kind: pyDict, keys: keys, vals: vals}
	}
	return pyVal{kind: pyStr, s: fmt.Sprint(a)}
}

// pyNumber reads a JSON number literal as Python's json module does: an
// int without fraction or exponent, else a float.
func pyNumber(s string) pyVal {
	if !strings.ContainsAny(s, ".eE") {
		if i, ok := new(big.Int).SetString(s, 10); ok {
			return pyVal{kind: pyInt, i: i}
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return pyVal{kind: pyStr, s: s}
	}
	return pyVal{kind: pyFloat, f: f}
}

// pyLoads decodes JSON text as Python's json.loads does (NaN, Infinity
// and -Infinity accepted; keys kept in order; a repeated key keeps its
// first position and last value).
func pyLoads(s string) (pyVal, error) {
	p := pyParser{s: s}
	p.space()
	v, err := p.value(0)
	if err != nil {
		return pyVal{}, err
	}
	p.space()
	if p.i < len(p.s) {
		return pyVal{}, fmt.Errorf("extra data at offset %d", p.i)
	}
	return v, nil
}

type pyParser struct {
	s string
	i int
}

// pyMaxDepth bounds nesting (Python stops with RecursionError near 1000).
const pyMaxDepth = 900

func (p *pyParser) space() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *pyParser) errf(format string, args ...any) error {
	return fmt.Errorf("offset %d: "+format, append([]any{p.i}, args...)...)
}

func (p *pyParser) value(depth int) (pyVal, error) {
	if depth > pyMaxDepth {
		return pyVal{}, p.errf("nesting too deep")
	}
	if p.i >= len(p.s) {
		return pyVal{}, p.errf("expecting value")
	}
	switch c := p.s[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s, err := p.str()
		return pyVal{kind: pyStr, s: s}, err
	case strings.HasPrefix(p.s[p.i:], "null"):
		p.i += 4
		return pyVal{kind: pyNone}, nil
	case strings.HasPrefix(p.s[p.i:], "true"):
		p.i += 4
		return pyVal{kind: pyBool, b: true}, nil
	case strings.HasPrefix(p.s[p.i:], "false"):
		p.i += 5
		return pyVal{kind: pyBool}, nil
	case strings.HasPrefix(p.s[p.i:], "NaN"):
		p.i += 3
		return pyVal{kind: pyFloat, f: math.NaN()}, nil
	case strings.HasPrefix(p.s[p.i:], "Infinity"):
		p.i += 8
		return pyVal{kind: pyFloat, f: math.Inf(1)}, nil
	case strings.HasPrefix(p.s[p.i:], "-Infinity"):
		p.i += 9
		return pyVal{kind: pyFloat, f: math.Inf(-1)}, nil
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	return pyVal{}, p.errf("expecting value")
}

func (p *pyParser) number() (pyVal, error) {
	start := p.i
	if p.s[p.i] == '-' {
		p.i++
	}
	digits := func() int {
		n := 0
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.i < len(p.s) && p.s[p.i] == '0' {
		p.i++
	} else if digits() == 0 {
		return pyVal{}, p.errf("expecting value")
	}
	// Python's scanner takes a fraction or exponent only when digits
	// follow; otherwise the number ends there (and the rest is extra
	// data or a syntax error).
	if p.i+1 < len(p.s) && p.s[p.i] == '.' && p.s[p.i+1] >= '0' && p.s[p.i+1] <= '9' {
		p.i++
		digits()
	}
	if p.i < len(p.s) && (p.s[p.i] == 'e' || p.s[p.i] == 'E') {
		j := p.i + 1
		if j < len(p.s) && (p.s[j] == '+' || p.s[j] == '-') {
			j++
		}
		if j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
			p.i = j
			digits()
		}
	}
	return pyNumber(p.s[start:p.i]), nil
}

func (p *pyParser) str() (string, error) {
	p.i++ // opening quote
	var sb strings.Builder
	for {
		if p.i >= len(p.s) {
			return "", p.errf("unterminated string")
		}
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return sb.String(), nil
		case c < 0x20:
			return "", p.errf("invalid control character")
		case c == '\\':
			if p.i+1 >= len(p.s) {
				return "", p.errf("unterminated string")
			}
			e := p.s[p.i+1]
			p.i += 2
			switch e {
			case '"', '\\', '/':
				sb.WriteByte(e)
			case 'b':
				sb.WriteByte('\b')
			case 'f':
				sb.WriteByte('\f')
			case 'n':
				sb.WriteByte('\n')
			case 'r':
				sb.WriteByte('\r')
			case 't':
				sb.WriteByte('\t')
			case 'u':
				r, ok := p.hex4()
				if !ok {
					return "", p.errf("invalid \\u escape")
				}
				if utf16.IsSurrogate(r) && strings.HasPrefix(p.s[p.i:], "\\u") {
					save := p.i
					p.i += 2
					r2, ok := p.hex4()
					if ok {
						if d := utf16.DecodeRune(r, r2); d != unicode.ReplacementChar {
							sb.WriteRune(d)
							continue
						}
					}
					p.i = save
				}
				sb.WriteRune(r) // a lone surrogate becomes U+FFFD
			default:
				return "", p.errf("invalid escape")
			}
		default:
			r, size := utf8.DecodeRuneInString(p.s[p.i:])
			sb.WriteRune(r)
			p.i += size
		}
	}
}

func (p *pyParser) hex4() (rune, bool) {
	if p.i+4 > len(p.s) {
		return 0, false
	}
	n, err := strconv.ParseUint(p.s[p.i:p.i+4], 16, 32)
	if err != nil {
		return 0, false
	}
	p.i += 4
	return rune(n), true
}

func (p *pyParser) array(depth int) (pyVal, error) {
	p.i++
	v := pyVal{kind: pyList, list: []pyVal{}}
	p.space()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		return v, nil
	}
	for {
		p.space()
		e, err := p.value(depth + 1)
		if err != nil {
			return pyVal{}, err
		}
		v.list = append(v.list, e)
		p.space()
		if p.i >= len(p.s) {
			return pyVal{}, p.errf("unterminated array")
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return v, nil
		default:
			return pyVal{}, p.errf("expecting ',' delimiter")
		}
	}
}

func (p *pyParser) object(depth int) (pyVal, error) {
	p.i++
	v := pyVal{kind: pyDict, keys: []string{}, vals: []pyVal{}}
	p.space()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return v, nil
	}
	for {
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != '"' {
			return pyVal{}, p.errf("expecting property name enclosed in double quotes")
		}
		k, err := p.str()
		if err != nil {
			return pyVal{}, err
		}
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return pyVal{}, p.errf("expecting ':' delimiter")
		}
		p.i++
		p.space()
		e, err := p.value(depth + 1)
		if err != nil {
			return pyVal{}, err
		}
		if j := slices.Index(v.keys, k); j >= 0 {
			v.vals[j] = e
		} else {
			v.keys = append(v.keys, k)
			v.vals = append(v.vals, e)
		}
		p.space()
		if p.i >= len(p.s) {
			return pyVal{}, p.errf("unterminated object")
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return v, nil
		default:
			return pyVal{}, p.errf("expecting ',' delimiter")
		}
	}
}

// pyLower is Python's str.lower: full Unicode lower-casing, with "İ"
// becoming "i̇" and a capital sigma at the end of a word becoming "ς".
func pyLower(s string) string {
	isASCII := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			isASCII = false
			break
		}
	}
	if isASCII {
		return strings.ToLower(s)
	}
	rs := []rune(s)
	var sb strings.Builder
	for i, r := range rs {
		switch r {
		case 'İ':
			sb.WriteString("i\u0307")
		case 'Σ':
			if finalSigma(rs, i) {
				sb.WriteRune('ς')
			} else {
				sb.WriteRune('σ')
			}
		default:
			sb.WriteRune(unicode.ToLower(r))
		}
	}
	return sb.String()
}

// finalSigma is Unicode's Final_Sigma condition: a cased letter before
// (skipping case-ignorable ones) and none after.
func finalSigma(rs []rune, i int) bool {
	cased := func(r rune) bool { return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) }
	ignorable := func(r rune) bool {
		return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk) || r == '\'' || r == '.' || r == ':' || r == '\u00B7' || r == '\u2019'
	}
	before := false
	for j := i - 1; j >= 0; j-- {
		if ignorable(rs[j]) {
			continue
		}
		before = cased(rs[j])
		break
	}
	if !before {
		return false
	}
	for j := i + 1; j < len(rs); j++ {
		if ignorable(rs[j]) {
			continue
		}
		return !cased(rs[j])
	}
	return true
}
