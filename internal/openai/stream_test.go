package openai_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/openai"
)

func TestStreamReassembly(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		events  []string
		check   func(t *testing.T, r *openai.ChatResponse)
		wantErr string
	}{
		{
			name: "ToolCallDeltasWithoutIndexAndNoDone",
			events: []string{
				`{"id":"s1","model":"m","choices":[{"index":0,"delta":{"role":"assistant"}}]}`,
				`{"choices":[{"index":0,"delta":{"tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{\"x\":"}}]}}]}`,
				`{"choices":[{"index":0,"delta":{"tool_calls":[{"function":{"arguments":"1}"}}]}}]}`,
				`{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}`,
			},
			check: func(t *testing.T, r *openai.ChatResponse) {
				require.Equal(t, "s1", r.ID)
				calls := r.FirstMessage().ToolCalls
				require.Len(t, calls, 1)
				require.Equal(t, "f", calls[0].Function.Name)
				require.Equal(t, `{"x":1}`, calls[0].Function.Arguments)
				require.Equal(t, "tool_calls", r.Choices[0].FinishReason)
				require.Equal(t, 10, r.Usage.TotalTokens)
			},
		},
		{
			// llama-server reports its compute time in the last chunk.
			name: "Timings",
			events: []string{
				`{"choices":[{"index":0,"delta":{"content":"hi"}}]}`,
				`{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"timings":{"prompt_n":12,"prompt_ms":3.5,"predicted_n":2,"predicted_ms":4.25}}`,
				`[DONE]`,
			},
			check: func(t *testing.T, r *openai.ChatResponse) {
				require.NotNil(t, r.Timings)
				require.Equal(t, openai.Timings{PromptN: 12, PromptMS: 3.5, PredictedN: 2, PredictedMS: 4.25}, *r.Timings)
				require.Equal(t, 7.75, r.Timings.ComputeMS())
			},
		},
		{
			name: "MultiLineDataAndUnicode",
			events: []string{
				"{\"choices\":[{\"index\":0,\n\"delta\":{\"content\":\"h\u00e9\"}}]}",
				`{"choices":[{"index":0,"delta":{"content":"llo"}}]}`,
				`[DONE]`,
			},
			check: func(t *testing.T, r *openai.ChatResponse) {
				require.Equal(t, "héllo", r.FirstMessage().Content)
				require.Equal(t, "assistant", r.FirstMessage().Role)
				require.Nil(t, r.Usage)
			},
		},
		{
			name:    "ErrorChunk",
			events:  []string{`{"choices":[{"index":0,"delta":{"content":"a"}}]}`, `{"error":{"message":"model crashed"}}`},
			wantErr: "model crashed",
		},
		{
			name:    "MalformedChunkIsPermanent",
			events:  []string{`{"choices":[`},
			wantErr: "decode stream chunk",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				for _, e := range tt.events {
					for _, line := range strings.Split(e, "\n") {
						fmt.Fprintf(w, "data: %s\n", line)
					}
					fmt.Fprint(w, ": keep-alive comment\n\n")
				}
			}))
			t.Cleanup(srv.Close)
			tr := openai.NewTransport()
			t.Cleanup(tr.CloseIdleConnections)
			c, err := openai.New(openai.Config{BaseURL: srv.URL, HTTPClient: &http.Client{Transport: tr}, MaxRetries: -1})
			require.NoError(t, err)
			r, err := c.ChatRaw(context.Background(), []byte(`{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}`))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				if tt.name == "MalformedChunkIsPermanent" {
					require.ErrorIs(t, err, flywheel.ErrPermanent)
				}
				return
			}
			require.NoError(t, err)
			require.True(t, r.Streamed)
			tt.check(t, r)
		})
	}
}
