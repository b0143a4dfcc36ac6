package ui_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/server/servertest"
	"github.com/flywheel-go/flywheel/internal/ui"
)

func TestRunPageShowsLeakage(t *testing.T) {
	t.Parallel()
	jobs := &servertest.JobService{GetJobFunc: func(_ context.Context, id string) (*flywheel.JobDetail, error) {
		d := servertest.Detail(id, flywheel.RunCompleted, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
		d.Run.Stats = &flywheel.DataStats{Total: 50, Selected: 40, Eval: 10, Train: 24, Val: 3,
			Leakage: &flywheel.LeakageStats{Exact: 1, Near: 2, Train: 2, Val: 1}, Reasons: map[string]int{"eval_leakage": 3}}
		return d, nil
	}}
	srv := httptest.NewServer(ui.New(ui.Options{Jobs: jobs, Prefix: "/ui"}))
	t.Cleanup(srv.Close)
	got := do(t, srv.Client(), "GET", srv.URL+"/ui/runs/6b0744280000000000000000", nil, nil)
	require.Equal(t, 200, got.status, got.body)
	require.Regexp(t, `Leakage guard: exact repeats of eval removed</th><td class="num">1<`, got.body)
	require.Regexp(t, `Leakage guard: near repeats of eval removed</th><td class="num">2<`, got.body)
}
