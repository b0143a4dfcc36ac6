package eval

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strings"
)

// Error classes of a failed item. The tool-call classes follow the BFCL
// AST checker's order: the first failing check names the class.
const (
	ClassInvalidJSON     = "invalid_json"     // the arguments are not a JSON object
	ClassNoToolCall      = "no_tool_call"     // a call was expected and none was made
	ClassWrongCount      = "wrong_count"      // a different number of calls
	ClassWrongName       = "wrong_name"       // a function that was not expected
	ClassMissingRequired = "missing_required" // a schema-required argument is absent
	ClassUnexpectedParam = "unexpected_param" // an argument that is not in the schema or the answer
	ClassTypeError       = "type_error"       // a value of the wrong JSON-schema type
	ClassValueError      = "value_error"      // a value outside the acceptable set
	// ClassMissingOptional is an optional argument the answer needs that
	// was left out (BFCL's missing_optional).
	ClassMissingOptional = "missing_optional"
	// ClassInvalidOutput is an item whose model produced output the server
	// could not parse (llama.cpp answers such a request with a 500).
	ClassInvalidOutput = "invalid_output"
	// ClassServerError is an item whose request the server answered with an
	// HTTP error status (after retries), other than ClassInvalidOutput.
	ClassServerError = "server_error"
	// ClassTimeout is an item whose request got no reply in time.
	ClassTimeout = "timeout"
	// ClassUnparseable is an item whose reply was not a chat completion.
	ClassUnparseable = "unparseable"
	// ClassConnectionError is an item whose request got no reply at all
	// (connection refused or reset).
	ClassConnectionError = "connection_error"
	// ClassInvalidRecord is a dataset line that could not be evaluated.
	ClassInvalidRecord = "invalid_record"
	// ClassTextMismatch is a generic item whose text differs from the
	// reference.
	ClassTextMismatch = "text_mismatch"
)

// Schema is the part of a JSON schema the checker reads.
type Schema struct {
	// Name is the function name the tool was offered under (set on a
	// tool's parameter schema by ParseTools).
	Name string
	// Type is the schema's "type": one name or several.
	Type       []string
	Properties map[string]*Schema
	Required   []string
	Items      *Schema
}

// Tools maps a normalised function name to its parameter schema.
type Tools map[string]*Schema

// ParseTools reads a request's "tools" array. It is lenient about the
// schemas (parts of unexpected shape, such as a boolean "required" or a
// tuple "items", are ignored) but a "tools" value that is not an array of
// JSON values is an error. Entries without a function name are skipped.
func ParseTools(raw json.RawMessage) (Tools, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if !json.Valid(raw) {
		var v any
		return nil, fmt.Errorf("decode tools: %w", json.Unmarshal(raw, &v))
	}
	return parseToolsValid(raw)
}

