package toolcorpus

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// Drills are short records that teach a small model two skills at once:
// choosing, among one to three offered tools, the one whose verb and noun
// the request names, and copying each argument's value verbatim from the
// request. Values are drawn so that no model can guess them (made-up
// words, codes, capitalised names, a few common words), so the only way to
// predict them is to copy. A tiny model pre-trained on the broad corpus
// alone learns the format but not copying in a few thousand steps; with
// drills it copies (see docs/local-models.md).

var (
	drillVerbs = strings.Fields("get find create update delete book cancel send check list track order search set play open rate share")
	drillNouns = strings.Fields("order invoice flight hotel ticket user account song movie recipe parcel car room task note alarm " +
		"email message file report train table playlist photo review course doctor event package quote forecast price appointment")
	drillParams = strings.Fields("name city code id title person color language country item day tag user query topic artist " +
		"brand unit mode symbol place team size level")
	drillWords = strings.Fields("red blue green small large fast slow monday tuesday wednesday thursday friday saturday sunday " +
		"english french spanish metric imperial celsius fahrenheit daily weekly high low medium north south east west dark light " +
		"public private open closed gold silver basic premium")
	drillSystem = []string{
		"You are a helpful assistant. Use the tools.",
		"You are an assistant that calls functions.",
		"Answer with a tool call when a tool fits.",
		"You help users by calling the right tool.",
		"Use the tools to help the user.",
	}
)

// DrillConfig says which drills to generate.
type DrillConfig struct {
	// N is the number of records.
	N int
	// Seed decides every draw.
	Seed uint64
	// WorkloadID and ClientID label every record (defaults "tool-drill"
	// and "synthetic").
	WorkloadID, ClientID string
	// Start is the first record's timestamp (default 2026-01-01 UTC).
	Start time.Time
	// Words are further values to copy, used as they are for a quarter of
	// the values: give the words a model's tokenizer holds as single tokens,
	// so that every such token's embedding learns to be copied (a city the
	// tokenizer knows whole is otherwise never a value in pre-training, and
	// a fine-tuned model writes a frequent one instead of copying it).
	Words []string
}

type drillTool struct {
	verb, noun string
	params     []string
}

func (t drillTool) name() string { return t.verb + "_" + t.noun }

// EachDrill generates cfg.N drills in order and hands each to fn; it stops
// at fn's first error.
func EachDrill(cfg DrillConfig, fn func(flywheel.LogRecord) error) error {
	return eachDrill(cfg, 99, func(r *rand.Rand, i int, cfg DrillConfig) error {
		rec, err := drill(r, i, cfg)
		if err != nil {
			return fmt.Errorf("drill %d: %w", i, err)
		}
		return fn(rec)
	})
}

