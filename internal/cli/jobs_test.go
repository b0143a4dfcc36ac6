package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/cli"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/server"
	"github.com/flywheel-go/flywheel/internal/server/servertest"
)

var start = time.Date(2026, 3, 15, 14, 30, 0, 0, time.UTC)

type testBundle struct {
	jobs     *servertest.JobService
	url      string
	stdout   *bytes.Buffer
	stderr   *bytes.Buffer
	terminal bool
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	b := &testBundle{jobs: &servertest.JobService{}, stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	srv := httptest.NewServer(server.New(server.Options{Jobs: b.jobs, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}))
	t.Cleanup(srv.Close)
	b.url = srv.URL
	return b
}

// run executes `jobs args...` and returns its error.
func (b *testBundle) run(t *testing.T, args ...string) error {
	t.Helper()
	cmd := cli.NewJobsCommand(cli.Options{
		ServerURL:  func() string { return b.url },
		Stdout:     b.stdout,
		Stderr:     b.stderr,
		IsTerminal: func(io.Writer) bool { return b.terminal },
		Width:      func(io.Writer) int { return 90 },
		Now:        func() time.Time { return start.Add(10 * time.Minute) },
	})
	cmd.SetArgs(args)
	cmd.SetOut(b.stderr)
	cmd.SetErr(b.stderr)
	cmd.SilenceUsage = true
	return cmd.ExecuteContext(t.Context())
}

func TestCreate(t *testing.T) {
	t.Parallel()

	t.Run("FlagsBecomeRequest", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var got flywheel.CreateJobRequest
		b.jobs.CreateJobFunc = func(_ context.Context, req flywheel.CreateJobRequest) (*flywheel.Run, error) {
			got = req
			return &flywheel.Run{ID: "r1"}, nil
		}
		require.NoError(t, b.run(t, "create", "--workload-id", "w", "--client-id", "c", "--eval-size", "30",
			"--val-ratio", "0.2", "--random-seed", "9", "--parse-function-arguments=false", "--idempotency-key", "k"))
		require.Equal(t, "Created job r1 (queued): NIM workflow started\n", b.stdout.String())
		require.Equal(t, "k", got.IdempotencyKey)
		require.Equal(t, 30, *got.DataSplitConfig.EvalSize)
		require.InDelta(t, 0.2, *got.DataSplitConfig.ValRatio, 1e-12)
		require.Equal(t, int64(9), *got.DataSplitConfig.RandomSeed)
		require.False(t, *got.DataSplitConfig.ParseFunctionArguments)
		require.Nil(t, got.DataSplitConfig.Limit, "flags not given are not sent")
	})

	t.Run("NoSplitFlagsSendsNoSplit", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var got flywheel.CreateJobRequest
		b.jobs.CreateJobFunc = func(_ context.Context, req flywheel.CreateJobRequest) (*flywheel.Run, error) {
			got = req
			return &flywheel.Run{ID: "r1"}, nil
		}
		require.NoError(t, b.run(t, "create", "--workload-id", "w", "--client-id", "c", "-o", "json"))
		require.Nil(t, got.DataSplitConfig)
		var resp api.JobResponse
		require.NoError(t, json.Unmarshal(b.stdout.Bytes(), &resp))
		require.Equal(t, "r1", resp.ID)
	})

	t.Run("MissingFlag", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		err := b.run(t, "create", "--workload-id", "w")
		require.ErrorContains(t, err, `"client-id" not set`)
	})

	t.Run("ServerRejects", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		err := b.run(t, "create", "--workload-id", "w", "--client-id", "c", "--val-ratio", "1.5")
		require.EqualError(t, err, "create job: server answered 422: body.data_split_config.val_ratio: Input should be less than 1")
	})

	t.Run("BadOutput", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		err := b.run(t, "create", "--workload-id", "w", "--client-id", "c", "-o", "yaml")
		require.ErrorContains(t, err, `must be table or json, not "yaml"`)
	})
}

