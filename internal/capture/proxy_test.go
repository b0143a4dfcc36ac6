package capture_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flywheel-go/flywheel/internal/capture"
	"github.com/flywheel-go/flywheel/internal/flywheel"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeIngester is a fake of flywheel.LogIngester.
type fakeIngester struct {
	mu   sync.Mutex
	recs []flywheel.LogRecord
	err  error
}

func (f *fakeIngester) InsertLogs(_ context.Context, recs []flywheel.LogRecord) (int, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return 0, 0, f.err
	}
	f.recs = append(f.recs, recs...)
	return len(recs), 0, nil
}

func (f *fakeIngester) records() []flywheel.LogRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]flywheel.LogRecord(nil), f.recs...)
}

// upstreamCall is what the fake upstream received.
type upstreamCall struct {
	method string
	path   string
	query  string
	header http.Header
	host   string
	body   string
}

type testBundle struct {
	ing      *fakeIngester
	reg      *prometheus.Registry
	proxy    *capture.Proxy
	srv      *httptest.Server
	upstream *httptest.Server
	calls    chan upstreamCall
}

// setup starts an upstream running handler, a proxy in front of it, and
// its recorder (stopped at cleanup) unless noRun.
func setup(t *testing.T, handler http.HandlerFunc, mod func(*capture.Config), noRun bool) *testBundle {
	t.Helper()
	b := &testBundle{ing: &fakeIngester{}, reg: prometheus.NewRegistry(), calls: make(chan upstreamCall, 16)}
	b.upstream = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.calls <- upstreamCall{method: r.Method, path: r.URL.Path, query: r.URL.RawQuery, header: r.Header.Clone(), host: r.Host, body: string(body)}
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		handler(w, r)
	}))
	t.Cleanup(b.upstream.Close)
	cfg := capture.Config{
		UpstreamURL: b.upstream.URL + "/v1", Ingester: b.ing, Registerer: b.reg,
		Now: func() time.Time { return time.Unix(1_750_000_000, 0) },
	}
	if mod != nil {
		mod(&cfg)
	}
	p, err := capture.New(cfg)
	require.NoError(t, err)
	b.proxy = p
	b.srv = httptest.NewServer(p)
	t.Cleanup(b.srv.Close)
	if !noRun {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = p.Run(ctx)
		}()
		t.Cleanup(func() {
			cancel()
			<-done
		})
	}
	return b
}

func (b *testBundle) post(t *testing.T, body string, headers map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.srv.URL+capture.Path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	return resp
}

// counter reads a counter's value for one label value, or a gauge's when
// label is "". The proxy counts a call after its answer is sent, so tests
// poll it.
func (b *testBundle) counter(t *testing.T, name, label, value string) float64 {
	t.Helper()
	mfs, err := b.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" {
				return m.GetGauge().GetValue()
			}
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

