package eval

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

func calls(t *testing.T, pairs ...string) []Call {
	t.Helper()
	var out []Call
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, NewCall(pairs[i], pairs[i+1]))
	}
	return out
}

func TestScoreToolCalls(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		pred []string
		ref  []string
		want ToolScores
	}{
		{name: "BothEmpty", want: ToolScores{1, 1, 1, 1, 1, 1, 1, 1}},
		{name: "NoPrediction", ref: []string{"f", `{"a":1}`}, want: ToolScores{}},
		{name: "UnexpectedCall", pred: []string{"f", `{"a":1}`}, want: ToolScores{}},
		{name: "Equal", pred: []string{"f", `{"a":1,"b":"x"}`}, ref: []string{"f", `{"b":"x","a":1}`}, want: ToolScores{1, 1, 1, 1, 1, 1, 1, 1}},
		{name: "NumbersByValue", pred: []string{"f", `{"a":5.0,"b":[1e1]}`}, ref: []string{"f", `{"a":5,"b":[10]}`}, want: ToolScores{1, 1, 1, 1, 1, 1, 1, 1}},
		{name: "DotsInNames", pred: []string{"math_factorial", `{}`}, ref: []string{"math.factorial", ``}, want: ToolScores{1, 1, 1, 1, 1, 1, 1, 1}},
		{
			name: "OneArgWrong", pred: []string{"f", `{"a":1,"b":"y"}`}, ref: []string{"f", `{"a":1,"b":"x"}`},
			want: ToolScores{FunctionName: 1, ArgPrecision: 0.5, ArgRecall: 0.5, ArgF1: 0.5},
		},
		{
			name: "ParallelSwapped", pred: []string{"g", `{"x":2}`, "f", `{"a":1}`}, ref: []string{"f", `{"a":1}`, "g", `{"x":2}`},
			want: ToolScores{1, 1, 1, 1, 1, 1, 1, 1},
		},
		{
			name: "ParallelOneMissing", pred: []string{"f", `{"a":1}`}, ref: []string{"f", `{"a":1}`, "g", `{"x":2}`},
			want: ToolScores{CallPrecision: 1, CallRecall: 0.5, CallF1: 2.0 / 3, ArgPrecision: 1, ArgRecall: 0.5, ArgF1: 2.0 / 3},
		},
		{
			name: "WrongArglessFunction", pred: []string{"g", `{}`}, ref: []string{"f", `{}`},
			want: ToolScores{},
		},
		{
			name: "InvalidJSON", pred: []string{"f", `{"a":1`}, ref: []string{"f", `{"a":1}`},
			want: ToolScores{FunctionName: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := ScoreToolCalls(calls(t, tt.pred...), calls(t, tt.ref...))
			require.InDelta(t, tt.want.FunctionName, got.FunctionName, 1e-9)
			require.InDelta(t, tt.want.NameAndArgs, got.NameAndArgs, 1e-9)
			require.InDelta(t, tt.want.CallPrecision, got.CallPrecision, 1e-9)
			require.InDelta(t, tt.want.CallRecall, got.CallRecall, 1e-9)
			require.InDelta(t, tt.want.CallF1, got.CallF1, 1e-9)
			require.InDelta(t, tt.want.ArgPrecision, got.ArgPrecision, 1e-9)
			require.InDelta(t, tt.want.ArgRecall, got.ArgRecall, 1e-9)
			require.InDelta(t, tt.want.ArgF1, got.ArgF1, 1e-9)
		})
	}
}

