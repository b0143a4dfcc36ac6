package openai_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/openai"
	"github.com/flywheel-go/flywheel/internal/openai/openaitest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type testBundle struct {
	srv    *openaitest.Server
	client *openai.Client
}

func setup(t *testing.T, opts openaitest.Options, cfg openai.Config) *testBundle {
	t.Helper()
	srv := openaitest.New(opts)
	t.Cleanup(srv.Close)
	cfg.BaseURL = srv.URL + "/v1/"
	if cfg.RetryBaseDelay == 0 {
		cfg.RetryBaseDelay = time.Millisecond
	}
	tr := openai.NewTransport()
	t.Cleanup(tr.CloseIdleConnections)
	cfg.HTTPClient = &http.Client{Transport: tr}
	c, err := openai.New(cfg)
	require.NoError(t, err)
	return &testBundle{srv: srv, client: c}
}

func toolReply(openaitest.ChatCall) openaitest.Reply {
	return openaitest.Reply{Message: openai.Message{Content: "calling the tools now", ToolCalls: []openai.ToolCall{
		{ID: "c1", Type: "function", Function: openai.FunctionCall{Name: "get_weather", Arguments: `{"city": "Paris", "unit": "c"}`}},
		{ID: "c2", Type: "function", Function: openai.FunctionCall{Name: "get_time", Arguments: `{"tz":"Europe/Paris"}`}},
	}}}
}

func TestChat(t *testing.T) {
	t.Parallel()

	for _, mode := range []openaitest.StreamMode{openaitest.StreamNever, openaitest.StreamAlways} {
		t.Run(map[openaitest.StreamMode]string{openaitest.StreamNever: "Plain", openaitest.StreamAlways: "Streamed"}[mode], func(t *testing.T) {
			t.Parallel()
			b := setup(t, openaitest.Options{Chat: toolReply, Stream: mode, APIKey: "sekret"}, openai.Config{APIKey: "sekret"})
			resp, err := b.client.ChatRaw(context.Background(), []byte(`{"model":"m","messages":[{"role":"user","content":"hi"}],"nvext":{"x":1}}`))
			require.NoError(t, err)
			require.Equal(t, mode == openaitest.StreamAlways, resp.Streamed)
			msg := resp.FirstMessage()
			require.Equal(t, "assistant", msg.Role)
			require.Equal(t, "calling the tools now", msg.Content)
			require.Len(t, msg.ToolCalls, 2)
			require.Equal(t, "get_weather", msg.ToolCalls[0].Function.Name)
			require.Equal(t, `{"city": "Paris", "unit": "c"}`, msg.ToolCalls[0].Function.Arguments)
			require.Equal(t, "c2", msg.ToolCalls[1].ID)
			require.Equal(t, `{"tz":"Europe/Paris"}`, msg.ToolCalls[1].Function.Arguments)
			require.Equal(t, "tool_calls", resp.Choices[0].FinishReason)
			require.NotNil(t, resp.Usage)
			require.Positive(t, resp.Usage.PromptTokens)
			require.Positive(t, resp.Latency)
			require.Equal(t, 1, resp.Attempts)
			if resp.Streamed {
				require.Positive(t, resp.TimeToFirstToken)
				require.LessOrEqual(t, resp.TimeToFirstToken, resp.Latency)
			}
		})
	}

	t.Run("TypedRequestWithExtra", func(t *testing.T) {
		t.Parallel()
		var got []byte
		b := setup(t, openaitest.Options{Chat: func(c openaitest.ChatCall) openaitest.Reply {
			got = c.Body
			return openaitest.Reply{Message: openai.Message{Content: "ok"}}
		}}, openai.Config{})
		temp := 0.5
		_, err := b.client.Chat(context.Background(), openai.ChatRequest{Model: "m", Temperature: &temp,
			Messages: []openai.Message{{Role: "user", Content: "x"}}, Extra: map[string]json.RawMessage{"nvext": json.RawMessage(`{"priority":1}`)}})
		require.NoError(t, err)
		require.Contains(t, string(got), `"temperature":0.5`)
		require.Contains(t, string(got), `"nvext":{"priority":1}`)
	})

	t.Run("WrongAPIKeyIsPermanent", func(t *testing.T) {
		t.Parallel()
		b := setup(t, openaitest.Options{APIKey: "right"}, openai.Config{APIKey: "wrong"})
		_, err := b.client.ChatRaw(context.Background(), []byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
		require.ErrorIs(t, err, flywheel.ErrPermanent)
		var apiErr *openai.APIError
		require.ErrorAs(t, err, &apiErr)
		require.Equal(t, http.StatusUnauthorized, apiErr.StatusCode)
		require.Equal(t, "invalid api key", apiErr.Message)
		require.Equal(t, 1, b.srv.Count("/v1/chat/completions"))
	})
}

func TestRetries(t *testing.T) {
	t.Parallel()

	body := []byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
	tests := []struct {
		name       string
		failN      int
		status     int
		retryAfter string
		maxRetries int
		wantErr    bool
		wantCalls  int
		minElapsed time.Duration
	}{
		{name: "ServerErrorThenSuccess", failN: 2, status: 503, maxRetries: 3, wantCalls: 3},
		{name: "RateLimitHonoursRetryAfter", failN: 1, status: 429, retryAfter: "0.3", maxRetries: 3, wantCalls: 2, minElapsed: 300 * time.Millisecond},
		{name: "GivesUpAfterMaxRetries", failN: 5, status: 500, maxRetries: 2, wantErr: true, wantCalls: 3},
		{name: "BadRequestNotRetried", failN: 1, status: 400, maxRetries: 3, wantErr: true, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, openaitest.Options{}, openai.Config{MaxRetries: tt.maxRetries})
			b.srv.FailNext(tt.failN, tt.status, tt.retryAfter)
			start := time.Now()
			resp, err := b.client.ChatRaw(context.Background(), body)
			require.Equal(t, tt.wantCalls, b.srv.Count("/v1/chat/completions"))
			require.GreaterOrEqual(t, time.Since(start), tt.minElapsed)
			if tt.wantErr {
				var apiErr *openai.APIError
				require.ErrorAs(t, err, &apiErr)
				require.Equal(t, tt.status, apiErr.StatusCode)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantCalls, resp.Attempts)
			require.Equal(t, "hi", resp.FirstMessage().Content)
		})
	}

	t.Run("AttemptTimeoutRetried", func(t *testing.T) {
		t.Parallel()
		var calls int
		b := setup(t, openaitest.Options{Chat: func(c openaitest.ChatCall) openaitest.Reply {
			if c.N == 1 {
				return openaitest.Reply{Delay: 2 * time.Second}
			}
			calls++
			return openaitest.Reply{Message: openai.Message{Content: "late but fine"}}
		}}, openai.Config{Timeout: 100 * time.Millisecond, MaxRetries: 2})
		resp, err := b.client.ChatRaw(context.Background(), body)
		require.NoError(t, err)
		require.Equal(t, 2, resp.Attempts)
		require.Equal(t, "late but fine", resp.FirstMessage().Content)
		require.Less(t, resp.Latency, 100*time.Millisecond)
	})

	t.Run("CancelStopsQuickly", func(t *testing.T) {
		t.Parallel()
		b := setup(t, openaitest.Options{Latency: 5 * time.Second}, openai.Config{})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := b.client.ChatRaw(ctx, body)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Less(t, time.Since(start), time.Second)
	})

	t.Run("CancelDuringBackoff", func(t *testing.T) {
		t.Parallel()
		b := setup(t, openaitest.Options{}, openai.Config{RetryBaseDelay: 10 * time.Second, RetryMaxDelay: 10 * time.Second})
		b.srv.FailNext(1, 502, "")
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := b.client.ChatRaw(ctx, body)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Contains(t, err.Error(), "502")
		require.Less(t, time.Since(start), time.Second)
	})
}