func TestList(t *testing.T) {
	t.Parallel()
	pages := func(b *testBundle, filters *[]flywheel.JobFilter) {
		var mu sync.Mutex
		b.jobs.ListJobsFunc = func(_ context.Context, f flywheel.JobFilter) (flywheel.JobPage, error) {
			mu.Lock()
			*filters = append(*filters, f)
			mu.Unlock()
			if f.Cursor == "" {
				return flywheel.JobPage{Runs: []*flywheel.Run{servertest.Detail("run-b", flywheel.RunRunning, start).Run}, NextCursor: "c2"}, nil
			}
			return flywheel.JobPage{Runs: []*flywheel.Run{servertest.Detail("run-a", flywheel.RunFailed, start).Run}}, nil
		}
	}

	t.Run("OnePageTable", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var filters []flywheel.JobFilter
		pages(b, &filters)
		require.NoError(t, b.run(t, "list", "--workload-id", "bfcl-simple", "--status", "running", "--limit", "1"))
		out := b.stdout.String()
		require.Contains(t, out, "ID")
		require.Contains(t, out, "run-b")
		require.NotContains(t, out, "run-a")
		require.Contains(t, out, "10m0s")
		require.Contains(t, b.stderr.String(), "--cursor c2")
		require.Equal(t, []flywheel.JobFilter{{WorkloadID: "bfcl-simple", Status: flywheel.RunRunning, Limit: 1}}, filters)
	})

	t.Run("AllJSON", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var filters []flywheel.JobFilter
		pages(b, &filters)
		require.NoError(t, b.run(t, "list", "--all", "-o", "json"))
		var resp api.JobsListResponse
		require.NoError(t, json.Unmarshal(b.stdout.Bytes(), &resp))
		require.Len(t, resp.Jobs, 2)
		require.Equal(t, "run-a", resp.Jobs[1].ID)
		require.Nil(t, resp.NextCursor)
		require.Len(t, filters, 2)
		require.Equal(t, "c2", filters[1].Cursor)
	})

	t.Run("BadStatus", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		err := b.run(t, "list", "--status", "done")
		require.ErrorContains(t, err, "query.status: Input should be 'pending'")
	})
}

func TestGet(t *testing.T) {
	t.Parallel()
	detail := func(b *testBundle, status flywheel.RunStatus) {
		b.jobs.GetJobFunc = func(_ context.Context, id string) (*flywheel.JobDetail, error) {
			if id != "run-1" {
				return nil, flywheel.Errorf(flywheel.ENOTFOUND, "Job not found")
			}
			return servertest.Detail(id, status, start), nil
		}
	}

	t.Run("Table", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		detail(b, flywheel.RunCompleted)
		require.NoError(t, b.run(t, "get", "run-1"))
		out := b.stdout.String()
		for _, want := range []string{
			"Job:", "run-1", "bfcl-simple (client bfcl)", "tool_calling", "completed", "Duration:", "10m0s",
			"Judge:", "meta/llama-3.3-70b-instruct (remote, ready)",
			"420 records: 12 invalid, 0 filtered, 8 duplicates, 400 selected -> eval 100, train 270, val 30",
			"flywheel-eval-bfcl-simple-1", "hf://datasets/dfwbp/flywheel-eval-bfcl-simple-1",
			"Candidate 1: meta/llama-3.2-1b-instruct", "Candidate 2: meta/llama-3.2-3b-instruct",
			"function_name_and_args_accuracy=0.910 [0.850, 0.950] n=100", "customized-eval",
			"latency p50 120 ms / p95 340 ms", "cost $0.0004/request (tokens) vs production $0.00016/request",
			"dfwbp/customized-meta-llama-3.2-1b-instruct@cust-1",
			"start_customization", "attempt 1: connection reset", "1h0m0s",
			"Recommendation: within 2 points of production",
			"Findings:\n  - m: fine-tuning (customized-eval) helped",
		} {
			require.Contains(t, out, want)
		}
	})

	t.Run("JSON", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		detail(b, flywheel.RunRunning)
		require.NoError(t, b.run(t, "get", "run-1", "-o", "json"))
		var d api.JobDetailResponse
		require.NoError(t, json.Unmarshal(b.stdout.Bytes(), &d))
		require.Equal(t, "run-1", d.ID)
		require.Len(t, d.NIMs, 2)
		require.Equal(t, "running", d.Status)
	})

	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		detail(b, flywheel.RunRunning)
		require.EqualError(t, b.run(t, "get", "nope"), "get job nope: server answered 404: Job not found")
	})

	t.Run("NeedsID", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		require.ErrorContains(t, b.run(t, "get"), "accepts 1 arg(s)")
	})
}

