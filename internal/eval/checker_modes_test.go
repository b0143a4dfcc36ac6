package eval

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/testcorpus"
)

// modeTools offers one function with every kind of parameter, under the
// name a provider that forbids dots serves "uber.ride" as.
const modeTools = `[{"type":"function","function":{"name":"uber_ride","parameters":{"type":"object",
	"properties":{
		"loc":{"type":"string"},
		"time":{"type":"integer"},
		"ok":{"type":"boolean"},
		"ratio":{"type":"number"},
		"flags":{"type":"array","items":{"type":"number"}},
		"ids":{"type":"array","items":{"type":"integer"}},
		"opts":{"type":"object","properties":{"range":{"type":"object"},"unit":{"type":"string"}}},
		"rides":{"type":"array","items":{"type":"object"}},
		"x":{"type":"any"}
	},
	"required":["loc"]}}}]`

// modeAnswer decodes one expected call's acceptable values.
func modeAnswer(t *testing.T, name, params string) Answer {
	t.Helper()
	v, err := decodeJSON([]byte(`{"id":"t","ground_truth":[{"` + name + `":` + params + `}]}`))
	require.NoError(t, err)
	_, ans, err := parseAnswer(v)
	require.NoError(t, err)
	return ans
}

// verdict is the expected outcome in one mode: "" for valid, else the
// class.
type modeCase struct {
	name     string
	answer   string // acceptable values of uber.ride's parameters
	pred     string // uber_ride's arguments
	predName string // "" for uber_ride
	flywheel string
	bfcl     string
}

