package dataset

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

func TestFewShotRequest(t *testing.T) {
	t.Parallel()
	req := json.RawMessage(`{"messages":[{"role":"system","content":"Use the tools."},{"role":"user","content":"Weather in Oslo?"}],"tools":[]}`)
	ex := flywheel.LogRecord{
		Request:  json.RawMessage(`{"messages":[{"role":"system","content":"Use the tools."},{"role":"user","content":"Weather in Lima?"}]}`),
		Response: json.RawMessage(`{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Lima\"}"}}]}}]}`),
	}
	out, err := FewShotRequest(req, []flywheel.LogRecord{ex, ex})
	require.NoError(t, err)
	var got struct {
		Messages []struct{ Role, Content string } `json:"messages"`
	}
	require.NoError(t, json.Unmarshal(out, &got))
	require.Len(t, got.Messages, 2, "the examples go into the system message")
	sys := got.Messages[0].Content
	require.True(t, strings.HasPrefix(sys, DefaultSystemMessage), sys)
	require.True(t, strings.HasSuffix(sys, "\n\nUse the tools."), sys)
	require.Equal(t, 2, strings.Count(sys, "For example, if the conversation looks like this:\nsystem: Use the tools.\n\nuser: Weather in Lima?"))
	require.Contains(t, sys, `"name": "get_weather"`)
	require.Contains(t, sys, `"city": "Lima"`, "arguments are parsed, as in the ICL dataset")
	require.Equal(t, "Weather in Oslo?", got.Messages[1].Content)

	_, err = FewShotRequest(req, []flywheel.LogRecord{{Request: json.RawMessage(`[]`)}})
	require.ErrorContains(t, err, "example 0: request")
}