func TestCancelDelete(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.jobs.CancelJobFunc = func(context.Context, string) (string, error) { return "Job cancellation initiated successfully.", nil }
	b.jobs.DeleteJobFunc = func(context.Context, string) (string, error) {
		return "", flywheel.Errorf(flywheel.EPRECONDITION, "Cannot delete a running job. Please cancel the job first.")
	}
	require.NoError(t, b.run(t, "cancel", "run-1"))
	require.Equal(t, "run-1: Job cancellation initiated successfully.\n", b.stdout.String())
	require.EqualError(t, b.run(t, "delete", "run-1"),
		"delete job run-1: server answered 400: Cannot delete a running job. Please cancel the job first.")
}

func TestItems(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var got flywheel.ItemFilter
	b.jobs.ListItemsFunc = func(_ context.Context, f flywheel.ItemFilter) (flywheel.ItemPage, error) {
		got = f
		return flywheel.ItemPage{Total: 9, Items: []flywheel.ItemResult{
			{Index: 4, Tool: "get_weather", ErrorClass: "wrong_arguments", LatencyMS: 120, Scores: map[string]float64{"function_name": 1, "function_name_and_args_accuracy": 0}},
		}}, nil
	}
	require.NoError(t, b.run(t, "items", "ev-1", "--divergent", "--tool", "get_weather", "--limit", "1", "--offset", "4"))
	require.Equal(t, flywheel.ItemFilter{EvaluationID: "ev-1", Tool: "get_weather", OnlyDivergent: true, Limit: 1, Offset: 4}, got)
	out := b.stdout.String()
	require.Contains(t, out, "wrong_arguments")
	require.Contains(t, out, "function_name_and_args_accuracy=0.00 function_name=1.00")
	require.Contains(t, b.stderr.String(), "next page: --offset 5")
}

// script makes GetJob walk through a run: queued stages, progress, scores,
// then the final status.
func script(b *testBundle, final flywheel.RunStatus) *atomic.Int32 {
	var calls atomic.Int32
	b.jobs.GetJobFunc = func(_ context.Context, id string) (*flywheel.JobDetail, error) {
		step := calls.Add(1)
		d := servertest.Detail(id, flywheel.RunRunning, start)
		cand := d.NIMs[1]
		switch {
		case step == 1:
			d.NIMs[1].Evaluations[0].Progress = 10
			setStage(d, cand.ID, flywheel.StageRunBaseEval, flywheel.StageRunning, 10)
		case step == 2:
			setStage(d, cand.ID, flywheel.StageRunBaseEval, flywheel.StageRunning, 60)
		case step == 3:
			// The same state again: nothing new to print.
			setStage(d, cand.ID, flywheel.StageRunBaseEval, flywheel.StageRunning, 60)
		default:
			d = servertest.Detail(id, final, start)
			done := start.Add(time.Hour)
			setStage(d, cand.ID, flywheel.StageRunBaseEval, flywheel.StageSucceeded, 100)
			d.NIMs[1].Evaluations[0].FinishedAt = &done
			d.NIMs[1].Evaluations[0].Progress = 100
			d.NIMs[1].Evaluations[0].Scores = map[string]float64{"function_name": 0.5}
		}
		return d, nil
	}
	return &calls
}

func setStage(d *flywheel.JobDetail, cand string, name flywheel.StageName, st flywheel.StageStatus, progress float64) {
	for i := range d.Stages {
		if d.Stages[i].Candidate == cand && d.Stages[i].Name == name {
			d.Stages[i].Status = st
			d.Stages[i].Progress = progress
		}
	}
}