const chatReq = `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
const chatResp = `{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}]}`

var ids = map[string]string{capture.HeaderWorkloadID: "w", capture.HeaderClientID: "c"} //nolint:gochecknoglobals // test constant

func jsonReply(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream", "yes")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func TestProxy(t *testing.T) {
	t.Parallel()

	t.Run("ForwardsAndRecords", func(t *testing.T) {
		t.Parallel()
		b := setup(t, jsonReply(http.StatusOK, chatResp), func(c *capture.Config) { c.APIKey = "upkey" }, false)
		resp := b.post(t, chatReq, map[string]string{capture.HeaderWorkloadID: "w", capture.HeaderClientID: "c", "Authorization": "Bearer app"})
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, chatResp, string(body))
		require.Equal(t, "yes", resp.Header.Get("X-Upstream"))

		call := <-b.calls
		require.Equal(t, http.MethodPost, call.method)
		require.Equal(t, capture.Path, call.path)
		require.Equal(t, chatReq, call.body)
		require.Equal(t, "Bearer upkey", call.header.Get("Authorization"))
		require.Empty(t, call.header.Get(capture.HeaderWorkloadID))
		require.Empty(t, call.header.Get(capture.HeaderClientID))

		require.Eventually(t, func() bool { return len(b.ing.records()) == 1 }, 5*time.Second, time.Millisecond)
		rec := b.ing.records()[0]
		require.Equal(t, "w", rec.WorkloadID)
		require.Equal(t, "c", rec.ClientID)
		require.Equal(t, time.Unix(1_750_000_000, 0).UTC(), rec.Timestamp)
		require.JSONEq(t, chatReq, string(rec.Request))
		require.JSONEq(t, chatResp, string(rec.Response))
		require.Equal(t, rec.Hash(), rec.Hash())
		require.Eventually(t, func() bool {
			return b.counter(t, "flywheel_capture_records_total", "result", capture.ResultRecorded) == 1
		}, 5*time.Second, time.Millisecond)
		require.Eventually(t, func() bool {
			return b.counter(t, "flywheel_capture_requests_total", "outcome", "forwarded") == 1
		}, 5*time.Second, time.Millisecond)
	})

	t.Run("CallerAuthorizationOnlyWhenAskedAndNoKey", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name    string
			key     string
			forward bool
			want    string
		}{
			{"DroppedByDefault", "", false, ""},
			{"ForwardedWhenAsked", "", true, "Bearer app"},
			{"KeyWins", "upkey", true, "Bearer upkey"},
		}
		for _, tt := range tests {
			b := setup(t, jsonReply(http.StatusOK, chatResp), func(c *capture.Config) {
				c.APIKey, c.ForwardAuthorization = tt.key, tt.forward
			}, false)
			resp := b.post(t, chatReq, map[string]string{"Authorization": "Bearer app"})
			resp.Body.Close()
			require.Equal(t, tt.want, (<-b.calls).header.Get("Authorization"), tt.name)
		}
	})

	t.Run("ForwardsOnlyWhatUpstreamNeeds", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(w http.ResponseWriter, _ *http.Request) {
			h := w.Header()
			h.Set("Content-Type", "application/json")
			h.Add("Set-Cookie", "__cf_bm=abc; path=/; HttpOnly")
			h.Add("Set-Cookie", "flywheel_session=attacker; path=/")
			h.Set("Alt-Svc", `h3=":443"`)
			h.Set("Strict-Transport-Security", "max-age=31536000")
			h.Set("X-Ratelimit-Remaining-Requests", "99")
			h.Set("Openai-Processing-Ms", "12")
			_, _ = w.Write([]byte(chatResp))
		}, func(c *capture.Config) { c.APIKey = "upkey" }, false)
		sent := map[string]string{
			"Cookie":                  "flywheel_session=s3cret; other=1",
			"X-Api-Key":               "flywheel-or-other-key",
			"Proxy-Authorization":     "Basic cHJveHk6cHc=",
			"Authorization":           "Bearer flywheel-token",
			"X-Forwarded-For":         "10.0.0.1",
			"Origin":                  "http://127.0.0.1:8000",
			"Accept-Encoding":         "br",
			"Accept":                  "application/json",
			"User-Agent":              "OpenAI/Python 1.99.0",
			"OpenAI-Organization":     "org-1",
			"OpenAI-Project":          "proj-1",
			"OpenAI-Beta":             "assistants=v2",
			"X-Stainless-Lang":        "python",
			"X-Stainless-Retry-Count": "0",
			"X-Request-ID":            "req-1",
			capture.HeaderWorkloadID:  "w",
			capture.HeaderClientID:    "c",
		}
		resp := b.post(t, chatReq, sent)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, chatResp, string(body))

		call := <-b.calls
		got := call.header
		require.Equal(t, strings.TrimPrefix(b.upstream.URL, "http://"), call.host, "Host is the upstream's, not the caller's")
		for _, k := range []string{"Cookie", "X-Api-Key", "Proxy-Authorization", "X-Forwarded-For", "Origin",
			capture.HeaderWorkloadID, capture.HeaderClientID} {
			require.Empty(t, got.Values(k), "%s is not sent upstream", k)
		}
		require.Equal(t, "Bearer upkey", got.Get("Authorization"))
		require.NotEqual(t, "br", got.Get("Accept-Encoding"), "the client's encoding is the HTTP client's business")
		for _, k := range []string{"Content-Type", "Accept", "User-Agent", "OpenAI-Organization", "OpenAI-Project", "OpenAI-Beta",
			"X-Stainless-Lang", "X-Stainless-Retry-Count", "X-Request-ID"} {
			want := sent[k]
			if k == "Content-Type" {
				want = "application/json"
			}
			require.Equal(t, want, got.Get(k), k)
		}

		for _, k := range []string{"Set-Cookie", "Alt-Svc", "Strict-Transport-Security"} {
			require.Empty(t, resp.Header.Values(k), "%s is not passed to the caller", k)
		}
		require.Equal(t, "99", resp.Header.Get("X-Ratelimit-Remaining-Requests"))
		require.Equal(t, "12", resp.Header.Get("Openai-Processing-Ms"))
	})

	t.Run("UpstreamErrorPassedThroughNotRecorded", func(t *testing.T) {
		t.Parallel()
		const errBody = `{"error":{"message":"slow down","type":"rate_limit"}}`
		b := setup(t, jsonReply(http.StatusTooManyRequests, errBody), nil, false)
		resp := b.post(t, chatReq, ids)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
		require.Equal(t, errBody, string(body))
		require.Eventually(t, func() bool {
			return b.counter(t, "flywheel_capture_records_total", "result", capture.ResultNotRecorded) == 1
		}, 5*time.Second, time.Millisecond)
		require.Empty(t, b.ing.records())
	})

	t.Run("UpstreamDown", func(t *testing.T) {
		t.Parallel()
		b := setup(t, jsonReply(http.StatusOK, chatResp), nil, false)
		b.upstream.Close()
		resp := b.post(t, chatReq, ids)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusBadGateway, resp.StatusCode)
		require.Contains(t, string(body), "upstream_error")
		require.Eventually(t, func() bool {
			return b.counter(t, "flywheel_capture_requests_total", "outcome", "upstream_error") == 1
		}, 5*time.Second, time.Millisecond)
	})

	t.Run("MissingIDs", func(t *testing.T) {
		t.Parallel()
		b := setup(t, jsonReply(http.StatusOK, chatResp), nil, false)
		resp := b.post(t, chatReq, map[string]string{capture.HeaderWorkloadID: "w"})
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, chatResp, string(body), "still forwarded")
		require.Eventually(t, func() bool {
			return b.counter(t, "flywheel_capture_records_total", "result", capture.ResultMissingIDs) == 1
		}, 5*time.Second, time.Millisecond)
		require.Empty(t, b.ing.records())
	})

	t.Run("MissingIDsWithDefaults", func(t *testing.T) {
		t.Parallel()
		b := setup(t, jsonReply(http.StatusOK, chatResp), func(c *capture.Config) { c.DefaultWorkloadID, c.DefaultClientID = "dw", "dc" }, false)
		resp := b.post(t, chatReq, map[string]string{capture.HeaderClientID: "c"})
		resp.Body.Close()
		require.Eventually(t, func() bool { return len(b.ing.records()) == 1 }, 5*time.Second, time.Millisecond)
		require.Equal(t, "dw", b.ing.records()[0].WorkloadID)
		require.Equal(t, "c", b.ing.records()[0].ClientID)
	})

	t.Run("StoreFailureDoesNotBreakTheCall", func(t *testing.T) {
		t.Parallel()
		b := setup(t, jsonReply(http.StatusOK, chatResp), nil, false)
		b.ing.err = errors.New("database is locked")
		resp := b.post(t, chatReq, ids)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, chatResp, string(body))
		require.Eventually(t, func() bool {
			return b.counter(t, "flywheel_capture_records_total", "result", capture.ResultStoreFailed) == 1
		}, 5*time.Second, time.Millisecond)
	})

	t.Run("QueueFullIsCounted", func(t *testing.T) {
		t.Parallel()
		b := setup(t, jsonReply(http.StatusOK, chatResp), func(c *capture.Config) { c.QueueSize = 1 }, true)
		for range 3 {
			resp := b.post(t, chatReq, ids)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
		}
		require.Eventually(t, func() bool {
			return b.counter(t, "flywheel_capture_records_total", "result", capture.ResultQueueFull) == 2 &&
				b.counter(t, "flywheel_capture_queue_length", "", "") == 1
		}, 5*time.Second, time.Millisecond)
		// Run drains the queued record when stopped.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		require.NoError(t, b.proxy.Run(ctx))
		require.Len(t, b.ing.records(), 1)
	})

	t.Run("GetIsPassedThroughNotRecorded", func(t *testing.T) {
		t.Parallel()
		// GET /v1/chat/completions lists stored completions upstream.
		b := setup(t, jsonReply(http.StatusOK, `{"object":"list","data":[]}`), nil, false)
		req, err := http.NewRequest(http.MethodGet, b.srv.URL+capture.Path+"?limit=2", nil)
		require.NoError(t, err)
		for k, v := range ids {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, `{"object":"list","data":[]}`, string(body))
		call := <-b.calls
		require.Equal(t, http.MethodGet, call.method)
		require.Equal(t, "limit=2", call.query)
		require.Never(t, func() bool { return len(b.ing.records()) > 0 }, 100*time.Millisecond, 10*time.Millisecond)
	})

	t.Run("BodyTooLarge", func(t *testing.T) {
		t.Parallel()
		b := setup(t, jsonReply(http.StatusOK, chatResp), func(c *capture.Config) { c.MaxBodyBytes = 10 }, false)
		resp := b.post(t, chatReq, ids)
		resp.Body.Close()
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	})
}

func TestProxyStreaming(t *testing.T) {
	t.Parallel()

	events := []string{
		`{"id":"s1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`,
		`{"id":"s1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"content":"Let me "},"finish_reason":null}]}`,
		`{"id":"s1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"content":"check."},"finish_reason":null}]}`,
		`{"id":"s1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}`,
		`{"id":"s1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\": "}}]},"finish_reason":null}]}`,
		`{"id":"s1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_2","type":"function","function":{"name":"get_time","arguments":"{}"}}]},"finish_reason":null}]}`,
		`{"id":"s1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]},"finish_reason":null}]}`,
		`{"id":"s1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`,
		`{"id":"s1","object":"chat.completion.chunk","created":7,"model":"m","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":9,"total_tokens":14}}`,
		`[DONE]`,
	}
	// The upstream sends the first event, then waits until the client has
	// read it: chunks must pass through as they arrive.
	firstRead := make(chan struct{})
	handler := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		for i, e := range events {
			fmt.Fprintf(w, "data: %s\n\n", e)
			w.(http.Flusher).Flush()
			if i == 0 {
				select {
				case <-firstRead:
				case <-time.After(10 * time.Second):
					return
				}
			}
		}
	}
	b := setup(t, handler, nil, false)
	resp := b.post(t, `{"model":"m","stream":true,"messages":[{"role":"user","content":"weather?"}]}`, ids)
	defer resp.Body.Close()
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	br := bufio.NewReader(resp.Body)
	first, err := br.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "data: "+events[0]+"\n", first)
	close(firstRead)
	rest, err := io.ReadAll(br)
	require.NoError(t, err)
	var want strings.Builder
	want.WriteString("\n")
	for _, e := range events[1:] {
		fmt.Fprintf(&want, "data: %s\n\n", e)
	}
	require.Equal(t, want.String(), string(rest), "stream passed through unchanged")

	require.Eventually(t, func() bool { return len(b.ing.records()) == 1 }, 5*time.Second, time.Millisecond)
	rec := b.ing.records()[0]
	require.JSONEq(t, `{
		"id":"s1","object":"chat.completion","created":7,"model":"m",
		"choices":[{"index":0,"finish_reason":"tool_calls","message":{"role":"assistant","content":"Let me check.","tool_calls":[
			{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}},
			{"id":"call_2","type":"function","function":{"name":"get_time","arguments":"{}"}}]}}],
		"usage":{"prompt_tokens":5,"completion_tokens":9,"total_tokens":14}}`, string(rec.Response))
	var req map[string]any
	require.NoError(t, json.Unmarshal(rec.Request, &req))
	require.Equal(t, true, req["stream"])

	t.Run("BrokenStreamNotRecorded", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprintf(w, "data: %s\n\n", events[1]) // no finish, no [DONE]
		}, nil, false)
		resp := b.post(t, chatReq, ids)
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Eventually(t, func() bool {
			return b.counter(t, "flywheel_capture_records_total", "result", capture.ResultNotRecorded) == 1
		}, 5*time.Second, time.Millisecond)
	})
}
