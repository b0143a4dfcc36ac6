package engine_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/engine"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/flywheeltest"
	"github.com/flywheel-go/flywheel/internal/stage"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

type testBundle struct {
	engine    *engine.Engine
	store     *store.Store
	platform  *flywheeltest.Platform
	builder   *flywheeltest.Builder
	evaluator *flywheeltest.Evaluator
	opts      engine.Options
}

type setupOpts struct {
	candidates []flywheel.NIMConfig
	mutate     func(*testBundle)
	maxRuns    int
	dbURL      string
}

func twoCandidates() []flywheel.NIMConfig {
	return []flywheel.NIMConfig{
		{ModelName: "meta/llama-3.2-1b-instruct", CustomizationEnabled: true},
		{ModelName: "meta/llama-3.2-3b-instruct", CustomizationEnabled: true},
	}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func setup(t *testing.T, d store.Dialect, so setupOpts) *testBundle {
	t.Helper()
	return setupB(t, d, so)
}

// openMigrated opens the store at url, closed when the test ends, and
// migrates it.
func openMigrated(t testing.TB, url string) *store.Store {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, url, store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	_, err = engine.Migrate(ctx, s)
	require.NoError(t, err)
	return s
}

func setupB(t testing.TB, d store.Dialect, so setupOpts) *testBundle {
	t.Helper()
	ctx := context.Background()
	url := so.dbURL
	if url == "" {
		url = storetest.URL(t, d)
	}
	s := openMigrated(t, url)
	b := &testBundle{store: s, platform: &flywheeltest.Platform{DeployPolls: 1, CustomizationPolls: 2},
		builder: &flywheeltest.Builder{}, evaluator: &flywheeltest.Evaluator{}}
	if so.candidates == nil {
		so.candidates = twoCandidates()
	}
	b.opts = engine.Options{
		Store: s, Logger: testLogger(t), Workers: 8,
		Spec: flywheel.RunSpec{Candidates: so.candidates, Namespace: "dfwbp",
			Judge: flywheel.JudgeConfig{DeploymentType: flywheel.DeploymentTypeRemote}},
		Retry:             engine.RetryPolicy{MaxAttempts: 4, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond},
		LeaseTTL:          time.Second,
		ReaperInterval:    time.Hour,
		FetchPollInterval: 20 * time.Millisecond,
		Embedded:          d == store.SQLite,
	}
	if so.mutate != nil {
		so.mutate(b)
	}
	b.opts.Runner = &stage.Runner{Store: s, Platform: b.platform, Datasets: b.builder, Evaluator: b.evaluator,
		Logger: b.opts.Logger, Settings: stage.Settings{PollInterval: 10 * time.Millisecond, DataDir: t.TempDir(),
			MaxConcurrentRuns: so.maxRuns}}
	e, err := engine.New(b.opts)
	require.NoError(t, err)
	require.NoError(t, e.Start(ctx))
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Stop(stopCtx)
	})
	b.engine = e
	return b
}

func (b *testBundle) create(t *testing.T) *flywheel.Run {
	t.Helper()
	run, err := b.engine.CreateJob(context.Background(), flywheel.CreateJobRequest{WorkloadID: "wl", ClientID: "cl"})
	require.NoError(t, err)
	return run
}

func (b *testBundle) wait(t *testing.T, id string) *flywheel.JobDetail {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := b.engine.WaitFinished(ctx, id, 10*time.Millisecond)
	require.NoError(t, err, "run did not finish")
	// The cleanup of a cancelled or failed run runs after it finished.
	require.Eventually(t, func() bool {
		d, err := b.engine.GetJob(ctx, id)
		require.NoError(t, err)
		for _, s := range d.Stages {
			if !s.Status.Done() {
				return false
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond)
	d, err := b.engine.GetJob(ctx, id)
	require.NoError(t, err)
	return d
}

func stageStatus(d *flywheel.JobDetail, candidate string, name flywheel.StageName) flywheel.StageStatus {
	for _, s := range d.Stages {
		if s.Candidate == candidate && s.Name == name {
			return s.Status
		}
	}
	return ""
}

func forEachDialect(t *testing.T, fn func(t *testing.T, d store.Dialect)) {
	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			t.Parallel()
			fn(t, d)
		})
	}
}

