package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/dataset"
	"github.com/flywheel-go/flywheel/internal/engine"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/flywheeltest"
	"github.com/flywheel-go/flywheel/internal/stage"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

// provenancePlatform is the test platform that also knows digests and
// versions, as the local and NeMo platforms do.
type provenancePlatform struct {
	*flywheeltest.Platform
}

func (provenancePlatform) Versions(context.Context, []flywheel.NIMConfig) map[string]string {
	return map[string]string{"test-server": "1.2.3"}
}

func (provenancePlatform) ModelDigest(_ context.Context, m flywheel.NIMConfig) (string, error) {
	return "sha256:model-" + m.ModelName, nil
}

func (provenancePlatform) AdapterDigest(_ context.Context, job flywheel.CustomizationJob) (string, error) {
	return "sha256:adapter-" + job.ID, nil
}

type manifestBundle struct {
	engine *engine.Engine
	store  *store.Store
}

// setupManifest starts an engine whose runs build real datasets from the
// records stored in its database.
func setupManifest(t *testing.T, d store.Dialect) *manifestBundle {
	t.Helper()
	s := openMigrated(t, storetest.URL(t, d))
	opts := engine.Options{
		Store: s, Logger: testLogger(t), Workers: 8,
		Spec: flywheel.RunSpec{
			Candidates: []flywheel.NIMConfig{{ModelName: "local/tiny-s", CustomizationEnabled: true, Tag: "1.0"}, {ModelName: "local/tiny-m"}},
			Namespace:  "dfwbp",
			Judge:      flywheel.JudgeConfig{DeploymentType: flywheel.DeploymentTypeRemote},
			DataSplit: flywheel.DataSplitConfig{EvalSize: 8, ValRatio: 0.2, MinTotalRecords: 10, Limit: ptr(40),
				ParseFunctionArguments: true}, // no random_seed: the seed comes from the clock
			ICL: flywheel.ICLConfig{MaxContextLength: 8192, ReservedTokens: 1024, MaxExamples: 2, MinExamples: 1,
				ExampleSelection: flywheel.SelectionSemantic},
		},
		Retry:             engine.RetryPolicy{MaxAttempts: 2, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond},
		LeaseTTL:          time.Second,
		ReaperInterval:    time.Hour,
		FetchPollInterval: 20 * time.Millisecond,
		Embedded:          d == store.SQLite,
	}
	opts.Runner = &stage.Runner{Store: s, Platform: provenancePlatform{&flywheeltest.Platform{DeployPolls: 1, CustomizationPolls: 1}},
		Datasets: &dataset.Builder{Source: s}, Evaluator: &flywheeltest.Evaluator{}, Logger: opts.Logger,
		Settings: stage.Settings{PollInterval: 10 * time.Millisecond, DataDir: t.TempDir(), Version: "9.9.9"}}
	e, err := engine.New(opts)
	require.NoError(t, err)
	require.NoError(t, e.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Stop(ctx)
	})
	return &manifestBundle{engine: e, store: s}
}

func ptr[T any](v T) *T { return &v }

// toolLog is a tool-calling record of workload wl, client cl.
func toolLog(i int, query string) flywheel.LogRecord {
	tool := fmt.Sprintf("tool_%d", i%4)
	req, _ := json.Marshal(map[string]any{
		"model":    "prod",
		"messages": []any{map[string]any{"role": "user", "content": query}},
		"tools":    []any{map[string]any{"type": "function", "function": map[string]any{"name": tool, "parameters": map[string]any{"type": "object"}}}},
	})
	resp, _ := json.Marshal(map[string]any{"choices": []any{map[string]any{"message": map[string]any{"role": "assistant",
		"tool_calls": []any{map[string]any{"id": "c", "type": "function", "function": map[string]any{"name": tool, "arguments": fmt.Sprintf(`{"n":%d}`, i%50)}}}}}}})
	return flywheel.LogRecord{WorkloadID: "wl", ClientID: "cl", Timestamp: time.Unix(1_750_000_000+int64(i), 0).UTC(), Request: req, Response: resp}
}