// parseToolsValid is ParseTools for input known to be valid JSON.
func parseToolsValid(raw []byte) (Tools, error) {
	if isNullJSON(raw) {
		return nil, nil
	}
	out := Tools{}
	err := forEachElement(raw, func(tool []byte) error {
		if len(tool) == 0 || tool[0] != '{' {
			return nil
		}
		var name string
		var params []byte
		_ = forEachMember(tool, func(k, fn []byte) error {
			if string(k) != "function" || fn[0] != '{' {
				return nil
			}
			return forEachMember(fn, func(fk, fv []byte) error {
				switch string(fk) {
				case "name":
					if v, err := parseValue(fv); err == nil {
						name, _ = v.(string)
					}
				case "parameters":
					params = fv
				}
				return nil
			})
		})
		if name != "" {
			s := parseSchema(params)
			if s != nil {
				s.Name = name
			}
			out[normName(name)] = s
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("decode tools: %w", err)
	}
	return out, nil
}

// parseSchema reads a valid JSON schema object; nil when b is not an
// object.
func parseSchema(b []byte) *Schema {
	if isNullJSON(b) || skipSpace(b, 0) >= len(b) || b[skipSpace(b, 0)] != '{' {
		return nil
	}
	s := &Schema{}
	_ = forEachMember(b, func(k, v []byte) error {
		switch string(k) {
		case "type":
			s.Type = s.Type[:0]
			switch v[0] {
			case '"':
				if t, err := parseValue(v); err == nil {
					s.Type = append(s.Type, t.(string))
				}
			case '[':
				_ = forEachElement(v, func(e []byte) error {
					if t, err := parseValue(e); err == nil {
						if name, ok := t.(string); ok {
							s.Type = append(s.Type, name)
						}
					}
					return nil
				})
			}
		case "properties":
			if v[0] != '{' {
				return nil
			}
			s.Properties = map[string]*Schema{}
			_ = forEachMember(v, func(pk, pv []byte) error {
				ps := parseSchema(pv)
				if ps == nil {
					ps = &Schema{}
				}
				s.Properties[string(pk)] = ps
				return nil
			})
		case "required":
			if v[0] != '[' {
				return nil
			}
			s.Required = s.Required[:0]
			_ = forEachElement(v, func(e []byte) error {
				if t, err := parseValue(e); err == nil {
					if name, ok := t.(string); ok {
						s.Required = append(s.Required, name)
					}
				}
				return nil
			})
		case "items":
			s.Items = parseSchema(v)
		}
		return nil
	})
	return s
}

func isNullJSON(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) == 0 || string(b) == "null"
}

// Answer is the expected calls of one item with the acceptable values of
// each argument (BFCL's possible answer). An acceptable list containing ""
// means the argument may be left out. An object's acceptable value is a
// map of acceptable lists (BFCL's dict answers) or a literal object.
type Answer []AnswerCall

// AnswerCall is one expected call.
type AnswerCall struct {
	Name   string
	Params map[string][]any
	// FromReference marks an answer built from a logged reference call:
	// a schema-required argument the reference itself left out may be
	// left out.
	FromReference bool
}

// AnswerFromCalls builds the answer that accepts exactly the given calls:
// each argument's single acceptable value is the reference value, and
// arguments the reference left out may be left out.
func AnswerFromCalls(ref []Call) Answer {
	out := make(Answer, 0, len(ref))
	for _, c := range ref {
		ac := AnswerCall{Name: c.Name, Params: make(map[string][]any, len(c.Args)), FromReference: true}
		for k, v := range c.Args {
			ac.Params[k] = []any{literalToAcceptable(v)}
		}
		out = append(out, ac)
	}
	return out
}

// literalToAcceptable turns a literal value into acceptable-value form:
// objects become maps of one-element acceptable lists.
func literalToAcceptable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = []any{literalToAcceptable(e)}
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = literalToAcceptable(e)
		}
		return l
	}
	return v
}

// LoadAnswers reads a BFCL possible-answer file: one
// {"id", "ground_truth": [{fn: {param: [acceptable…]}}]} object per line.
// It returns the answers by id; a bad line is an error naming it.
func LoadAnswers(r io.Reader) (map[string]Answer, error) {
	out := map[string]Answer{}
	br := bufio.NewReader(r)
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		if len(strings.TrimSpace(string(b))) > 0 {
			v, derr := decodeJSON(b)
			if derr != nil {
				return nil, fmt.Errorf("answers line %d: %w", line, derr)
			}
			id, ans, perr := parseAnswer(v)
			if perr != nil {
				return nil, fmt.Errorf("answers line %d: %w", line, perr)
			}
			out[id] = ans
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read answers line %d: %w", line, err)
		}
	}
}

func parseAnswer(v any) (string, Answer, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return "", nil, fmt.Errorf("not a JSON object")
	}
	id, _ := obj["id"].(string)
	if id == "" {
		return "", nil, fmt.Errorf("missing id")
	}
	gt, ok := obj["ground_truth"].([]any)
	if !ok {
		return "", nil, fmt.Errorf("%s: ground_truth is not a list", id)
	}
	var ans Answer
	for i, c := range gt {
		cm, ok := c.(map[string]any)
		if !ok || len(cm) != 1 {
			return "", nil, fmt.Errorf("%s: ground_truth[%d] is not a one-function object", id, i)
		}
		for fn, params := range cm {
			pm, ok := params.(map[string]any)
			if !ok {
				return "", nil, fmt.Errorf("%s: ground_truth[%d].%s is not an object", id, i, fn)
			}
			ac := AnswerCall{Name: fn, Params: make(map[string][]any, len(pm))}
			for p, vals := range pm {
				l, ok := vals.([]any)
				if !ok {
					return "", nil, fmt.Errorf("%s: %s.%s: acceptable values are not a list", id, fn, p)
				}
				ac.Params[p] = l
			}
			ans = append(ans, ac)
		}
	}
	return id, ans, nil
}