func TestTwoCandidatesComplete(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d store.Dialect) {
		b := setup(t, d, setupOpts{})
		run := b.create(t)
		detail := b.wait(t, run.ID)

		require.Equal(t, flywheel.RunCompleted, detail.Run.Status, detail.Run.Error)
		require.Empty(t, detail.Run.Error)
		require.Equal(t, 100, detail.Run.NumRecords)
		require.Len(t, detail.Run.Datasets, 3)
		require.Len(t, detail.NIMs, 2)
		for _, n := range detail.NIMs {
			require.Equal(t, flywheel.NIMCompleted, n.Status)
			require.Equal(t, flywheel.DeploymentCompleted, n.DeploymentStatus)
			require.Len(t, n.Evaluations, 3)
			for _, e := range n.Evaluations {
				require.NotNil(t, e.FinishedAt)
				require.Equal(t, 100.0, e.Progress)
				require.Contains(t, e.Scores, flywheel.ScoreFunctionName)
			}
			require.Len(t, n.Customizations, 1)
			require.NotNil(t, n.Customizations[0].CustomizedModel)
			require.Equal(t, 100.0, n.Customizations[0].Progress)
		}
		for _, s := range detail.Stages {
			require.Equal(t, flywheel.StageSucceeded, s.Status, "stage %s/%s: %s", s.Candidate, s.Name, s.Error)
		}
		require.Equal(t, flywheel.DeploymentReady, detail.Judge.DeploymentStatus)
		require.Empty(t, b.platform.Live(), "every deployment is released")
		for key, n := range b.platform.Creations() {
			require.Equal(t, 1, n, "resource %s created once", key)
		}
		live, err := b.store.ListResources(context.Background(), run.ID, flywheel.ResourceLive)
		require.NoError(t, err)
		for _, r := range live {
			require.Equal(t, flywheel.ResourceModel, r.Kind, "only artifacts stay live: %+v", r)
		}
	})
}

func TestCandidatesRunOneAtATimeByDefault(t *testing.T) {
	t.Parallel()
	b := setup(t, store.SQLite, setupOpts{})
	run := b.create(t)
	detail := b.wait(t, run.ID)
	var firstDown, secondUp time.Time
	for _, s := range detail.Stages {
		if s.Candidate == detail.NIMs[0].ID && s.Name == flywheel.StageShutdownDeployment {
			firstDown = *s.FinishedAt
		}
		if s.Candidate == detail.NIMs[1].ID && s.Name == flywheel.StageSpinUpNIM {
			secondUp = *s.StartedAt
		}
	}
	require.False(t, secondUp.Before(firstDown), "second candidate deployed at %s before the first was shut down at %s", secondUp, firstDown)
}

