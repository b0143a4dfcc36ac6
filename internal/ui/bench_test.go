package ui_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/store"
)

func serve(b *testing.B, h http.Handler, path string, want int) {
	b.Helper()
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != want {
			b.Fatalf("GET %s: status %d: %s", path, rec.Code, rec.Body.String())
		}
	}
}

// BenchmarkRunPages renders the pages of a finished run whose six
// evaluations scored 1,000 items each, from a real SQLite database.
func BenchmarkRunPages(b *testing.B) {
	tb := setup(b, setupOpts{items: 1000})
	run := tb.create(b, "weather", "acme")
	d := tb.finished(b, run.ID)
	require.Equal(b, flywheel.RunCompleted, d.Run.Status, d.Run.Error)
	require.Equal(b, 1000, d.NIMs[0].Evaluations[0].Summary.Items)
	for _, page := range []struct{ name, path string }{
		{"Detail", "/ui/runs/" + run.ID},
		{"Results", "/ui/runs/" + run.ID + "/results"},
		{"Divergences", "/ui/runs/" + run.ID + "/divergences"},
		{"DivergencesFilteredLastPage", "/ui/runs/" + run.ID + "/divergences?eval=" + d.NIMs[1].Evaluations[0].ID + "&tool=get_weather&offset=75"},
	} {
		b.Run(page.name, func(b *testing.B) { serve(b, tb.ui, page.path, http.StatusOK) })
	}
}

// BenchmarkRunsList renders the runs list with 10,000 runs in a real
// SQLite database: the first page, a filtered page and a page deep in the
// history (cursor pagination keeps it as fast as the first).
func BenchmarkRunsList(b *testing.B) {
	tb := setup(b, setupOpts{})
	ctx := context.Background()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	statuses := []flywheel.RunStatus{flywheel.RunCompleted, flywheel.RunFailed, flywheel.RunCancelled, flywheel.RunCompleted}
	const runs = 10_000
	err := tb.store.InTx(ctx, func(q *store.Queries) error {
		for i := range runs {
			at := start.Add(time.Duration(i) * time.Minute)
			fin := at.Add(20 * time.Minute)
			r := &flywheel.Run{ID: store.NewID(at), WorkloadID: fmt.Sprintf("workload-%d", i%20), ClientID: fmt.Sprintf("client-%d", i%3),
				Status: statuses[i%len(statuses)], StartedAt: at, FinishedAt: &fin, NumRecords: 1000 + i%500}
			if err := q.CreateRun(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(b, err)
	page, err := tb.engine.ListJobs(ctx, flywheel.JobFilter{Limit: 50})
	require.NoError(b, err)
	for range 60 {
		page, err = tb.engine.ListJobs(ctx, flywheel.JobFilter{Limit: 50, Cursor: page.NextCursor})
		require.NoError(b, err)
	}
	deep := page.NextCursor
	require.NotEmpty(b, deep)
	for _, p := range []struct{ name, path string }{
		{"FirstPage", "/ui/"},
		{"FilteredByWorkloadAndStatus", "/ui/?workload=workload-7&status=completed"},
		{"Page60", "/ui/?cursor=" + deep},
		{"RowsFragment", "/ui/runs/rows"},
	} {
		b.Run(p.name, func(b *testing.B) { serve(b, tb.ui, p.path, http.StatusOK) })
	}
}
