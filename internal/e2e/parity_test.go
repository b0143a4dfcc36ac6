package e2e_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/config"
	"github.com/flywheel-go/flywheel/internal/dataset"
	"github.com/flywheel-go/flywheel/internal/engine"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/platform/nemo"
	"github.com/flywheel-go/flywheel/internal/platform/nemo/nemotest"
	"github.com/flywheel-go/flywheel/internal/stage"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

const judgeModel = "meta/llama-3.3-70b-instruct"

// parityBundle is an engine whose evaluations run as NeMo Evaluator jobs
// (the blueprint's parity path), which the app does not offer: it always
// evaluates in-process.
type parityBundle struct {
	fake   *nemotest.Server
	store  *store.Store
	engine *engine.Engine
}

func setupParity(t *testing.T, d store.Dialect, fo nemotest.Options) *parityBundle {
	t.Helper()
	ctx := context.Background()
	fo.Models = append(fo.Models, judgeModel)
	fake, g := startFake(t, fo)
	t.Cleanup(g.open)
	cfg := testConfig(t, d, fake, func(c *config.Config) {
		// The NeMo Evaluator needs a judge; the fake's NIM proxy serves one.
		c.Judge = flywheel.JudgeConfig{DeploymentType: flywheel.DeploymentTypeRemote, URL: fake.NIMURL, ModelName: judgeModel}
	})
	logger := testLogger(t)
	s, err := store.Open(ctx, cfg.DatabaseURL, store.Options{Logger: logger})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	_, err = engine.Migrate(ctx, s)
	require.NoError(t, err)
	// As app.NewPlatform builds it, but polling evaluation jobs as often
	// as the engine polls (app.NewPlatform leaves the 5 s default).
	platform, err := nemo.New(nemo.Config{
		NeMo: nemo.Service{BaseURL: cfg.NMP.NemoBaseURL}, NIM: nemo.Service{BaseURL: cfg.NMP.NIMBaseURL},
		DataStore: nemo.Service{BaseURL: cfg.NMP.DatastoreBaseURL}, Namespace: cfg.NMP.Namespace, Logger: logger,
		EvalPollInterval: cfg.Engine.PollInterval,
	})
	require.NoError(t, err)
	runner := &stage.Runner{
		Store: s, Platform: platform, Evaluator: platform, Logger: logger,
		Datasets: &dataset.Builder{Source: s, Logger: logger},
		Settings: stage.Settings{PollInterval: cfg.Engine.PollInterval, StallTimeout: cfg.Engine.StallTimeout,
			MaxConcurrentRuns: cfg.Engine.MaxConcurrentRuns, DataDir: cfg.DataDir},
	}
	e, err := engine.New(engine.Options{
		Store: s, Runner: runner, Logger: logger, Spec: cfg.RunSpec(), Workers: cfg.Engine.Workers,
		Retry:    engine.RetryPolicy{MaxAttempts: 5, InitialBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond},
		Embedded: d == store.SQLite, FetchPollInterval: 20 * time.Millisecond, ReaperInterval: time.Hour,
	})
	require.NoError(t, err)
	require.NoError(t, e.Start(ctx))
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Stop(stopCtx)
	})
	return &parityBundle{fake: fake, store: s, engine: e}
}

func (b *parityBundle) wait(t *testing.T, id string) *flywheel.JobDetail {
	t.Helper()
	var d *flywheel.JobDetail
	ok := waitFor(60*time.Second, 50*time.Millisecond, func() bool {
		var err error
		d, err = b.engine.GetJob(context.Background(), id)
		require.NoError(t, err)
		if d.Run.FinishedAt == nil {
			return false
		}
		for _, s := range d.Stages {
			if !s.Status.Done() {
				return false
			}
		}
		return true
	})
	require.True(t, ok, "run %s did not finish: %+v", id, d.Run)
	return d
}

// TestNeMoEvaluatorParity runs the DAG with evaluations as NeMo Evaluator
// jobs on the fake, and cancels a run while its evaluation jobs run: the
// remote jobs are cancelled.
func TestNeMoEvaluatorParity(t *testing.T) {
	t.Parallel()
	t.Run("Completes", func(t *testing.T) {
		t.Parallel()
		b := setupParity(t, store.SQLite, nemotest.Options{})
		loadLogs(t, b.store, "simple.jsonl", "bfcl-simple")
		run, err := b.engine.CreateJob(context.Background(), flywheel.CreateJobRequest{WorkloadID: "bfcl-simple", ClientID: clientID})
		require.NoError(t, err)
		d := b.wait(t, run.ID)
		require.Equal(t, flywheel.RunCompleted, d.Run.Status, d.Run.Error)
		for _, n := range d.NIMs {
			require.Equal(t, flywheel.NIMCompleted, n.Status, n.Error)
			require.Len(t, n.Evaluations, 3)
			for _, e := range n.Evaluations {
				require.Empty(t, e.Error)
				require.Contains(t, e.Scores, flywheel.ScoreFunctionName, "%s %s", n.ModelName, e.EvalType)
			}
		}
		counts := b.fake.Counts()
		require.Equal(t, 6, counts.Created[nemotest.KindEvaluation], "three evaluation jobs per candidate")
		require.Zero(t, counts.TotalDuplicates(), "%+v", counts.Duplicates)
		require.True(t, b.fake.Live().Empty(), "%+v", b.fake.Live())
	})
	for _, d := range storetest.Dialects() {
		t.Run("CancelCancelsEvaluationJobs/"+storetest.Name(d), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := setupParity(t, d, nemotest.Options{StuckEvaluations: true})
			loadLogs(t, b.store, "multiple.jsonl", "bfcl-multiple")
			run, err := b.engine.CreateJob(ctx, flywheel.CreateJobRequest{WorkloadID: "bfcl-multiple", ClientID: clientID})
			require.NoError(t, err)
			// The base and ICL evaluations of the first candidate are stuck.
			require.Eventually(t, func() bool { return len(b.fake.Live().Evaluations) == 2 }, 20*time.Second, 10*time.Millisecond)
			jobs := b.fake.Live().Evaluations
			msg, err := b.engine.CancelJob(ctx, run.ID)
			require.NoError(t, err)
			require.Equal(t, "Job cancellation initiated successfully.", msg)
			stopped := waitFor(5*time.Second, 10*time.Millisecond, func() bool { return b.fake.Live().Empty() })
			require.True(t, stopped, "still running: %+v (live at cancel: %v)", b.fake.Live(), jobs)
			for _, id := range jobs {
				require.Equal(t, "cancelled", b.fake.EvaluationStatus(id), id)
			}
			detail := b.wait(t, run.ID)
			require.Equal(t, flywheel.RunCancelled, detail.Run.Status)
			for _, n := range detail.NIMs {
				require.Equal(t, flywheel.NIMCancelled, n.Status)
			}
		})
	}
}