// Check is the verdict of the AST checker on one item.
type Check struct {
	Valid bool
	// Class is the error class of an invalid item ("" when valid): one of
	// the Class… constants, or BFCL's error_type in the bfcl mode
	// (CheckCallsBFCL).
	Class string
	// Detail explains the failure in words.
	Detail string
}

// CheckCalls checks predicted calls against an answer the way BFCL's AST
// checker does: the count must match; each call's function must be the
// expected one; schema-required arguments must be present; every argument
// must be in the answer; values must have the schema's
// type and be among the acceptable values. Parallel calls match in any
// order (a full bipartite matching of expected to predicted calls).
// tools may be nil, which skips the schema checks.
func CheckCalls(tools Tools, pred []Call, want Answer) Check {
	for _, c := range pred {
		if c.ArgsErr != nil {
			return Check{Class: ClassInvalidJSON, Detail: fmt.Sprintf("%s: %v", c.Name, c.ArgsErr)}
		}
	}
	switch {
	case len(want) == 0 && len(pred) == 0:
		return Check{Valid: true}
	case len(want) == 0:
		return Check{Class: ClassWrongCount, Detail: fmt.Sprintf("expected no call, got %d", len(pred))}
	case len(pred) == 0:
		return Check{Class: ClassNoToolCall, Detail: fmt.Sprintf("expected %d call(s), got none", len(want))}
	case len(pred) != len(want):
		return Check{Class: ClassWrongCount, Detail: fmt.Sprintf("expected %d call(s), got %d", len(want), len(pred))}
	}
	// Every predicted function must be one of the expected ones, under the
	// name it was offered (an answer's "math.factorial" is served as
	// "math_factorial" to providers that forbid dots); the predicted name is
	// never rewritten.
	if _, unmatched := matchAll(len(want), len(pred), func(wi, pi int) bool { return nameOK(tools, pred[pi].Name, want[wi].Name) }); unmatched >= 0 {
		predNames := make([]string, len(pred))
		wantNames := make([]string, len(want))
		for i, c := range pred {
			predNames[i] = c.Name
		}
		for i, c := range want {
			wantNames[i] = c.Name
		}
		slices.Sort(predNames)
		slices.Sort(wantNames)
		return Check{Class: ClassWrongName, Detail: fmt.Sprintf("called %s, expected %s",
			strings.Join(predNames, ", "), strings.Join(wantNames, ", "))}
	}
	// Match expected calls to predicted calls as a bipartite matching
	// (BFCL matches greedily, which can miss a valid assignment when
	// acceptable sets overlap).
	ok := make([][]bool, len(want))
	for wi, w := range want {
		ok[wi] = make([]bool, len(pred))
		for pi, p := range pred {
			ok[wi][pi] = checkOne(tools, p, w).Valid
		}
	}
	predFor, wi := matchAll(len(want), len(pred), func(wi, pi int) bool { return ok[wi][pi] })
	if wi >= 0 {
		// Explain the failure with the first predicted call of the same
		// function that is not taken, else any of that function.
		var fallback *Check
		for pi, p := range pred {
			if !nameOK(tools, p.Name, want[wi].Name) {
				continue
			}
			ch := checkOne(tools, p, want[wi])
			if predFor[pi] < 0 {
				return ch
			}
			if fallback == nil {
				fallback = &ch
			}
		}
		if fallback != nil {
			return *fallback
		}
		return Check{Class: ClassWrongName, Detail: fmt.Sprintf("no call of %s", want[wi].Name)}
	}
	return Check{Valid: true}
}

// matchAll finds a maximum matching of nw expected to np predicted calls
// where ok allows a pair. It returns the expected call matched to each
// predicted call (-1: none) and the first expected call left unmatched
// (-1 when all are matched).
func matchAll(nw, np int, ok func(wi, pi int) bool) ([]int, int) {
	predFor := make([]int, np)
	for i := range predFor {
		predFor[i] = -1
	}
	var augment func(wi int, seen []bool) bool
	augment = func(wi int, seen []bool) bool {
		for pi := range np {
			if !ok(wi, pi) || seen[pi] {
				continue
			}
			seen[pi] = true
			if predFor[pi] < 0 || augment(predFor[pi], seen) {
				predFor[pi] = wi
				return true
			}
		}
		return false
	}
	for wi := range nw {
		if !augment(wi, make([]bool, np)) {
			return predFor, wi
		}
	}
	return predFor, -1
}

