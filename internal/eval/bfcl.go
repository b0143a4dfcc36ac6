package eval

import (
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"strings"
)

// ToolCallChecker names a mode of the AST checker (config key
// eval.tool_call_checker).
type ToolCallChecker string

const (
	// CheckerFlywheel is the default mode: BFCL's checks with the
	// documented deviations of CheckCalls.
	CheckerFlywheel ToolCallChecker = "flywheel"
	// CheckerBFCL reproduces the verdicts and error types of BFCL's AST
	// checker exactly, quirks included (CheckCallsBFCL).
	CheckerBFCL ToolCallChecker = "bfcl"
)

// Valid reports whether c names a mode ("" is the default).
func (c ToolCallChecker) Valid() bool {
	return c == "" || c == CheckerFlywheel || c == CheckerBFCL
}

// Check checks predicted calls against an answer in the mode c; in the
// bfcl mode the BFCL category is inferred from the answer and the tools.
func (c ToolCallChecker) Check(tools Tools, pred []Call, want Answer) Check {
	if c == CheckerBFCL {
		return CheckCallsBFCL(tools, pred, want, "")
	}
	return CheckCalls(tools, pred, want)
}

// AnswerFromCalls builds the answer that accepts exactly the reference
// calls in the mode c. In the bfcl mode it has the shape of BFCL's own
// answers: an object argument whose schema type is an object is a map of
// one-value acceptable lists (so are the objects of an array of objects),
// and every deeper value is a literal.
func (c ToolCallChecker) AnswerFromCalls(tools Tools, ref []Call) Answer {
	if c != CheckerBFCL {
		return AnswerFromCalls(ref)
	}
	out := make(Answer, 0, len(ref))
	for _, rc := range ref {
		var props map[string]*Schema
		if s := tools[normName(rc.Name)]; s != nil {
			props = s.Properties
		}
		ac := AnswerCall{Name: rc.Name, Params: make(map[string][]any, len(rc.Args))}
		for k, v := range rc.Args {
			desc, items := "", ""
			if ps := props[k]; ps != nil {
				desc = bfclTypeName(ps)
				if ps.Items != nil {
					items = bfclTypeName(ps.Items)
				}
			}
			ac.Params[k] = []any{bfclAcceptable(v, desc, items)}
		}
		out = append(out, ac)
	}
	return out
}

// bfclAcceptable shapes one reference value as BFCL's answers do.
func bfclAcceptable(v any, desc, items string) any {
	kind, known := bfclPyType(desc)
	switch x := v.(type) {
	case map[string]any:
		if known && kind == pyDict {
			return oneLevelAcceptable(x)
		}
	case []any:
		if ik, ok := bfclPyType(items); known && kind == pyList && ok && ik == pyDict {
			l := make([]any, len(x))
			for i, e := range x {
				if m, ok := e.(map[string]any); ok {
					l[i] = oneLevelAcceptable(m)
				} else {
					l[i] = e
				}
			}
			return l
		}
	}
	return v
}

func oneLevelAcceptable(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, e := range m {
		out[k] = []any{e}
	}
	return out
}

// BFCL test categories of the AST checker (CheckCallsBFCL).
const (
	BFCLSimple           = "simple"
	BFCLMultiple         = "multiple"
	BFCLParallel         = "parallel"
	BFCLParallelMultiple = "parallel_multiple"
)

// bfclResult is one verdict of a BFCL checker function.
type bfclResult struct {
	valid      bool
	errType    string
	detail     string
	isVariable bool
}

func bfclFail(errType, format string, args ...any) bfclResult {
	return bfclResult{errType: errType, detail: fmt.Sprintf(format, args...)}
}

var bfclOK = bfclResult{valid: true}

// bfclPred is one decoded predicted call.
type bfclPred struct {
	name   string
	params pyVal // a dict
}

