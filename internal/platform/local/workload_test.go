package local

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/tokenizer"
)

// toyWorkload returns n logged tool-calling records of a small app with
// three tools, as chat records whose last message is the logged answer.
func toyWorkload(n int, seed uint64) []Record {
	rng := rand.New(rand.NewPCG(seed, 7))
	cities := strings.Fields("Paris London Tokyo Berlin Madrid Rome Lima Cairo Sydney Toronto Boston Chicago Denver Austin Seattle Oslo Dublin Vienna Prague Lisbon")
	tickers := strings.Fields("AAPL MSFT GOOG AMZN NVDA TSLA META IBM ORCL INTC")
	people := strings.Fields("Alice Bob Carol Dave Erin Frank Grace Heidi")
	days := strings.Fields("monday tuesday wednesday thursday friday")
	tools := mustTools([]map[string]any{
		tool("get_weather", []string{"city", "unit"}, map[string]any{"city": map[string]any{"type": "string"}, "unit": map[string]any{"type": "string"}}),
		tool("get_stock_price", []string{"ticker"}, map[string]any{"ticker": map[string]any{"type": "string"}}),
		tool("schedule_meeting", []string{"person", "day"}, map[string]any{"person": map[string]any{"type": "string"}, "day": map[string]any{"type": "string"}}),
	})
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	var out []Record
	for i := 0; i < n; i++ {
		var q, name, args string
		switch rng.IntN(3) {
		case 0:
			c := pick(cities)
			unit := "celsius"
			if rng.IntN(2) == 0 {
				unit = "fahrenheit"
			}
			q = fmt.Sprintf([]string{"What's the weather in %s in %s?", "Weather for %s please, %s", "How warm is it in %s? Use %s.", "Tell me the %[2]s temperature in %[1]s"}[rng.IntN(4)], c, unit)
			name, args = "get_weather", fmt.Sprintf(`{"city": %q, "unit": %q}`, c, unit)
		case 1:
			t := pick(tickers)
			q = fmt.Sprintf([]string{"What is %s trading at?", "Stock price of %s", "How much is one share of %s?", "Quote %s for me"}[rng.IntN(4)], t)
			name, args = "get_stock_price", fmt.Sprintf(`{"ticker": %q}`, t)
		default:
			p, d := pick(people), pick(days)
			q = fmt.Sprintf([]string{"Set up a meeting with %s on %s", "Book time with %s %s", "Schedule %s for %s", "I need to meet %s on %s"}[rng.IntN(4)], p, d)
			name, args = "schedule_meeting", fmt.Sprintf(`{"person": %q, "day": %q}`, p, d)
		}
		out = append(out, Record{Messages: []tokenizer.Message{{Role: "user", Content: jsonString(q)}, assistantCall(name, args)}, Tools: tools})
	}
	return out
}

func writeRecords(t *testing.T, path string, recs []Record) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	enc := json.NewEncoder(f)
	for _, r := range recs {
		require.NoError(t, enc.Encode(r))
	}
}
