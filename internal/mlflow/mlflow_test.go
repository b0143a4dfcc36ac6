package mlflow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/flywheel-go/flywheel/internal/engine"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/flywheeltest"
	"github.com/flywheel-go/flywheel/internal/mlflow"
	"github.com/flywheel-go/flywheel/internal/mlflow/mlflowtest"
	"github.com/flywheel-go/flywheel/internal/stage"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("database/sql.(*DB).connectionOpener"))
}

var fixed = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

type testBundle struct {
	fake     *mlflowtest.Server
	exporter *mlflow.Exporter
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	fake := mlflowtest.New(t)
	exp, err := mlflow.New(mlflow.Options{TrackingURI: fake.URL + "/", ExperimentPrefix: "data-flywheel",
		HTTPClient: &http.Client{Timeout: 5 * time.Second}, Backoff: time.Millisecond, Now: func() time.Time { return fixed }})
	require.NoError(t, err)
	return &testBundle{fake: fake, exporter: exp}
}

func evaluation(id string, t flywheel.EvalType, n int) (*flywheel.Evaluation, []flywheel.ItemResult) {
	fin := fixed.Add(-time.Minute)
	e := &flywheel.Evaluation{ID: id, NIMID: "nim-1", EvalType: t, StartedAt: fixed.Add(-5 * time.Minute), FinishedAt: &fin,
		Scores: map[string]float64{flywheel.ScoreFunctionName: 0.75, flywheel.ScoreFunctionNameAndArgs: 0.5},
		Details: map[string]flywheel.ScoreDetail{
			flywheel.ScoreFunctionName:        {N: n, Mean: 0.75, StdErr: 0.02, CILow: 0.71, CIHigh: 0.79},
			flywheel.ScoreFunctionNameAndArgs: {N: n, Mean: 0.5, StdErr: 0.03, CILow: 0.44, CIHigh: 0.56},
		},
		Summary: &flywheel.EvalSummary{Items: n, Answered: n - 2, Errors: 2, Failures: flywheel.FailureCounts{Timeout: 2},
			LatencyN: n - 2, LatencyP50MS: new(40.0), LatencyP95MS: new(90.0), TokensN: n - 2, PromptTokens: new(310.0),
			CompletionTokens: new(22.0), CostPer1KReq: 0.4, ErrorClasses: map[string]int{"wrong_function": 3},
			PerTool: map[string]flywheel.ScoreDetail{"get weather!": {N: n, Mean: 0.8, CILow: 0.7, CIHigh: 0.9}}},
	}
	items := make([]flywheel.ItemResult, n)
	for i := range items {
		items[i] = flywheel.ItemResult{EvaluationID: id, Index: i, Tool: "get_weather", LatencyMS: float64(40 + i%10),
			Reference: json.RawMessage(`{"name":"get_weather"}`), Prediction: json.RawMessage(`{"name":"get_weather"}`),
			Scores: map[string]float64{flywheel.ScoreFunctionName: float64(i % 2)}}
	}
	return e, items
}

var (
	testRun = &flywheel.Run{ID: "6b07442a11b73cb7b4db9058", WorkloadID: "weather", ClientID: "acme"}
	testNIM = &flywheel.NIMRun{ID: "nim-1", ModelName: "meta/llama-3.2-1b-instruct"}
)

func metricValue(run mlflowtest.Run, key string) (float64, bool) {
	for _, m := range run.Metrics {
		if m.Key == key && m.Step == 0 {
			return m.Value, true
		}
	}
	return 0, false
}