// CheckCallsBFCL checks predicted calls the way BFCL's AST checker
// (berkeley-function-call-leaderboard, ast_checker.py) does for a
// function-calling model whose served names have dots replaced by
// underscores, and names the failure with BFCL's error_type
// ("type_error:nested", "simple_function_checker:missing_required", …) as
// Check.Class. category is one of the BFCL* categories; "" infers it: more
// than one expected call is parallel, else more than one tool offered is
// multiple, else simple. An answer with no call is checked as BFCL's
// irrelevance categories are.
//
// Each call's arguments are decoded as Python's json.loads does (invalid:
// "ast_decoder:decoder_failed"; not an object:
// "ast_decoder:decoder_wrong_output_format"). Where BFCL would raise (a
// schema or type name it does not know, an expected function missing
// from the tools), this checker goes on: JSON Schema names map to BFCL's
// (number as float, object as dict), a type union uses its first non-null
// type, and a parameter with no usable type takes the type of its answer.
func CheckCallsBFCL(tools Tools, pred []Call, want Answer, category string) Check {
	if len(want) == 0 {
		if len(pred) == 0 {
			return Check{Valid: true}
		}
		return Check{Class: "irrelevance_error:decoder_success", Detail: fmt.Sprintf("expected no call, got %d", len(pred))}
	}
	decoded := make([]bfclPred, len(pred))
	for i, c := range pred {
		v, err := pyLoads(c.RawArgs)
		if err != nil {
			return Check{Class: "ast_decoder:decoder_failed", Detail: fmt.Sprintf("Invalid syntax. Failed to decode AST. %s: %v", c.Name, err)}
		}
		decoded[i] = bfclPred{name: c.Name, params: v}
	}
	for _, d := range decoded {
		if d.params.kind != pyDict {
			return Check{Class: "ast_decoder:decoder_wrong_output_format", Detail: fmt.Sprintf("%s: arguments are not an object", d.name)}
		}
	}
	if category == "" {
		switch {
		case len(want) > 1:
			category = BFCLParallel
		case len(tools) > 1:
			category = BFCLMultiple
		default:
			category = BFCLSimple
		}
	}
	var r bfclResult
	switch {
	case strings.Contains(category, "parallel"):
		r = bfclParallel(tools, decoded, want)
	case strings.Contains(category, "multiple"):
		if len(decoded) != len(want) {
			r = bfclFail("multiple_function_checker:wrong_count", "Wrong number of functions.")
			break
		}
		schema, name := bfclFind(tools, want[0].Name)
		r = bfclSimpleCheck(schema, name, decoded[0], want[0])
	default:
		if len(decoded) != 1 {
			r = bfclFail("simple_function_checker:wrong_count", "Wrong number of functions.")
			break
		}
		// BFCL takes the first (only) function description of the item.
		schema, name := bfclFind(tools, want[0].Name)
		if len(tools) == 1 {
			for k, s := range tools {
				schema, name = s, k
			}
		}
		r = bfclSimpleCheck(schema, name, decoded[0], want[0])
	}
	if r.valid {
		return Check{Valid: true}
	}
	return Check{Class: r.errType, Detail: r.detail}
}

// bfclFind returns the schema of the expected function and the name a
// model is expected to call (dots replaced by underscores).
func bfclFind(tools Tools, name string) (*Schema, string) {
	n := normName(name)
	return tools[n], n
}

// bfclParallel matches every expected call, in order, to the first
// unmatched predicted call that passes (BFCL's greedy, order-free match).
func bfclParallel(tools Tools, pred []bfclPred, want Answer) bfclResult {
	if len(pred) != len(want) {
		return bfclFail("parallel_function_checker_no_order:wrong_count", "Wrong number of functions.")
	}
	matched := make([]bool, len(pred))
	for wi, w := range want {
		schema, name := bfclFind(tools, w.Name)
		var errs []string
		found := false
		for pi, p := range pred {
			if matched[pi] {
				continue
			}
			r := bfclSimpleCheck(schema, name, p, w)
			if r.valid {
				matched[pi], found = true, true
				break
			}
			errs = append(errs, fmt.Sprintf("model result %d: %s (%s)", pi, r.detail, r.errType))
		}
		if !found {
			return bfclFail("parallel_function_checker_no_order:cannot_find_match",
				"Could not find a matching function for index %d of possible answers: %s", wi, strings.Join(errs, "; "))
		}
	}
	return bfclOK
}