func TestEmbeddingsAndModels(t *testing.T) {
	t.Parallel()

	b := setup(t, openaitest.Options{Models: []string{"a", "b"}, Embed: func(_, in string) []float32 {
		return []float32{float32(len(in))}
	}}, openai.Config{})
	inputs := make([]string, 70)
	for i := range inputs {
		inputs[i] = strings.Repeat("x", i+1)
	}
	vecs, err := b.client.EmbedBatches(context.Background(), openai.EmbeddingRequest{Model: "e", Input: inputs, InputType: "query"}, 32)
	require.NoError(t, err)
	require.Len(t, vecs, 70)
	for i, v := range vecs {
		require.Equal(t, []float32{float32(i + 1)}, v, "vector %d out of order", i)
	}
	require.Equal(t, 3, b.srv.Count("/v1/embeddings"))

	b.srv.FailNext(1, 404, "")
	_, err = b.client.EmbedBatches(context.Background(), openai.EmbeddingRequest{Model: "e", Input: inputs}, 0)
	require.ErrorIs(t, err, flywheel.ErrPermanent)
	require.Contains(t, err.Error(), "embed inputs 0-31")

	models, err := b.client.Models(context.Background())
	require.NoError(t, err)
	require.Len(t, models, 2)
	require.Equal(t, "b", models[1].ID)
}

func TestNewValidates(t *testing.T) {
	t.Parallel()

	for _, u := range []string{"", "  ", "ftp://x", "localhost:8080"} {
		_, err := openai.New(openai.Config{BaseURL: u})
		require.Error(t, err, u)
		require.Equal(t, flywheel.EINVALID, flywheel.ErrorCode(err))
	}
	c, err := openai.New(openai.Config{BaseURL: "http://h:1/v1/"})
	require.NoError(t, err)
	require.Equal(t, "http://h:1", c.BaseURL())
	require.False(t, errors.Is(&openai.APIError{StatusCode: 503}, flywheel.ErrPermanent))
}

func TestModelOutputErrorIsNotRetried(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  openai.APIError
		temp bool
	}{
		{err: openai.APIError{StatusCode: 500, Message: "The model produced output that does not match the expected peg-native format"}, temp: false},
		{err: openai.APIError{StatusCode: 500, Message: "internal error"}, temp: true},
		{err: openai.APIError{StatusCode: 503}, temp: true},
		{err: openai.APIError{StatusCode: 400}, temp: false},
	} {
		require.Equal(t, tc.temp, tc.err.Temporary(), tc.err.Message)
	}
}
