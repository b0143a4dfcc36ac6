// Package testcorpus generates the tool-calling corpus the test suite runs
// on: logs in the blueprint's log format, shaped like the four categories of
// the Berkeley Function Calling Leaderboard (simple, multiple, parallel,
// parallel_multiple), with BFCL-style answer files that list every
// acceptable value of every argument. The corpus is written by this
// project, from its own catalogue of tools; it is deterministic, so a test
// sees the same records on every run.
//
// A directory of real BFCL-derived logs in the same layout can be named by
// FLYWHEEL_BFCL_DIR; tests then run on it as well (see Dirs).
package testcorpus

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// EnvBFCLDir names the environment variable that points at an extra corpus
// in the same layout (for example BFCL-derived logs).
const EnvBFCLDir = "FLYWHEEL_BFCL_DIR"

// Category is one file of the corpus.
type Category struct {
	// Name is the file's base name: Name+".jsonl" holds the logs and
	// Name+".answers.jsonl" the acceptable values.
	Name string
	// WorkloadID is the workload_id of every record.
	WorkloadID string
	// Records is how many records the generated file has.
	Records int
}

// Categories are the generated files, in BFCL's order.
var Categories = []Category{
	{Name: "simple", WorkloadID: "bfcl-simple", Records: 400},
	{Name: "multiple", WorkloadID: "bfcl-multiple", Records: 200},
	{Name: "parallel", WorkloadID: "bfcl-parallel", Records: 200},
	{Name: "parallel_multiple", WorkloadID: "bfcl-parallel-multiple", Records: 200},
}

// ClientID is the client_id of every generated record.
const ClientID = "bfcl"

// Model is the model named in every generated request and response.
const Model = "meta/llama-3.3-70b-instruct"

// Corpus is one directory of logs and answers, with a name for subtests.
type Corpus struct {
	Name string
	Dir  string
}

// BFCLDir writes the generated corpus into a temporary directory of tb and
// returns it.
func BFCLDir(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := WriteBFCL(dir); err != nil {
		tb.Fatalf("generate the test corpus: %v", err)
	}
	return dir
}

// Dirs returns the generated corpus ("generated") and, when
// FLYWHEEL_BFCL_DIR names a directory, that one too ("external").
func Dirs(tb testing.TB) []Corpus {
	tb.Helper()
	out := []Corpus{{Name: "generated", Dir: BFCLDir(tb)}}
	if d := os.Getenv(EnvBFCLDir); d != "" {
		out = append(out, Corpus{Name: "external", Dir: d})
	}
	return out
}

