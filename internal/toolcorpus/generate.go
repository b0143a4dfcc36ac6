// Package toolcorpus generates a broad synthetic tool-calling corpus in the
// blueprint's log format, for pre-training small models to call tools they
// have never seen: hundreds of tool schemas (domains crossed with verbs,
// each with its own parameters of every JSON type: strings, integers,
// numbers, enums, booleans, arrays and nested objects), many phrasings of
// each request, and four shapes of answer: a single call, a choice among
// several offered tools, parallel calls, and a plain-text answer when no
// offered tool fits.
//
// Argument values are drawn from pools far larger than any corpus (made-up
// names, places, codes, dates, amounts), and every string value appears
// verbatim in the user's message, so a model can only get the arguments
// right by copying them from the request. The output is a pure function of
// the configuration: the same seed gives byte-identical records.
package toolcorpus

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// Shape is the kind of answer a record holds.
type Shape string

// The shapes of answer.
const (
	// Single offers one tool and calls it once.
	Single Shape = "single"
	// Choice offers several tools and calls one of them.
	Choice Shape = "choice"
	// Parallel makes two or more calls in one answer.
	Parallel Shape = "parallel"
	// NoTool answers in plain text because no offered tool fits.
	NoTool Shape = "no_tool"
)

// Shapes lists every shape, in a fixed order.
var Shapes = []Shape{Single, Choice, Parallel, NoTool}

// Model is the model named in every generated request and response.
const Model = "synthetic/tool-corpus"

// Config says what to generate.
type Config struct {
	// N is the number of records.
	N int
	// Seed decides every draw.
	Seed uint64
	// Mix is the share of each shape; it is normalised, and empty means
	// DefaultMix.
	Mix map[Shape]float64
	// WorkloadID and ClientID label every record (defaults "tool-corpus"
	// and "synthetic").
	WorkloadID, ClientID string
	// Start is the first record's timestamp (default 2026-01-01 UTC);
	// records are one second apart.
	Start time.Time
}

// DefaultMix is the share of each shape when Config.Mix is empty.
var DefaultMix = map[Shape]float64{Single: 0.35, Choice: 0.3, Parallel: 0.2, NoTool: 0.15}

// ToolCount is how many distinct tool schemas the catalogue holds.
func ToolCount() int { return len(tools) }

var tools = catalog()

// Example is one generated record with what it was generated from.
type Example struct {
	Shape  Shape
	Record flywheel.LogRecord
}