func TestCheckCalls(t *testing.T) {
	t.Parallel()

	tools, err := ParseTools(json.RawMessage(`[{"type":"function","function":{"name":"book","parameters":{"type":"object",
		"properties":{"city":{"type":"string"},"nights":{"type":"integer"},"price":{"type":["number","null"]},
		"tags":{"type":"array","items":{"type":"string"}},"when":{"type":"object","properties":{"day":{"type":"integer"}}}},
		"required":["city","nights"]}}}]`))
	require.NoError(t, err)
	answer := Answer{{Name: "book", Params: map[string][]any{
		"city":   {"New York", "NYC"},
		"nights": {json.Number("2")},
		"price":  {json.Number("100"), ""},
		"tags":   {[]any{"quiet", "view"}, ""},
		"when":   {map[string]any{"day": []any{json.Number("3")}}, ""},
	}}}
	tests := []struct {
		name  string
		args  string
		class string
	}{
		{name: "Valid", args: `{"city":"new york","nights":2}`},
		{name: "NormalisedStringAndNumber", args: `{"city":"New-York","nights":2.0,"price":100.00}`},
		{name: "OtherAcceptableValue", args: `{"city":"nyc","nights":2,"tags":["Quiet","view"],"when":{"day":3}}`},
		{name: "MissingRequired", args: `{"city":"NYC"}`, class: ClassMissingRequired},
		{name: "Unexpected", args: `{"city":"NYC","nights":2,"pets":true}`, class: ClassUnexpectedParam},
		{name: "TypeError", args: `{"city":"NYC","nights":"two"}`, class: ClassTypeError},
		{name: "NotAnInteger", args: `{"city":"NYC","nights":2.5}`, class: ClassTypeError},
		{name: "NestedTypeError", args: `{"city":"NYC","nights":2,"tags":["quiet",3]}`, class: ClassTypeError},
		{name: "ValueError", args: `{"city":"Boston","nights":2}`, class: ClassValueError},
		{name: "ListOrderMatters", args: `{"city":"NYC","nights":2,"tags":["view","quiet"]}`, class: ClassValueError},
		{name: "NestedValueError", args: `{"city":"NYC","nights":2,"when":{"day":4}}`, class: ClassValueError},
		{name: "InvalidJSON", args: `{"city":`, class: ClassInvalidJSON},
		{name: "NotAnObject", args: `["NYC"]`, class: ClassInvalidJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ch := CheckCalls(tools, []Call{NewCall("book", tt.args)}, answer)
			require.Equal(t, tt.class == "", ch.Valid, ch.Detail)
			require.Equal(t, tt.class, ch.Class, ch.Detail)
		})
	}

	t.Run("CountsAndNames", func(t *testing.T) {
		t.Parallel()
		ok := NewCall("book", `{"city":"NYC","nights":2}`)
		require.Equal(t, ClassNoToolCall, CheckCalls(tools, nil, answer).Class)
		require.Equal(t, ClassWrongCount, CheckCalls(tools, []Call{ok, ok}, answer).Class)
		require.Equal(t, ClassWrongName, CheckCalls(tools, []Call{NewCall("cancel", `{}`)}, answer).Class)
		require.Equal(t, ClassWrongCount, CheckCalls(tools, []Call{ok}, nil).Class)
		require.True(t, CheckCalls(tools, nil, nil).Valid)
		require.True(t, CheckCalls(nil, []Call{ok}, answer).Valid, "no schema: the answer decides")
	})

	t.Run("ParallelNeedsFullMatching", func(t *testing.T) {
		t.Parallel()
		// The first expected call accepts both cities; a greedy matcher
		// that gives it the first prediction leaves the second unmatched.
		ans := Answer{
			{Name: "book", Params: map[string][]any{"city": {"NYC", "Paris"}, "nights": {json.Number("2")}}},
			{Name: "book", Params: map[string][]any{"city": {"NYC"}, "nights": {json.Number("2")}}},
		}
		pred := []Call{NewCall("book", `{"city":"NYC","nights":2}`), NewCall("book", `{"city":"Paris","nights":2}`)}
		require.True(t, CheckCalls(tools, pred, ans).Valid)
		pred[1] = NewCall("book", `{"city":"Rome","nights":2}`)
		ch := CheckCalls(tools, pred, ans)
		require.Equal(t, ClassValueError, ch.Class, ch.Detail)
	})
}

func TestTextMetrics(t *testing.T) {
	t.Parallel()

	tests := []struct {
		pred, ref         string
		exact, f1, rougeL float64
	}{
		{"Paris", " Paris\n", 1, 1, 1},
		{"", "", 1, 1, 1},
		{"", "x", 0, 0, 0},
		{"the cat sat on the mat", "the cat is on the mat", 0, 5.0 / 6, 5.0 / 6},
		{"a b c d", "d c b a", 0, 1, 0.25},
		{"Hello, World!", "hello world", 0, 1, 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.pred), func(t *testing.T) {
			t.Parallel()
			s := ScoreText(tt.pred, tt.ref)
			require.InDelta(t, tt.exact, s.ExactMatch, 1e-9)
			require.InDelta(t, tt.f1, s.TokenF1, 1e-9)
			require.InDelta(t, tt.rougeL, s.RougeL, 1e-9)
		})
	}
}

