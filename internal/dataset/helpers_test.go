package dataset

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// memSource is an in-memory RecordSource and LogIngester that behaves like
// the store: newest first, up to limit.
type memSource struct {
	mu   sync.Mutex
	recs []flywheel.LogRecord
	err  error
}

func (m *memSource) InsertLogs(_ context.Context, recs []flywheel.LogRecord) (int, int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs = append(m.recs, recs...)
	return len(recs), 0, nil
}

func (m *memSource) NewestRecords(_ context.Context, workloadID, clientID string, limit int) ([]flywheel.LogRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, m.err
	}
	var out []flywheel.LogRecord
	for _, r := range m.recs {
		if r.WorkloadID == workloadID && r.ClientID == clientID {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b flywheel.LogRecord) int { return b.Timestamp.Compare(a.Timestamp) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

var _ flywheel.RecordSource = (*memSource)(nil)

// mustJSON encodes v or panics (test helper).
func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// toolRec is a tool-calling record: the user asks query, the assistant
// calls tool with args (a JSON string), and the request offers the tool
// with nProps parameters.
func toolRec(i int, query, tool, args string, nProps int) flywheel.LogRecord {
	props := map[string]any{}
	for p := range nProps {
		props[fmt.Sprintf("p%d", p)] = map[string]any{"type": "string"}
	}
	return flywheel.LogRecord{
		ID: int64(i), WorkloadID: "w", ClientID: "c", Timestamp: time.Unix(1_700_000_000+int64(i), 0).UTC(),
		Request: mustJSON(map[string]any{
			"model":    "m",
			"messages": []any{map[string]any{"role": "system", "content": "be brief"}, map[string]any{"role": "user", "content": query}},
			"tools":    []any{map[string]any{"type": "function", "function": map[string]any{"name": tool, "parameters": map[string]any{"type": "object", "properties": props}}}},
		}),
		Response: mustJSON(map[string]any{"choices": []any{map[string]any{"index": 0, "message": map[string]any{
			"role": "assistant", "content": nil,
			"tool_calls": []any{map[string]any{"id": "c1", "type": "function", "function": map[string]any{"name": tool, "arguments": args}}},
		}}}}),
	}
}

// textRec is a generic record.
func textRec(i int, query, answer string) flywheel.LogRecord {
	return flywheel.LogRecord{
		ID: int64(i), WorkloadID: "w", ClientID: "c", Timestamp: time.Unix(1_700_000_000+int64(i), 0).UTC(),
		Request:  mustJSON(map[string]any{"model": "m", "messages": []any{map[string]any{"role": "user", "content": query}}}),
		Response: mustJSON(map[string]any{"choices": []any{map[string]any{"message": map[string]any{"role": "assistant", "content": answer}}}}),
	}
}

func ptr[T any](v T) *T { return &v }

func splitCfg(evalSize int, valRatio float64, minTotal int, limit *int) flywheel.DataSplitConfig {
	return flywheel.DataSplitConfig{
		EvalSize: evalSize, ValRatio: valRatio, MinTotalRecords: minTotal, RandomSeed: ptr(int64(42)),
		Limit: limit, ParseFunctionArguments: true,
	}
}

func iclCfg(selection string) flywheel.ICLConfig {
	return flywheel.ICLConfig{MaxContextLength: 32768, ReservedTokens: 4096, MaxExamples: 3, MinExamples: 1, ExampleSelection: selection}
}

func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