// WriteBFCL writes every category's logs and answers into dir.
func WriteBFCL(dir string) error {
	for i, c := range Categories {
		logs, answers := Generate(c, uint64(i+1))
		if err := os.WriteFile(filepath.Join(dir, c.Name+".jsonl"), logs, 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, c.Name+".answers.jsonl"), answers, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// call is one generated tool call.
type call struct {
	tool *tool
	name string       // the logged name (dots as underscores)
	ans  string       // the name in the answer (BFCL's, dots kept)
	args []arg        // logged arguments, in schema order
	acc  []acceptable // the answer's parameters, in schema order
	text string       // the question's part for this call
}

type arg struct {
	name  string
	value any
}

type acceptable struct {
	name   string
	values []any
}

// Generate returns the logs and answers of one category, drawn with seed.
func Generate(c Category, seed uint64) (logs, answers []byte) {
	r := rand.New(rand.NewPCG(seed, 0x666c7977))
	seen := map[string]bool{}
	var lb, ab bytes.Buffer
	for i := 0; i < c.Records; {
		offered, calls := draw(r, c.Name)
		q := question(calls)
		if seen[q] {
			continue
		}
		seen[q] = true
		id := fmt.Sprintf("%s_%d", c.Name, i)
		ts := int64(1746000000 + 37*(i+1))
		writeLog(&lb, c, id, ts, q, offered, calls)
		writeAnswer(&ab, id, calls)
		i++
	}
	return lb.Bytes(), ab.Bytes()
}

// draw picks the offered tools (with their names for this record) and the
// calls of one record of category cat.
func draw(r *rand.Rand, cat string) ([]call, []call) {
	pick := func(n int) []call {
		idx := r.Perm(len(tools))[:n]
		out := make([]call, n)
		for i, t := range idx {
			tl := &tools[t]
			name := tl.names[r.IntN(len(tl.names))]
			out[i] = call{tool: tl, ans: name, name: strings.ReplaceAll(name, ".", "_")}
		}
		return out
	}
	var offered, calls []call
	switch cat {
	case "simple":
		offered = pick(1)
		calls = []call{fill(r, offered[0])}
	case "multiple":
		offered = pick(2 + r.IntN(3))
		calls = []call{fill(r, offered[r.IntN(len(offered))])}
	case "parallel":
		offered = pick(1)
		calls = fillDistinct(r, offered[0], 2+r.IntN(3))
	default: // parallel_multiple
		offered = pick(2 + r.IntN(2))
		for _, o := range offered {
			calls = append(calls, fillDistinct(r, o, 1+r.IntN(2))...)
		}
	}
	return offered, calls
}

// fillDistinct returns n calls of one tool whose first arguments differ.
func fillDistinct(r *rand.Rand, o call, n int) []call {
	var out []call
	firsts := map[string]bool{}
	for tries := 0; len(out) < n && tries < 50; tries++ {
		c := fill(r, o)
		k := canonical(c.args[0].value)
		if firsts[k] {
			continue
		}
		firsts[k] = true
		out = append(out, c)
	}
	return out
}

// fill draws the arguments of one call and its acceptable values.
func fill(r *rand.Rand, o call) call {
	c := call{tool: o.tool, name: o.name, ans: o.ans}
	var text strings.Builder
	text.WriteString(o.tool.ask)
	for i, p := range o.tool.params {
		required := i < o.tool.required
		if !required && r.IntN(2) == 0 {
			// Left out: the answer lets it be omitted or set to its default.
			if p.def != nil {
				c.acc = append(c.acc, acceptable{p.name, []any{"", p.def}})
			}
			continue
		}
		v := p.values[r.IntN(len(p.values))]
		spellings := []any{v}
		if s, ok := v.(string); ok {
			spellings = nil
			for _, sp := range strings.Split(s, "|") {
				spellings = append(spellings, sp)
			}
			v = spellings[0]
		}
		c.args = append(c.args, arg{p.name, v})
		accs := append([]any(nil), spellings...)
		if !required && p.def != nil && canonical(p.def) == canonical(v) {
			accs = append(accs, "") // the default: saying it is optional
		}
		c.acc = append(c.acc, acceptable{p.name, accs})
		text.WriteString(strings.ReplaceAll(p.clause, "{}", phrase(v)))
	}
	c.text = text.String()
	return c
}

// phrase is how a value reads in a question.
func phrase(v any) string {
	switch x := v.(type) {
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = phrase(e)
		}
		return strings.Join(parts, ", ")
	case string:
		return x
	case bool:
		if x {
			return "yes"
		}
		return "no"
	default:
		return canonical(x)
	}
}

// question is the user's message asking for calls.
func question(calls []call) string {
	parts := make([]string, len(calls))
	for i, c := range calls {
		parts[i] = c.text
	}
	if len(parts) == 1 {
		return parts[0] + "?"
	}
	return strings.Join(parts[:len(parts)-1], "; ") + "; and also: " + parts[len(parts)-1] + "."
}

// canonical is v's compact JSON.
func canonical(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// object writes ordered keys and values as a JSON object.
func object(args []arg) string {
	var sb strings.Builder
	sb.WriteByte('{')
	for i, a := range args {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(strconv.Quote(a.name))
		sb.WriteString(": ")
		sb.WriteString(canonical(a.value))
	}
	sb.WriteByte('}')
	return sb.String()
}

// schema is a tool's JSON-schema function definition.
func schema(c call) map[string]any {
	props := map[string]any{}
	var required []string
	for i, p := range c.tool.params {
		s := map[string]any{"type": p.typ, "description": p.desc}
		if p.typ == "array" {
			s["items"] = map[string]any{"type": p.items}
		}
		props[p.name] = s
		if i < c.tool.required {
			required = append(required, p.name)
		}
	}
	return map[string]any{"type": "function", "function": map[string]any{
		"name": c.name, "description": c.tool.desc,
		"parameters": map[string]any{"type": "object", "properties": props, "required": required},
	}}
}

func writeLog(w *bytes.Buffer, c Category, id string, ts int64, q string, offered, calls []call) {
	toolDefs := make([]any, len(offered))
	for i, o := range offered {
		toolDefs[i] = schema(o)
	}
	tcs := make([]any, len(calls))
	for i, cl := range calls {
		tcs[i] = map[string]any{"id": fmt.Sprintf("call_%s_%d", id, i), "type": "function",
			"function": map[string]any{"name": cl.name, "arguments": object(cl.args)}}
	}
	rec := map[string]any{
		"timestamp": ts, "workload_id": c.WorkloadID, "client_id": ClientID,
		"request": map[string]any{"model": Model, "messages": []any{map[string]any{"role": "user", "content": q}},
			"tools": toolDefs, "tool_choice": "auto"},
		"response": map[string]any{"id": "chatcmpl-" + id, "object": "chat.completion", "created": ts, "model": Model,
			"choices": []any{map[string]any{"index": 0, "finish_reason": "tool_calls",
				"message": map[string]any{"role": "assistant", "content": nil, "tool_calls": tcs}}}},
	}
	b, _ := json.Marshal(rec)
	w.Write(b)
	w.WriteByte('\n')
}

func writeAnswer(w *bytes.Buffer, id string, calls []call) {
	gt := make([]any, len(calls))
	for i, c := range calls {
		params := map[string]any{}
		for _, a := range c.acc {
			params[a.name] = a.values
		}
		gt[i] = map[string]any{c.ans: params}
	}
	b, _ := json.Marshal(map[string]any{"id": id, "ground_truth": gt})
	w.Write(b)
	w.WriteByte('\n')
}
