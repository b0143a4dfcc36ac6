package toolcorpus

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/dataset"
	"github.com/flywheel-go/flywheel/internal/ingest"
)

// parsed is one record read back from its JSON, the way a consumer sees it.
type parsed struct {
	user    string
	tools   map[string]map[string]any // name → parameters schema
	calls   []parsedCall
	content string
}

type parsedCall struct {
	name string
	args map[string]any
}

func parse(t *testing.T, ex Example) parsed {
	t.Helper()
	var req struct {
		Messages []struct{ Role, Content string }
		Tools    []struct {
			Type     string
			Function struct {
				Name       string
				Parameters map[string]any
			}
		}
	}
	require.NoError(t, json.Unmarshal(ex.Record.Request, &req))
	var resp struct {
		Choices []struct {
			Message struct {
				Content   *string
				ToolCalls []struct {
					Function struct{ Name, Arguments string }
				} `json:"tool_calls"`
			}
		}
	}
	require.NoError(t, json.Unmarshal(ex.Record.Response, &resp))
	require.Len(t, req.Messages, 1)
	require.Len(t, resp.Choices, 1)
	p := parsed{user: req.Messages[0].Content, tools: map[string]map[string]any{}}
	for _, tl := range req.Tools {
		require.Equal(t, "function", tl.Type)
		require.NotContains(t, p.tools, tl.Function.Name, "a tool offered twice")
		p.tools[tl.Function.Name] = tl.Function.Parameters
	}
	m := resp.Choices[0].Message
	if m.Content != nil {
		p.content = *m.Content
	}
	for _, c := range m.ToolCalls {
		dec := json.NewDecoder(strings.NewReader(c.Function.Arguments))
		dec.UseNumber()
		var args map[string]any
		require.NoError(t, dec.Decode(&args), "arguments %s", c.Function.Arguments)
		p.calls = append(p.calls, parsedCall{name: c.Function.Name, args: args})
	}
	return p
}

// shapeOf reads a record's shape from its content alone.
func shapeOf(p parsed) Shape {
	switch {
	case len(p.calls) == 0:
		return NoTool
	case len(p.calls) > 1:
		return Parallel
	case len(p.tools) == 1:
		return Single
	default:
		return Choice
	}
}

// validate checks v against a JSON schema of the kinds the corpus uses and
// returns the string leaves of v.
func validate(field string, schema map[string]any, v any) ([]string, error) {
	switch schema["type"] {
	case "string":
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%s: want a string, got %v", field, v)
		}
		if e, ok := schema["enum"]; ok {
			found := false
			for _, x := range e.([]any) {
				found = found || x == s
			}
			if !found {
				return nil, fmt.Errorf("%s: %q not in enum %v", field, s, e)
			}
		}
		return []string{s}, nil
	case "integer":
		n, ok := v.(json.Number)
		if !ok {
			return nil, fmt.Errorf("%s: want an integer, got %v", field, v)
		}
		if _, err := n.Int64(); err != nil {
			return nil, fmt.Errorf("%s: want an integer, got %s", field, n)
		}
	case "number":
		n, ok := v.(json.Number)
		if !ok {
			return nil, fmt.Errorf("%s: want a number, got %v", field, v)
		}
		if _, err := n.Float64(); err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return nil, fmt.Errorf("%s: want a boolean, got %v", field, v)
		}
	case "array":
		xs, ok := v.([]any)
		if !ok || len(xs) == 0 {
			return nil, fmt.Errorf("%s: want a non-empty array, got %v", field, v)
		}
		var out []string
		for i, x := range xs {
			s, err := validate(fmt.Sprintf("%s[%d]", field, i), schema["items"].(map[string]any), x)
			if err != nil {
				return nil, err
			}
			out = append(out, s...)
		}
		return out, nil
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: want an object, got %v", field, v)
		}
		props, _ := schema["properties"].(map[string]any)
		for _, r := range schema["required"].([]any) {
			if _, ok := obj[r.(string)]; !ok {
				return nil, fmt.Errorf("%s: required %q missing", field, r)
			}
		}
		var out []string
		for k, x := range obj {
			ps, ok := props[k].(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s: unknown property %q", field, k)
			}
			s, err := validate(field+"."+k, ps, x)
			if err != nil {
				return nil, err
			}
			out = append(out, s...)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("%s: unknown schema type %v", field, schema["type"])
	}
	return nil, nil
}

// numbers returns the number leaves of v.
func numbers(v any) []string {
	switch x := v.(type) {
	case json.Number:
		return []string{x.String()}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, numbers(e)...)
		}
		return out
	case map[string]any:
		var out []string
		for _, e := range x {
			out = append(out, numbers(e)...)
		}
		return out
	}
	return nil
}

