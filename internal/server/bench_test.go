package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/server"
	"github.com/flywheel-go/flywheel/internal/server/servertest"
	"github.com/flywheel-go/flywheel/internal/testcorpus"
)

// BenchmarkGetJob measures GET /api/jobs/{id} for a two-candidate run
// with every field filled (mapping, JSON encoding, middleware).
func BenchmarkGetJob(b *testing.B) {
	jobs := &servertest.JobService{GetJobFunc: func(_ context.Context, id string) (*flywheel.JobDetail, error) {
		return servertest.Detail(id, flywheel.RunCompleted, start), nil
	}}
	h := server.New(server.Options{Jobs: jobs, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), AllowedHosts: []string{"example.com"}})
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/jobs/run-1", nil))
		if rec.Code != 200 {
			b.Fatalf("status %d", rec.Code)
		}
	}
}

// BenchmarkListJobs measures GET /api/jobs for a page of 100 runs.
func BenchmarkListJobs(b *testing.B) {
	runs := make([]*flywheel.Run, 100)
	for i := range runs {
		runs[i] = servertest.Detail(fmt.Sprintf("run-%d", i), flywheel.RunCompleted, start).Run
	}
	jobs := &servertest.JobService{ListJobsFunc: func(context.Context, flywheel.JobFilter) (flywheel.JobPage, error) {
		return flywheel.JobPage{Runs: runs, NextCursor: "next"}, nil
	}}
	h := server.New(server.Options{Jobs: jobs, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), AllowedHosts: []string{"example.com"}})
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/jobs?limit=100", nil))
		if rec.Code != 200 {
			b.Fatalf("status %d", rec.Code)
		}
	}
}

// BenchmarkIngestLogs measures POST /api/logs on the 1,000 records of the
// generated tool-calling corpus (parsing and batching; the store is a no-op).
func BenchmarkIngestLogs(b *testing.B) {
	dir := testcorpus.BFCLDir(b)
	var body strings.Builder
	for _, f := range []string{"simple", "multiple", "parallel", "parallel_multiple"} {
		data, err := os.ReadFile(filepath.Join(dir, f+".jsonl"))
		if err != nil {
			b.Fatal(err)
		}
		body.Write(data)
	}
	logs := &servertest.LogIngester{InsertLogsFunc: func(_ context.Context, recs []flywheel.LogRecord) (int, int, error) {
		return len(recs), 0, nil
	}}
	h := server.New(server.Options{Jobs: &servertest.JobService{}, Logs: logs, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
		AllowedHosts: []string{"example.com"}})
	payload := body.String()
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/api/logs", strings.NewReader(payload))
		req.Header.Set("Content-Type", "application/x-ndjson")
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "records/s")
}