func TestExport(t *testing.T) {
	t.Parallel()

	t.Run("RecordsEvaluation", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ev, items := evaluation("eval-1", flywheel.EvalBase, 1500)
		uri, err := b.exporter.ExportEvaluation(context.Background(), testRun, testNIM, ev, items)
		require.NoError(t, err)
		exps := b.fake.Experiments()
		require.Len(t, exps, 1)
		require.Equal(t, "data-flywheel-weather", exps[0].Name)
		runs := b.fake.Runs()
		require.Len(t, runs, 1)
		r := runs[0]
		require.Equal(t, b.fake.URL+"/#/experiments/"+exps[0].ID+"/runs/"+r.ID, uri)
		require.Equal(t, "meta_llama-3.2-1b-instruct_base-eval", r.Name)
		require.Equal(t, "FINISHED", r.Status)
		require.Equal(t, ev.StartedAt.UnixMilli(), r.StartTime)
		require.Equal(t, ev.FinishedAt.UnixMilli(), r.EndTime)
		require.Equal(t, map[string]string{"model": testNIM.ModelName, "eval_type": "base-eval", "workload_id": "weather",
			"client_id": "acme", "flywheel_run_id": testRun.ID, "evaluation_id": "eval-1", "nim_id": "nim-1"}, r.Params)
		require.Equal(t, "eval-1", r.Tags[mlflow.TagEvaluationID])
		for key, want := range map[string]float64{
			"function_name": 0.75, "function_name.ci_low": 0.71, "function_name.ci_high": 0.79, "function_name.n": 1500,
			"function_name.stderr": 0.02, "function_name_and_args_accuracy.ci_low": 0.44,
			"latency_p95_ms": 90, "cost_per_1k_requests": 0.4, "error_class.wrong_function": 3,
			"tool.get weather_.mean": 0.8, "items": 1500,
		} {
			got, ok := metricValue(r, key)
			require.True(t, ok, "metric %s", key)
			require.InDelta(t, want, got, 1e-9, key)
		}
		var steps int
		for _, m := range r.Metrics {
			if m.Key == "item.function_name" {
				require.Equal(t, float64(m.Step%2), m.Value)
				steps++
			}
		}
		require.Equal(t, 1500, steps, "one step metric per item")
		require.GreaterOrEqual(t, b.fake.Requests()["/api/2.0/mlflow/runs/log-batch"], 4, "batches stay within MLflow's limit")

		art, ok := b.fake.Artifact(exps[0].ID + "/" + r.ID + "/artifacts/" + mlflow.ArtifactName)
		require.True(t, ok, "items uploaded")
		var got []flywheel.ItemResult
		require.NoError(t, json.Unmarshal(art, &got))
		require.Len(t, got, 1500)
		require.Equal(t, 1499, got[1499].Index)
	})

	t.Run("FailedEvaluationWarnsAndLogsNoLatency", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ev, items := evaluation("eval-500", flywheel.EvalBase, 60)
		for i := range items {
			items[i].LatencyMS = 0
		}
		ev.Summary = &flywheel.EvalSummary{Items: 60, Errors: 60, Failures: flywheel.FailureCounts{ServerError: 60},
			FirstError: "line 1: status 500: boom"}
		_, err := b.exporter.ExportEvaluation(context.Background(), testRun, testNIM, ev, items)
		require.NoError(t, err)
		r := b.fake.Runs()[0]
		require.Contains(t, r.Tags["flywheel.warning."+flywheel.WarningEvalFailures], "60 of 60 items got no usable reply (server_error 60")
		require.Contains(t, r.Tags["flywheel.warning."+flywheel.WarningEvalFailures], "first error: line 1: status 500: boom")
		got, ok := metricValue(r, "failures.server_error")
		require.True(t, ok)
		require.Equal(t, 60.0, got)
		got, ok = metricValue(r, "answered")
		require.True(t, ok)
		require.Zero(t, got)
		for _, m := range r.Metrics {
			require.NotEqual(t, "item.latency_ms", m.Key, "a failed request has no latency")
		}
		for _, key := range []string{"latency_p50_ms", "latency_p95_ms", "prompt_tokens_per_request", "completion_tokens_per_request"} {
			_, ok := metricValue(r, key)
			require.False(t, ok, "%s has no value over 0 answered requests", key)
		}
	})

	t.Run("SharesExperimentPerWorkload", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		for i, tt := range []flywheel.EvalType{flywheel.EvalBase, flywheel.EvalICL, flywheel.EvalCustomized} {
			ev, items := evaluation(fmt.Sprintf("eval-%d", i), tt, 10)
			_, err := b.exporter.ExportEvaluation(ctx, testRun, testNIM, ev, items)
			require.NoError(t, err)
		}
		other := *testRun
		other.WorkloadID = "support"
		ev, items := evaluation("eval-9", flywheel.EvalBase, 10)
		_, err := b.exporter.ExportEvaluation(ctx, &other, testNIM, ev, items)
		require.NoError(t, err)
		require.Len(t, b.fake.Experiments(), 2)
		require.Len(t, b.fake.Runs(), 4)
	})

	t.Run("RepeatedExportReusesRun", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ev, items := evaluation("eval-1", flywheel.EvalICL, 5)
		first, err := b.exporter.ExportEvaluation(context.Background(), testRun, testNIM, ev, items)
		require.NoError(t, err)
		second, err := b.exporter.ExportEvaluation(context.Background(), testRun, testNIM, ev, items)
		require.NoError(t, err)
		require.Equal(t, first, second)
		require.Len(t, b.fake.Runs(), 1)
		require.Equal(t, 1, b.fake.Requests()["/api/2.0/mlflow/runs/create"])
	})

	t.Run("InterruptedExportIsCompleted", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ev, items := evaluation("eval-1", flywheel.EvalBase, 5)
		b.fake.FailNext(mlflow.MaxAttemptsDefault, "runs/update")
		_, err := b.exporter.ExportEvaluation(context.Background(), testRun, testNIM, ev, items)
		require.Error(t, err)
		require.Equal(t, "RUNNING", b.fake.Runs()[0].Status)
		uri, err := b.exporter.ExportEvaluation(context.Background(), testRun, testNIM, ev, items)
		require.NoError(t, err)
		require.Len(t, b.fake.Runs(), 1, "the half-done run is finished, not duplicated")
		require.Equal(t, "FINISHED", b.fake.Runs()[0].Status)
		require.True(t, strings.HasSuffix(uri, "/runs/"+b.fake.Runs()[0].ID))
	})

	t.Run("RetriesTransientFailures", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.fake.FailNext(2, "log-batch")
		ev, items := evaluation("eval-1", flywheel.EvalBase, 5)
		_, err := b.exporter.ExportEvaluation(context.Background(), testRun, testNIM, ev, items)
		require.NoError(t, err)
		require.Equal(t, 3, b.fake.Requests()["/api/2.0/mlflow/runs/log-batch"])
		require.Equal(t, "FINISHED", b.fake.Runs()[0].Status)
	})

	t.Run("ArtifactFailureKeepsRun", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.fake.FailNext(100, "mlflow-artifacts")
		ev, items := evaluation("eval-1", flywheel.EvalBase, 5)
		uri, err := b.exporter.ExportEvaluation(context.Background(), testRun, testNIM, ev, items)
		require.NoError(t, err)
		require.NotEmpty(t, uri)
		require.Equal(t, "FINISHED", b.fake.Runs()[0].Status)
	})

	t.Run("ServerDown", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.fake.FailAll(http.StatusInternalServerError)
		ev, items := evaluation("eval-1", flywheel.EvalBase, 5)
		_, err := b.exporter.ExportEvaluation(context.Background(), testRun, testNIM, ev, items)
		require.ErrorContains(t, err, "HTTP 500")
		require.Equal(t, mlflow.MaxAttemptsDefault, b.fake.Requests()["/api/2.0/mlflow/experiments/get-by-name"])
	})

	t.Run("ClientErrorNotRetried", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.fake.FailAll(http.StatusForbidden)
		ev, items := evaluation("eval-1", flywheel.EvalBase, 5)
		_, err := b.exporter.ExportEvaluation(context.Background(), testRun, testNIM, ev, items)
		require.ErrorContains(t, err, "HTTP 403")
		require.Equal(t, 1, b.fake.Requests()["/api/2.0/mlflow/experiments/get-by-name"])
	})

	t.Run("Unreachable", func(t *testing.T) {
		t.Parallel()
		fake := mlflowtest.New(t)
		url := fake.URL
		fake.Close()
		exp, err := mlflow.New(mlflow.Options{TrackingURI: url, Backoff: time.Millisecond, ExportTimeout: 5 * time.Second})
		require.NoError(t, err)
		ev, items := evaluation("eval-1", flywheel.EvalBase, 5)
		_, err = exp.ExportEvaluation(context.Background(), testRun, testNIM, ev, items)
		require.Error(t, err)
	})
}

