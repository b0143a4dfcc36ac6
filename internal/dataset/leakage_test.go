package dataset

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

func TestNormalizeQuestion(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"What's the weather in Paris?", "whats the weather in paris"},
		{"  what's   the WEATHER\tin paris!! ", "whats the weather in paris"},
		{"Book 2 seats, please.", "book 2 seats please"},
		{"¿Qué tal?", "qué tal"},
		{"...", ""},
		{"", ""},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, NormalizeQuestion(tc.in), tc.in)
	}
}

// multiTurnRec is a tool-calling record whose conversation has an earlier
// user turn before query: the deduplication (all user messages) keeps it
// apart from a single-turn record with the same last question.
func multiTurnRec(i int, earlier, query, tool, args string) flywheel.LogRecord {
	r := toolRec(i, query, tool, args, 2)
	r.Request = mustJSON(map[string]any{
		"model": "m",
		"messages": []any{
			map[string]any{"role": "user", "content": earlier},
			map[string]any{"role": "assistant", "content": "sure"},
			map[string]any{"role": "user", "content": query},
		},
		"tools": []any{map[string]any{"type": "function", "function": map[string]any{"name": tool, "parameters": map[string]any{"type": "object", "properties": map[string]any{}}}}},
	})
	return r
}

func validated(t *testing.T, recs ...flywheel.LogRecord) []*Record {
	t.Helper()
	out := make([]*Record, len(recs))
	for i, rec := range recs {
		r, ferr := Validate(rec)
		require.Nil(t, ferr)
		out[i] = r
	}
	return out
}

func TestGuardLeakage(t *testing.T) {
	t.Parallel()
	eval := validated(t,
		toolRec(1, "What is the weather in Paris?", "get_weather", `{"city":"Paris"}`, 2),
		toolRec(2, "Book a table for two", "book", `{"n":2}`, 2),
	)
	train := validated(t,
		multiTurnRec(10, "hello", "What is the weather in Paris?", "get_weather", `{"city": "Paris"}`), // exact: same question, same call (spacing of the arguments aside)
		toolRec(11, "what is the weather in paris", "get_weather", `{"city":"Paris"}`, 2),              // near
		toolRec(12, "What is the weather in Paris?", "get_weather", `{"city":"Lyon"}`, 2),              // other arguments: kept
		toolRec(13, "Weather in Rome?", "get_weather", `{"city":"Rome"}`, 2),                           // kept
	)
	val := validated(t,
		toolRec(20, "BOOK a table for two!!", "book", `{"n":2}`, 2), // near
		toolRec(21, "Book a table for three", "book", `{"n":3}`, 2), // kept
	)
	evalBefore := append([]*Record(nil), eval...)

	keptTrain, keptVal, stats := guardLeakage(eval, train, val)
	ids := func(rs []*Record) []int64 {
		var out []int64
		for _, r := range rs {
			out = append(out, r.Log.ID)
		}
		return out
	}
	require.Equal(t, []int64{12, 13}, ids(keptTrain))
	require.Equal(t, []int64{21}, ids(keptVal))
	require.Equal(t, &flywheel.LeakageStats{Exact: 1, Near: 2, Train: 2, Val: 1, RecordIDs: []int64{10, 11, 20}}, stats)
	require.Equal(t, evalBefore, eval, "the evaluation set is never changed")
}

// TestBuildLeakage builds datasets from a workload in which every question
// also appears reworded (case, punctuation, spacing) or in a longer
// conversation: no evaluation question may reach train or val, the
// removals are counted, and the evaluation set keeps its size.
func TestBuildLeakage(t *testing.T) {
	t.Parallel()
	var recs []flywheel.LogRecord
	for i := range 40 {
		q := fmt.Sprintf("Please check order number %d.", i)
		args := fmt.Sprintf(`{"order":%d}`, i)
		recs = append(recs, toolRec(i, q, fmt.Sprintf("tool%d", i%4), args, 2))
		switch i % 3 {
		case 0:
			recs = append(recs, toolRec(1000+i, fmt.Sprintf("please CHECK order number %d", i), fmt.Sprintf("tool%d", i%4), args, 2))
		case 1:
			recs = append(recs, multiTurnRec(1000+i, "hi", q, fmt.Sprintf("tool%d", i%4), args))
		}
	}
	b := setup(t, recs...)
	cfg := splitCfg(10, 0.2, 10, nil)
	res, err := b.builder.Build(t.Context(), b.request(cfg, iclCfg(flywheel.SelectionUniform)))
	require.NoError(t, err)
	st := res.Stats
	require.NotNil(t, st.Leakage)
	require.Equal(t, 10, st.Eval, "the evaluation set keeps its size")
	require.Positive(t, st.Leakage.Exact)
	require.Positive(t, st.Leakage.Near)
	require.Equal(t, st.Leakage.Exact+st.Leakage.Near, st.Leakage.Train+st.Leakage.Val)
	require.Equal(t, st.Selected-st.Leakage.Removed(), st.Eval+st.Train+st.Val)
	require.Equal(t, st.Leakage.Removed(), st.Reasons[ReasonLeakage])

	// No question of eval in train, val or the ICL examples.
	evalDS := manifestDataset(res.Manifest, flywheel.ManifestEval)
	require.Len(t, evalDS.RecordIDs, 10)
	orderOf := func(id int64) int64 { return id % 1000 } // a record and its variant share the order number
	inEval := map[int64]bool{}
	for _, id := range evalDS.RecordIDs {
		inEval[orderOf(id)] = true
	}
	for _, kind := range []string{flywheel.ManifestTrain, flywheel.ManifestVal, flywheel.ManifestICL} {
		for _, id := range manifestDataset(res.Manifest, kind).RecordIDs {
			require.False(t, inEval[orderOf(id)], "%s record %d repeats an evaluation question", kind, id)
		}
	}
	// The files agree.
	train := readJSONL(t, b.dir+"/"+res.Datasets[2].Name+"/"+TrainFile)
	require.Len(t, train, st.Train)
	for _, line := range train {
		msgs, _ := json.Marshal(line["messages"])
		for id := range inEval {
			require.NotContains(t, string(msgs), fmt.Sprintf("order number %d\"", id))
		}
	}
}