// bfclTypeName is the schema's type description as BFCL reads it: the
// first non-null name of a union.
func bfclTypeName(s *Schema) string {
	if s == nil {
		return ""
	}
	for _, t := range s.Type {
		if t != "null" {
			return t
		}
	}
	return ""
}

// bfclPyType maps a type description to the Python type BFCL checks:
// BFCL's names (string, integer, float, boolean, array, tuple, dict, any)
// and the JSON Schema and other names BFCL's converters know.
func bfclPyType(desc string) (pyKind, bool) {
	switch desc {
	case "string", "any", "char", "String", "Any":
		return pyStr, true
	case "integer", "int", "byte", "short", "long", "Bigint":
		return pyInt, true
	case "float", "number", "double":
		return pyFloat, true
	case "boolean", "bool", "Boolean":
		return pyBool, true
	case "array", "tuple", "list", "Array", "ArrayList", "Queue", "Stack":
		return pyList, true
	case "dict", "object", "HashMap", "Hashtable":
		return pyDict, true
	}
	return 0, false
}

// possibleAnswerType is the type of the first acceptable value other than
// the "may omit" marker "".
func possibleAnswerType(possible []pyVal) (pyKind, bool) {
	for _, a := range possible {
		if a.kind == pyStr && a.s == "" {
			continue
		}
		return a.kind, true
	}
	return 0, false
}

// bfclTypeCheck is BFCL's type_checker: a value of another type than the
// schema's passes as a "variable" when it has the type of the first
// acceptable value; arrays check their elements one level deep.
func bfclTypeCheck(param string, value pyVal, possible []pyVal, desc string, expected pyKind, nested *pyKind) bfclResult {
	isVariable := false
	paType, paKnown := possibleAnswerType(possible)
	if paKnown && paType != expected {
		isVariable = true
	}
	res := bfclResult{valid: true, errType: "type_error:simple"}
	if value.kind == expected {
		if nested == nil {
			return bfclResult{valid: true, isVariable: isVariable}
		}
		for _, item := range possible {
			flag := true
			if item.kind == pyList {
				for _, vi := range value.list {
					if !bfclTypeCheck(param, vi, item.list, nested.String(), *nested, nil).valid {
						flag = false
						break
					}
				}
			}
			if flag {
				return bfclResult{valid: true, isVariable: isVariable}
			}
		}
		res = bfclFail("type_error:nested", "Nested type checking failed for parameter %q. Expected outer type %s with inner type %s. Parameter value: %s.",
			param, desc, nested.String(), value.repr())
	}
	if paKnown && value.kind == paType {
		res.isVariable = true
		return res
	}
	return bfclFail("type_error:simple", "Incorrect type for parameter %q. Expected type %s, got %s. Parameter value: %s.",
		param, desc, value.kind, value.repr())
}

var bfclStrip = regexp.MustCompile(`[ ,./\-_*^]`)

// bfclStandardize is BFCL's standardize_string: without spaces and
// ,./-_*^, lower case, single quotes as double quotes.
func bfclStandardize(s string) string {
	return strings.ReplaceAll(pyLower(bfclStrip.ReplaceAllString(s, "")), "'", `"`)
}

func bfclStandardizeVal(v pyVal) pyVal {
	if v.kind == pyStr {
		return pyVal{kind: pyStr, s: bfclStandardize(v.s)}
	}
	return v
}

// bfclString is BFCL's string_checker.
func bfclString(param string, value pyVal, possible []pyVal) bfclResult {
	std := bfclStandardize(value.s)
	for _, a := range possible {
		if a.kind == pyStr && bfclStandardize(a.s) == std {
			return bfclOK
		}
	}
	return bfclFail("value_error:string", "Invalid value for parameter %q: %s. Expected one of %s. Case insensitive.", param, value.repr(), reprList(possible))
}

