package local

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/flywheel-go/flywheel/internal/tokenizer"
)

// The built-in corpus: synthetic tool-calling conversations about everyday
// tasks. It trains the tokenizer of every model made here (so models do not
// depend on any workload) and, briefly, the optional pre-trained base.

const corpusVerbs = "get find calculate search list create update delete book check convert send schedule fetch compute estimate lookup translate order cancel play"

const corpusNouns = "weather stock price flight hotel meeting email area distance temperature recipe movie song news population route time currency factorial average interest tax score restaurant ticket order event user account file report"

const corpusWords = "the a of to in for on with by from and or is are what how much many please can you tell me show give I need want would like know about at this that my our their city country year day week month number value total first last next new old big small high low fast slow good best near far home work today tomorrow morning evening units meters miles kilometers dollars euros celsius fahrenheit name type list between using given find out"

const corpusPlaces = "Paris London Tokyo Berlin Madrid Rome Lima Cairo Sydney Toronto Boston Chicago Denver Austin Seattle Oslo Dublin Vienna Prague Lisbon"

const corpusPeople = "Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy"

// Corpus returns n synthetic tool-calling records (messages and tools in
// OpenAI form), deterministically for a seed.
func Corpus(n int, seed uint64) []Record {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	verbs := strings.Fields(corpusVerbs)
	nouns := strings.Fields(corpusNouns)
	words := strings.Fields(corpusWords)
	places := strings.Fields(corpusPlaces)
	people := strings.Fields(corpusPeople)
	paramNames := []string{"city", "name", "date", "amount", "unit", "query", "limit", "person", "day", "symbol", "base", "height", "value", "currency", "location"}

	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	out := make([]Record, 0, n)
	for i := 0; i < n; i++ {
		nTools := 1 + rng.IntN(3)
		var tools []map[string]any
		var names []string
		for j := 0; j < nTools; j++ {
			name := pick(verbs) + "_" + pick(nouns)
			props := map[string]any{}
			var order []string
			for k := 0; k < 1+rng.IntN(3); k++ {
				p := pick(paramNames)
				if _, dup := props[p]; dup {
					continue
				}
				props[p] = map[string]any{"type": "string", "description": "The " + p + "."}
				order = append(order, p)
			}
			tools = append(tools, tool(name, order, props))
			names = append(names, name)
		}
		target := rng.IntN(nTools)
		fn := tools[target]["function"].(map[string]any)
		params := fn["parameters"].(map[string]any)["x-order"].([]string)
		var args []string
		var phrase []string
		for _, p := range params {
			var v string
			switch p {
			case "city", "location":
				v = pick(places)
			case "person", "name":
				v = pick(people)
			case "amount", "limit", "base", "height", "value":
				v = fmt.Sprint(1 + rng.IntN(500))
			default:
				v = pick(words)
			}
			args = append(args, fmt.Sprintf("%q: %q", p, v))
			phrase = append(phrase, p+" "+v)
		}
		verbNoun := strings.ReplaceAll(names[target], "_", " ")
		var q strings.Builder
		q.WriteString(strings.ToUpper(verbNoun[:1]) + verbNoun[1:])
		for k := 0; k < rng.IntN(4); k++ {
			q.WriteString(" " + pick(words))
		}
		if len(phrase) > 0 {
			q.WriteString(" with " + strings.Join(phrase, " and "))
		}
		q.WriteString(".")
		for _, t := range tools {
			delete(t["function"].(map[string]any)["parameters"].(map[string]any), "x-order")
		}
		out = append(out, Record{
			Messages: []tokenizer.Message{
				{Role: "user", Content: jsonString(q.String())},
				assistantCall(names[target], "{"+strings.Join(args, ", ")+"}"),
			},
			Tools: mustTools(tools),
		})
	}
	return out
}

// Record is one training or evaluation record: a conversation whose last
// message is the assistant's answer, and the tools offered.
type Record struct {
	Messages []tokenizer.Message `json:"messages"`
	Tools    []tokenizer.Tool    `json:"tools,omitempty"`
}

func tool(name string, order []string, props map[string]any) map[string]any {
	// Properties are written in order through an ordered JSON object.
	var b strings.Builder
	b.WriteString("{")
	for i, p := range order {
		if i > 0 {
			b.WriteString(",")
		}
		pb, _ := json.Marshal(props[p])
		b.WriteString(fmt.Sprintf("%q:%s", p, pb))
	}
	b.WriteString("}")
	return map[string]any{
		"type": "function",
		"function": map[string]any{
			"name":        name,
			"description": strings.ReplaceAll(name, "_", " "),
			"parameters": map[string]any{
				"type":       "object",
				"properties": json.RawMessage(b.String()),
				"x-order":    order,
			},
		},
	}
}

func mustTools(tools []map[string]any) []tokenizer.Tool {
	b, _ := json.Marshal(tools)
	var out []tokenizer.Tool
	_ = json.Unmarshal(b, &out)
	return out
}

func jsonString(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

func assistantCall(name, args string) tokenizer.Message {
	var tc tokenizer.ToolCall
	tc.Function.Name = name
	tc.Function.Arguments = jsonString(args)
	return tokenizer.Message{Role: "assistant", ToolCalls: []tokenizer.ToolCall{tc}}
}

// CorpusText renders records with the chat template, for tokenizer training.
func CorpusText(recs []Record) []string {
	out := make([]string, 0, len(recs))
	for _, r := range recs {
		if s, err := tokenizer.RenderChat(r.Messages, r.Tools, false); err == nil {
			out = append(out, s)
		}
	}
	return out
}
