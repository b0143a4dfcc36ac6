package main

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// fakeJob is a finished demo job with two candidates; bump changes one
// score, as a nondeterministic run would.
func fakeJob(bump float64) *flywheel.JobDetail {
	det := func(mean float64) map[string]flywheel.ScoreDetail {
		return map[string]flywheel.ScoreDetail{flywheel.ScoreFunctionNameAndArgs: {N: 60, Mean: mean, CILow: mean - 0.1, CIHigh: mean + 0.1}}
	}
	return &flywheel.JobDetail{
		Run: &flywheel.Run{Status: flywheel.RunCompleted, Recommendation: &flywheel.Recommendation{Reason: "local/tiny-m (customized-eval): cost $0.0000021/request"}},
		NIMs: []flywheel.NIMDetail{
			{NIMRun: flywheel.NIMRun{ModelName: "local/tiny-s"}, Evaluations: []flywheel.Evaluation{
				{EvalType: flywheel.EvalBase, Details: det(0.05)},
				{EvalType: flywheel.EvalCustomized, Details: det(0.35 + bump)},
			}},
			{NIMRun: flywheel.NIMRun{ModelName: "local/tiny-m"}, Evaluations: []flywheel.Evaluation{
				{EvalType: flywheel.EvalBase, Details: det(0.1)},
				{EvalType: flywheel.EvalICL, Error: "failed"}, // no score
			}},
		},
	}
}

func TestBenchOutput(t *testing.T) {
	t.Parallel()

	r := newBenchRun("/d/run-1", 4*time.Minute+12*time.Second+300*time.Millisecond, fakeJob(0), nil)
	var b bytes.Buffer
	writeBenchRun(&b, 1, 3, r)
	require.Equal(t, `run 1/3: 4m12s, job completed (data and demo.log in /d/run-1)
  local/tiny-s base-eval        function_name_and_args_accuracy 0.050 [-0.050, 0.150] n=60
  local/tiny-s customized-eval  function_name_and_args_accuracy 0.350 [0.250, 0.450] n=60
  local/tiny-m base-eval        function_name_and_args_accuracy 0.100 [0.000, 0.200] n=60
  local/tiny-m icl-eval         function_name_and_args_accuracy —
  recommendation: local/tiny-m (customized-eval): cost $0.0000021/request
`, b.String())

	b.Reset()
	writeBenchRun(&b, 2, 3, newBenchRun("/d/run-2", time.Second, nil, errors.New("llama-server not found")))
	require.Equal(t, "run 2/3: 1s, job not created (data and demo.log in /d/run-2)\n  error: llama-server not found\n", b.String())

	tests := []struct {
		name string
		runs []benchRun
		want string
	}{
		{
			name: "Identical",
			runs: []benchRun{
				newBenchRun("a", 5*time.Minute, fakeJob(0), nil),
				newBenchRun("b", 4*time.Minute, fakeJob(0), nil),
				newBenchRun("c", 6*time.Minute, fakeJob(0), nil),
			},
			want: "\nBench: 3 runs, wall time min 4m0s, median 5m0s, max 6m0s\nDeterminism: all 3 runs' scores are identical (4 evaluations)\n",
		},
		{
			name: "Differ",
			runs: []benchRun{
				newBenchRun("a", time.Minute, fakeJob(0), nil),
				newBenchRun("b", time.Minute, fakeJob(0.0167), nil),
			},
			want: "\nBench: 2 runs, wall time min 1m0s, median 1m0s, max 1m0s\n" +
				"Determinism: scores differ between runs in 1 of 4 evaluations:\n" +
				"  local/tiny-s customized-eval: run 1 0.350 [0.250, 0.450] n=60; run 2 0.367 [0.267, 0.467] n=60\n",
		},
		{
			name: "MissingRun",
			runs: []benchRun{
				newBenchRun("a", time.Minute, fakeJob(0), nil),
				newBenchRun("b", time.Minute, nil, errors.New("interrupted")),
			},
			want: "\nBench: 2 runs, wall time min 1m0s, median 1m0s, max 1m0s\nDeterminism: scores differ between runs in 4 of 4 evaluations:\n" +
				"  local/tiny-s base-eval: run 1 0.050 [-0.050, 0.150] n=60; run 2 missing\n" +
				"  local/tiny-s customized-eval: run 1 0.350 [0.250, 0.450] n=60; run 2 missing\n" +
				"  local/tiny-m base-eval: run 1 0.100 [0.000, 0.200] n=60; run 2 missing\n" +
				"  local/tiny-m icl-eval: run 1 —; run 2 missing\n",
		},
		{
			name: "One",
			runs: []benchRun{newBenchRun("a", time.Minute, fakeJob(0), nil)},
			want: "\nBench: 1 run, wall time min 1m0s, median 1m0s, max 1m0s\nDeterminism: one run, nothing to compare\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var b bytes.Buffer
			writeBenchSummary(&b, tt.runs)
			require.Equal(t, tt.want, b.String())
		})
	}
}

func TestBenchRefusesBadFlags(t *testing.T) {
	t.Parallel()
	g := &globals{getenv: func(string) string { return "" }, stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	err := runDemoBench(context.Background(), g, demoFlags{bench: -1})
	require.ErrorContains(t, err, "--bench must be positive")
	err = runDemoBench(context.Background(), g, demoFlags{bench: 2, keep: true})
	require.ErrorContains(t, err, "--keep-serving")
}

func TestDemoTrafficIsTheSameEveryRun(t *testing.T) {
	t.Parallel()
	f := demoFlags{records: 50, workload: "w", client: "c"}
	a, err := demoTraffic(f)
	require.NoError(t, err)
	time.Sleep(2 * time.Millisecond)
	b, err := demoTraffic(f)
	require.NoError(t, err)
	require.Len(t, a, 50)
	require.Equal(t, a, b, "a second run must find its traffic already stored")
}
