package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/flywheeltest"
	"github.com/flywheel-go/flywheel/internal/server"
	"github.com/flywheel-go/flywheel/internal/server/servertest"
)

type testBundle struct {
	jobs     *servertest.JobService
	logs     *servertest.LogIngester
	registry *prometheus.Registry
	logBuf   *flywheeltest.SyncBuffer
	opts     server.Options
}

// start is a fixed time for sample runs.
var start = time.Date(2026, 3, 15, 14, 30, 0, 0, time.UTC)

func setup(t *testing.T) *testBundle {
	t.Helper()
	b := &testBundle{
		jobs:     &servertest.JobService{},
		logs:     &servertest.LogIngester{},
		registry: prometheus.NewRegistry(),
		logBuf:   &flywheeltest.SyncBuffer{},
	}
	b.jobs.CreateJobFunc = func(_ context.Context, req flywheel.CreateJobRequest) (*flywheel.Run, error) {
		return &flywheel.Run{ID: "run-1", WorkloadID: req.WorkloadID, ClientID: req.ClientID, Status: flywheel.RunPending, StartedAt: start}, nil
	}
	b.jobs.GetJobFunc = func(_ context.Context, id string) (*flywheel.JobDetail, error) {
		return servertest.Detail(id, flywheel.RunRunning, start), nil
	}
	b.jobs.ListJobsFunc = func(_ context.Context, _ flywheel.JobFilter) (flywheel.JobPage, error) {
		a := servertest.Detail("run-2", flywheel.RunFailed, start).Run
		c := servertest.Detail("run-1", flywheel.RunRunning, start).Run
		return flywheel.JobPage{Runs: []*flywheel.Run{a, c}, NextCursor: "c2"}, nil
	}
	b.jobs.CancelJobFunc = func(_ context.Context, _ string) (string, error) {
		return "Job cancellation initiated successfully.", nil
	}
	b.jobs.DeleteJobFunc = func(_ context.Context, _ string) (string, error) {
		return "Job deletion started. Resources will be cleaned up in the background.", nil
	}
	b.jobs.ListItemsFunc = func(_ context.Context, f flywheel.ItemFilter) (flywheel.ItemPage, error) {
		return flywheel.ItemPage{Total: 3, Items: []flywheel.ItemResult{{
			EvaluationID: f.EvaluationID, Index: 0, Tool: "get_weather",
			Request: json.RawMessage(`{"messages":[]}`), Reference: json.RawMessage(`{"tool_calls":[]}`), Prediction: json.RawMessage(`{"content":"hi"}`),
			Scores: map[string]float64{"function_name": 0}, ErrorClass: "no_call", LatencyMS: 12.5, PromptTokens: 40, CompletionTokens: 3,
		}}}, nil
	}
	b.logs.InsertLogsFunc = func(_ context.Context, recs []flywheel.LogRecord) (int, int, error) {
		return len(recs), 0, nil
	}
	b.opts = server.Options{
		Jobs:     b.jobs,
		Logs:     b.logs,
		Registry: b.registry,
		Logger:   slog.New(slog.NewJSONHandler(io.MultiWriter(b.logBuf, t.Output()), &slog.HandlerOptions{Level: slog.LevelDebug})),
		Version:  "test",
	}
	return b
}

func (b *testBundle) server() *server.Server { return server.New(b.opts) }

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) any {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal(r.body, &v), "body: %s", r.body)
	return v
}

func (r response) detail(t *testing.T) string {
	t.Helper()
	var e struct {
		Detail string `json:"detail"`
	}
	require.NoError(t, json.Unmarshal(r.body, &e), "body: %s", r.body)
	return e.Detail
}

func do(t *testing.T, h http.Handler, method, target, body string, header ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequestWithContext(t.Context(), method, target, rd)
	// As curl or the flywheel client would send it to a local server: the
	// guard refuses foreign hosts and bodies that are not JSON.
	req.Host = "127.0.0.1:8000"
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		if strings.EqualFold(header[i], "Host") {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

func sampleDetail(id string) *flywheel.JobDetail {
	return servertest.Detail(id, flywheel.RunRunning, start)
}

func nanValue() float64 { return math.NaN() }