// nameOK reports whether a predicted function name is the expected one:
// the name the expected function was offered under, as offered or with
// its dots as underscores (as served by providers that forbid dots), or,
// when the tools do not say, the expected name in either form. A name
// with dots never stands for one offered with underscores.
func nameOK(tools Tools, pred, want string) bool {
	if s := tools[normName(want)]; s != nil && s.Name != "" {
		want = s.Name
	}
	return pred == want || pred == normName(want)
}

// checkOne checks one predicted call against one expected call.
func checkOne(tools Tools, p Call, w AnswerCall) Check {
	if !nameOK(tools, p.Name, w.Name) {
		return Check{Class: ClassWrongName, Detail: fmt.Sprintf("called %s, expected %s", p.Name, w.Name)}
	}
	name := p.Name
	schema := tools[normName(w.Name)]
	if schema != nil {
		for _, r := range schema.Required {
			accs, inAnswer := w.Params[r]
			if slices.ContainsFunc(accs, isOmitMarker) || (w.FromReference && !inAnswer) {
				continue // the answer itself accepts leaving it out
			}
			if _, ok := p.Args[r]; !ok {
				return Check{Class: ClassMissingRequired, Detail: fmt.Sprintf("%s: required argument %q missing", name, r)}
			}
		}
	}
	keys := make([]string, 0, len(p.Args))
	for k := range p.Args {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		// BFCL also rejects arguments missing from the schema; an answer
		// that lists one explicitly wins here (BFCL's own data has such
		// answers), so only the answer decides.
		if _, inAnswer := w.Params[k]; !inAnswer {
			return Check{Class: ClassUnexpectedParam, Detail: fmt.Sprintf("%s: unexpected argument %q", name, k)}
		}
	}
	var props map[string]*Schema
	if schema != nil {
		props = schema.Properties
	}
	for _, k := range keys {
		v := p.Args[k]
		accs := valuesFor(w.Params[k], props[k])
		if v == nil && slices.ContainsFunc(accs, func(a any) bool { return a == nil }) {
			continue
		}
		if acceptable(v, accs) {
			continue // a value the answer lists is never a type error
		}
		if _, isString := v.(string); isString && slices.ContainsFunc(accs, isNonEmptyString) {
			// BFCL tolerates a string where another type is declared when
			// the answer is a string too (a variable name such as
			// "data['sales']"); the value check decides.
			continue
		}
		if schema != nil && schema.Properties != nil {
			if err := checkType(v, schema.Properties[k], k); err != "" {
				return Check{Class: ClassTypeError, Detail: fmt.Sprintf("%s: %s", name, err)}
			}
		}
	}
	for _, k := range keys {
		if !acceptable(p.Args[k], valuesFor(w.Params[k], props[k])) {
			return Check{Class: ClassValueError, Detail: fmt.Sprintf("%s: argument %q = %s is not acceptable", name, k, Canonical(p.Args[k]))}
		}
	}
	wantKeys := make([]string, 0, len(w.Params))
	for k := range w.Params {
		wantKeys = append(wantKeys, k)
	}
	slices.Sort(wantKeys)
	for _, k := range wantKeys {
		if _, ok := p.Args[k]; !ok && !slices.ContainsFunc(w.Params[k], isOmitMarker) {
			return Check{Class: ClassMissingOptional, Detail: fmt.Sprintf("%s: argument %q missing", name, k)}
		}
	}
	return Check{Valid: true}
}

// valuesFor returns the acceptable values of an argument as values: the
// "may omit" marker "" is a value only for an argument whose schema
// allows a string (or that has no schema type).
func valuesFor(accs []any, s *Schema) []any {
	if s == nil || len(s.Type) == 0 || !slices.ContainsFunc(accs, isOmitMarker) {
		return accs
	}
	for _, t := range s.Type {
		if hasType("", t) {
			return accs
		}
	}
	return slices.DeleteFunc(slices.Clone(accs), isOmitMarker)
}

// isOmitMarker reports whether an acceptable value is BFCL's "" (may be
// left out).
func isOmitMarker(a any) bool {
	s, ok := a.(string)
	return ok && s == ""
}

// isNonEmptyString reports whether an acceptable value is a non-empty
// string.
func isNonEmptyString(a any) bool {
	s, ok := a.(string)
	return ok && s != ""
}