func TestCheckerModes(t *testing.T) {
	t.Parallel()
	tools, err := ParseTools(json.RawMessage(modeTools))
	require.NoError(t, err)

	tests := []modeCase{
		// Agreement on the basics.
		{name: "Valid", answer: `{"loc":["New York"],"time":[5,""]}`, pred: `{"loc":"new-york","time":5}`},
		{name: "MissingRequired", answer: `{"loc":["NYC"]}`, pred: `{}`,
			flywheel: ClassMissingRequired, bfcl: "simple_function_checker:missing_required"},
		{name: "UnexpectedParam", answer: `{"loc":["NYC"]}`, pred: `{"loc":"NYC","zz":1}`,
			flywheel: ClassUnexpectedParam, bfcl: "simple_function_checker:unexpected_param"},
		{name: "MissingOptional", answer: `{"loc":["NYC"],"time":[5]}`, pred: `{"loc":"NYC"}`,
			flywheel: ClassMissingOptional, bfcl: "simple_function_checker:missing_optional"},
		{name: "InvalidJSON", answer: `{"loc":["NYC"]}`, pred: `{"loc":`,
			flywheel: ClassInvalidJSON, bfcl: "ast_decoder:decoder_failed"},
		{name: "NotAnObject", answer: `{"loc":["NYC"]}`, pred: `["NYC"]`,
			flywheel: ClassInvalidJSON, bfcl: "ast_decoder:decoder_wrong_output_format"},
		{name: "ListOrder", answer: `{"loc":["NYC"],"ids":[[1,2]]}`, pred: `{"loc":"NYC","ids":[2,1]}`,
			flywheel: ClassValueError, bfcl: "value_error:list/tuple"},
		{name: "WrongType", answer: `{"loc":["NYC"],"ok":[true]}`, pred: `{"loc":"NYC","ok":"yes"}`,
			flywheel: ClassTypeError, bfcl: "type_error:simple"},
		{name: "IntValueError", answer: `{"loc":["NYC"],"time":[5]}`, pred: `{"loc":"NYC","time":6}`,
			flywheel: ClassValueError, bfcl: "value_error:others"},
		{name: "DictKeyMissing", answer: `{"loc":["NYC"],"opts":[{"unit":["km"],"range":[{"min":1}]}]}`, pred: `{"loc":"NYC","opts":{"unit":"km"}}`,
			flywheel: ClassValueError, bfcl: "value_error:dict_key"},

		// The four bugs, fixed in both modes.
		{name: "BugTabInString", answer: `{"loc":["New York"]}`, pred: `{"loc":"New\tYork"}`,
			flywheel: ClassValueError, bfcl: "value_error:string"},
		{name: "BugNewlineInString", answer: `{"loc":["New York"]}`, pred: `{"loc":"New York\n"}`,
			flywheel: ClassValueError, bfcl: "value_error:string"},
		{name: "BugNewlineInListString", answer: `{"loc":["NYC"],"x":["a"],"flags":[[1.5]]}`, pred: `{"loc":"NYC\n","x":"a","flags":[1.5]}`,
			flywheel: ClassValueError, bfcl: "value_error:string"},
		{name: "BugDottedPredictedName", answer: `{"loc":["NYC"]}`, pred: `{"loc":"NYC"}`, predName: "uber.ride",
			flywheel: ClassWrongName, bfcl: "simple_function_checker:wrong_func_name"},
		{name: "BugOmitMarkerForInteger", answer: `{"loc":["NYC"],"time":[5,""]}`, pred: `{"loc":"NYC","time":""}`,
			flywheel: ClassTypeError, bfcl: "type_error:simple"},
		{name: "BugOmitMarkerForBoolean", answer: `{"loc":["NYC"],"ok":["",true]}`, pred: `{"loc":"NYC","ok":""}`,
			flywheel: ClassTypeError, bfcl: "type_error:simple"},
		{name: "BugOmitMarkerForArray", answer: `{"loc":["NYC"],"ids":[[1,2],""]}`, pred: `{"loc":"NYC","ids":""}`,
			flywheel: ClassTypeError, bfcl: "type_error:simple"},
		{name: "OmitMarkerForString", answer: `{"loc":["NYC"],"x":["a",""]}`, pred: `{"loc":"NYC","x":""}`},
		{name: "BugNestedLiteralObject", answer: `{"loc":["NYC"],"opts":[{"range":[{"min":1,"max":5}],"unit":["km",""]}]}`,
			pred: `{"loc":"NYC","opts":{"range":{"min":1,"max":5}}}`},
		{name: "NestedLiteralObjectWrongValue", answer: `{"loc":["NYC"],"opts":[{"range":[{"min":1,"max":5}]}]}`,
			pred: `{"loc":"NYC","opts":{"range":{"min":1,"max":6}}}`, flywheel: ClassValueError, bfcl: "value_error:dict_value"},

		// The documented deviations of the default mode.
		{name: "DeviationFloatForInteger", answer: `{"loc":["NYC"],"time":[5]}`, pred: `{"loc":"NYC","time":5.0}`,
			bfcl: "type_error:simple"},
		{name: "DeviationIntegerInFloatArray", answer: `{"loc":["NYC"],"flags":[[1.5,2.0]]}`, pred: `{"loc":"NYC","flags":[1.5,2]}`,
			bfcl: "type_error:nested"},
		{name: "DeviationFloatInIntegerArray", answer: `{"loc":["NYC"],"ids":[[1,2]]}`, pred: `{"loc":"NYC","ids":[1.0,2]}`,
			bfcl: "type_error:nested"},
		{name: "DeviationDontcareNormalised", answer: `{"loc":["NYC"],"time":["","dontcare"]}`, pred: `{"loc":"NYC","time":"DONTCARE"}`,
			bfcl: "value_error:others"},
		{name: "DeviationVariableStringNormalised", answer: `{"loc":["NYC"],"ids":["data['ids']"]}`, pred: `{"loc":"NYC","ids":"data['IDS']"}`,
			bfcl: "value_error:others"},
		{name: "DeviationAnswerListsParamSchemaLacks", answer: `{"loc":["NYC"],"zz":["v"]}`, pred: `{"loc":"NYC","zz":"v"}`,
			bfcl: "simple_function_checker:unexpected_param"},
		{name: "DeviationRequiredMarkedOmittable", answer: `{"loc":["NYC",""]}`, pred: `{}`,
			bfcl: "simple_function_checker:missing_required"},
		{name: "DeviationNestedLiteralStringNormalised", answer: `{"loc":["NYC"],"opts":[{"range":[{"unit":"Km"}]}]}`,
			pred: `{"loc":"NYC","opts":{"range":{"unit":"km"}}}`, bfcl: "value_error:dict_value"},
		{name: "DeviationEmptyListIsNoOmission", answer: `{"loc":["NYC"],"ids":["",[1,2]]}`, pred: `{"loc":"NYC","ids":[]}`,
			flywheel: ClassValueError},
		{name: "DeviationEmptyArgumentsAreNone", answer: `{"loc":["NYC",""]}`, pred: ``,
			bfcl: "ast_decoder:decoder_failed"},
		{name: "DeviationOmitMarkerIsNoVariable", answer: `{"loc":["NYC"],"time":["","dontcare"]}`, pred: `{"loc":"NYC","time":""}`,
			flywheel: ClassValueError},
		{name: "DeviationNaNIsNotJSON", answer: `{"loc":["NYC"],"ratio":[1.5]}`, pred: `{"loc":"NYC","ratio":NaN}`,
			flywheel: ClassInvalidJSON, bfcl: "value_error:others"},
		{name: "DeviationNestedTypeBeforeValue", answer: `{"loc":["NYC"],"rides":[[{"n":[1]}]]}`, pred: `{"loc":"NYC","rides":[{"n":1},2]}`,
			flywheel: ClassTypeError, bfcl: "type_error:nested"},

		// BFCL quirks the bfcl mode keeps.
		{name: "QuirkAnyIsString", answer: `{"loc":["NYC"],"x":["a"]}`, pred: `{"loc":"NYC","x":1}`,
			flywheel: ClassValueError, bfcl: "type_error:simple"},
		{name: "QuirkPunctuationOnlyMatchesOmitMarker", answer: `{"loc":["NYC"],"x":["a",""]}`, pred: `{"loc":"NYC","x":"..."}`},
		{name: "QuirkListStringsNormalised", answer: `{"loc":["NYC"],"x":["a"],"flags":[[1.5]],"rides":[[{"k":["Big Car"]}]]}`,
			pred: `{"loc":"NYC","x":"A","flags":[1.5],"rides":[{"k":"big-car"}]}`},
		{name: "QuirkIntegerForFloatConverted", answer: `{"loc":["NYC"],"ratio":[2.0]}`, pred: `{"loc":"NYC","ratio":2}`},
		{name: "QuirkBoolEqualsOneAsValue", answer: `{"loc":["NYC"],"time":[1]}`, pred: `{"loc":"NYC","time":true}`,
			flywheel: ClassTypeError, bfcl: "type_error:simple"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			name := tt.predName
			if name == "" {
				name = "uber_ride"
			}
			pred := []Call{NewCall(name, tt.pred)}
			want := modeAnswer(t, "uber.ride", tt.answer)

			fly := CheckerFlywheel.Check(tools, pred, want)
			require.Equal(t, tt.flywheel == "", fly.Valid, "flywheel: %s", fly.Detail)
			require.Equal(t, tt.flywheel, fly.Class, "flywheel: %s", fly.Detail)
			require.Equal(t, fly, ToolCallChecker("").Check(tools, pred, want), "the empty mode is the flywheel mode")

			bf := CheckerBFCL.Check(tools, pred, want)
			require.Equal(t, tt.bfcl == "", bf.Valid, "bfcl: %s", bf.Detail)
			require.Equal(t, tt.bfcl, bf.Class, "bfcl: %s", bf.Detail)
		})
	}
}