func TestFailuresFailOnlyWhatTheyShould(t *testing.T) {
	t.Parallel()
	type check func(t *testing.T, b *testBundle, d *flywheel.JobDetail)
	for _, tc := range []struct {
		name   string
		mutate func(*testBundle)
		check  check
	}{
		{
			name: "EvaluationFailureKeepsCandidate",
			mutate: func(b *testBundle) {
				b.evaluator.Fail = map[string]string{"meta/llama-3.2-1b-instruct|base-eval": "endpoint returned garbage"}
			},
			check: func(t *testing.T, b *testBundle, d *flywheel.JobDetail) {
				require.Equal(t, flywheel.RunCompleted, d.Run.Status)
				require.Equal(t, flywheel.NIMCompleted, d.NIMs[0].Status)
				require.Contains(t, d.NIMs[0].Error, "run_base_eval failed: endpoint returned garbage")
				require.Equal(t, flywheel.StageFailed, stageStatus(d, d.NIMs[0].ID, flywheel.StageRunBaseEval))
				require.Equal(t, flywheel.StageSucceeded, stageStatus(d, d.NIMs[0].ID, flywheel.StageRunICLEval))
				for _, e := range d.NIMs[0].Evaluations {
					if e.EvalType == flywheel.EvalBase {
						require.Equal(t, "endpoint returned garbage", e.Error)
					}
				}
				require.Empty(t, d.NIMs[1].Error)
			},
		},
		{
			name: "DeployFailureFailsThatCandidateOnly",
			mutate: func(b *testBundle) {
				b.platform.FailDeploy = map[string]string{"meta/llama-3.2-3b-instruct": "NotEnoughResources: 0 GPUs free"}
			},
			check: func(t *testing.T, b *testBundle, d *flywheel.JobDetail) {
				require.Equal(t, flywheel.RunCompleted, d.Run.Status)
				require.Equal(t, flywheel.NIMCompleted, d.NIMs[0].Status)
				require.Equal(t, flywheel.NIMFailed, d.NIMs[1].Status)
				require.Contains(t, d.NIMs[1].Error, "NotEnoughResources")
				require.Equal(t, flywheel.StageSkipped, stageStatus(d, d.NIMs[1].ID, flywheel.StageRunBaseEval))
				require.Equal(t, flywheel.StageSucceeded, stageStatus(d, d.NIMs[1].ID, flywheel.StageShutdownDeployment))
				require.Empty(t, b.platform.Live())
			},
		},
		{
			name: "CustomizationFailureSkipsOnlyCustomizedEval",
			mutate: func(b *testBundle) {
				b.platform.FailCustomization = map[string]string{"meta/llama-3.2-1b-instruct": "loss diverged"}
			},
			check: func(t *testing.T, b *testBundle, d *flywheel.JobDetail) {
				require.Equal(t, flywheel.RunCompleted, d.Run.Status)
				require.Equal(t, flywheel.StageFailed, stageStatus(d, d.NIMs[0].ID, flywheel.StageStartCustomization))
				require.Equal(t, flywheel.StageSkipped, stageStatus(d, d.NIMs[0].ID, flywheel.StageRunCustomizationEval))
				require.Contains(t, d.NIMs[0].Customizations[0].Error, "loss diverged")
				require.Len(t, d.NIMs[1].Evaluations, 3)
			},
		},
		{
			name: "EveryCandidateFailedFailsTheRun",
			mutate: func(b *testBundle) {
				b.platform.FailDeploy = map[string]string{"meta/llama-3.2-1b-instruct": "image pull failed", "meta/llama-3.2-3b-instruct": "image pull failed"}
			},
			check: func(t *testing.T, b *testBundle, d *flywheel.JobDetail) {
				require.Equal(t, flywheel.RunFailed, d.Run.Status)
				require.Equal(t, "all 2 candidates failed", d.Run.Error)
			},
		},
		{
			name: "DatasetFailureFailsTheRun",
			mutate: func(b *testBundle) {
				b.builder.Err = flywheel.Permanent(errors.New("only 12 valid records, need 50"))
			},
			check: func(t *testing.T, b *testBundle, d *flywheel.JobDetail) {
				require.Equal(t, flywheel.RunFailed, d.Run.Status)
				require.Equal(t, "Error creating datasets: only 12 valid records, need 50", d.Run.Error)
				for _, n := range d.NIMs {
					require.Equal(t, flywheel.NIMFailed, n.Status)
					require.Contains(t, n.Error, "Flywheel run failed")
				}
				require.Equal(t, flywheel.StageSucceeded, stageStatus(d, "", flywheel.StageCleanup))
				require.NotNil(t, d.Run.Stats, "data statistics are kept when dataset creation fails")
			},
		},
		{
			name: "TransientErrorsAreRetried",
			mutate: func(b *testBundle) {
				b.evaluator.TransientFailures = 2
			},
			check: func(t *testing.T, b *testBundle, d *flywheel.JobDetail) {
				require.Equal(t, flywheel.RunCompleted, d.Run.Status)
				for _, s := range d.Stages {
					if s.Name == flywheel.StageRunBaseEval {
						require.Equal(t, flywheel.StageSucceeded, s.Status)
						require.Equal(t, 3, s.Attempts)
					}
				}
			},
		},
		{
			name: "RetriesRunOut",
			mutate: func(b *testBundle) {
				b.evaluator.TransientFailures = 100
			},
			check: func(t *testing.T, b *testBundle, d *flywheel.JobDetail) {
				require.Equal(t, flywheel.RunFailed, d.Run.Status)
				for _, s := range d.Stages {
					if s.Name == flywheel.StageRunBaseEval {
						require.Equal(t, flywheel.StageFailed, s.Status)
						require.Contains(t, s.Error, "after 4 attempts")
					}
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, store.SQLite, setupOpts{mutate: tc.mutate})
			run := b.create(t)
			tc.check(t, b, b.wait(t, run.ID))
		})
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d store.Dialect) {
		started := make(chan flywheel.EvalRequest, 16)
		b := setup(t, d, setupOpts{mutate: func(b *testBundle) {
			b.evaluator.Block = true
			b.evaluator.Started = started
			b.platform.CustomizationPolls = 1_000_000
		}})
		run := b.create(t)
		ctx := context.Background()
		<-started
		<-started // base and icl evaluations are running
		// The customization job is running remotely too.
		require.Eventually(t, func() bool { return len(b.platform.RunningJobs()) == 1 }, 10*time.Second, 10*time.Millisecond)

		begin := time.Now()
		msg, err := b.engine.CancelJob(ctx, run.ID)
		require.NoError(t, err)
		require.Equal(t, "Job cancellation initiated successfully.", msg)
		require.Eventually(t, func() bool { return len(b.evaluator.CancelledAt()) == 2 }, 5*time.Second, 5*time.Millisecond)
		for _, at := range b.evaluator.CancelledAt() {
			require.Less(t, at.Sub(begin), time.Second, "running stages see the cancel within a second")
		}
		detail := b.wait(t, run.ID)
		require.Equal(t, flywheel.RunCancelled, detail.Run.Status)
		require.Equal(t, "Job cancelled by user", detail.Run.Error)
		for _, n := range detail.NIMs {
			require.Equal(t, flywheel.NIMCancelled, n.Status)
		}
		require.Equal(t, flywheel.DeploymentCancelled, detail.Judge.DeploymentStatus)
		require.Empty(t, b.platform.Live(), "deployments released")
		require.Empty(t, b.platform.RunningJobs(), "remote customization cancelled")

		msg, err = b.engine.CancelJob(ctx, run.ID)
		require.NoError(t, err)
		require.Equal(t, "Job is already cancelled.", msg)
	})
}

func TestAPIErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, store.SQLite, setupOpts{})
	ctx := context.Background()
	_, err := b.engine.GetJob(ctx, "nope")
	require.Equal(t, flywheel.EINVALID, flywheel.ErrorCode(err))
	require.Equal(t, "Invalid job_id format", flywheel.ErrorMessage(err))
	missing := store.NewID(time.Now())
	_, err = b.engine.GetJob(ctx, missing)
	require.Equal(t, flywheel.ENOTFOUND, flywheel.ErrorCode(err))
	_, err = b.engine.CancelJob(ctx, missing)
	require.Equal(t, fmt.Sprintf("Job with ID %s not found", missing), flywheel.ErrorMessage(err))

	_, err = b.engine.CreateJob(ctx, flywheel.CreateJobRequest{ClientID: "c"})
	var fe *flywheel.Error
	require.ErrorAs(t, err, &fe)
	require.Equal(t, flywheel.EUNPROCESSABLE, fe.Code)
	require.Equal(t, []string{"body", "workload_id"}, fe.Fields[0].Loc)

	run := b.create(t)
	_, err = b.engine.DeleteJob(ctx, run.ID)
	require.Equal(t, flywheel.EPRECONDITION, flywheel.ErrorCode(err))
	b.wait(t, run.ID)
	_, err = b.engine.CancelJob(ctx, run.ID)
	require.Equal(t, "Cannot cancel a job that has already finished.", flywheel.ErrorMessage(err))

	msg, err := b.engine.DeleteJob(ctx, run.ID)
	require.NoError(t, err)
	require.Contains(t, msg, "Job deletion started")
	require.Eventually(t, func() bool {
		_, err := b.engine.GetJob(ctx, run.ID)
		return flywheel.ErrorCode(err) == flywheel.ENOTFOUND
	}, 10*time.Second, 10*time.Millisecond)
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	b := setup(t, store.SQLite, setupOpts{})
	ctx := context.Background()
	req := flywheel.CreateJobRequest{WorkloadID: "w", ClientID: "c", IdempotencyKey: "abc"}
	r1, err := b.engine.CreateJob(ctx, req)
	require.NoError(t, err)
	r2, err := b.engine.CreateJob(ctx, req)
	require.NoError(t, err)
	require.Equal(t, r1.ID, r2.ID)
	page, err := b.engine.ListJobs(ctx, flywheel.JobFilter{})
	require.NoError(t, err)
	require.Len(t, page.Runs, 1)
}

func TestSeveralRunsAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, store.SQLite, setupOpts{maxRuns: 4, mutate: func(b *testBundle) {
		b.platform.CustomizationPolls = 5
	}})
	var ids []string
	for range 3 {
		ids = append(ids, b.create(t).ID)
	}
	// While the first run is still going, the others are running too.
	require.Eventually(t, func() bool {
		page, err := b.engine.ListJobs(context.Background(), flywheel.JobFilter{Status: flywheel.RunRunning})
		require.NoError(t, err)
		return len(page.Runs) >= 2
	}, 10*time.Second, 5*time.Millisecond)
	for _, id := range ids {
		require.Equal(t, flywheel.RunCompleted, b.wait(t, id).Run.Status)
	}
}

func TestMaxConcurrentRunsQueuesTheRest(t *testing.T) {
	t.Parallel()
	b := setup(t, store.SQLite, setupOpts{maxRuns: 1, mutate: func(b *testBundle) {
		b.evaluator.Block = true
	}})
	first, second := b.create(t), b.create(t)
	ctx := context.Background()
	require.Eventually(t, func() bool {
		r, err := b.store.GetRun(ctx, first.ID)
		require.NoError(t, err)
		return r.Status == flywheel.RunRunning
	}, 10*time.Second, 5*time.Millisecond, "the older run starts first")
	time.Sleep(200 * time.Millisecond) // give the second run every chance to start
	r, err := b.store.GetRun(ctx, second.ID)
	require.NoError(t, err)
	require.Equal(t, flywheel.RunPending, r.Status, "only one run may run")
	_, err = b.engine.CancelJob(ctx, first.ID)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		r, err := b.store.GetRun(ctx, second.ID)
		require.NoError(t, err)
		return r.Status == flywheel.RunRunning
	}, 10*time.Second, 5*time.Millisecond)
	_, err = b.engine.CancelJob(ctx, second.ID)
	require.NoError(t, err)
}

func TestTimeLimits(t *testing.T) {
	t.Parallel()
	b := setup(t, store.SQLite, setupOpts{mutate: func(b *testBundle) {
		b.evaluator.Block = true
		b.opts.Limits = map[flywheel.StageName]engine.Limit{
			flywheel.StageRunBaseEval:          {Hard: 2 * time.Second, Soft: 300 * time.Millisecond},
			flywheel.StageRunICLEval:           {Hard: 2 * time.Second, Soft: 300 * time.Millisecond},
			flywheel.StageRunCustomizationEval: {Hard: 2 * time.Second, Soft: 300 * time.Millisecond},
		}
	}})
	run := b.create(t)
	d := b.wait(t, run.ID)
	require.Equal(t, flywheel.RunFailed, d.Run.Status, "no evaluation could finish")
	for _, s := range d.Stages {
		if s.Name == flywheel.StageRunBaseEval {
			require.Equal(t, flywheel.StageFailed, s.Status)
			require.Contains(t, s.Error, "exceeded its soft time limit of 300ms")
		}
	}
	require.Empty(t, b.platform.Live())
}