func TestWatch(t *testing.T) {
	t.Parallel()

	t.Run("PlainLines", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		calls := script(b, flywheel.RunCompleted)
		require.NoError(t, b.run(t, "watch", "run-1", "--interval", "1ms"))
		require.EqualValues(t, 4, calls.Load())
		out := b.stdout.String()
		require.NotContains(t, out, "\x1b[", "no escape codes when not on a terminal")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		require.Equal(t, "14:40:00 job run-1 running", lines[0])
		require.Contains(t, out, "meta/llama-3.2-3b-instruct stage run_base_eval running\n")
		require.Contains(t, out, "meta/llama-3.2-3b-instruct stage run_base_eval running 50%\n")
		require.Contains(t, out, "meta/llama-3.2-3b-instruct stage run_base_eval succeeded\n")
		require.Contains(t, out, "meta/llama-3.2-3b-instruct base-eval function_name=0.500\n")
		require.Contains(t, out, "meta/llama-3.2-1b-instruct customized-eval function_name_and_args_accuracy=0.960, function_name=0.990", "headline metric first")
		require.Contains(t, out, "stage start_customization running (attempt 2)")
		require.NotContains(t, out, "stage run_customization_eval pending", "pending stages are not news")
		require.Equal(t, "14:40:00 recommendation: within 2 points of production", lines[len(lines)-2])
		require.Equal(t, "14:40:00 finding: m: fine-tuning (customized-eval) helped", lines[len(lines)-1])
		require.Equal(t, 1, strings.Count(out, "run_base_eval running 50%"), "an unchanged state prints nothing")
		require.Equal(t, 1, strings.Count(out, "job run-1 running"))
	})

	t.Run("FailedRunExitsNonZero", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		script(b, flywheel.RunFailed)
		err := b.run(t, "watch", "run-1", "--interval", "1ms")
		require.EqualError(t, err, "job run-1 ended failed: every candidate failed")
		require.Contains(t, b.stdout.String(), "meta/llama-3.2-3b-instruct failed (deployment ready)")
	})

	t.Run("Terminal", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.terminal = true
		script(b, flywheel.RunCompleted)
		require.NoError(t, b.run(t, "watch", "run-1", "--interval", "1ms"))
		out := b.stdout.String()
		frames := strings.Split(out, "\x1b[J")
		require.Len(t, frames, 3, "three distinct states, each drawn over the previous one")
		require.Contains(t, frames[0], "Job run-1  bfcl-simple/bfcl  RUNNING  10m0s")
		require.Contains(t, frames[0], "✓ initialize  ✓ create_datasets  ✓ wait_for_judge  · finalize")
		require.Contains(t, frames[0], "▶ run_base_eval           running    [██░░░░░░░░░░░░░░░░░░]  10%")
		require.Contains(t, frames[0], "✓ run_icl_eval            succeeded\n")
		require.Contains(t, frames[1], "[████████████░░░░░░░░]  60%")
		last := frames[2]
		require.Contains(t, last, "COMPLETED")
		require.Contains(t, last, "base-eval        function_name=0.500")
		for _, l := range strings.Split(out, "\n") {
			require.LessOrEqual(t, len([]rune(l)), 90+8, "lines fit the terminal (escape codes aside): %q", l)
		}
		// Each redraw moves up exactly the previous frame's height.
		height := strings.Count(frames[0], "\n")
		require.Equal(t, 2, strings.Count(out, fmt.Sprintf("\x1b[%dA\r", height)))
	})

	t.Run("NotFoundStops", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.jobs.GetJobFunc = func(context.Context, string) (*flywheel.JobDetail, error) {
			return nil, flywheel.Errorf(flywheel.ENOTFOUND, "Job not found")
		}
		require.EqualError(t, b.run(t, "watch", "x", "--interval", "1ms"), "watch job x: server answered 404: Job not found")
	})

	t.Run("GivesUpAfterFailures", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var calls atomic.Int32
		b.jobs.GetJobFunc = func(context.Context, string) (*flywheel.JobDetail, error) {
			calls.Add(1)
			return nil, flywheel.Errorf(flywheel.EUNAVAILABLE, "database is down")
		}
		err := b.run(t, "watch", "x", "--interval", "1ms")
		require.ErrorContains(t, err, "5 polls in a row failed")
		require.EqualValues(t, cli.WatchMaxFailures, calls.Load())
		require.Contains(t, b.stderr.String(), "poll 1 failed")
	})

	t.Run("Cancelled", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.jobs.GetJobFunc = func(_ context.Context, id string) (*flywheel.JobDetail, error) {
			return servertest.Detail(id, flywheel.RunRunning, start), nil
		}
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		cmd := cli.NewJobsCommand(cli.Options{ServerURL: func() string { return b.url }, Stdout: b.stdout, Stderr: b.stderr})
		cmd.SetArgs([]string{"watch", "run-1", "--interval", "5ms"})
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		require.ErrorIs(t, cmd.ExecuteContext(ctx), context.DeadlineExceeded)
	})
}
