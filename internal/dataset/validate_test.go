package dataset

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

func TestValidate(t *testing.T) {
	t.Parallel()

	rec := func(req, resp string) flywheel.LogRecord {
		return flywheel.LogRecord{Request: json.RawMessage(req), Response: json.RawMessage(resp)}
	}
	const okResp = `{"choices":[{"message":{"role":"assistant","content":"hi"}}]}`
	const okReq = `{"messages":[{"role":"user","content":"q"}]}`
	tests := []struct {
		name      string
		rec       flywheel.LogRecord
		wantField string
		check     func(t *testing.T, r *Record)
	}{
		{name: "Generic", rec: rec(okReq, okResp), check: func(t *testing.T, r *Record) {
			require.Equal(t, "no_tool", r.ToolName())
			require.Equal(t, "q", r.UserQuery())
			require.False(t, r.HasTools)
		}},
		{name: "ToolCall", rec: toolRec(1, "weather?", "get_weather", `{"city":"Paris"}`, 3), check: func(t *testing.T, r *Record) {
			require.Equal(t, "get_weather", r.ToolName())
			require.Equal(t, 3, r.MaxToolProperties)
			require.True(t, r.HasTools)
			require.Len(t, r.Calls, 1)
		}},
		{name: "MultimodalQuery", rec: rec(`{"messages":[{"role":"user","content":[{"type":"text","text":"what is"},{"type":"image_url","image_url":{"url":"x"}},{"type":"text","text":"this"}]}]}`, okResp),
			check: func(t *testing.T, r *Record) { require.Equal(t, "what is this", r.UserQuery()) }},
		{name: "ArgumentsObject", rec: rec(okReq, `{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[{"type":"function","function":{"name":"f","arguments":{"a":1}}}]}}]}`),
			check: func(t *testing.T, r *Record) { require.Equal(t, "f", r.ToolName()) }},
		{name: "RequestNotObject", rec: rec(`[]`, okResp), wantField: "request"},
		{name: "RequestInvalidJSON", rec: rec(`{"messages":`, okResp), wantField: "request"},
		{name: "NoMessages", rec: rec(`{"model":"m"}`, okResp), wantField: "request.messages"},
		{name: "EmptyMessages", rec: rec(`{"messages":[]}`, okResp), wantField: "request.messages"},
		{name: "MessageNotObject", rec: rec(`{"messages":["hi"]}`, okResp), wantField: "request.messages[0]"},
		{name: "UnknownRole", rec: rec(`{"messages":[{"role":"robot","content":"q"}]}`, okResp), wantField: "request.messages[0].role"},
		{name: "NumericContent", rec: rec(`{"messages":[{"role":"user","content":5}]}`, okResp), wantField: "request.messages[0].content"},
		{name: "ToolsNotArray", rec: rec(`{"messages":[{"role":"user","content":"q"}],"tools":{}}`, okResp), wantField: "request.tools"},
		{name: "ToolWithoutName", rec: rec(`{"messages":[{"role":"user","content":"q"}],"tools":[{"type":"function","function":{}}]}`, okResp), wantField: "request.tools[0]"},
		{name: "ResponseMissing", rec: rec(okReq, ``), wantField: "response"},
		{name: "NoChoices", rec: rec(okReq, `{"choices":[]}`), wantField: "response.choices"},
		{name: "ChoiceWithoutMessage", rec: rec(okReq, `{"choices":[{"text":"x"}]}`), wantField: "response.choices[0]"},
		{name: "SecondChoiceWithoutMessage", rec: rec(okReq, `{"choices":[{"message":{"role":"assistant","content":"a"}},{}]}`), wantField: "response.choices[1]"},
		{name: "AnswerNotAssistant", rec: rec(okReq, `{"choices":[{"message":{"role":"user","content":"a"}}]}`), wantField: "response.choices[0].message.role"},
		{name: "EmptyAnswer", rec: rec(okReq, `{"choices":[{"message":{"role":"assistant","content":null}}]}`), wantField: "response.choices[0].message"},
		{name: "ToolCallWrongType", rec: rec(okReq, `{"choices":[{"message":{"role":"assistant","tool_calls":[{"type":"code","function":{"name":"f"}}]}}]}`), wantField: "response.choices[0].message.tool_calls[0].type"},
		{name: "ToolCallNoName", rec: rec(okReq, `{"choices":[{"message":{"role":"assistant","tool_calls":[{"type":"function","function":{"arguments":"{}"}}]}}]}`), wantField: "response.choices[0].message.tool_calls[0].function.name"},
		{name: "ToolCallNumericArguments", rec: rec(okReq, `{"choices":[{"message":{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f","arguments":5}}]}}]}`), wantField: "response.choices[0].message.tool_calls[0].function.arguments"},
		{name: "ToolCallsNotArray", rec: rec(okReq, `{"choices":[{"message":{"role":"assistant","tool_calls":{}}}]}`), wantField: "response.choices[0].message.tool_calls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, ferr := Validate(tt.rec)
			if tt.wantField != "" {
				require.Nil(t, r)
				require.NotNil(t, ferr)
				require.Equal(t, tt.wantField, ferr.Field, "reason: %s", ferr.Reason)
				require.NotEmpty(t, ferr.Reason)
				return
			}
			require.Nil(t, ferr)
			tt.check(t, r)
		})
	}
}