func TestParseJudgeReplies(t *testing.T) {
	t.Parallel()

	sim := []struct {
		reply string
		want  float64
		ok    bool
	}{
		{"10", 10, true},
		{"Score: 10/10", 10, true},
		{" 7 ", 7, true},
		{"1", 1, true},
		{"0", 0, false},
		{"11", 0, false},
		{"no idea", 0, false},
	}
	for _, tt := range sim {
		v, ok := ParseSimilarity(tt.reply)
		require.Equal(t, tt.ok, ok, tt.reply)
		require.Equal(t, tt.want, v, tt.reply)
	}
	rating := []struct {
		reply string
		want  float64
		ok    bool
	}{
		{"RATING: 1\nEXPLANATION: fine", 1, true},
		{"rating:0", 0, true},
		{"**RATING:** 1", 1, true},
		{"1", 1, true},
		{"RATING: 7", 0, false},
		{"looks right", 0, false},
	}
	for _, tt := range rating {
		v, ok := ParseRating(tt.reply)
		require.Equal(t, tt.ok, ok, tt.reply)
		require.Equal(t, tt.want, v, tt.reply)
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()

	vals := make([]float64, 200)
	for i := range vals {
		if i%4 != 0 {
			vals[i] = 1
		}
	}
	vals = append(vals, math.NaN())
	a := Describe(vals, Bootstrap{Seed: 1})
	b := Describe(vals, Bootstrap{Seed: 1})
	require.Equal(t, a, b, "seeded: deterministic")
	require.Equal(t, 200, a.N)
	require.InDelta(t, 0.75, a.Mean, 1e-12)
	require.InDelta(t, math.Sqrt(0.75*0.25*200/199)/math.Sqrt(200), a.StdErr, 1e-12)
	// The bootstrap interval is close to the normal one for n=200.
	require.InDelta(t, a.Mean-1.96*a.StdErr, a.CILow, 0.02)
	require.InDelta(t, a.Mean+1.96*a.StdErr, a.CIHigh, 0.02)
	require.Less(t, a.CILow, a.Mean)

	require.Equal(t, flywheel.ScoreDetail{}, Describe(nil, Bootstrap{}))
	one := Describe([]float64{0.5}, Bootstrap{})
	require.Equal(t, flywheel.ScoreDetail{N: 1, Mean: 0.5, CILow: 0.5, CIHigh: 0.5}, one)

	p := Percentiles([]float64{5, 1, 4, 2, 3}, 0.5, 0.95, 0)
	require.Equal(t, []float64{3, 4.8, 1}, p)
}

func TestParseTools(t *testing.T) {
	t.Parallel()

	tools, err := ParseTools(json.RawMessage(`[
		{"type":"function","function":{"name":"a.b","parameters":{"type":"object","required":true,
			"properties":{"x":{"type":["integer","null"]},"y":true,"z":{"type":"array","items":[{"type":"string"}]}}}}},
		{"type":"function","function":{"description":"no name"}},
		"junk",
		{"type":"function","function":{"name":"c","parameters":{"type":"object","properties":{"q":{"type":"string"}},"required":["q"]}}}
	]`))
	require.NoError(t, err)
	require.Len(t, tools, 2)
	ab := tools["a_b"]
	require.NotNil(t, ab)
	require.Equal(t, []string{"object"}, ab.Type)
	require.Empty(t, ab.Required, "a boolean required is ignored")
	require.Equal(t, []string{"integer", "null"}, ab.Properties["x"].Type)
	require.NotNil(t, ab.Properties["y"], "a boolean schema still declares the property")
	require.Nil(t, ab.Properties["z"].Items, "tuple items are ignored")
	require.Equal(t, []string{"q"}, tools["c"].Required)

	ch := CheckCalls(tools, []Call{NewCall("a_b", `{"x":null,"y":1}`)}, Answer{{Name: "a.b", Params: map[string][]any{"x": {nil}, "y": {json.Number("1")}}}})
	require.True(t, ch.Valid, ch.Detail)

	for _, bad := range []string{`{"function":{}}`, `[`, `"x"`} {
		_, err := ParseTools(json.RawMessage(bad))
		require.Error(t, err, bad)
	}
	none, err := ParseTools(nil)
	require.NoError(t, err)
	require.Nil(t, none)
}