func TestDeterministic(t *testing.T) {
	for _, tc := range []struct {
		name       string
		a, b       uint64
		wantEquals bool
	}{
		{"same seed", 7, 7, true},
		{"other seed", 7, 8, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var x, y bytes.Buffer
			_, err := WriteJSONL(&x, Config{N: 500, Seed: tc.a})
			require.NoError(t, err)
			_, err = WriteJSONL(&y, Config{N: 500, Seed: tc.b})
			require.NoError(t, err)
			require.Equal(t, tc.wantEquals, bytes.Equal(x.Bytes(), y.Bytes()))
			require.Equal(t, 500, bytes.Count(x.Bytes(), []byte("\n")))
		})
	}
}

func TestCatalogue(t *testing.T) {
	require.GreaterOrEqual(t, ToolCount(), 300)
	names := map[string]bool{}
	types := map[string]int{}
	for i := range tools {
		tl := &tools[i]
		require.False(t, names[tl.name], "tool %s twice", tl.name)
		names[tl.name] = true
		def := toolDef(tl)["function"].(map[string]any)["parameters"].(map[string]any)
		props := map[string]bool{}
		for _, p := range tl.params {
			require.False(t, props[p.name], "tool %s: parameter %s twice", tl.name, p.name)
			props[p.name] = true
			s := schemaOf(p)
			typ := s["type"].(string)
			if _, ok := s["enum"]; ok {
				typ = "enum"
			}
			types[typ]++
			if typ == "array" {
				types["array of "+s["items"].(map[string]any)["type"].(string)]++
			}
		}
		require.NotEmpty(t, def["required"], "tool %s", tl.name)
	}
	for _, typ := range []string{"string", "integer", "number", "boolean", "enum", "array", "object", "array of string", "array of integer"} {
		require.Positive(t, types[typ], "no parameter of type %s", typ)
	}
}

func TestRecordsValid(t *testing.T) {
	exs, err := Generate(Config{N: 3000, Seed: 42})
	require.NoError(t, err)
	seenTools := map[string]bool{}
	for i, ex := range exs {
		p := parse(t, ex)
		require.Equal(t, ex.Shape, shapeOf(p), "record %d", i)
		if ex.Shape == NoTool {
			require.NotEmpty(t, p.content, "record %d", i)
		}
		for k, c := range p.calls {
			schema, ok := p.tools[c.name]
			require.True(t, ok, "record %d call %d: %s not offered", i, k, c.name)
			seenTools[c.name] = true
			var generic any = map[string]any(c.args)
			strs, err := validate(fmt.Sprintf("record %d call %d", i, k), schema, generic)
			require.NoError(t, err, "arguments %v", c.args)
			for _, s := range strs {
				require.Contains(t, p.user, s, "record %d call %d: string value not in the request", i, k)
			}
			for _, n := range numbers(generic) {
				require.Contains(t, p.user, n, "record %d call %d: number not in the request", i, k)
			}
		}
		rec, ferr := dataset.Validate(ex.Record)
		require.Nil(t, ferr, "record %d: %v", i, ferr)
		require.Equal(t, len(p.calls), len(rec.Calls))
	}
	require.Greater(t, len(seenTools), 250, "calls cover most of the catalogue")
}

func TestMix(t *testing.T) {
	for _, tc := range []struct {
		name string
		mix  map[Shape]float64
	}{
		{"default", nil},
		{"even", map[Shape]float64{Single: 1, Choice: 1, Parallel: 1, NoTool: 1}},
		{"calls only", map[Shape]float64{Single: 0.5, Parallel: 0.5}},
		{"mostly no tool", map[Shape]float64{NoTool: 0.7, Choice: 0.3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 4000
			exs, err := Generate(Config{N: n, Seed: 3, Mix: tc.mix})
			require.NoError(t, err)
			want := tc.mix
			if want == nil {
				want = DefaultMix
			}
			var sum float64
			for _, w := range want {
				sum += w
			}
			got := map[Shape]int{}
			for _, ex := range exs {
				got[shapeOf(parse(t, ex))]++
			}
			for _, s := range Shapes {
				share := float64(got[s]) / n
				require.InDelta(t, want[s]/sum, share, 0.03, "shape %s", s)
			}
		})
	}
}

func TestBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"negative n", Config{N: -1}, "n:"},
		{"unknown shape", Config{N: 1, Mix: map[Shape]float64{"both": 1}}, `unknown shape "both"`},
		{"negative share", Config{N: 1, Mix: map[Shape]float64{Single: -1}}, "mix single"},
		{"all zero", Config{N: 1, Mix: map[Shape]float64{Single: 0}}, "every share is 0"},
		{"NaN", Config{N: 1, Mix: map[Shape]float64{Single: math.NaN()}}, "mix single"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Generate(tc.cfg)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// TestValuesRarelyRepeat checks that in 10,000 records no non-enum string
// argument value repeats often enough to be memorised.
func TestValuesRarelyRepeat(t *testing.T) {
	exs, err := Generate(Config{N: 10000, Seed: 99})
	require.NoError(t, err)
	count := map[string]int{}
	total := 0
	for _, ex := range exs {
		p := parse(t, ex)
		for _, c := range p.calls {
			collectFree(p.tools[c.name], map[string]any(c.args), count, &total)
		}
	}
	require.Greater(t, total, 10000)
	worst, worstV := 0, ""
	for v, n := range count {
		if n > worst {
			worst, worstV = n, v
		}
	}
	t.Logf("%d string values, %d distinct, most repeated %q ×%d", total, len(count), worstV, worst)
	require.LessOrEqual(t, worst, 5, "value %q repeats %d times", worstV, worst)
}

// collectFree counts the string leaves of v that are not enum values.
func collectFree(schema map[string]any, v any, count map[string]int, total *int) {
	switch schema["type"] {
	case "string":
		if _, ok := schema["enum"]; !ok {
			count[v.(string)]++
			*total++
		}
	case "array":
		for _, x := range v.([]any) {
			collectFree(schema["items"].(map[string]any), x, count, total)
		}
	case "object":
		props := schema["properties"].(map[string]any)
		for k, x := range v.(map[string]any) {
			collectFree(props[k].(map[string]any), x, count, total)
		}
	}
}

func BenchmarkGenerate(b *testing.B) {
	b.ReportAllocs()
	var n int
	for i := 0; b.Loop(); i++ {
		exs, err := Generate(Config{N: 1000, Seed: uint64(i)})
		if err != nil {
			b.Fatal(err)
		}
		n += len(exs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

// TestJSONLLoads checks that every line of the written corpus is accepted
// by the loader's parser and then by the dataset validation, unchanged.
func TestJSONLLoads(t *testing.T) {
	var buf bytes.Buffer
	n, err := WriteJSONL(&buf, Config{N: 1000, Seed: 5})
	require.NoError(t, err)
	require.Equal(t, 1000, n)
	opts := ingest.Options{}.WithDefaults()
	lines := bytes.Split(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n"))
	require.Len(t, lines, n)
	for i, line := range lines {
		rec, rej := ingest.ParseLine(line, i+1, opts)
		require.Nil(t, rej, "line %d: %v", i+1, rej)
		require.Equal(t, "tool-corpus", rec.WorkloadID)
		_, ferr := dataset.Validate(rec)
		require.Nil(t, ferr, "line %d: %v", i+1, ferr)
	}
}

// TestPhrasings checks that one intent is asked for in many ways: with the
// argument values masked, the requests for one tool still differ.
func TestPhrasings(t *testing.T) {
	var exs []Example
	require.NoError(t, Each(Config{N: 20000, Seed: 8, Mix: map[Shape]float64{Single: 1}}, func(ex Example) error {
		exs = append(exs, ex)
		return nil
	}))
	skeletons := map[string]map[string]bool{}
	records := map[string]int{}
	for _, ex := range exs {
		p := parse(t, ex)
		require.Len(t, p.calls, 1)
		c := p.calls[0]
		var generic any = map[string]any(c.args)
		strs, err := validate("args", p.tools[c.name], generic)
		require.NoError(t, err)
		masked := p.user
		for _, v := range append(strs, numbers(generic)...) {
			masked = strings.ReplaceAll(masked, v, "<v>")
		}
		if skeletons[c.name] == nil {
			skeletons[c.name] = map[string]bool{}
		}
		skeletons[c.name][masked] = true
		records[c.name]++
	}
	checked, few := 0, 0
	for name, n := range records {
		if n < 30 {
			continue
		}
		checked++
		if len(skeletons[name]) < 10 {
			few++
			t.Logf("%s: %d requests, %d phrasings", name, n, len(skeletons[name]))
		}
	}
	require.Greater(t, checked, 200)
	require.Zero(t, few, "tools asked for in fewer than 10 ways")
}

// TestNoToolFits checks that a plain-text answer is given only when the
// request is about nothing the offered tools act on.
func TestNoToolFits(t *testing.T) {
	exs, err := Generate(Config{N: 2000, Seed: 12, Mix: map[Shape]float64{NoTool: 1}})
	require.NoError(t, err)
	for i, ex := range exs {
		p := parse(t, ex)
		require.Empty(t, p.calls)
		require.NotEmpty(t, p.content, "record %d", i)
		for name := range p.tools {
			var domain string
			for k := range tools {
				if tools[k].name == name {
					domain = strings.ReplaceAll(tools[k].domain.name, "_", " ")
				}
			}
			require.NotEmpty(t, domain, "record %d: unknown tool %s", i, name)
			re := regexp.MustCompile(`(?i)\b` + regexp.QuoteMeta(domain) + `s?\b`)
			require.False(t, re.MatchString(p.user), "record %d: %q is about %s, which tool %s acts on", i, p.user, domain, name)
		}
	}
}