func TestCheckerModesCallsAndCategories(t *testing.T) {
	t.Parallel()
	one, err := ParseTools(json.RawMessage(modeTools))
	require.NoError(t, err)
	two, err := ParseTools(json.RawMessage(`[
		{"type":"function","function":{"name":"book","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}},
		{"type":"function","function":{"name":"cancel","parameters":{"type":"object","properties":{"id":{"type":"integer"}},"required":["id"]}}}]`))
	require.NoError(t, err)
	noParams, err := ParseTools(json.RawMessage(`[{"type":"function","function":{"name":"ping","parameters":{"type":"object","properties":{}}}}]`))
	require.NoError(t, err)
	book := func(city string) Call { return NewCall("book", `{"city":"`+city+`"}`) }
	ans := func(cities ...[]any) Answer {
		var a Answer
		for _, c := range cities {
			a = append(a, AnswerCall{Name: "book", Params: map[string][]any{"city": c}})
		}
		return a
	}

	tests := []struct {
		name     string
		tools    Tools
		pred     []Call
		want     Answer
		category string
		flywheel string
		bfcl     string
	}{
		{name: "SimpleWrongCount", tools: one, pred: []Call{NewCall("uber_ride", `{"loc":"a"}`), NewCall("uber_ride", `{"loc":"a"}`)},
			want: modeAnswer(t, "uber.ride", `{"loc":["a"]}`), flywheel: ClassWrongCount, bfcl: "simple_function_checker:wrong_count"},
		{name: "SimpleNoCall", tools: one, want: modeAnswer(t, "uber.ride", `{"loc":["a"]}`),
			flywheel: ClassNoToolCall, bfcl: "simple_function_checker:wrong_count"},
		{name: "MultipleWrongCount", tools: two, pred: []Call{book("Paris"), book("Paris")}, want: ans([]any{"Paris"}),
			flywheel: ClassWrongCount, bfcl: "multiple_function_checker:wrong_count"},
		{name: "MultipleOtherFunction", tools: two, pred: []Call{NewCall("cancel", `{"id":1}`)}, want: ans([]any{"Paris"}),
			flywheel: ClassWrongName, bfcl: "simple_function_checker:wrong_func_name"},
		{name: "ParallelAnyOrder", tools: two, pred: []Call{book("Rome"), book("Paris")}, want: ans([]any{"Paris"}, []any{"Rome"})},
		{name: "ParallelWrongCount", tools: two, pred: []Call{book("Rome")}, want: ans([]any{"Paris"}, []any{"Rome"}),
			flywheel: ClassWrongCount, bfcl: "parallel_function_checker_no_order:wrong_count"},
		{name: "ParallelValueError", tools: two, pred: []Call{book("Rome"), book("Oslo")}, want: ans([]any{"Paris"}, []any{"Rome"}),
			flywheel: ClassValueError, bfcl: "parallel_function_checker_no_order:cannot_find_match"},
		// BFCL gives the first prediction that passes to the first expected
		// call; a full matching finds the assignment that works.
		{name: "DeviationGreedyParallel", tools: two, pred: []Call{book("NYC"), book("Paris")}, want: ans([]any{"NYC", "Paris"}, []any{"NYC"}),
			bfcl: "parallel_function_checker_no_order:cannot_find_match"},
		{name: "ExplicitCategory", tools: two, pred: []Call{book("Paris"), book("Paris")}, want: ans([]any{"Paris"}), category: BFCLSimple,
			flywheel: ClassWrongCount, bfcl: "simple_function_checker:wrong_count"},
		{name: "Irrelevance", tools: two, pred: []Call{book("Paris")},
			flywheel: ClassWrongCount, bfcl: "irrelevance_error:decoder_success"},
		{name: "IrrelevanceNoCall", tools: two},
		{name: "DeviationEmptyArgumentsWithoutParameters", tools: noParams, pred: []Call{NewCall("ping", "")},
			want: Answer{{Name: "ping", Params: map[string][]any{}}}, bfcl: "ast_decoder:decoder_failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fly := CheckCalls(tt.tools, tt.pred, tt.want)
			require.Equal(t, tt.flywheel, fly.Class, "flywheel: %s", fly.Detail)
			require.Equal(t, tt.flywheel == "", fly.Valid)
			bf := CheckCallsBFCL(tt.tools, tt.pred, tt.want, tt.category)
			require.Equal(t, tt.bfcl, bf.Class, "bfcl: %s", bf.Detail)
			require.Equal(t, tt.bfcl == "", bf.Valid)
		})
	}
}