func TestParseArguments(t *testing.T) {
	t.Parallel()

	t.Run("StringBecomesObject", func(t *testing.T) {
		t.Parallel()
		r, ferr := Validate(toolRec(1, "q", "f", `{"a": [1, 2.50]}`, 1))
		require.Nil(t, ferr)
		require.NoError(t, r.parseArguments())
		var resp struct {
			Choices []struct {
				Message struct {
					ToolCalls []struct {
						Function struct {
							Arguments json.RawMessage `json:"arguments"`
						} `json:"function"`
					} `json:"tool_calls"`
				} `json:"message"`
			} `json:"choices"`
		}
		require.NoError(t, json.Unmarshal(r.Log.Response, &resp))
		require.JSONEq(t, `{"a":[1,2.50]}`, string(resp.Choices[0].Message.ToolCalls[0].Function.Arguments))
		require.Contains(t, string(r.Log.Response), `2.50`, "numbers keep their form")
		require.Contains(t, string(r.Answer.ToolCalls), `{"a":`)
	})
	t.Run("EmptyStringIsEmptyObject", func(t *testing.T) {
		t.Parallel()
		r, _ := Validate(toolRec(1, "q", "f", ``, 1))
		require.NoError(t, r.parseArguments())
		require.Contains(t, string(r.Log.Response), `"arguments":{}`)
	})
	for _, bad := range []string{`{"a":`, `[1]`, `"x"`, `nope`} {
		t.Run("Rejects"+bad, func(t *testing.T) {
			t.Parallel()
			r, _ := Validate(toolRec(1, "q", "f", bad, 1))
			require.Error(t, r.parseArguments())
		})
	}
}

func FuzzValidate(f *testing.F) {
	seed := toolRec(1, "q", "f", `{"a":1}`, 2)
	f.Add([]byte(seed.Request), []byte(seed.Response))
	g := textRec(1, "q", "a")
	f.Add([]byte(g.Request), []byte(g.Response))
	f.Add([]byte(`{"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"tools":[{"function":{"name":"f","parameters":{"properties":{"a":{}}}}}]}`),
		[]byte(`{"choices":[{"message":{"role":"assistant","tool_calls":[{"function":{"name":"f","arguments":"{\"a\":1}"}}]}}]}`))
	f.Fuzz(func(t *testing.T, req, resp []byte) {
		r, ferr := Validate(flywheel.LogRecord{Request: req, Response: resp})
		if ferr != nil {
			require.Nil(t, r)
			require.NotEmpty(t, ferr.Field)
			return
		}
		require.NotEmpty(t, r.Messages)
		_ = r.ToolName()
		_ = r.UserQuery()
		_ = exampleText(r)
		_ = queryText(r)
		if err := r.parseArguments(); err == nil {
			require.True(t, json.Valid(r.Log.Response))
		}
		if _, err := trainLine(r, flywheel.WorkloadToolCalling); err != nil {
			t.Fatalf("trainLine on a valid record: %v", err)
		}
		if _, err := evalLine(r, r.Log.Request); err != nil {
			t.Fatalf("evalLine on a valid record: %v", err)
		}
		if _, err := injectExamples(r.Log.Request, []string{"ex"}); err != nil {
			t.Fatalf("injectExamples on a valid record: %v", err)
		}
	})
}

func TestStripIndexes(t *testing.T) {
	t.Parallel()
	require.Equal(t, "request.messages[].role", stripIndexes("request.messages[12].role"))
	require.Equal(t, "response.choices[].message.tool_calls[].type", stripIndexes("response.choices[0].message.tool_calls[3].type"))
	require.Equal(t, "request", stripIndexes("request"))
}
