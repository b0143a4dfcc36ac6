package eval

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/flywheel-go/flywheel/internal/openai"
)

// Call is one tool call, parsed. Args is nil when the arguments are not a
// JSON object; ArgsErr then says why.
type Call struct {
	Name    string
	Args    map[string]any
	RawArgs string
	ArgsErr error
	// canon is the canonical JSON of Args (or a marker for invalid ones).
	canon string
}

// Canonical returns the canonical JSON text of the call's arguments: keys
// sorted, no insignificant whitespace, numbers in their shortest form
// (so 5, 5.0 and 5e0 are the same).
func (c Call) Canonical() string { return c.canon }

// ParseCalls parses the tool calls of a message.
func ParseCalls(tcs []openai.ToolCall) []Call {
	if len(tcs) == 0 {
		return nil
	}
	out := make([]Call, 0, len(tcs))
	for _, tc := range tcs {
		out = append(out, NewCall(tc.Function.Name, tc.Function.Arguments))
	}
	return out
}

// errNotObject reports arguments that are valid JSON but not an object.
var errNotObject = errors.New("arguments are not a JSON object")

// NewCall parses one call from its name and arguments text. Empty
// arguments mean no arguments.
func NewCall(name, args string) Call {
	c := Call{Name: name, RawArgs: args}
	trimmed := strings.TrimSpace(args)
	if trimmed == "" {
		trimmed = "{}"
	}
	v, err := decodeJSON([]byte(trimmed))
	if err == nil {
		m, ok := v.(map[string]any)
		if !ok {
			err = errNotObject
		} else {
			c.Args = m
		}
	}
	if err != nil {
		c.ArgsErr = err
		c.canon = "\x00invalid:" + args
		return c
	}
	c.canon = Canonical(c.Args)
	return c
}

// decodeJSON decodes one JSON value keeping numbers as json.Number, and
// rejects trailing data.
func decodeJSON(b []byte) (any, error) {
	if !json.Valid(b) {
		dec := json.NewDecoder(bytes.NewReader(b))
		var v any
		err := dec.Decode(&v)
		if err == nil {
			err = errors.New("trailing data after JSON value")
		}
		return nil, fmt.Errorf("decode arguments: %w", err)
	}
	return parseValue(b)
}

// Canonical returns the canonical JSON text of a decoded JSON value.
func Canonical(v any) string {
	var sb strings.Builder
	writeCanonical(&sb, v)
	return sb.String()
}

func writeCanonical(sb *strings.Builder, v any) {
	switch x := v.(type) {
	case nil:
		sb.WriteString("null")
	case bool:
		sb.WriteString(strconv.FormatBool(x))
	case json.Number:
		sb.WriteString(canonicalNumber(x))
	case float64:
		sb.WriteString(canonicalNumber(json.Number(strconv.FormatFloat(x, 'g', -1, 64))))
	case string:
		b, _ := json.Marshal(x)
		sb.Write(b)
	case []any:
		sb.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				sb.WriteByte(',')
			}
			writeCanonical(sb, e)
		}
		sb.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		sb.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				sb.WriteByte(',')
			}
			b, _ := json.Marshal(k)
			sb.Write(b)
			sb.WriteByte(':')
			writeCanonical(sb, x[k])
		}
		sb.WriteByte('}')
	default:
		b, _ := json.Marshal(x)
		sb.Write(b)
	}
}

// canonicalNumber writes integers as they are (without a sign on zero)
// and every other number in its shortest decimal form.
func canonicalNumber(n json.Number) string {
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		if s == "-0" {
			return "0"
		}
		return s
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) {
		return s
	}
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// normName makes function names comparable across providers that forbid
// dots in names (BFCL's "math.factorial" is served as "math_factorial").
func normName(s string) string {
	return strings.ReplaceAll(s, ".", "_")
}
