package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

func newRun(t *testing.T, q *store.Queries, at time.Time, workload string) *flywheel.Run {
	t.Helper()
	r := &flywheel.Run{ID: store.NewID(at), WorkloadID: workload, ClientID: "c1", Status: flywheel.RunPending, StartedAt: at,
		Datasets: []flywheel.Dataset{}, Spec: flywheel.RunSpec{Namespace: "dfwbp"}}
	require.NoError(t, q.CreateRun(context.Background(), r))
	return r
}

// TestConformance runs the same suite on every supported database.
func TestConformance(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			t.Parallel()
			s := storetest.Open(t, d)
			ctx := context.Background()

			t.Run("MigrateIsIdempotent", func(t *testing.T) {
				applied, err := s.Migrate(ctx)
				require.NoError(t, err)
				require.Empty(t, applied)
			})

			t.Run("RunsRoundTripAndPaginate", func(t *testing.T) {
				base := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
				var ids []string
				for i := range 5 {
					r := newRun(t, s.Queries, base.Add(time.Duration(i)*time.Second), fmt.Sprintf("wl-page-%d", i%2))
					ids = append(ids, r.ID)
				}
				got, err := s.GetRun(ctx, ids[0])
				require.NoError(t, err)
				require.Equal(t, base, got.StartedAt)
				require.Equal(t, "dfwbp", got.Spec.Namespace)
				require.Nil(t, got.FinishedAt)

				page, err := s.ListRuns(ctx, flywheel.JobFilter{Limit: 2})
				require.NoError(t, err)
				require.Len(t, page.Runs, 2)
				require.Equal(t, ids[4], page.Runs[0].ID)
				require.NotEmpty(t, page.NextCursor)
				var seen []string
				for _, r := range page.Runs {
					seen = append(seen, r.ID)
				}
				for page.NextCursor != "" {
					page, err = s.ListRuns(ctx, flywheel.JobFilter{Limit: 2, Cursor: page.NextCursor})
					require.NoError(t, err)
					for _, r := range page.Runs {
						seen = append(seen, r.ID)
					}
				}
				require.Equal(t, []string{ids[4], ids[3], ids[2], ids[1], ids[0]}, seen[:5])

				// Oldest first, the blueprint's order, pages the other way.
				seen = nil
				page = flywheel.JobPage{}
				for first := true; first || page.NextCursor != ""; first = false {
					page, err = s.ListRuns(ctx, flywheel.JobFilter{Limit: 2, Cursor: page.NextCursor, OldestFirst: true})
					require.NoError(t, err)
					require.LessOrEqual(t, len(page.Runs), 2)
					for _, r := range page.Runs {
						seen = append(seen, r.ID)
					}
				}
				require.Equal(t, ids, seen)

				filtered, err := s.ListRuns(ctx, flywheel.JobFilter{WorkloadID: "wl-page-1"})
				require.NoError(t, err)
				require.Len(t, filtered.Runs, 2)

				_, err = s.ListRuns(ctx, flywheel.JobFilter{Cursor: "garbage"})
				require.Equal(t, flywheel.EINVALID, flywheel.ErrorCode(err))
			})

			t.Run("FirstTerminalOutcomeWins", func(t *testing.T) {
				r := newRun(t, s.Queries, time.Now(), "wl-term")
				ok, err := s.FinishRun(ctx, r.ID, flywheel.RunCancelled, "Job cancelled by user")
				require.NoError(t, err)
				require.True(t, ok)
				ok, err = s.FinishRun(ctx, r.ID, flywheel.RunCompleted, "")
				require.NoError(t, err)
				require.False(t, ok)
				got, err := s.GetRun(ctx, r.ID)
				require.NoError(t, err)
				require.Equal(t, flywheel.RunCancelled, got.Status)
				require.Equal(t, "Job cancelled by user", got.Error)
				require.NotNil(t, got.FinishedAt)
			})

			t.Run("IdempotencyKeyIsUnique", func(t *testing.T) {
				now := time.Now()
				r := &flywheel.Run{ID: store.NewID(now), WorkloadID: "w", ClientID: "c", Status: flywheel.RunPending, StartedAt: now, IdempotencyKey: "k-1"}
				require.NoError(t, s.CreateRun(ctx, r))
				r2 := *r
				r2.ID = store.NewID(now)
				require.ErrorIs(t, s.CreateRun(ctx, &r2), store.ErrDuplicateKey)
				got, err := s.GetRunByIdempotencyKey(ctx, "k-1")
				require.NoError(t, err)
				require.Equal(t, r.ID, got.ID)
			})

			t.Run("DatasetsTable", func(t *testing.T) {
				r := newRun(t, s.Queries, time.Now(), "wl-ds")
				uri := "hf://datasets/dfwbp/flywheel-eval-wl-ds-1"
				res := flywheel.BuildResult{WorkloadType: flywheel.WorkloadToolCalling, NumRecords: 9, Stats: flywheel.DataStats{Total: 10, Selected: 9},
					Datasets: []flywheel.Dataset{
						{Name: "flywheel-eval-wl-ds-1", NumRecords: 2, Type: flywheel.DatasetBase, Path: "/d/eval", NMPURI: &uri},
						{Name: "flywheel-train-wl-ds-1", NumRecords: 7, Type: flywheel.DatasetTrain, Path: "/d/train"},
					}}
				require.NoError(t, s.SetRunDatasets(ctx, r.ID, res))
				require.NoError(t, s.SetRunDatasets(ctx, r.ID, res), "a re-run replaces them")
				got, err := s.GetRun(ctx, r.ID)
				require.NoError(t, err)
				require.Equal(t, res.Datasets, got.Datasets)
				require.Equal(t, 9, got.NumRecords)
				require.Equal(t, flywheel.WorkloadToolCalling, got.WorkloadType)
				page, err := s.ListRuns(ctx, flywheel.JobFilter{WorkloadID: "wl-ds"})
				require.NoError(t, err)
				require.Equal(t, res.Datasets, page.Runs[0].Datasets)
			})

			t.Run("NotFound", func(t *testing.T) {
				_, err := s.GetRun(ctx, store.NewID(time.Now()))
				require.ErrorIs(t, err, flywheel.ErrNotFound)
			})

			t.Run("CandidatesEvaluationsCustomizations", func(t *testing.T) {
				r := newRun(t, s.Queries, time.Now(), "wl-nim")
				n := &flywheel.NIMRun{ID: store.NewID(time.Now()), RunID: r.ID, ModelName: "m/a", Status: flywheel.NIMPending, DeploymentStatus: flywheel.DeploymentPending}
				require.NoError(t, s.CreateNIM(ctx, n))
				require.NoError(t, s.SetNIMStatus(ctx, n.ID, flywheel.NIMDeploying, flywheel.DeploymentCreated))
				e1, err := s.UpsertEvaluation(ctx, n.ID, flywheel.EvalBase)
				require.NoError(t, err)
				e2, err := s.UpsertEvaluation(ctx, n.ID, flywheel.EvalBase)
				require.NoError(t, err)
				require.Equal(t, e1.ID, e2.ID, "a re-run finds the evaluation it created")
				res := &flywheel.EvalResult{Scores: map[string]float64{flywheel.ScoreFunctionName: 0.75},
					Details: map[string]flywheel.ScoreDetail{flywheel.ScoreFunctionName: {N: 4, Mean: 0.75, CILow: 0.25, CIHigh: 1}},
					Summary: flywheel.EvalSummary{Items: 4, Answered: 4, LatencyN: 4, LatencyP50MS: new(12.0)}}
				require.NoError(t, s.FinishEvaluation(ctx, e1.ID, res, ""))
				items := []flywheel.ItemResult{
					{Index: 0, Tool: "get_weather", Scores: map[string]float64{"function_name": 1}, Prediction: json.RawMessage(`{"a":1}`)},
					{Index: 1, Tool: "get_time", Scores: map[string]float64{"function_name": 0}, ErrorClass: "wrong_name"},
				}
				require.NoError(t, s.ReplaceItems(ctx, e1.ID, items))
				require.NoError(t, s.ReplaceItems(ctx, e1.ID, items), "replacing items is idempotent")
				page, err := s.ListItems(ctx, flywheel.ItemFilter{EvaluationID: e1.ID, OnlyDivergent: true})
				require.NoError(t, err)
				require.Equal(t, 1, page.Total)
				require.Equal(t, "wrong_name", page.Items[0].ErrorClass)

				c, err := s.UpsertCustomization(ctx, n.ID, "wl-nim", "m/a")
				require.NoError(t, err)
				require.NoError(t, s.UpdateCustomization(ctx, c.ID, flywheel.CustomizationJob{ID: "cust-1", Progress: 50, EpochsCompleted: 1,
					StepsCompleted: 10, Losses: []float64{2.5, 1.5}, OutputModel: "ns/customized-m-a@cust-1"}, "http://nemo/v1/customization/jobs/cust-1"))
				got, _, err := s.GetCustomization(ctx, n.ID)
				require.NoError(t, err)
				require.Equal(t, "cust-1", got.JobID)
				require.Equal(t, []float64{2.5, 1.5}, got.Losses)
				require.Equal(t, "ns/customized-m-a@cust-1", *got.CustomizedModel)

				require.NoError(t, s.FinishNIM(ctx, n.ID, flywheel.NIMFailed, flywheel.DeploymentFailed, "boom"))
				require.NoError(t, s.FinishNIM(ctx, n.ID, flywheel.NIMCompleted, flywheel.DeploymentCompleted, ""))
				nims, err := s.ListNIMs(ctx, r.ID)
				require.NoError(t, err)
				require.Len(t, nims, 1)
				require.Equal(t, flywheel.NIMFailed, nims[0].Status)
				require.Equal(t, "boom", nims[0].Error)

				require.NoError(t, s.DeleteRun(ctx, r.ID))
				_, err = s.GetEvaluation(ctx, e1.ID)
				require.ErrorIs(t, err, flywheel.ErrNotFound)
			})

			t.Run("StagesStateMachine", func(t *testing.T) {
				r := newRun(t, s.Queries, time.Now(), "wl-stage")
				require.NoError(t, s.InsertStages(ctx, []flywheel.Stage{
					{RunID: r.ID, Name: flywheel.StageInitialize, Status: flywheel.StagePending, Position: 0},
					{RunID: r.ID, Name: flywheel.StageCreateDatasets, Status: flywheel.StagePending, Position: 1,
						Deps: []flywheel.StageDep{{Name: flywheel.StageInitialize, Hard: true}}},
				}))
				ok, err := s.QueueStage(ctx, r.ID, "", flywheel.StageInitialize, 7)
				require.NoError(t, err)
				require.True(t, ok)
				ok, err = s.QueueStage(ctx, r.ID, "", flywheel.StageInitialize, 8)
				require.NoError(t, err)
				require.False(t, ok, "a stage is queued once")
				st, ok, err := s.BeginStageAttempt(ctx, r.ID, "", flywheel.StageInitialize, 1)
				require.NoError(t, err)
				require.True(t, ok)
				require.Equal(t, 1, st.Attempts)
				first := *st.StartedAt
				st, _, err = s.BeginStageAttempt(ctx, r.ID, "", flywheel.StageInitialize, 2)
				require.NoError(t, err)
				require.Equal(t, 2, st.Attempts)
				require.Equal(t, first, *st.StartedAt, "the durable start time survives attempts")
				ok, err = s.FinishStage(ctx, r.ID, "", flywheel.StageInitialize, flywheel.StageSucceeded, "", json.RawMessage(`{"x":1}`))
				require.NoError(t, err)
				require.True(t, ok)
				_, ok, err = s.BeginStageAttempt(ctx, r.ID, "", flywheel.StageInitialize, 3)
				require.NoError(t, err)
				require.False(t, ok, "a finished stage does not run again")
				stages, err := s.ListStages(ctx, r.ID)
				require.NoError(t, err)
				require.Equal(t, flywheel.StageSucceeded, stages[0].Status)
				require.JSONEq(t, `{"x":1}`, string(stages[0].Output))
				require.Equal(t, []flywheel.StageDep{{Name: flywheel.StageInitialize, Hard: true}}, stages[1].Deps)

				_, err = s.QueueStage(ctx, r.ID, "", flywheel.StageCreateDatasets, 9)
				require.NoError(t, err)
				ids, err := s.CancelOpenStages(ctx, r.ID)
				require.NoError(t, err)
				require.Equal(t, []int64{9}, ids)
			})

			t.Run("ResourceLedger", func(t *testing.T) {
				r := newRun(t, s.Queries, time.Now(), "wl-res")
				res := &flywheel.Resource{RunID: r.ID, Kind: flywheel.ResourceDeployment, Platform: "test", RemoteID: "dep-1", Key: r.ID + "/m"}
				require.NoError(t, s.RecordResource(ctx, res))
				require.NotZero(t, res.ID)
				again := &flywheel.Resource{RunID: r.ID, Kind: flywheel.ResourceDeployment, Platform: "test", RemoteID: "dep-1", Key: r.ID + "/m"}
				require.NoError(t, s.RecordResource(ctx, again))
				require.Equal(t, res.ID, again.ID, "one entry per kind and key")
				orphans, err := s.OrphanedResources(ctx)
				require.NoError(t, err)
				for _, o := range orphans {
					require.NotEqual(t, res.ID, o.ID, "a running run's resources are not orphans")
				}
				_, err = s.FinishRun(ctx, r.ID, flywheel.RunFailed, "x")
				require.NoError(t, err)
				orphans, err = s.OrphanedResources(ctx)
				require.NoError(t, err)
				require.Contains(t, resourceIDs(orphans), res.ID)
				require.NoError(t, s.MarkResourceReleased(ctx, res.ID))
				live, err := s.ListResources(ctx, r.ID, flywheel.ResourceLive)
				require.NoError(t, err)
				require.Empty(t, live)
			})

			t.Run("LogsDedupAndNewestFirst", func(t *testing.T) {
				base := time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)
				var recs []flywheel.LogRecord
				for i := range 1200 {
					recs = append(recs, flywheel.LogRecord{WorkloadID: "wl-logs", ClientID: "c", Timestamp: base.Add(time.Duration(i) * time.Minute),
						Request:  json.RawMessage(fmt.Sprintf(`{"messages":[{"role":"user","content":"q%d"}]}`, i)),
						Response: json.RawMessage(`{"choices":[]}`)})
				}
				in, dup, err := s.InsertLogs(ctx, recs)
				require.NoError(t, err)
				require.Equal(t, 1200, in)
				require.Zero(t, dup)
				in, dup, err = s.InsertLogs(ctx, recs[:10])
				require.NoError(t, err)
				require.Zero(t, in)
				require.Equal(t, 10, dup)
				newest, err := s.NewestRecords(ctx, "wl-logs", "c", 3)
				require.NoError(t, err)
				require.Len(t, newest, 3)
				require.Equal(t, base.Add(1199*time.Minute), newest[0].Timestamp)
				require.JSONEq(t, `{"messages":[{"role":"user","content":"q1199"}]}`, string(newest[0].Request))
				n, err := s.CountLogs(ctx, "wl-logs", "c")
				require.NoError(t, err)
				require.Equal(t, 1200, n)
			})
		})
	}
}

func resourceIDs(rs []flywheel.Resource) []int64 {
	var out []int64
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func TestParseURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url     string
		dialect store.Dialect
		dsn     string
		wantErr bool
	}{
		{url: "sqlite:/var/lib/fw.db", dialect: store.SQLite, dsn: "/var/lib/fw.db"},
		{url: "sqlite://rel.db", dialect: store.SQLite, dsn: "rel.db"},
		{url: "postgres://u@h/db", dialect: store.Postgres, dsn: "postgres://u@h/db"},
		{url: "postgresql://u@h/db", dialect: store.Postgres, dsn: "postgresql://u@h/db"},
		{url: "mysql://x", wantErr: true},
	} {
		d, dsn, err := store.ParseURL(tc.url)
		if tc.wantErr {
			require.Error(t, err, tc.url)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, tc.dialect, d)
		require.Equal(t, tc.dsn, dsn)
	}
}