// eachDrill fills cfg's defaults and calls gen cfg.N times with one
// random stream (seeded by cfg.Seed and stream), the drill's index and
// the filled-in cfg.
func eachDrill(cfg DrillConfig, stream uint64, gen func(r *rand.Rand, i int, cfg DrillConfig) error) error {
	if cfg.N < 0 {
		return fmt.Errorf("n: want ≥ 0, got %d", cfg.N)
	}
	if cfg.WorkloadID == "" {
		cfg.WorkloadID = "tool-drill"
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "synthetic"
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	r := rand.New(rand.NewPCG(cfg.Seed, stream))
	for i := range cfg.N {
		if err := gen(r, i, cfg); err != nil {
			return err
		}
	}
	return nil
}

// FewShotDrill is a drill with examples for a few-shot prompt: other drills
// on the same offered tools, with the same system message.
type FewShotDrill struct {
	Record   flywheel.LogRecord
	Examples []flywheel.LogRecord
}

// EachFewShotDrill generates cfg.N drills, each with one to maxExamples
// examples, and hands each to fn; it stops at fn's first error. An
// example calls any of the offered tools, so that a model learns to read
// examples without taking their answer for the request's. The draws
// differ from EachDrill's: the same seed gives other drills.
func EachFewShotDrill(cfg DrillConfig, maxExamples int, fn func(FewShotDrill) error) error {
	if maxExamples < 1 {
		return fmt.Errorf("max examples: want ≥ 1, got %d", maxExamples)
	}
	return eachDrill(cfg, 0xfe5, func(r *rand.Rand, i int, cfg DrillConfig) error {
		set := drillToolSet(r)
		system := drillSystem[r.IntN(len(drillSystem))]
		var d FewShotDrill
		for k := range 1 + r.IntN(maxExamples) {
			ex, err := drillOn(r, i*16+k+1, cfg, set, r.IntN(len(set)), system)
			if err != nil {
				return err
			}
			d.Examples = append(d.Examples, ex)
		}
		rec, err := drillOn(r, i*16, cfg, set, 0, system)
		if err != nil {
			return err
		}
		d.Record = rec
		return fn(d)
	})
}

// WriteDrills writes cfg's drills to w as JSON lines.
func WriteDrills(w io.Writer, cfg DrillConfig) (int, error) {
	n := 0
	err := EachDrill(cfg, func(rec flywheel.LogRecord) error {
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if _, err := w.Write(append(b, '\n')); err != nil {
			return err
		}
		n++
		return nil
	})
	return n, err
}

func drillWord(r *rand.Rand) string {
	const c, v = "bcdfghjklmnprstvwz", "aeiou"
	var b strings.Builder
	for range 2 + r.IntN(2) {
		b.WriteByte(c[r.IntN(len(c))])
		b.WriteByte(v[r.IntN(len(v))])
		if r.IntN(3) == 0 {
			b.WriteByte(c[r.IntN(len(c))])
		}
	}
	return b.String()
}

func capital(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

func drillValue(r *rand.Rand, words []string) string {
	if len(words) > 0 && r.IntN(4) == 0 {
		return words[r.IntN(len(words))]
	}
	switch r.IntN(6) {
	case 0, 1:
		return capital(drillWord(r))
	case 2:
		var b strings.Builder
		for range 2 + r.IntN(3) {
			b.WriteByte(byte('A' + r.IntN(26)))
		}
		return b.String()
	case 3:
		return drillWords[r.IntN(len(drillWords))]
	case 4:
		return drillWord(r)
	default:
		return capital(drillWord(r)) + " " + capital(drillWord(r))
	}
}

// clause says parameter p has value v in one of many ways, so that a model
// learns to find values by what they are, not by one word before them.
func clause(r *rand.Rand, p, v string) string {
	switch r.IntN(16) {
	case 0:
		return p + " " + v
	case 1:
		return "with " + p + " " + v
	case 2:
		return "for " + v
	case 3:
		return p + ": " + v
	case 4:
		return "in " + v
	case 5:
		return "on " + v
	case 6:
		return "at " + v
	case 7:
		return "from " + v
	case 8:
		return "about " + v
	case 9:
		return "named " + v
	case 10:
		return "of " + v
	case 11:
		return p + " is " + v
	case 12:
		return "'" + v + "'"
	case 13:
		return "(" + p + " " + v + ")"
	case 14:
		return "use " + v
	default:
		return v
	}
}

func randomDrillTool(r *rand.Rand) drillTool {
	t := drillTool{verb: drillVerbs[r.IntN(len(drillVerbs))], noun: drillNouns[r.IntN(len(drillNouns))]}
	perm := r.Perm(len(drillParams))
	for i := range 1 + r.IntN(2) {
		t.params = append(t.params, drillParams[perm[i]])
	}
	return t
}

// drillToolSet draws one to three tools; the others share the first's verb
// or noun now and then, so that a request must name both to pick one.
func drillToolSet(r *rand.Rand) []drillTool {
	tools := []drillTool{randomDrillTool(r)}
	for n := 1 + r.IntN(3); len(tools) < n; {
		t := randomDrillTool(r)
		switch r.IntN(3) {
		case 0:
			t.verb = tools[0].verb
		case 1:
			t.noun = tools[0].noun
		}
		if t.name() != tools[0].name() {
			tools = append(tools, t)
		}
	}
	return tools
}

func drill(r *rand.Rand, i int, cfg DrillConfig) (flywheel.LogRecord, error) {
	return drillOn(r, i, cfg, drillToolSet(r), 0, "")
}

// drillOn is the drill that offers set (in a shuffled order) and calls
// set[call]; system is its system message ("": drawn).
func drillOn(r *rand.Rand, i int, cfg DrillConfig, set []drillTool, call0 int, system string) (flywheel.LogRecord, error) {
	tools := slices.Clone(set)
	call := tools[call0]
	r.Shuffle(len(tools), func(a, b int) { tools[a], tools[b] = tools[b], tools[a] })

	var args bytes.Buffer
	args.WriteByte('{')
	var clauses []string
	for k, p := range call.params {
		v := drillValue(r, cfg.Words)
		if k > 0 {
			args.WriteString(", ")
		}
		pb, _ := json.Marshal(p)
		vb, _ := json.Marshal(v)
		args.Write(pb)
		args.WriteString(": ")
		args.Write(vb)
		clauses = append(clauses, clause(r, p, v))
	}
	args.WriteByte('}')
	v, n := call.verb, call.noun
	nounOnly := true // no other offered tool acts on this noun
	for _, t := range tools {
		if t.noun == n && t.verb != v {
			nounOnly = false
		}
	}
	var q string
	k := r.IntN(7)
	if !nounOnly && k >= 5 {
		k = r.IntN(5)
	}
	switch k {
	case 5:
		q = fmt.Sprintf("What's the %s %s?", n, strings.Join(clauses, " "))
	case 6:
		q = fmt.Sprintf("%s %s, thanks", capital(n), strings.Join(clauses, ", "))
	case 0:
		q = fmt.Sprintf("%s the %s %s", capital(v), n, strings.Join(clauses, " and "))
	case 1:
		q = fmt.Sprintf("Please %s a %s, %s.", v, n, strings.Join(clauses, ", "))
	case 2:
		q = fmt.Sprintf("Can you %s the %s %s?", v, n, strings.Join(clauses, " "))
	case 3:
		q = fmt.Sprintf("I need to %s a %s %s", v, n, strings.Join(clauses, " and "))
	default:
		q = fmt.Sprintf("%s %s %s please", v, n, strings.Join(clauses, ", "))
	}
	defs := make([]map[string]any, 0, len(tools))
	for _, t := range tools {
		props := map[string]any{}
		for _, p := range t.params {
			props[p] = map[string]any{"type": "string", "description": "The " + p + "."}
		}
		defs = append(defs, map[string]any{"type": "function", "function": map[string]any{
			"name": t.name(), "description": capital(t.verb) + " a " + t.noun + ".",
			"parameters": map[string]any{"type": "object", "properties": props, "required": t.params},
		}})
	}
	ts := cfg.Start.Add(time.Duration(i) * time.Second).UTC()
	if system == "" {
		system = drillSystem[r.IntN(len(drillSystem))]
	}
	req, err := json.Marshal(map[string]any{
		"model": Model,
		"messages": []map[string]any{
			{"role": "system", "content": system},
			{"role": "user", "content": q},
		},
		"tools": defs,
	})
	if err != nil {
		return flywheel.LogRecord{}, err
	}
	resp, err := json.Marshal(map[string]any{
		"id": fmt.Sprintf("chatcmpl-drill-%d", i), "object": "chat.completion", "created": ts.Unix(), "model": Model,
		"choices": []map[string]any{{"index": 0, "finish_reason": "tool_calls", "message": map[string]any{
			"role": "assistant", "content": nil,
			"tool_calls": []map[string]any{{"id": fmt.Sprintf("call_%d", i), "type": "function",
				"function": map[string]any{"name": call.name(), "arguments": args.String()}}},
		}}},
	})
	if err != nil {
		return flywheel.LogRecord{}, err
	}
	return flywheel.LogRecord{WorkloadID: cfg.WorkloadID, ClientID: cfg.ClientID, Timestamp: ts, Request: req, Response: resp}, nil
}