func TestNewRejectsBadTrackingURI(t *testing.T) {
	t.Parallel()
	for _, uri := range []string{"", "localhost:5000", "ftp://host", "http://"} {
		_, err := mlflow.New(mlflow.Options{TrackingURI: uri})
		require.Error(t, err, uri)
		require.Equal(t, flywheel.EINVALID, flywheel.ErrorCode(err), uri)
	}
}

// TestEngineRunExportsEvaluations runs whole flywheel runs with the
// exporter wired into the stages: every evaluation gets its MLflow link,
// and an MLflow that fails never fails the run.
func TestEngineRunExportsEvaluations(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		down bool
	}{{"Up", false}, {"Down", true}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := mlflowtest.New(t)
			if tt.down {
				fake.FailAll(http.StatusServiceUnavailable)
			}
			ctx := context.Background()
			s, err := store.Open(ctx, storetest.URL(t, store.SQLite), store.Options{})
			require.NoError(t, err)
			t.Cleanup(func() { _ = s.Close() })
			_, err = engine.Migrate(ctx, s)
			require.NoError(t, err)
			logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
			exp, err := mlflow.New(mlflow.Options{TrackingURI: fake.URL, Backoff: time.Millisecond, Logger: logger})
			require.NoError(t, err)
			opts := engine.Options{Store: s, Logger: logger, Workers: 4, Embedded: true,
				Spec: flywheel.RunSpec{Namespace: "dfwbp", Candidates: []flywheel.NIMConfig{{ModelName: "meta/llama-3.2-1b-instruct", CustomizationEnabled: true}},
					Judge: flywheel.JudgeConfig{DeploymentType: flywheel.DeploymentTypeRemote}},
				Retry:    engine.RetryPolicy{MaxAttempts: 2, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond},
				LeaseTTL: time.Second, ReaperInterval: time.Hour, FetchPollInterval: 20 * time.Millisecond}
			opts.Runner = &stage.Runner{Store: s, Platform: &flywheeltest.Platform{DeployPolls: 1, CustomizationPolls: 1},
				Datasets: &flywheeltest.Builder{}, Evaluator: &flywheeltest.Evaluator{}, Exporter: exp, Logger: logger,
				Settings: stage.Settings{PollInterval: 10 * time.Millisecond, DataDir: t.TempDir()}}
			e, err := engine.New(opts)
			require.NoError(t, err)
			require.NoError(t, e.Start(ctx))
			t.Cleanup(func() {
				stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = e.Stop(stopCtx)
			})
			run, err := e.CreateJob(ctx, flywheel.CreateJobRequest{WorkloadID: "weather", ClientID: "acme"})
			require.NoError(t, err)
			waitCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			_, err = e.WaitFinished(waitCtx, run.ID, 10*time.Millisecond)
			require.NoError(t, err)
			d, err := e.GetJob(ctx, run.ID)
			require.NoError(t, err)
			require.Equal(t, flywheel.RunCompleted, d.Run.Status, d.Run.Error)
			require.Len(t, d.NIMs[0].Evaluations, 3)
			for _, ev := range d.NIMs[0].Evaluations {
				if tt.down {
					require.Nil(t, ev.MLflowURI)
					continue
				}
				require.NotNil(t, ev.MLflowURI, string(ev.EvalType))
				require.True(t, strings.HasPrefix(*ev.MLflowURI, fake.URL+"/#/experiments/1/runs/"), *ev.MLflowURI)
			}
			if !tt.down {
				require.Len(t, fake.Runs(), 3)
				for _, r := range fake.Runs() {
					require.Equal(t, "FINISHED", r.Status)
					require.Equal(t, run.ID, r.Params["flywheel_run_id"])
				}
			}
		})
	}
}
