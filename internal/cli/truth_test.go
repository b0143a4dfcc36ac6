package cli_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/server/servertest"
)

// failedRun is a run whose two candidates failed to deploy (llama-server
// missing) after the first had one evaluation whose every request got HTTP
// 500.
func failedRun(id string) *flywheel.JobDetail {
	d := servertest.Detail(id, flywheel.RunFailed, start)
	d.Run.Error = "all 2 candidates failed"
	d.NIMs[0].Evaluations[0].Summary = &flywheel.EvalSummary{Items: 60, Errors: 60,
		Failures:   flywheel.FailureCounts{ServerError: 60},
		FirstError: "line 1: chat completion: POST http://127.0.0.1:1/v1/chat/completions: status 500: injected failure"}
	msg := "deploy local/tiny-s: find llama-server: local platform dependencies are not installed"
	for i := range d.Stages {
		if d.Stages[i].Candidate != "" && d.Stages[i].Name == flywheel.StageSpinUpNIM {
			d.Stages[i].Status, d.Stages[i].Error = flywheel.StageFailed, msg
		}
	}
	return d
}

func TestTruthfulSummaryInGet(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.jobs.GetJobFunc = func(_ context.Context, id string) (*flywheel.JobDetail, error) { return failedRun(id), nil }
	require.NoError(t, b.run(t, "get", "run-1"))
	out := b.stdout.String()
	require.Contains(t, out, "base-eval: 60 items, 0 answered, 60 errors (server_error 60), latency n/a (n=0), tokens n/a (n=0)")
	require.NotContains(t, out, "latency p50 0 ms", "no percentile over no reply")
	require.Contains(t, out, "Warnings:\n  - meta/llama-3.2-1b-instruct base-eval: 60 of 60 items got no usable reply (server_error 60, timeout 0, unparseable 0, connection 0)")
	require.Contains(t, out, "first error: line 1: chat completion: POST http://127.0.0.1:1/v1/chat/completions: status 500: injected failure")

	// A healthy summary states the n of its percentiles.
	b = setup(t)
	b.jobs.GetJobFunc = func(_ context.Context, id string) (*flywheel.JobDetail, error) {
		return servertest.Detail(id, flywheel.RunCompleted, start), nil
	}
	require.NoError(t, b.run(t, "get", "run-1"))
	require.Contains(t, b.stdout.String(), "base-eval: 100 items, 99 answered, 1 errors (timeout 1), latency p50 120 ms / p95 340 ms (n=99, 8 in flight; server time p50 21 ms, n=99), 210+31 tokens per request (n=99)")
	require.NotContains(t, b.stdout.String(), "Warnings:")
}

func TestWatchShowsTheFailingStagesError(t *testing.T) {
	t.Parallel()

	t.Run("PlainLines", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.jobs.GetJobFunc = func(_ context.Context, id string) (*flywheel.JobDetail, error) { return failedRun(id), nil }
		err := b.run(t, "watch", "run-1", "--interval", "1ms")
		require.EqualError(t, err, "job run-1 ended failed: all 2 candidates failed; "+
			"meta/llama-3.2-1b-instruct, meta/llama-3.2-3b-instruct spin_up_nim: deploy local/tiny-s: find llama-server: local platform dependencies are not installed")
		out := b.stdout.String()
		require.Contains(t, out, "meta/llama-3.2-3b-instruct stage spin_up_nim failed: deploy local/tiny-s: find llama-server")
		require.Contains(t, out, "meta/llama-3.2-3b-instruct failed (deployment ready): deployment failed: out of memory")
		require.Contains(t, out, "warning: meta/llama-3.2-1b-instruct base-eval: 60 of 60 items got no usable reply")
	})

	t.Run("Terminal", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.terminal = true
		b.jobs.GetJobFunc = func(_ context.Context, id string) (*flywheel.JobDetail, error) {
			d := failedRun(id)
			d.Stages[1].Status, d.Stages[1].Error = flywheel.StageFailed, "no records for workload bfcl-simple"
			return d, nil
		}
		err := b.run(t, "watch", "run-1", "--interval", "1ms")
		require.ErrorContains(t, err, "; create_datasets: no records for workload bfcl-simple; meta/llama-3.2-1b-instruct, meta/llama-3.2-3b-instruct spin_up_nim:")
		out := b.stdout.String()
		require.Contains(t, out, "✗ create_datasets: no records for workload bfcl-simple")
		require.Contains(t, out, "✗ spin_up_nim")
		require.Contains(t, out, "warning: meta/llama-3.2-1b-instruct base-eval: 60 of 60")
		for _, l := range strings.Split(out, "\n") {
			require.LessOrEqual(t, len([]rune(l)), 90+8, "lines fit the terminal: %q", l)
		}
	})
}
