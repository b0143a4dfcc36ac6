package eval

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/openai"
)

func FuzzAppendJSONString(f *testing.F) {
	f.Add("plain")
	f.Add("quote \" backslash \\ newline \n tab \t nul \x00 e\u0301 \u2028 bad \xff")
	f.Fuzz(func(t *testing.T, s string) {
		b := appendJSONString(nil, s)
		var got string
		require.NoError(t, json.Unmarshal(b, &got), "%q", b)
		want, _ := json.Marshal(s)
		var wantS string
		require.NoError(t, json.Unmarshal(want, &wantS))
		require.Equal(t, wantS, got)
	})
}

func TestCompact(t *testing.T) {
	t.Parallel()

	w := &worker{r: NewRunner(Options{MaxItemBytes: 100})}
	m := openai.Message{Content: "héllo \"x\"", ToolCalls: []openai.ToolCall{{Function: openai.FunctionCall{Name: "f", Arguments: `{"a":1}`}}}}
	b := w.compact(m)
	require.True(t, json.Valid(b), "%s", b)
	require.JSONEq(t, `{"content":"héllo \"x\"","tool_calls":[{"name":"f","arguments":"{\"a\":1}"}]}`, string(b))
	m.Content = string(make([]byte, 200))
	b = w.compact(m)
	require.True(t, json.Valid(b), "%s", b)
	require.Contains(t, string(b), `"truncated":true`)
	require.JSONEq(t, `{}`, string(w.compact(openai.Message{})))
}