// bfclList is BFCL's list_checker: top-level strings are standardised on
// both sides; an acceptable value that is a string is read as the list of
// its characters (so "" accepts []).
func bfclList(param string, value pyVal, possible []pyVal) bfclResult {
	std := make([]pyVal, len(value.list))
	for i, e := range value.list {
		std[i] = bfclStandardizeVal(e)
	}
	got := pyVal{kind: pyList, list: std}
	for _, a := range possible {
		var elems []pyVal
		switch a.kind {
		case pyList:
			elems = a.list
		case pyStr:
			elems = pyChars(a.s)
		case pyDict:
			if len(a.keys) > 0 {
				continue // BFCL raises on such an answer
			}
		default:
			continue // BFCL raises on such an answer
		}
		l := make([]pyVal, len(elems))
		for i, e := range elems {
			l[i] = bfclStandardizeVal(e)
		}
		if pyEqual(got, pyVal{kind: pyList, list: l}) {
			return bfclOK
		}
	}
	return bfclFail("value_error:list/tuple", "Invalid value for parameter %q: %s. Expected one of %s.", param, value.repr(), reprList(possible))
}

// bfclDict is BFCL's dict_checker: each acceptable value (other than "")
// is a map of acceptable lists; only top-level strings are standardised.
func bfclDict(param string, value pyVal, possible []pyVal) bfclResult {
	res := bfclFail("dict_checker:unclear", "no acceptable dictionary for parameter %q", param)
	for _, a := range possible {
		if a.kind == pyStr && a.s == "" {
			continue
		}
		res = bfclFail("dict_checker:unclear", "no acceptable dictionary for parameter %q", param)
		if a.kind != pyDict {
			continue // BFCL raises or misreads such an answer
		}
		flag := true
		for i, k := range value.keys {
			accs, ok := a.get(k)
			if !ok {
				res = bfclFail("value_error:dict_key", "Unexpected dict key parameter: %q.", k)
				flag = false
				break
			}
			sv := bfclStandardizeVal(value.vals[i])
			var stdAcc []pyVal
			switch accs.kind {
			case pyList:
				for _, e := range accs.list {
					stdAcc = append(stdAcc, bfclStandardizeVal(e))
				}
			case pyStr:
				for _, r := range accs.s {
					stdAcc = append(stdAcc, pyVal{kind: pyStr, s: bfclStandardize(string(r))})
				}
			}
			if !pyIn(sv, stdAcc) {
				res = bfclFail("value_error:dict_value", "Invalid value for parameter %q: %s. Expected one of %s.", k, value.vals[i].repr(), reprList(stdAcc))
				flag = false
				break
			}
		}
		for i, k := range a.keys {
			if value.has(k) {
				continue
			}
			if !bfclContainsOmit(a.vals[i]) {
				res = bfclFail("value_error:dict_key", "Missing dict key parameter: %q.", k)
				flag = false
				break
			}
		}
		if flag {
			return bfclOK
		}
	}
	return res
}

// bfclContainsOmit is Python's `"" in value` for an acceptable list (for a
// string, a substring test, which "" always passes).
func bfclContainsOmit(v pyVal) bool {
	switch v.kind {
	case pyList:
		return pyIn(pyVal{kind: pyStr}, v.list)
	case pyStr:
		return true
	case pyDict:
		return v.has("")
	}
	return false
}

// pyChars returns the list of s's characters as Python strings, as
// Python's list(s) does (nil for "").
func pyChars(s string) []pyVal {
	var out []pyVal
	for _, r := range s {
		out = append(out, pyVal{kind: pyStr, s: string(r)})
	}
	return out
}

// bfclListDict is BFCL's list_dict_checker: the dictionaries must match
// one acceptable list's, in order.
func bfclListDict(param string, value pyVal, possible []pyVal) bfclResult {
	res := bfclFail("list_dict_checker:unclear", "no acceptable list of dictionaries for parameter %q", param)
	for _, a := range possible {
		var alts []pyVal
		switch a.kind {
		case pyList:
			alts = a.list
		case pyStr:
			alts = pyChars(a.s)
		default:
			continue // BFCL raises on such an answer
		}
		if len(value.list) != len(alts) {
			res = bfclFail("value_error:list_dict_count", "Wrong number of dictionaries in the list.")
			continue
		}
		flag := true
		for i, d := range value.list {
			if d.kind != pyDict {
				flag = false
				res = bfclFail("list_dict_checker:unclear", "element %d of parameter %q is not a dictionary", i, param)
				break
			}
			res = bfclDict(param, d, []pyVal{alts[i]})
			if !res.valid {
				flag = false
				break
			}
		}
		if flag {
			return bfclOK
		}
	}
	return res
}