// TestCheckerModesPythonTypeNames: schemas written with BFCL's own type
// names (dict, float, tuple, any) check as their JSON Schema twins.
func TestCheckerModesPythonTypeNames(t *testing.T) {
	t.Parallel()
	tools, err := ParseTools(json.RawMessage(`[{"type":"function","function":{"name":"f","parameters":{"type":"dict",
		"properties":{"d":{"type":"dict"},"r":{"type":"float"},"p":{"type":"tuple","items":{"type":"integer"}},"a":{"type":"any"},
			"l":{"type":"array","items":{"type":"dict"}}},"required":["r"]}}}]`))
	require.NoError(t, err)
	answer := modeAnswer(t, "f", `{"d":[{"k":["v"]},""],"r":[2.5, 3.0],"p":[[1,2],""],"a":["x",""],"l":[[{"n":[1]}], ""]}`)
	tests := []struct {
		pred, bfcl string
	}{
		{pred: `{"r":2.5,"d":{"k":"V"},"p":[1,2],"a":"X","l":[{"n":1}]}`},
		{pred: `{"r":3}`},
		{pred: `{"r":2.5,"l":[]}`},
		{pred: `{"r":"2.5"}`, bfcl: "type_error:simple"},
		{pred: `{"r":2.5,"d":{"k":"w"}}`, bfcl: "value_error:dict_value"},
		{pred: `{"r":2.5,"d":{"j":"v"}}`, bfcl: "value_error:dict_key"},
		// BFCL's nested type check passes on the "" marker of an
		// omittable array, so the value check reports it.
		{pred: `{"r":2.5,"p":[1,"2"]}`, bfcl: "value_error:list/tuple"},
		{pred: `{"r":2.5,"a":5}`, bfcl: "type_error:simple"},
		{pred: `{"r":2.5,"l":[{"n":1},{"n":1}]}`, bfcl: "value_error:list_dict_count"},
	}
	for _, tt := range tests {
		ch := CheckCallsBFCL(tools, []Call{NewCall("f", tt.pred)}, answer, "")
		require.Equal(t, tt.bfcl, ch.Class, "%s: %s", tt.pred, ch.Detail)
		require.Equal(t, tt.bfcl == "", ch.Valid, tt.pred)
	}
}

