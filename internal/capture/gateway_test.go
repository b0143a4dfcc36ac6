package capture_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/capture"
)

// do sends method path with body (and ids) to the proxy.
func (b *testBundle) do(t *testing.T, method, path string, body io.Reader, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, b.srv.URL+path, body)
	require.NoError(t, err)
	for k, vs := range header {
		req.Header[k] = vs
	}
	for k, v := range ids {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	require.NoError(t, err)
	return resp
}

// echo answers with what it received, so the caller can check the
// upstream saw the same call.
func echo(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Upstream", "yes")
	w.Header().Set("Openai-Processing-Ms", "3")
	status := http.StatusOK
	if r.Method == http.MethodPost {
		status = http.StatusCreated
	}
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"method":%q,"path":%q,"query":%q,"bytes":%d}`, r.Method, r.URL.Path, r.URL.RawQuery, len(body))
}

func TestGatewayPassesEveryPathThrough(t *testing.T) {
	t.Parallel()
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	require.NoError(t, mw.WriteField("purpose", "fine-tune"))
	fw, err := mw.CreateFormFile("file", "train.jsonl")
	require.NoError(t, err)
	_, _ = fw.Write([]byte(`{"messages":[]}` + "\n"))
	require.NoError(t, mw.Close())

	tests := []struct {
		name, method, path, ctype, body string
	}{
		{"ModelsList", http.MethodGet, "/v1/models", "", ""},
		{"ModelGet", http.MethodGet, "/v1/models/meta%2Fllama-3.1-8b", "", ""},
		{"Embeddings", http.MethodPost, "/v1/embeddings", "application/json", `{"model":"e","input":["a","b"]}`},
		{"Completions", http.MethodPost, "/v1/completions", "application/json", `{"model":"m","prompt":"hi"}`},
		{"FileUpload", http.MethodPost, "/v1/files", mw.FormDataContentType(), form.String()},
		{"FileList", http.MethodGet, "/v1/files?purpose=fine-tune&limit=3", "", ""},
		{"FileDelete", http.MethodDelete, "/v1/files/file-1", "", ""},
		{"BatchCreate", http.MethodPost, "/v1/batches", "application/json", `{"input_file_id":"file-1","endpoint":"/v1/chat/completions","completion_window":"24h"}`},
		{"AudioSpeech", http.MethodPost, "/v1/audio/speech", "application/json", `{"model":"tts","input":"hi","voice":"alloy"}`},
		{"StoredCompletionUpdate", http.MethodPost, "/v1/chat/completions/cmpl-1", "application/json", `{"metadata":{"a":"b"}}`},
		{"StoredCompletionsList", http.MethodGet, "/v1/chat/completions?model=m", "", ""},
		{"ResponseGet", http.MethodGet, "/v1/responses/resp_1?include=reasoning.encrypted_content", "", ""},
		{"ResponseDelete", http.MethodDelete, "/v1/responses/resp_1", "", ""},
	}
	b := setup(t, echo, func(c *capture.Config) { c.APIKey = "upkey"; c.MaxBodyBytes = 16 }, false)
	for _, tt := range tests {
		h := http.Header{"Authorization": {"Bearer app"}, "X-Stainless-Lang": {"js"}}
		if tt.ctype != "" {
			h.Set("Content-Type", tt.ctype)
		}
		var body io.Reader
		if tt.body != "" {
			body = strings.NewReader(tt.body)
		}
		resp := b.do(t, tt.method, tt.path, body, h)
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err, tt.name)

		call := <-b.calls
		path, query, _ := strings.Cut(tt.path, "?")
		wantPath := strings.ReplaceAll(path, "%2F", "/")
		require.Equal(t, tt.method, call.method, tt.name)
		require.Equal(t, wantPath, call.path, tt.name)
		require.Equal(t, query, call.query, tt.name)
		require.Equal(t, tt.body, call.body, tt.name+": body unchanged (and not capped by MaxBodyBytes)")
		require.Equal(t, tt.ctype, call.header.Get("Content-Type"), tt.name)
		require.Equal(t, "Bearer upkey", call.header.Get("Authorization"), tt.name)
		require.Equal(t, "js", call.header.Get("X-Stainless-Lang"), tt.name)
		require.Empty(t, call.header.Get(capture.HeaderWorkloadID), tt.name)

		wantStatus := http.StatusOK
		if tt.method == http.MethodPost {
			wantStatus = http.StatusCreated
		}
		require.Equal(t, wantStatus, resp.StatusCode, tt.name)
		require.JSONEq(t, fmt.Sprintf(`{"method":%q,"path":%q,"query":%q,"bytes":%d}`, tt.method, wantPath, query, len(tt.body)), string(got), tt.name)
		require.Equal(t, "yes", resp.Header.Get("X-Upstream"), tt.name)
		require.Equal(t, "3", resp.Header.Get("Openai-Processing-Ms"), tt.name)
	}
	require.Equal(t, float64(len(tests)), b.counter(t, "flywheel_capture_requests_total", "outcome", "forwarded"))
	require.Never(t, func() bool { return len(b.ing.records()) > 0 }, 200*time.Millisecond, 10*time.Millisecond, "only chat completions and responses are recorded")
	for _, r := range []string{capture.ResultRecorded, capture.ResultNotRecorded, capture.ResultMissingIDs} {
		require.Zero(t, b.counter(t, "flywheel_capture_records_total", "result", r), r)
	}
}

// TestGatewayStreamsBothWays checks that a pass-through call's request
// body reaches the upstream before the caller has sent all of it, and that
// its answer (server-sent events or binary) reaches the caller before the
// upstream has sent all of it.
func TestGatewayStreamsBothWays(t *testing.T) {
	t.Parallel()

	t.Run("RequestBody", func(t *testing.T) {
		t.Parallel()
		firstSeen := make(chan struct{})
		b := setup(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
		}, nil, false)
		// The setup's upstream reads the whole body before answering; this
		// one watches it arrive.
		up := b.upstream.Config.Handler
		b.upstream.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			buf := make([]byte, 5)
			_, err := io.ReadFull(r.Body, buf)
			if err == nil && string(buf) == "part1" {
				close(firstSeen)
			}
			r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(buf), r.Body))
			up.ServeHTTP(w, r)
		})
		pr, pw := io.Pipe()
		go func() {
			_, _ = pw.Write([]byte("part1"))
			select {
			case <-firstSeen:
				_, _ = pw.Write([]byte("part2"))
				_ = pw.Close()
			case <-time.After(10 * time.Second):
				_ = pw.CloseWithError(fmt.Errorf("the upstream never saw the first part"))
			}
		}()
		resp := b.do(t, http.MethodPost, "/v1/uploads/up_1/parts", pr, http.Header{"Content-Type": {"application/octet-stream"}})
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		call := <-b.calls
		require.Equal(t, "part1part2", call.body)
	})

	for _, tc := range []struct{ name, ctype, path string }{
		{"EventStream", "text/event-stream", "/v1/completions"},
		{"Binary", "audio/mpeg", "/v1/audio/speech"},
	} {
		t.Run("Answer"+tc.name, func(t *testing.T) {
			t.Parallel()
			firstRead := make(chan struct{})
			b := setup(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", tc.ctype)
				w.WriteHeader(http.StatusOK)
				_, _ = io.WriteString(w, "data: one\n\n")
				w.(http.Flusher).Flush()
				select {
				case <-firstRead:
				case <-time.After(10 * time.Second):
					return
				}
				_, _ = io.WriteString(w, "data: two\n\n")
			}, nil, false)
			resp := b.do(t, http.MethodPost, tc.path, strings.NewReader(`{"stream":true}`), http.Header{"Content-Type": {"application/json"}})
			defer resp.Body.Close()
			require.Equal(t, tc.ctype, resp.Header.Get("Content-Type"))
			br := bufio.NewReader(resp.Body)
			first, err := br.ReadString('\n')
			require.NoError(t, err)
			require.Equal(t, "data: one\n", first)
			close(firstRead)
			rest, err := io.ReadAll(br)
			require.NoError(t, err)
			require.Equal(t, "\ndata: two\n\n", string(rest))
			<-b.calls
		})
	}

	t.Run("CompressedAnswerAsItIs", func(t *testing.T) {
		t.Parallel()
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		_, _ = zw.Write([]byte(`{"object":"list","data":[{"id":"m"}]}`))
		require.NoError(t, zw.Close())
		b := setup(t, func(w http.ResponseWriter, r *http.Request) {
			require.Equal(t, "gzip", r.Header.Get("Accept-Encoding"))
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Encoding", "gzip")
			_, _ = w.Write(gz.Bytes())
		}, nil, false)
		// RoundTrip with an explicit Accept-Encoding does not decompress.
		resp := b.do(t, http.MethodGet, "/v1/models", nil, http.Header{"Accept-Encoding": {"gzip"}})
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, "gzip", resp.Header.Get("Content-Encoding"))
		require.Equal(t, gz.Bytes(), got)
		<-b.calls
	})

	t.Run("UpstreamDown", func(t *testing.T) {
		t.Parallel()
		b := setup(t, echo, nil, false)
		b.upstream.Close()
		resp := b.do(t, http.MethodGet, "/v1/models", nil, nil)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusBadGateway, resp.StatusCode)
		require.Contains(t, string(body), "upstream_error")
	})
}
