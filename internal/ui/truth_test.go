package ui_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/server/servertest"
	"github.com/flywheel-go/flywheel/internal/ui"
)

// The run and results pages show a run's warnings, and a summary over no
// answered request shows no latency or tokens, with its n.
func TestPagesShowWarnings(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 3, 15, 14, 30, 0, 0, time.UTC)
	const id = "6b07442a11b73cb7b4db9058"
	jobs := &servertest.JobService{GetJobFunc: func(context.Context, string) (*flywheel.JobDetail, error) {
		d := servertest.Detail(id, flywheel.RunCompleted, start)
		d.Run.Spec.Judge = flywheel.JudgeConfig{DeploymentType: flywheel.DeploymentTypeRemote} // none
		d.NIMs[0].Evaluations[2].Summary = &flywheel.EvalSummary{Items: 60, Errors: 60, Failures: flywheel.FailureCounts{ServerError: 60},
			FirstError: "line 1: status 500: injected failure"}
		return d, nil
	}}
	srv := httptest.NewServer(ui.New(ui.Options{Jobs: jobs, Prefix: "/ui"}))
	defer srv.Close()
	for _, page := range []string{"/ui/runs/" + id, "/ui/runs/" + id + "/results"} {
		got := do(t, http.DefaultClient, http.MethodGet, srv.URL+page, nil, nil)
		require.Equal(t, http.StatusOK, got.status, got.body)
		require.Contains(t, got.body, `<h2 id="h-warnings">Warnings</h2>`, page)
		require.Contains(t, got.body, "meta/llama-3.2-1b-instruct customized-eval: 60 of 60 items got no usable reply (server_error 60", page)
		require.Contains(t, got.body, "first error: line 1: status 500: injected failure", page)
	}
	got := do(t, http.DefaultClient, http.MethodGet, srv.URL+"/ui/runs/"+id, nil, nil)
	require.Contains(t, got.body, "No judge.")
	got = do(t, http.DefaultClient, http.MethodGet, srv.URL+"/ui/runs/"+id+"/results", nil, nil)
	require.Contains(t, got.body, "0 answered, 60 server errors")
	require.Contains(t, got.body, "— / — ms<div class=\"ci\">n=0</div>", "no latency over no reply")
	require.Contains(t, got.body, "120 / 340 ms<div class=\"ci\">n=99, 8 in flight</div><div class=\"ci\">server time p50 21.0 ms</div>", "the other candidate's figures keep their n")
}