// Generate returns cfg.N records. It fails only on a bad configuration.
func Generate(cfg Config) ([]Example, error) {
	out := make([]Example, 0, max(cfg.N, 0))
	err := Each(cfg, func(ex Example) error {
		out = append(out, ex)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Each generates cfg.N records one at a time and hands each to fn, in
// order, holding none of them after fn returns; it stops at fn's first
// error and returns it.
func Each(cfg Config, fn func(Example) error) error {
	cfg, cum, err := cfg.normalise()
	if err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(cfg.Seed, 0x7c0a905))
	for i := range cfg.N {
		u := r.Float64()
		shape := Shapes[len(Shapes)-1]
		for j, c := range cum {
			if u < c {
				shape = Shapes[j]
				break
			}
		}
		rec, err := record(r, shape, i, cfg)
		if err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		if err := fn(Example{Shape: shape, Record: rec}); err != nil {
			return err
		}
	}
	return nil
}

// WriteJSONL writes the records of cfg to w, one JSON object a line, and
// returns how many records it generated. Memory stays constant whatever
// cfg.N.
func WriteJSONL(w io.Writer, cfg Config) (int, error) {
	var buf bytes.Buffer
	n := 0
	err := Each(cfg, func(ex Example) error {
		b, err := json.Marshal(ex.Record)
		if err != nil {
			return fmt.Errorf("record %d: %w", n, err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
		if buf.Len() > 1<<20 {
			if _, err := w.Write(buf.Bytes()); err != nil {
				return err
			}
			buf.Reset()
		}
		n++
		return nil
	})
	if err != nil {
		return n, err
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return n, err
	}
	return n, nil
}

func (cfg Config) normalise() (Config, []float64, error) {
	if cfg.N < 0 {
		return cfg, nil, fmt.Errorf("n: want ≥ 0, got %d", cfg.N)
	}
	if len(cfg.Mix) == 0 {
		cfg.Mix = DefaultMix
	}
	var sum float64
	for s, w := range cfg.Mix {
		known := false
		for _, k := range Shapes {
			known = known || k == s
		}
		if !known {
			return cfg, nil, fmt.Errorf("mix: unknown shape %q", s)
		}
		if w < 0 || w != w {
			return cfg, nil, fmt.Errorf("mix %s: want a share ≥ 0, got %v", s, w)
		}
		sum += w
	}
	if sum <= 0 {
		return cfg, nil, errors.New("mix: every share is 0")
	}
	cum := make([]float64, len(Shapes))
	var acc float64
	for i, s := range Shapes {
		acc += cfg.Mix[s] / sum
		cum[i] = acc
	}
	if cfg.WorkloadID == "" {
		cfg.WorkloadID = "tool-corpus"
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "synthetic"
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return cfg, cum, nil
}

// call is one generated tool call: its tool, ordered arguments and the
// part of the request that asks for it.
type call struct {
	tool *tool
	args []kv
	text string
}

// kv is one argument; value is string, int64, float64, bool, []any or
// []kv (a nested object, in schema order).
type kv struct {
	key   string
	value any
}

// pickTools returns n distinct tools; with sameDomain they share a domain
// when possible (so choosing among them needs reading the request).
func pickTools(r *rand.Rand, n int, sameDomain bool) []*tool {
	first := &tools[r.IntN(len(tools))]
	out := []*tool{first}
	seen := map[string]bool{first.name: true}
	for tries := 0; len(out) < n && tries < 100; tries++ {
		var t *tool
		if sameDomain && r.IntN(2) == 0 {
			t = &tools[(first.domain.index()*len(verbs))+r.IntN(len(verbs))]
		} else {
			t = &tools[r.IntN(len(tools))]
		}
		if !seen[t.name] {
			seen[t.name] = true
			out = append(out, t)
		}
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func (d *domain) index() int {
	for i := range domains {
		if &domains[i] == d {
			return i
		}
	}
	return 0
}

func record(r *rand.Rand, shape Shape, i int, cfg Config) (flywheel.LogRecord, error) {
	var offered []*tool
	var calls []call
	var content string
	switch shape {
	case Single:
		offered = pickTools(r, 1, false)
		calls = []call{fill(r, offered[0])}
	case Choice:
		offered = pickTools(r, 2+r.IntN(4), true)
		calls = []call{fill(r, offered[r.IntN(len(offered))])}
	case Parallel:
		offered = pickTools(r, 1+r.IntN(3), true)
		n := 2 + r.IntN(3)
		for k := range n {
			t := offered[r.IntN(len(offered))]
			if k < len(offered) && r.IntN(2) == 0 {
				t = offered[k]
			}
			calls = append(calls, fill(r, t))
		}
	case NoTool:
		offered = pickTools(r, 1+r.IntN(4), false)
		content = ""
	}
	var q string
	if shape == NoTool {
		q, content = offTopic(r, offered)
	} else {
		q = question(r, calls)
	}
	ts := cfg.Start.Add(time.Duration(i) * time.Second).UTC()
	return logRecord(cfg, i, ts, q, offered, calls, content)
}

// fill draws the arguments of one call of t and phrases the request.
func fill(r *rand.Rand, t *tool) call {
	c := call{tool: t}
	var clauses []string
	idText := ""
	for i, p := range t.params {
		if i >= t.required && r.IntN(3) == 0 {
			continue // optional, left out
		}
		v := draw(r, p)
		c.args = append(c.args, kv{p.name, v})
		cl := phrase(r, p, v)
		if t.verb.needs && i == 0 {
			idText = cl
			continue
		}
		clauses = append(clauses, cl)
	}
	spoken := strings.ReplaceAll(t.domain.name, "_", " ")
	ask := t.verb.asks[r.IntN(len(t.verb.asks))]
	var sb strings.Builder
	if t.verb.needs {
		sb.WriteString(fmt.Sprintf(ask, "the "+spoken+" "+idText))
	} else {
		sb.WriteString(fmt.Sprintf(ask, spoken))
	}
	r.Shuffle(len(clauses), func(i, j int) { clauses[i], clauses[j] = clauses[j], clauses[i] })
	for i, cl := range clauses {
		switch {
		case i == 0:
			sb.WriteString(" ")
		case i == len(clauses)-1:
			sb.WriteString([]string{" and ", ", and ", ", "}[r.IntN(3)])
		default:
			sb.WriteString(", ")
		}
		sb.WriteString(cl)
	}
	c.text = sb.String()
	return c
}

func draw(r *rand.Rand, p param) any {
	switch p.kind {
	case kEnum:
		return p.enum[r.IntN(len(p.enum))]
	case kBoolean:
		return r.IntN(2) == 0
	case kArray:
		n := 1 + r.IntN(3)
		out := make([]any, 0, n)
		seen := map[string]bool{}
		for len(out) < n {
			v := p.gen(r)
			if !seen[text(v)] {
				seen[text(v)] = true
				out = append(out, v)
			}
		}
		return out
	case kObject:
		out := make([]kv, len(p.fields))
		for i, f := range p.fields {
			out[i] = kv{f.name, draw(r, f)}
		}
		return out
	default:
		return p.gen(r)
	}
}

// phrase is the clause of the request that gives v for p.
func phrase(r *rand.Rand, p param, v any) string {
	pick := func(xs []string) string { return xs[r.IntN(len(xs))] }
	switch p.kind {
	case kBoolean:
		if v.(bool) {
			return pick(p.clauses)
		}
		return pick(p.off)
	case kArray:
		xs := v.([]any)
		parts := make([]string, len(xs))
		for i, x := range xs {
			parts[i] = text(x)
		}
		joined := parts[0]
		if len(parts) > 1 {
			joined = strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
		}
		return strings.ReplaceAll(pick(p.clauses), "{}", joined)
	case kObject:
		fs := v.([]kv)
		parts := make([]string, len(fs))
		for i, f := range fs {
			parts[i] = strings.ReplaceAll(f.key, "_", " ") + " " + text(f.value)
		}
		return strings.ReplaceAll(pick(p.clauses), "{}", "("+strings.Join(parts, "; ")+")")
	default:
		return strings.ReplaceAll(pick(p.clauses), "{}", text(v))
	}
}

// question joins the requests of the calls into the user's message.
func question(r *rand.Rand, calls []call) string {
	if len(calls) == 1 {
		return calls[0].text + []string{".", "?", " please.", ", thanks."}[r.IntN(4)]
	}
	var sb strings.Builder
	for i, c := range calls {
		switch {
		case i == 0:
		case i == len(calls)-1:
			sb.WriteString([]string{"; and finally: ", ". Also, ", "; then ", ". And one more: "}[r.IntN(4)])
		default:
			sb.WriteString([]string{"; ", ". Next, ", "; also "}[r.IntN(3)])
		}
		t := c.text
		if i > 0 && !strings.HasPrefix(t, "I ") && !strings.HasPrefix(t, "I'") {
			t = strings.ToLower(t[:1]) + t[1:] // the openers start with an ASCII letter
		}
		sb.WriteString(t)
	}
	sb.WriteString(".")
	return sb.String()
}

// offTopic is a request no offered tool fits, with the assistant's plain
// answer: either a request about a domain none of the tools act on, or a
// question that needs no tool.
func offTopic(r *rand.Rand, offered []*tool) (q, answer string) {
	have := map[*domain]bool{}
	var names []string
	for _, t := range offered {
		have[t.domain] = true
		names = append(names, t.name)
	}
	if r.IntN(2) == 0 {
		var d *domain
		for d == nil || have[d] {
			d = &domains[r.IntN(len(domains))]
		}
		spoken := strings.ReplaceAll(d.name, "_", " ")
		code := text(genCode(d.code)(r))
		v := verbs[r.IntN(len(verbs))]
		if v.needs {
			q = fmt.Sprintf(v.asks[r.IntN(len(v.asks))], "the "+spoken+" "+code) + "."
		} else {
			q = fmt.Sprintf(v.asks[r.IntN(len(v.asks))], spoken) + "."
		}
		answer = fmt.Sprintf([]string{
			"I can't do that here: none of the available tools (%s) works on %ss.",
			"None of my tools handle %[2]ss; the ones I have are %[1]s.",
			"Sorry, that needs a tool for %[2]ss, and I only have %[1]s.",
		}[r.IntN(3)], strings.Join(names, ", "), spoken)
		return q, answer
	}
	a, b := 2+r.IntN(90), 2+r.IntN(90)
	switch r.IntN(4) {
	case 0:
		return fmt.Sprintf("What is %d plus %d?", a, b), fmt.Sprintf("%d plus %d is %d.", a, b, a+b)
	case 1:
		return fmt.Sprintf("What is %d times %d?", a, b), fmt.Sprintf("%d times %d is %d.", a, b, a*b)
	case 2:
		w := word(r, 2, 3)
		return fmt.Sprintf("How do you spell %s backwards?", w), fmt.Sprintf("%s backwards is %s.", w, reverse(w))
	default:
		g := []string{"Hello!", "Hi there, how are you?", "Thanks, that's all.", "Good morning!", "Who are you?"}[r.IntN(5)]
		return g, "Hello! I can help using these tools: " + strings.Join(names, ", ") + ". What would you like to do?"
	}
}

func reverse(s string) string {
	b := []byte(s)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}

// encode writes v as compact JSON, objects in schema order.
func encode(sb *bytes.Buffer, v any) {
	switch x := v.(type) {
	case []kv:
		sb.WriteByte('{')
		for i, f := range x {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(strconv.Quote(f.key))
			sb.WriteString(": ")
			encode(sb, f.value)
		}
		sb.WriteByte('}')
	case []any:
		sb.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				sb.WriteString(", ")
			}
			encode(sb, e)
		}
		sb.WriteByte(']')
	default:
		b, _ := json.Marshal(x) // strings, numbers and booleans always marshal
		sb.Write(b)
	}
}

// schemaOf is p's JSON schema.
func schemaOf(p param) map[string]any {
	s := map[string]any{"description": p.desc}
	switch p.kind {
	case kString:
		s["type"] = "string"
	case kInteger:
		s["type"] = "integer"
	case kNumber:
		s["type"] = "number"
	case kBoolean:
		s["type"] = "boolean"
	case kEnum:
		s["type"], s["enum"] = "string", p.enum
	case kArray:
		item := param{kind: kString}
		if _, ok := p.gen(rand.New(rand.NewPCG(1, 1))).(string); !ok {
			item.kind = kInteger
		}
		s["type"], s["items"] = "array", map[string]any{"type": schemaOf(item)["type"]}
	case kObject:
		props := map[string]any{}
		req := make([]string, len(p.fields))
		for i, f := range p.fields {
			props[f.name] = schemaOf(f)
			req[i] = f.name
		}
		s["type"], s["properties"], s["required"] = "object", props, req
	}
	return s
}

// toolDef is t's OpenAI function tool definition.
func toolDef(t *tool) map[string]any {
	props := map[string]any{}
	required := []string{}
	for i, p := range t.params {
		props[p.name] = schemaOf(p)
		if i < t.required {
			required = append(required, p.name)
		}
	}
	return map[string]any{"type": "function", "function": map[string]any{
		"name": t.name, "description": t.desc,
		"parameters": map[string]any{"type": "object", "properties": props, "required": required},
	}}
}

func logRecord(cfg Config, i int, ts time.Time, q string, offered []*tool, calls []call, content string) (flywheel.LogRecord, error) {
	defs := make([]any, len(offered))
	for k, t := range offered {
		defs[k] = toolDef(t)
	}
	req := map[string]any{"model": Model,
		"messages": []any{map[string]any{"role": "user", "content": q}},
		"tools":    defs, "tool_choice": "auto"}
	msg := map[string]any{"role": "assistant", "content": content}
	finish := "stop"
	if len(calls) > 0 {
		finish = "tool_calls"
		tcs := make([]any, len(calls))
		for k, c := range calls {
			var args bytes.Buffer
			encode(&args, c.args)
			tcs[k] = map[string]any{"id": fmt.Sprintf("call_%d_%d", i, k), "type": "function",
				"function": map[string]any{"name": c.tool.name, "arguments": args.String()}}
		}
		msg["content"], msg["tool_calls"] = nil, tcs
	}
	resp := map[string]any{"id": fmt.Sprintf("chatcmpl-corpus-%d", i), "object": "chat.completion",
		"created": ts.Unix(), "model": Model,
		"choices": []any{map[string]any{"index": 0, "finish_reason": finish, "message": msg}}}
	rb, err := json.Marshal(req)
	if err != nil {
		return flywheel.LogRecord{}, err
	}
	pb, err := json.Marshal(resp)
	if err != nil {
		return flywheel.LogRecord{}, err
	}
	return flywheel.LogRecord{WorkloadID: cfg.WorkloadID, ClientID: cfg.ClientID, Timestamp: ts,
		Request: rb, Response: pb}, nil
}
