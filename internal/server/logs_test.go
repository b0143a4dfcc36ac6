package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/server"
)

// postStream sends body to POST /api/logs on srv as a chunked upload.
func postStream(t *testing.T, srv *httptest.Server, body io.Reader) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/api/logs", body)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, data
}

func lines(n int) string { return strings.Repeat(goodLine+"\n", n) }

func TestIngestLogsStreams(t *testing.T) {
	t.Parallel()

	t.Run("StoresBatchesBeforeTheBodyEnds", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		stored := make(chan int, 10)
		b.logs.InsertLogsFunc = func(_ context.Context, recs []flywheel.LogRecord) (int, int, error) {
			stored <- len(recs)
			return len(recs), 0, nil
		}
		srv := httptest.NewServer(b.server())
		t.Cleanup(srv.Close)
		pr, pw := io.Pipe()
		done := make(chan struct{})
		var status int
		var body []byte
		go func() {
			defer close(done)
			status, body = postStream(t, srv, pr)
		}()
		_, err := io.WriteString(pw, lines(server.LogBatchSizeDefault))
		require.NoError(t, err)
		select {
		case n := <-stored:
			require.Equal(t, server.LogBatchSizeDefault, n, "a full batch is stored while the body is still open")
		case <-time.After(10 * time.Second):
			t.Fatal("nothing stored before the body ended: the body is buffered")
		}
		_, err = io.WriteString(pw, lines(10))
		require.NoError(t, err)
		require.NoError(t, pw.Close())
		<-done
		require.Equal(t, http.StatusOK, status, string(body))
		var got api.LogsResponse
		require.NoError(t, json.Unmarshal(body, &got))
		require.Equal(t, api.LogsResponse{Lines: 1010, Inserted: 1010, Errors: []api.LogLineError{}}, got)
	})

	t.Run("BatchesAreBoundedInBytes", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var batches []int
		b.logs.InsertLogsFunc = func(_ context.Context, recs []flywheel.LogRecord) (int, int, error) {
			size := 0
			for _, r := range recs {
				size += len(r.Request) + len(r.Response)
			}
			require.Less(t, size, server.LogBatchBytesDefault+300<<10)
			batches = append(batches, len(recs))
			return len(recs), 0, nil
		}
		big := fmt.Sprintf(`{"workload_id":"w","client_id":"c","timestamp":1,"request":{"messages":[{"role":"user","content":%q}]},"response":{"choices":[]}}`,
			strings.Repeat("a", 270<<10))
		resp := do(t, b.server(), "POST", "/api/logs", strings.Repeat(big+"\n", 12))
		require.Equal(t, http.StatusOK, resp.status, string(resp.body))
		require.Equal(t, []int{4, 4, 4}, batches, "a batch is stored once it holds 1 MB")
	})

	t.Run("StoreRefusesSomeRecords", func(t *testing.T) {
		// The store's per-record rejections name the body's lines; the
		// rest of each batch is counted and later batches go on.
		t.Parallel()
		b := setup(t)
		calls := 0
		b.logs.InsertLogsFunc = func(_ context.Context, recs []flywheel.LogRecord) (int, int, error) {
			calls++
			if calls == 1 {
				return len(recs) - 3, 1, &flywheel.RecordErrors{Items: []flywheel.RecordError{
					{Index: 0, Field: "request", Reason: "string holds a NUL character"},
					{Index: 998, Field: "workload_id", Reason: "invalid UTF-8"},
				}}
			}
			return len(recs), 0, nil
		}
		// Line 1 is blank, line 2 unparsable: the batch's record 0 is line 3.
		body := "\n" + "not json\n" + lines(1200)
		resp := do(t, b.server(), "POST", "/api/logs", body, "Content-Type", "application/x-ndjson")
		require.Equal(t, http.StatusOK, resp.status, string(resp.body))
		var got api.LogsResponse
		require.NoError(t, json.Unmarshal(resp.body, &got))
		require.Equal(t, 2, calls)
		require.Equal(t, 1201, got.Lines)
		require.Equal(t, 997+200, got.Inserted)
		require.Equal(t, 1, got.Duplicates)
		require.Equal(t, 3, got.Rejected)
		require.Len(t, got.Errors, 3)
		require.Equal(t, 2, got.Errors[0].Line)
		require.Equal(t, api.LogLineError{Line: 3, Field: "request", Reason: "string holds a NUL character"}, got.Errors[1])
		require.Equal(t, api.LogLineError{Line: 1001, Field: "workload_id", Reason: "invalid UTF-8"}, got.Errors[2])
	})

	t.Run("LongLineRejectedRestKept", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.opts.MaxLogLineBytes = 500
		var stored int
		b.logs.InsertLogsFunc = func(_ context.Context, recs []flywheel.LogRecord) (int, int, error) {
			stored += len(recs)
			return len(recs), 0, nil
		}
		body := lines(2) + `{"workload_id":"` + strings.Repeat("x", 100<<10) + "\"}\n" + lines(3)
		resp := do(t, b.server(), "POST", "/api/logs", body)
		require.Equal(t, http.StatusOK, resp.status, string(resp.body))
		var got api.LogsResponse
		require.NoError(t, json.Unmarshal(resp.body, &got))
		require.Equal(t, 5, stored)
		require.Equal(t, []api.LogLineError{{Line: 3, Reason: "line longer than 500 bytes"}}, got.Errors)
	})

	t.Run("ChunkedBodyTooLarge", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.opts.MaxLogBodyBytes = 150_000 // about 1,350 lines
		var stored atomic.Int64
		b.logs.InsertLogsFunc = func(_ context.Context, recs []flywheel.LogRecord) (int, int, error) {
			stored.Add(int64(len(recs)))
			return len(recs), 0, nil
		}
		srv := httptest.NewServer(b.server())
		t.Cleanup(srv.Close)
		status, body := postStream(t, srv, io.MultiReader(strings.NewReader(lines(3000))))
		require.Equal(t, http.StatusRequestEntityTooLarge, status, string(body))
		require.Contains(t, string(body), "lines 1 to 1000 were stored (1000 new records)")
		require.Equal(t, int64(1000), stored.Load(), "the batch that was cut is not stored")
	})

	t.Run("SlowBodyTimesOut", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var stored atomic.Int64
		b.logs.InsertLogsFunc = func(_ context.Context, recs []flywheel.LogRecord) (int, int, error) {
			stored.Add(int64(len(recs)))
			return len(recs), 0, nil
		}
		srv := httptest.NewServer(server.BodyReadTimeout(b.server(), 500*time.Millisecond))
		t.Cleanup(srv.Close)
		pr, pw := io.Pipe()
		t.Cleanup(func() { _ = pw.Close() })
		go func() { _, _ = io.WriteString(pw, lines(1000)+goodLine[:20]) }() // then nothing more
		status, body := postStream(t, srv, pr)
		require.Equal(t, http.StatusRequestTimeout, status, string(body))
		require.Contains(t, string(body), "server.read_timeout")
		require.Contains(t, string(body), "lines 1 to 1000 were stored")
		require.Equal(t, int64(1000), stored.Load())

		// A long answer after a quick body is not cut by the timeout.
		b.jobs.CreateJobFunc = func(_ context.Context, req flywheel.CreateJobRequest) (*flywheel.Run, error) {
			time.Sleep(time.Second)
			return &flywheel.Run{ID: "run-1", WorkloadID: req.WorkloadID, ClientID: req.ClientID, Status: flywheel.RunPending, StartedAt: start}, nil
		}
		slow := httptest.NewServer(server.BodyReadTimeout(b.server(), 500*time.Millisecond))
		t.Cleanup(slow.Close)
		resp, err := slow.Client().Post(slow.URL+"/api/jobs", "application/json", strings.NewReader(`{"workload_id":"w","client_id":"c"}`))
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	})

	t.Run("ConcurrentIngestCapped", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.opts.MaxConcurrentIngest = 2
		var inFlight, peak atomic.Int64
		b.logs.InsertLogsFunc = func(_ context.Context, recs []flywheel.LogRecord) (int, int, error) {
			n := inFlight.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(20 * time.Millisecond)
			inFlight.Add(-1)
			return len(recs), 0, nil
		}
		h := b.server()
		var wg sync.WaitGroup
		statuses := make([]int, 6)
		for i := range statuses {
			wg.Go(func() { statuses[i] = do(t, h, "POST", "/api/logs", lines(2500)).status })
		}
		wg.Wait()
		require.Equal(t, []int{200, 200, 200, 200, 200, 200}, statuses)
		require.LessOrEqual(t, peak.Load(), int64(2))
		require.Positive(t, peak.Load())
	})
}