// TestCheckerModesReferenceAnswers: without an answer file, each mode's
// answer built from the reference call accepts that very call, nested
// objects and arrays of objects included, on the generated corpus too.
func TestCheckerModesReferenceAnswers(t *testing.T) {
	t.Parallel()
	tools, err := ParseTools(json.RawMessage(modeTools))
	require.NoError(t, err)
	ref := []Call{NewCall("uber_ride", `{"loc":"NYC","opts":{"range":{"min":1,"deep":{"a":[1,{"b":"Big"}]}},"unit":"km"},
		"rides":[{"car":{"seats":4}},{"car":{"seats":2}}],"flags":[1.5,2.5],"time":3}`)}
	for _, mode := range []ToolCallChecker{CheckerFlywheel, CheckerBFCL} {
		ans := mode.AnswerFromCalls(tools, ref)
		ch := mode.Check(tools, ref, ans)
		require.True(t, ch.Valid, "%s: %s", mode, ch.Detail)
		changed := []Call{NewCall("uber_ride", `{"loc":"NYC","opts":{"range":{"min":1,"deep":{"a":[1,{"b":"Small"}]}},"unit":"km"},
		"rides":[{"car":{"seats":4}},{"car":{"seats":2}}],"flags":[1.5,2.5],"time":3}`)}
		require.False(t, mode.Check(tools, changed, ans).Valid, mode)
	}

	// On the corpora, every reference call passes in the flywheel mode, and
	// in the bfcl mode unless it breaks its own schema (BFCL's data has a
	// call with an argument its function does not declare).
	for _, corpus := range testcorpus.Dirs(t) {
		for _, name := range bfclFiles(t, corpus.Dir) {
			for _, it := range loadBFCL(t, corpus.Dir, name) {
				for _, mode := range []ToolCallChecker{CheckerFlywheel, CheckerBFCL} {
					if mode == CheckerBFCL && !followsSchema(it.rec.tools, it.rec.refCalls) {
						ch := mode.Check(it.rec.tools, it.rec.refCalls, mode.AnswerFromCalls(it.rec.tools, it.rec.refCalls))
						require.False(t, ch.Valid, "%s %s %s", corpus.Name, name, it.id)
						continue
					}
					ch := mode.Check(it.rec.tools, it.rec.refCalls, mode.AnswerFromCalls(it.rec.tools, it.rec.refCalls))
					require.True(t, ch.Valid, "%s %s %s %s: %s", mode, corpus.Name, name, it.id, ch.Detail)
				}
			}
		}
	}
}

