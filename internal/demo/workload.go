// Package demo generates the workload of `flywheel demo`: production traffic
// of a small assistant that answers with tool calls, in the blueprint's log
// format, deterministically for a seed.
package demo

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// ProductionModel is the model name the generated traffic was "served" by.
const ProductionModel = "meta/llama-3.3-70b-instruct"

type fn struct {
	name   string
	desc   string
	params []string
	enums  map[string][]string
}

var tools = []fn{
	{name: "get_weather", desc: "Current weather for a city.", params: []string{"city", "unit"},
		enums: map[string][]string{"unit": {"celsius", "fahrenheit"}}},
	{name: "get_stock_price", desc: "Latest price of a stock.", params: []string{"ticker"}},
	{name: "schedule_meeting", desc: "Book a meeting with a colleague.", params: []string{"person", "day"},
		enums: map[string][]string{"day": {"monday", "tuesday", "wednesday", "thursday", "friday"}}},
}

func toolDefs() []map[string]any {
	var out []map[string]any
	for _, t := range tools {
		props := map[string]any{}
		for _, p := range t.params {
			prop := map[string]any{"type": "string", "description": "The " + p + "."}
			if e, ok := t.enums[p]; ok {
				prop["enum"] = e
			}
			props[p] = prop
		}
		out = append(out, map[string]any{"type": "function", "function": map[string]any{
			"name": t.name, "description": t.desc,
			"parameters": map[string]any{"type": "object", "properties": props, "required": t.params},
		}})
	}
	return out
}

// Records returns n logged chat completions of workload and client, one
// minute apart ending at end.
func Records(n int, seed uint64, workload, client string, end time.Time) ([]flywheel.LogRecord, error) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	cities := strings.Fields("Paris London Tokyo Berlin Madrid Rome Lima Cairo Sydney Toronto Boston Chicago Denver Austin Seattle " +
		"Oslo Dublin Vienna Prague Lisbon Athens Warsaw Zurich Geneva Munich Milan Naples Porto Seville Lyon Nice Bergen Krakow Riga " +
		"Tallinn Helsinki Stockholm Copenhagen Amsterdam Brussels Antwerp Quito Bogota Santiago Havana Nairobi Lagos Accra Dakar Tunis")
	tickers := strings.Fields("AAPL MSFT GOOG AMZN NVDA TSLA META IBM ORCL INTC AMD CSCO ADBE CRM NFLX PYPL SHOP UBER ABNB SNOW " +
		"QCOM TXN AVGO MU KO PEP WMT COST NKE DIS")
	people := strings.Fields("Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy Mallory Niaj Olivia Peggy Rupert Sybil Trent " +
		"Victor Walter Yvonne Zoe Liam Emma Noah Ava Mia Lucas Amir Priya Chen Sofia Mateo Hana Omar Lena")
	defs := toolDefs()
	out := make([]flywheel.LogRecord, 0, n)
	for i := range n {
		var q, name string
		var args map[string]string
		switch rng.IntN(3) {
		case 0:
			c, unit := pick(cities), pick(tools[0].enums["unit"])
			q = fmt.Sprintf(pick([]string{"What's the weather in %s in %s?", "Weather for %s please, %s", "How warm is it in %s? Use %s."}), c, unit)
			name, args = "get_weather", map[string]string{"city": c, "unit": unit}
		case 1:
			t := pick(tickers)
			q = fmt.Sprintf(pick([]string{"What is %s trading at?", "Stock price of %s", "How much is one share of %s?", "Quote %s for me"}), t)
			name, args = "get_stock_price", map[string]string{"ticker": t}
		default:
			p, d := pick(people), pick(tools[2].enums["day"])
			q = fmt.Sprintf(pick([]string{"Set up a meeting with %s on %s", "Book time with %s %s", "Schedule %s for %s", "I need to meet %s on %s"}), p, d)
			name, args = "schedule_meeting", map[string]string{"person": p, "day": d}
		}
		argText, err := json.Marshal(args)
		if err != nil {
			return nil, err
		}
		req := map[string]any{
			"model": ProductionModel,
			"messages": []map[string]any{
				{"role": "system", "content": "You are a helpful assistant. Use the tools."},
				{"role": "user", "content": q},
			},
			"tools": defs, "tool_choice": "auto", "temperature": 0,
		}
		resp := map[string]any{
			"id": fmt.Sprintf("chatcmpl-demo-%d", i), "object": "chat.completion", "created": end.Unix() - int64(n-i)*60,
			"model": ProductionModel,
			"choices": []map[string]any{{"index": 0, "finish_reason": "tool_calls", "message": map[string]any{
				"role": "assistant", "content": nil,
				"tool_calls": []map[string]any{{"id": fmt.Sprintf("call_%d", i), "type": "function",
					"function": map[string]any{"name": name, "arguments": string(argText)}}},
			}}},
			"usage": map[string]int{"prompt_tokens": 180, "completion_tokens": 24, "total_tokens": 204},
		}
		rb, err := json.Marshal(req)
		if err != nil {
			return nil, err
		}
		pb, err := json.Marshal(resp)
		if err != nil {
			return nil, err
		}
		out = append(out, flywheel.LogRecord{WorkloadID: workload, ClientID: client,
			Timestamp: end.Add(-time.Duration(n-i) * time.Minute).UTC(), Request: rb, Response: pb})
	}
	return out, nil
}