// checkType returns "" when v has the schema's type, else a description.
// Nested arrays and objects are checked against items and properties.
func checkType(v any, s *Schema, path string) string {
	if s == nil || len(s.Type) == 0 {
		return ""
	}
	for _, t := range s.Type {
		if hasType(v, t) {
			switch x := v.(type) {
			case []any:
				for i, e := range x {
					if err := checkType(e, s.Items, fmt.Sprintf("%s[%d]", path, i)); err != "" {
						return err
					}
				}
			case map[string]any:
				for k, e := range x {
					if err := checkType(e, s.Properties[k], path+"."+k); err != "" {
						return err
					}
				}
			}
			return ""
		}
	}
	return fmt.Sprintf("argument %q = %s is not of type %s", path, Canonical(v), strings.Join(s.Type, "|"))
}

// hasType reports whether v is of the JSON-schema type t. Python-style
// names BFCL sometimes uses (float, dict, tuple, bool, any) are accepted.
func hasType(v any, t string) bool {
	switch t {
	case "string":
		_, ok := v.(string)
		return ok
	case "integer", "int":
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		f, _, err := big.ParseFloat(string(n), 10, 128, big.ToNearestEven)
		return err == nil && f.IsInt()
	case "number", "float":
		_, ok := v.(json.Number)
		return ok
	case "boolean", "bool":
		_, ok := v.(bool)
		return ok
	case "array", "tuple":
		_, ok := v.([]any)
		return ok
	case "object", "dict":
		_, ok := v.(map[string]any)
		return ok
	case "null":
		return v == nil
	case "any", "":
		return true
	}
	return true // an unknown type name is not held against the model
}

// acceptable reports whether v matches one of the acceptable values.
func acceptable(v any, accs []any) bool {
	for _, a := range accs {
		if matchValue(v, a) {
			return true
		}
	}
	return false
}

// matchValue compares v with one acceptable value: strings after BFCL's
// normalisation, numbers by value, lists element by element in order,
// objects key by key against their acceptable lists.
func matchValue(v, a any) bool {
	switch acc := a.(type) {
	case map[string]any:
		obj, ok := v.(map[string]any)
		if !ok {
			return false
		}
		return matchAcceptableMap(obj, acc) || matchLiteralMap(obj, acc)
	case []any:
		list, ok := v.([]any)
		if !ok || len(list) != len(acc) {
			return false
		}
		for i := range list {
			if !matchValue(list[i], acc[i]) {
				return false
			}
		}
		return true
	case string:
		s, ok := v.(string)
		return ok && normString(s) == normString(acc)
	case json.Number:
		n, ok := v.(json.Number)
		return ok && numEqual(n, acc)
	case nil:
		return v == nil
	default:
		return v == a
	}
}

// matchAcceptableMap matches an object against an answer object whose
// every value is a list of acceptable values (BFCL's dict answers): each
// key of obj must be acceptable, and a missing key must be omittable.
func matchAcceptableMap(obj, acc map[string]any) bool {
	for _, l := range acc {
		if _, ok := l.([]any); !ok {
			return false
		}
	}
	for k, e := range obj {
		l, ok := acc[k].([]any)
		if !ok || !acceptable(e, l) {
			return false
		}
	}
	for k, l := range acc {
		if _, ok := obj[k]; ok {
			continue
		}
		if !slices.ContainsFunc(l.([]any), isOmitMarker) {
			return false
		}
	}
	return true
}

// matchLiteralMap matches an object against a literal answer object (an
// object nested inside an acceptable value): the same keys, each value
// matching.
func matchLiteralMap(obj, acc map[string]any) bool {
	if len(obj) != len(acc) {
		return false
	}
	for k, e := range obj {
		a, ok := acc[k]
		if !ok || !matchValue(e, a) {
			return false
		}
	}
	return true
}

// normString is BFCL's string normalisation: lower case, without spaces
// and the characters , . / - _ * ^, with single quotes as double quotes.
func normString(s string) string {
	var sb strings.Builder
	sb.Grow(len(s))
	for _, r := range strings.ToLower(s) {
		switch r {
		case ' ', ',', '.', '/', '-', '_', '*', '^':
			continue
		case '\'':
			sb.WriteRune('"')
		default:
			sb.WriteRune(r)
		}
	}
	return sb.String()
}

// numEqual compares two JSON numbers by value.
func numEqual(a, b json.Number) bool {
	if a == b {
		return true
	}
	fa, _, errA := big.ParseFloat(string(a), 10, 128, big.ToNearestEven)
	fb, _, errB := big.ParseFloat(string(b), 10, 128, big.ToNearestEven)
	return errA == nil && errB == nil && fa.Cmp(fb) == 0
}