// followsSchema reports whether every call declares all its arguments and
// passes every required one.
func followsSchema(tools Tools, calls []Call) bool {
	for _, c := range calls {
		s := tools[normName(c.Name)]
		if s == nil {
			return false
		}
		for k := range c.Args {
			if _, ok := s.Properties[k]; !ok {
				return false
			}
		}
		for _, r := range s.Required {
			if _, ok := c.Args[r]; !ok {
				return false
			}
		}
	}
	return true
}

func TestToolCallCheckerValid(t *testing.T) {
	t.Parallel()
	for _, c := range []ToolCallChecker{"", CheckerFlywheel, CheckerBFCL} {
		require.True(t, c.Valid(), c)
	}
	require.False(t, ToolCallChecker("strict").Valid())
}

func TestPyLoads(t *testing.T) {
	t.Parallel()
	v, err := pyLoads(` {"b": 1, "a": [1.0, 2e0, -0, NaN, Infinity, "\u00e9\ud83d\ude00"], "b": true} `)
	require.NoError(t, err)
	require.Equal(t, []string{"b", "a"}, v.keys, "a repeated key keeps its first place")
	require.Equal(t, pyBool, v.vals[0].kind, "and its last value")
	l := v.vals[1].list
	require.Equal(t, []pyKind{pyFloat, pyFloat, pyInt, pyFloat, pyFloat, pyStr}, []pyKind{l[0].kind, l[1].kind, l[2].kind, l[3].kind, l[4].kind, l[5].kind})
	require.Equal(t, "é😀", l[5].s)
	require.True(t, pyEqual(l[0], pyVal{kind: pyBool, b: true}), "1.0 == True")
	require.False(t, pyEqual(l[3], l[3]), "nan != nan")
	for _, bad := range []string{``, `{`, `{"a":1} x`, `[1,]`, `{'a':1}`, "\"a\tb\"", `01`} {
		_, err := pyLoads(bad)
		require.Error(t, err, bad)
	}
	big1, _ := pyLoads(`9007199254740993`)
	big2, _ := pyLoads(`9007199254740992.0`)
	require.False(t, pyEqual(big1, big2), "integers compare exactly with floats")
	require.Equal(t, "i̇", pyLower("İ"))
	require.Equal(t, "οδος οδοσα", pyLower("ΟΔΟΣ ΟΔΟΣΑ"))
}

// FuzzPyLoads: every text encoding/json accepts, the Python-semantics
// decoder accepts too, with the same value up to number types.
func FuzzPyLoads(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,2.5,"x",null,true]}`, `{"a":{"b":{"c":[]}}}`, `"\ud83d\ude00"`, `-0.0e+1`, `[1e400]`, `{"a":1,"a":2}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := decodeJSON([]byte(s))
		if err != nil {
			return
		}
		p, err := pyLoads(s)
		require.NoError(t, err, s)
		require.True(t, pyEqualLoose(pyFromAny(v), p), s)
	})
}

// pyEqualLoose is pyEqual with NaN equal to NaN.
func pyEqualLoose(a, b pyVal) bool {
	if a.kind == pyFloat && b.kind == pyFloat && a.f != a.f && b.f != b.f {
		return true
	}
	return pyEqual(a, b)
}