func TestGracefulStopResumesElsewhere(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d store.Dialect) {
		url := storetest.URL(t, d)
		started := make(chan flywheel.EvalRequest, 16)
		first := setup(t, d, setupOpts{dbURL: url, mutate: func(b *testBundle) {
			b.evaluator.Block = true
			b.evaluator.Started = started
		}})
		run := first.create(t)
		<-started
		stopCtx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_ = first.engine.Stop(stopCtx) // interrupts the running evaluations; must not cancel the run

		r, err := first.store.GetRun(context.Background(), run.ID)
		require.NoError(t, err)
		require.Equal(t, flywheel.RunRunning, r.Status, "a graceful stop never cancels a run")

		second := setup(t, d, setupOpts{dbURL: url, mutate: func(b *testBundle) {
			b.platform = first.platform // the same remote platform
			b.opts.RescueAfter = time.Second
		}})
		detail := second.wait(t, run.ID)
		require.Equal(t, flywheel.RunCompleted, detail.Run.Status, detail.Run.Error)
		for key, n := range first.platform.Creations() {
			require.Equal(t, 1, n, "resource %s created once across both processes", key)
		}
		require.Empty(t, first.platform.Live())
	})
}

func TestMetricsRegister(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	b := setup(t, store.SQLite, setupOpts{mutate: func(b *testBundle) { b.opts.Registry = reg }})
	run := b.create(t)
	b.wait(t, run.ID)
	mfs, err := reg.Gather()
	require.NoError(t, err)
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{"flywheel_runs", "flywheel_stage_duration_seconds", "flywheel_stage_outcomes_total", "flywheel_queue_jobs"} {
		require.True(t, names[n], "metric %s", n)
	}
}

func TestDoctorFindsAndRepairs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, store.SQLite, setupOpts{mutate: func(b *testBundle) { b.evaluator.Block = true }})
	run := b.create(t)
	require.Eventually(t, func() bool {
		st, err := b.store.GetStage(ctx, run.ID, "", flywheel.StageWaitForJudge)
		require.NoError(t, err)
		return st.Status == flywheel.StageSucceeded
	}, 10*time.Second, 5*time.Millisecond)

	// A finished run that still has an unfinished candidate (what a crash
	// between two writes of the blueprint leaves behind).
	other := b.create(t)
	_, err := b.engine.CancelJob(ctx, other.ID)
	require.NoError(t, err)
	b.wait(t, other.ID)
	_, err = b.store.DB().ExecContext(ctx, `UPDATE nims SET finished_at = NULL, status = 'running-evals' WHERE flywheel_run_id = ?`, other.ID)
	require.NoError(t, err)
	// A live deployment left behind by a finished run.
	orphan := &flywheel.Resource{RunID: other.ID, Kind: flywheel.ResourceDeployment, Platform: "test", RemoteID: "dep-x", Key: "orphan"}
	require.NoError(t, b.store.RecordResource(ctx, orphan))

	findings, err := b.engine.Doctor(ctx, false)
	require.NoError(t, err)
	kinds := map[string]int{}
	for _, f := range findings {
		kinds[f.Kind]++
		require.False(t, f.Fixed)
	}
	require.Equal(t, 1, kinds[engine.FindingInconsistent], "%+v", findings)
	require.Equal(t, 1, kinds[engine.FindingOrphan], "%+v", findings)
	require.Zero(t, kinds[engine.FindingStuckRun], "a healthy running run is not stuck: %+v", findings)

	findings, err = b.engine.Doctor(ctx, true)
	require.NoError(t, err)
	for _, f := range findings {
		require.True(t, f.Fixed, "%+v", f)
	}
	findings, err = b.engine.Doctor(ctx, false)
	require.NoError(t, err)
	require.Empty(t, findings)
	_, err = b.engine.CancelJob(ctx, run.ID)
	require.NoError(t, err)
}
