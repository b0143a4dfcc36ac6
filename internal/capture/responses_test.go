package capture_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/capture"
	"github.com/flywheel-go/flywheel/internal/dataset"
)

func postResponses(t *testing.T, b *testBundle, body string) (*http.Response, string) {
	t.Helper()
	resp := b.do(t, http.MethodPost, capture.ResponsesPath, strings.NewReader(body), http.Header{"Content-Type": {"application/json"}})
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	return resp, string(got)
}

func TestResponsesRecordedAsChat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, request, answer, wantRequest, wantResponse string
	}{
		{
			name:    "PlainText",
			request: `{"model":"gpt-4.1","instructions":"Be brief.","input":"Say hi","temperature":0.2,"max_output_tokens":50,"store":false}`,
			answer: `{"id":"resp_1","object":"response","created_at":1750000000,"status":"completed","model":"gpt-4.1-2025",
				"output":[{"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"Greeting."}]},
				{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hi","annotations":[]},{"type":"output_text","text":" there","annotations":[]}]}],
				"usage":{"input_tokens":9,"output_tokens":3,"total_tokens":12,"output_tokens_details":{"reasoning_tokens":1}}}`,
			wantRequest: `{"model":"gpt-4.1","temperature":0.2,"max_tokens":50,"messages":[
				{"role":"system","content":"Be brief."},{"role":"user","content":"Say hi"}]}`,
			wantResponse: `{"id":"resp_1","object":"chat.completion","created":1750000000,"model":"gpt-4.1-2025",
				"choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"Hi there","reasoning_content":"Greeting."}}],
				"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12,"completion_tokens_details":{"reasoning_tokens":1}}}`,
		},
		{
			name: "FunctionCalls",
			request: `{"model":"m","input":[
				{"role":"developer","content":"Use tools."},
				{"type":"message","role":"user","content":[{"type":"input_text","text":"Weather in Paris"},{"type":"input_image","image_url":"https://x/y.png","detail":"low"}]},
				{"type":"message","role":"assistant","content":[{"type":"output_text","text":"Checking."}]},
				{"type":"function_call","call_id":"call_a","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},
				{"type":"function_call","call_id":"call_b","name":"get_time","arguments":"{}"},
				{"type":"function_call_output","call_id":"call_a","output":"18C"},
				{"type":"function_call_output","call_id":"call_b","output":[{"type":"input_text","text":"noon"}]},
				{"type":"reasoning","id":"rs_0","summary":[]},
				{"role":"user","content":"And Rome, both?"}],
				"tools":[{"type":"function","name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]},"strict":true},
					{"type":"web_search"}],
				"tool_choice":{"type":"function","name":"get_weather"},"parallel_tool_calls":true,"stream":false,
				"text":{"format":{"type":"json_schema","name":"w","schema":{"type":"object"},"strict":true}}}`,
			answer: `{"id":"resp_2","object":"response","created_at":7,"status":"completed","model":"m",
				"output":[{"type":"function_call","id":"fc_1","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Rome\"}","status":"completed"},
				{"type":"function_call","id":"fc_2","call_id":"call_2","name":"get_weather","arguments":"{\"city\":\"Paris\"}","status":"completed"}],
				"usage":{"input_tokens":40,"output_tokens":20,"total_tokens":60}}`,
			wantRequest: `{"model":"m","parallel_tool_calls":true,"stream":false,"messages":[
				{"role":"developer","content":"Use tools."},
				{"role":"user","content":[{"type":"text","text":"Weather in Paris"},{"type":"image_url","image_url":{"url":"https://x/y.png","detail":"low"}}]},
				{"role":"assistant","content":"Checking.","tool_calls":[
					{"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
					{"id":"call_b","type":"function","function":{"name":"get_time","arguments":"{}"}}]},
				{"role":"tool","tool_call_id":"call_a","content":"18C"},
				{"role":"tool","tool_call_id":"call_b","content":"noon"},
				{"role":"user","content":"And Rome, both?"}],
				"tools":[{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]},"strict":true}}],
				"tool_choice":{"type":"function","function":{"name":"get_weather"}},
				"response_format":{"type":"json_schema","json_schema":{"name":"w","schema":{"type":"object"},"strict":true}}}`,
			wantResponse: `{"id":"resp_2","object":"chat.completion","created":7,"model":"m",
				"choices":[{"index":0,"finish_reason":"tool_calls","message":{"role":"assistant","content":null,"tool_calls":[
					{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Rome\"}"}},
					{"id":"call_2","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]}}],
				"usage":{"prompt_tokens":40,"completion_tokens":20,"total_tokens":60}}`,
		},
		{
			name:    "IncompleteForLength",
			request: `{"model":"m","input":[{"role":"user","content":"Write a poem"}],"max_output_tokens":2}`,
			answer: `{"id":"resp_3","object":"response","created_at":8,"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"model":"m",
				"output":[{"type":"message","role":"assistant","content":[{"type":"output_text","text":"Roses"}]}]}`,
			wantRequest: `{"model":"m","max_tokens":2,"messages":[{"role":"user","content":"Write a poem"}]}`,
			wantResponse: `{"id":"resp_3","object":"chat.completion","created":8,"model":"m",
				"choices":[{"index":0,"finish_reason":"length","message":{"role":"assistant","content":"Roses"}}]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, jsonReply(http.StatusOK, tt.answer), nil, false)
			resp, got := postResponses(t, b, tt.request)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, tt.answer, got, "the caller gets the Responses answer unchanged")
			call := <-b.calls
			require.Equal(t, capture.ResponsesPath, call.path)
			require.Equal(t, tt.request, call.body, "the upstream gets the Responses request unchanged")

			require.Eventually(t, func() bool { return len(b.ing.records()) == 1 }, 5*time.Second, time.Millisecond)
			rec := b.ing.records()[0]
			require.Equal(t, "w", rec.WorkloadID)
			require.JSONEq(t, tt.wantRequest, string(rec.Request))
			require.JSONEq(t, tt.wantResponse, string(rec.Response))
			_, ferr := dataset.Validate(rec)
			require.Nil(t, ferr, "the dataset stage accepts the converted record")
		})
	}
}

func TestResponsesNotRecorded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, request, answer string
		status                int
	}{
		{"UpstreamError", `{"model":"m","input":"hi"}`, `{"error":{"message":"bad","type":"invalid_request_error"}}`, http.StatusBadRequest},
		{"Failed", `{"model":"m","input":"hi"}`, `{"id":"r","object":"response","status":"failed","error":{"code":"server_error"},"output":[]}`, http.StatusOK},
		{"Background", `{"model":"m","input":"hi","background":true}`, `{"id":"r","object":"response","status":"queued","output":[]}`, http.StatusOK},
		{"NoModel", `{"input":"hi"}`, `{"id":"r","object":"response","status":"completed","output":[{"type":"message","role":"assistant","content":[{"type":"output_text","text":"x"}]}]}`, http.StatusOK},
		{"NoOutput", `{"model":"m","input":"hi"}`, `{"id":"r","object":"response","status":"completed","output":[{"type":"web_search_call","id":"ws"}]}`, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, jsonReply(tt.status, tt.answer), nil, false)
			resp, got := postResponses(t, b, tt.request)
			require.Equal(t, tt.status, resp.StatusCode)
			require.Equal(t, tt.answer, got)
			require.Eventually(t, func() bool {
				return b.counter(t, "flywheel_capture_records_total", "result", capture.ResultNotRecorded) == 1
			}, 5*time.Second, time.Millisecond)
			require.Empty(t, b.ing.records())
		})
	}
}

// sseEvents writes Responses API stream events as a server does.
func sseEvents(events []string) []string {
	out := make([]string, len(events))
	for i, e := range events {
		var ev struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal([]byte(e), &ev)
		out[i] = fmt.Sprintf("event: %s\ndata: %s\n\n", ev.Type, e)
	}
	return out
}

func TestResponsesStreaming(t *testing.T) {
	t.Parallel()
	const request = `{"model":"m","input":"Weather in Paris?","stream":true,"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object"}}]}`
	const wantRequest = `{"model":"m","stream":true,"messages":[{"role":"user","content":"Weather in Paris?"}],
		"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]}`
	head := []string{
		`{"type":"response.created","sequence_number":0,"response":{"id":"resp_s","object":"response","created_at":9,"status":"in_progress","model":"m","output":[]}}`,
		`{"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"type":"message","id":"msg_1","status":"in_progress","role":"assistant","content":[]}}`,
		`{"type":"response.output_text.delta","sequence_number":2,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"Let me "}`,
		`{"type":"response.output_text.delta","sequence_number":3,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"check."}`,
		`{"type":"response.output_item.added","sequence_number":4,"output_index":1,"item":{"type":"function_call","id":"fc_1","call_id":"call_1","name":"get_weather","arguments":"","status":"in_progress"}}`,
		`{"type":"response.function_call_arguments.delta","sequence_number":5,"item_id":"fc_1","output_index":1,"delta":"{\"city\":"}`,
		`{"type":"response.function_call_arguments.delta","sequence_number":6,"item_id":"fc_1","output_index":1,"delta":"\"Paris\"}"}`,
	}
	const fullOutput = `[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Let me check.","annotations":[]}]},
		{"type":"function_call","id":"fc_1","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Paris\"}","status":"completed"}]`
	const wantResponse = `{"id":"resp_s","object":"chat.completion","created":9,"model":"m",
		"choices":[{"index":0,"finish_reason":"tool_calls","message":{"role":"assistant","content":"Let me check.","tool_calls":[
			{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]}}],
		"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}`
	completed := func(output string) string {
		return `{"type":"response.completed","sequence_number":7,"response":{"id":"resp_s","object":"response","created_at":9,"status":"completed","model":"m","output":` +
			strings.Join(strings.Fields(output), " ") + `,"usage":{"input_tokens":5,"output_tokens":7,"total_tokens":12}}}`
	}

	tests := []struct {
		name   string
		events []string
		want   string // "" when not recorded
	}{
		{"CompletedCarriesOutput", append(append([]string{}, head...), completed(fullOutput)), wantResponse},
		{"OutputRebuiltFromDeltas", append(append([]string{}, head...), completed(`[]`)), wantResponse},
		{"Failed", append(append([]string{}, head...), `{"type":"response.failed","sequence_number":7,"response":{"id":"resp_s","status":"failed","output":[]}}`), ""},
		{"EndsWithoutTerminalEvent", head, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			events := sseEvents(tt.events)
			firstRead := make(chan struct{})
			b := setup(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				w.WriteHeader(http.StatusOK)
				for i, e := range events {
					_, _ = io.WriteString(w, e)
					w.(http.Flusher).Flush()
					if i == 0 {
						select {
						case <-firstRead:
						case <-time.After(10 * time.Second):
							return
						}
					}
				}
			}, nil, false)
			resp := b.do(t, http.MethodPost, capture.ResponsesPath, strings.NewReader(request), http.Header{"Content-Type": {"application/json"}})
			defer resp.Body.Close()
			require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
			br := bufio.NewReader(resp.Body)
			first, err := br.ReadString('\n')
			require.NoError(t, err)
			require.Equal(t, "event: response.created\n", first, "events pass through as they arrive")
			close(firstRead)
			rest, err := io.ReadAll(br)
			require.NoError(t, err)
			require.Equal(t, strings.Join(events, ""), first+string(rest), "stream passed through unchanged")

			if tt.want == "" {
				require.Eventually(t, func() bool {
					return b.counter(t, "flywheel_capture_records_total", "result", capture.ResultNotRecorded) == 1
				}, 5*time.Second, time.Millisecond)
				require.Empty(t, b.ing.records())
				return
			}
			require.Eventually(t, func() bool { return len(b.ing.records()) == 1 }, 5*time.Second, time.Millisecond)
			rec := b.ing.records()[0]
			require.JSONEq(t, wantRequest, string(rec.Request))
			require.JSONEq(t, tt.want, string(rec.Response))
			_, ferr := dataset.Validate(rec)
			require.Nil(t, ferr, "the dataset stage accepts the converted record")
		})
	}
}