func (b *manifestBundle) load(t *testing.T, from, n int) {
	t.Helper()
	var recs []flywheel.LogRecord
	for i := from; i < from+n; i++ {
		recs = append(recs, toolLog(i, fmt.Sprintf("Please handle request %d", i%50)))
		if i%5 == 0 { // a near-duplicate of the same question
			recs = append(recs, toolLog(i, fmt.Sprintf("please handle REQUEST %d!", i%50)))
		}
	}
	_, _, err := b.store.InsertLogs(context.Background(), recs)
	require.NoError(t, err)
}

func (b *manifestBundle) run(t *testing.T, req flywheel.CreateJobRequest) *flywheel.JobDetail {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run, err := b.engine.CreateJob(ctx, req)
	require.NoError(t, err)
	_, err = b.engine.WaitFinished(ctx, run.ID, 10*time.Millisecond)
	require.NoError(t, err)
	d, err := b.engine.GetJob(ctx, run.ID)
	require.NoError(t, err)
	return d
}

// TestManifestReproducesRun runs a job, reads its manifest, checks that
// it is complete, and runs again from it: the new run's datasets have the
// same records and hashes although new records arrived since and its seed
// came from the clock. With records deleted since, the run fails naming
// them.
func TestManifestReproducesRun(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		b := setupManifest(t, d)
		b.load(t, 0, 60)

		_, err := b.engine.GetManifest(ctx, "0123456789abcdef01234567")
		require.ErrorContains(t, err, "not found")

		first := b.run(t, flywheel.CreateJobRequest{WorkloadID: "wl", ClientID: "cl"})
		require.Equal(t, flywheel.RunCompleted, first.Run.Status, first.Run.Error)
		m, err := b.engine.GetManifest(ctx, first.Run.ID)
		require.NoError(t, err)

		// Complete.
		require.Equal(t, flywheel.ManifestVersion, m.Version)
		require.Equal(t, first.Run.ID, m.RunID)
		require.Equal(t, "wl", m.WorkloadID)
		require.Equal(t, flywheel.WorkloadToolCalling, m.WorkloadType)
		require.NotZero(t, m.Seed)
		require.Nil(t, m.Config.DataSplit.RandomSeed, "the config is as it was; the seed drawn is beside it")
		require.Len(t, m.Config.Candidates, 2)
		require.Len(t, m.Datasets, 4)
		sizes := map[string]int{}
		for _, ds := range m.Datasets {
			require.Len(t, ds.RecordHashes, len(ds.RecordIDs))
			require.Len(t, ds.Hash, 64)
			sizes[ds.Kind] = len(ds.RecordIDs)
		}
		require.Equal(t, 8, sizes[flywheel.ManifestEval])
		require.Equal(t, first.Run.Stats.Train, sizes[flywheel.ManifestTrain])
		require.Equal(t, first.Run.Stats.Val, sizes[flywheel.ManifestVal])
		require.Positive(t, sizes[flywheel.ManifestICL])
		require.Len(t, m.Dataset(flywheel.ManifestICL).Examples, 8)
		require.NotNil(t, first.Run.Stats.Leakage, "the job detail reports the leakage guard")
		require.Equal(t, first.Run.Stats.Leakage, m.Leakage)
		require.Equal(t, []flywheel.ManifestModel{
			{Name: "local/tiny-s", Digest: "sha256:model-local/tiny-s", AdapterID: *first.NIMs[0].Customizations[0].CustomizedModel,
				AdapterDigest: "sha256:adapter-" + first.NIMs[0].Customizations[0].JobID},
			{Name: "local/tiny-m", Digest: "sha256:model-local/tiny-m"},
		}, m.Models)
		require.Equal(t, map[string]string{"flywheel": "9.9.9", "test-server": "1.2.3", "image:local/tiny-s": "1.0"}, m.Versions)

		// Rebuilt: identical datasets, whatever arrived since.
		b.load(t, 1000, 30)
		second := b.run(t, flywheel.CreateJobRequest{Manifest: m})
		require.Equal(t, flywheel.RunCompleted, second.Run.Status, second.Run.Error)
		require.Equal(t, "wl", second.Run.WorkloadID)
		m2, err := b.engine.GetManifest(ctx, second.Run.ID)
		require.NoError(t, err)
		require.Equal(t, first.Run.ID, m2.ReproducesRunID)
		require.Equal(t, m.Seed, m2.Seed)
		require.Equal(t, len(m.Datasets), len(m2.Datasets))
		for i := range m.Datasets {
			require.Equal(t, m.Datasets[i].Kind, m2.Datasets[i].Kind)
			require.Equal(t, m.Datasets[i].Hash, m2.Datasets[i].Hash, m.Datasets[i].Kind)
			require.Equal(t, m.Datasets[i].RecordIDs, m2.Datasets[i].RecordIDs, m.Datasets[i].Kind)
			require.Equal(t, m.Datasets[i].Examples, m2.Datasets[i].Examples, m.Datasets[i].Kind)
		}
		require.Equal(t, m.Leakage, m2.Leakage)
		require.Equal(t, first.Run.Stats.Eval, second.Run.Stats.Eval)

		// A request that contradicts its manifest is refused.
		_, err = b.engine.CreateJob(ctx, flywheel.CreateJobRequest{WorkloadID: "other", Manifest: m})
		require.ErrorContains(t, err, `workload_id "other" is not the manifest's "wl"`)
		var ferr *flywheel.Error
		require.ErrorAs(t, err, &ferr)
		require.Equal(t, flywheel.EUNPROCESSABLE, ferr.Code)

		// The models and the judge are the server's: a manifest cannot
		// point a run at other endpoints.
		for _, tc := range []struct {
			name   string
			change func(*flywheel.RunSpec)
			want   string
		}{
			{"Endpoint", func(s *flywheel.RunSpec) { s.Candidates[0].Endpoint = "http://elsewhere.example/v1" },
				`candidate "local/tiny-s" differs from this server's configuration`},
			{"Unknown", func(s *flywheel.RunSpec) { s.Candidates[1].ModelName = "other/model" },
				`candidate "other/model" is not configured on this server`},
			{"Judge", func(s *flywheel.RunSpec) { s.Judge.URL = "http://elsewhere.example/v1" },
				"llm_judge_config differs from this server's configuration"},
		} {
			bad := *m
			bad.Config.Candidates = append([]flywheel.NIMConfig(nil), m.Config.Candidates...)
			tc.change(&bad.Config)
			_, err := b.engine.CreateJob(ctx, flywheel.CreateJobRequest{Manifest: &bad})
			require.ErrorContains(t, err, tc.want, tc.name)
			require.ErrorAs(t, err, &ferr)
			require.Equal(t, flywheel.EUNPROCESSABLE, ferr.Code, tc.name)
		}

		// Records deleted since: the run fails and names them.
		gone := m.Dataset(flywheel.ManifestTrain).RecordIDs[:2]
		for _, id := range gone {
			_, err := b.store.DB().ExecContext(ctx, fmt.Sprintf(`DELETE FROM log_records WHERE id = %d`, id))
			require.NoError(t, err)
		}
		third := b.run(t, flywheel.CreateJobRequest{Manifest: m})
		require.Equal(t, flywheel.RunFailed, third.Run.Status)
		require.Contains(t, third.Run.Error, "Error creating datasets: 2 records of the manifest are no longer stored")
		require.Contains(t, third.Run.Error, fmt.Sprintf("ids %d, %d", gone[0], gone[1]))
	})
}
