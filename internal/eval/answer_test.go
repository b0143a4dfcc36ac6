package eval_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/eval"
	"github.com/flywheel-go/flywheel/internal/flywheel"
)

const (
	scorerToolRequest = `{"model":"prod","messages":[{"role":"user","content":"Book a ride to the airport for 2"}],
"tools":[{"type":"function","function":{"name":"book_ride","parameters":{"type":"object",
"properties":{"destination":{"type":"string"},"seats":{"type":"integer"}},"required":["destination","seats"]}}}]}`
	scorerTextRequest = `{"model":"prod","messages":[{"role":"user","content":"Say hello"}]}`
)

// chatAnswer is a chat-completion response body with one tool call, or
// with content when name is empty.
func chatAnswer(t *testing.T, name, args, content string) json.RawMessage {
	t.Helper()
	msg := map[string]any{"role": "assistant", "content": content}
	if name != "" {
		msg["content"] = nil
		msg["tool_calls"] = []any{map[string]any{"id": "c1", "type": "function",
			"function": map[string]any{"name": name, "arguments": args}}}
	}
	b, err := json.Marshal(map[string]any{"id": "r", "object": "chat.completion",
		"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": "stop"}}})
	require.NoError(t, err)
	return b
}

// TestScorer: an answer is scored against production's with the offline
// evaluation's metrics and checker.
func TestScorer(t *testing.T) {
	t.Parallel()

	ref := chatAnswer(t, "book_ride", `{"destination": "airport", "seats": 2}`, "")
	tests := []struct {
		name    string
		checker eval.ToolCallChecker
		request string
		ref     json.RawMessage
		answer  json.RawMessage
		want    map[string]float64
		wantErr error
	}{
		{name: "IdenticalCalls", request: scorerToolRequest, ref: ref,
			answer: chatAnswer(t, "book_ride", `{"seats":2,"destination":"airport"}`, ""),
			want:   map[string]float64{flywheel.ScoreFunctionName: 1, flywheel.ScoreFunctionNameAndArgs: 1, eval.ScoreASTAccuracy: 1}},
		{name: "IdenticalCallsBFCL", checker: eval.CheckerBFCL, request: scorerToolRequest, ref: ref,
			answer: chatAnswer(t, "book_ride", `{"seats":2,"destination":"airport"}`, ""),
			want:   map[string]float64{flywheel.ScoreFunctionName: 1, flywheel.ScoreFunctionNameAndArgs: 1, eval.ScoreASTAccuracy: 1}},
		{name: "WrongArgs", request: scorerToolRequest, ref: ref,
			answer: chatAnswer(t, "book_ride", `{"destination": "station", "seats": 2}`, ""),
			want:   map[string]float64{flywheel.ScoreFunctionName: 1, flywheel.ScoreFunctionNameAndArgs: 0, eval.ScoreASTAccuracy: 0}},
		{name: "NoCall", request: scorerToolRequest, ref: ref, answer: chatAnswer(t, "", "", "Sure."),
			want: map[string]float64{flywheel.ScoreFunctionName: 0, flywheel.ScoreFunctionNameAndArgs: 0}},
		{name: "FailedRequest", request: scorerToolRequest, ref: ref, answer: nil,
			want: map[string]float64{flywheel.ScoreFunctionName: 0, flywheel.ScoreFunctionNameAndArgs: 0, eval.ScoreASTAccuracy: 0}},
		{name: "UnreadableAnswer", request: scorerToolRequest, ref: ref, answer: json.RawMessage(`{"choices":`),
			want: map[string]float64{flywheel.ScoreFunctionName: 0, flywheel.ScoreFunctionNameAndArgs: 0}, wantErr: eval.ErrAnswerUnreadable},
		{name: "Text", request: scorerTextRequest, ref: chatAnswer(t, "", "", "Hello there"),
			answer: chatAnswer(t, "", "", "Hello there"),
			want:   map[string]float64{eval.ScoreExactMatch: 1, eval.ScoreTokenF1: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := &eval.Scorer{Checker: tt.checker}
			got, err := s.Score(json.RawMessage(tt.request), tt.ref, tt.answer)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
			} else {
				require.NoError(t, err)
			}
			for k, v := range tt.want {
				require.Contains(t, got, k)
				require.InDelta(t, v, got[k], 1e-9, k)
			}
			require.NotContains(t, got, flywheel.ScoreToolCallingCorrectness, "no judge online")
		})
	}

	t.Run("UnscorableReference", func(t *testing.T) {
		t.Parallel()
		var s eval.Scorer
		_, err := s.Score(json.RawMessage(scorerToolRequest), json.RawMessage(`{"choices":[]}`), ref)
		require.ErrorContains(t, err, "response.choices")
		_, err = s.Score(json.RawMessage(`{"messages":[]}`), ref, ref)
		require.ErrorContains(t, err, "request.messages")
	})
}