func reprList(l []pyVal) string {
	return pyVal{kind: pyList, list: l}.repr()
}

// bfclSimpleCheck is BFCL's simple_function_checker for one predicted
// call against one expected call. schema may be nil (BFCL would raise):
// then every parameter of the answer is known and has its answer's type.
func bfclSimpleCheck(schema *Schema, funcName string, pred bfclPred, want AnswerCall) bfclResult {
	if pred.name != funcName {
		return bfclFail("simple_function_checker:wrong_func_name", "Function name %q not found in model output.", funcName)
	}
	possible := make(map[string][]pyVal, len(want.Params))
	for k, l := range want.Params {
		pl := make([]pyVal, len(l))
		for i, a := range l {
			pl[i] = pyFromAny(a)
		}
		possible[k] = pl
	}
	if schema != nil {
		for _, r := range schema.Required {
			if !pred.params.has(r) {
				return bfclFail("simple_function_checker:missing_required", "Missing required parameter: %q.", r)
			}
		}
	}
	for i, param := range pred.params.keys {
		value := pred.params.vals[i]
		var ps *Schema
		inSchema := schema == nil
		if schema != nil {
			ps, inSchema = schema.Properties[param]
		}
		accs, inAnswer := possible[param]
		if !inSchema || !inAnswer {
			return bfclFail("simple_function_checker:unexpected_param", "Unexpected parameter: %q.", param)
		}
		desc := bfclTypeName(ps)
		expected, known := bfclPyType(desc)
		if !known {
			// No type BFCL knows: the answer's type, else the value's.
			if t, ok := possibleAnswerType(accs); ok {
				expected = t
			} else {
				expected = value.kind
			}
		}
		var nested *pyKind
		if known && expected == pyList && ps != nil && ps.Items != nil {
			if nk, ok := bfclPyType(bfclTypeName(ps.Items)); ok {
				nested = &nk
			}
		}
		if (desc == "float" || desc == "number") && value.kind == pyInt {
			value = pyVal{kind: pyFloat, f: intToFloat(value)}
		}
		tr := bfclTypeCheck(param, value, accs, desc, expected, nested)
		if !tr.valid {
			return tr
		}
		if !tr.isVariable {
			var r bfclResult
			switch {
			case expected == pyDict:
				r = bfclDict(param, value, accs)
			case expected == pyList && nested != nil && *nested == pyDict:
				r = bfclListDict(param, value, accs)
			case expected == pyStr:
				r = bfclString(param, value, accs)
			case expected == pyList:
				r = bfclList(param, value, accs)
			default:
				if !pyIn(value, accs) {
					return bfclFail("value_error:others", "Invalid value for parameter %q: %s. Expected one of %s.", param, value.repr(), reprList(accs))
				}
				continue
			}
			if !r.valid {
				return r
			}
			continue
		}
		if !pyIn(value, accs) {
			return bfclFail("value_error:others", "Invalid value for parameter %q: %s. Expected one of %s.", param, value.repr(), reprList(accs))
		}
	}
	keys := make([]string, 0, len(possible))
	for k := range possible {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !pred.params.has(k) && !pyIn(pyVal{kind: pyStr}, possible[k]) {
			return bfclFail("simple_function_checker:missing_optional", "Optional parameter %q not provided and not marked as optional.", k)
		}
	}
	return bfclOK
}

// intToFloat is Python's float(int) (huge integers become ±Inf where
// Python raises).
func intToFloat(v pyVal) float64 {
	f, _ := new(big.Float).SetInt(v.intValue()).Float64()
	return f
}
