package history_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/eval"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/history"
	"github.com/flywheel-go/flywheel/internal/history/historytest"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

var start = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)

type testBundle struct {
	store *store.Store
	svc   *history.Service
	fx    historytest.Fixture
}

func setup(t *testing.T, d store.Dialect) *testBundle {
	t.Helper()
	s := storetest.Open(t, d)
	return &testBundle{store: s, svc: &history.Service{Store: s}, fx: historytest.Seed(t, s, start)}
}

func TestWorkloadHistory(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := setup(t, d)
			// An unfinished run of the same workload is not in the history.
			require.NoError(t, b.store.CreateRun(ctx, &flywheel.Run{ID: store.NewID(start), WorkloadID: historytest.Workload,
				ClientID: historytest.Client, Status: flywheel.RunRunning, StartedAt: start.Add(3 * time.Hour)}))

			ws, err := b.svc.ListWorkloads(ctx)
			require.NoError(t, err)
			require.Len(t, ws, 1)
			require.Equal(t, historytest.Workload, ws[0].WorkloadID)
			require.Equal(t, historytest.Client, ws[0].ClientID)
			require.Equal(t, 4, ws[0].Runs)
			require.Equal(t, 3, ws[0].Finished)
			require.Equal(t, flywheel.RunRunning, ws[0].LastRun.Status)

			h, err := b.svc.WorkloadHistory(ctx, flywheel.HistoryFilter{WorkloadID: historytest.Workload})
			require.NoError(t, err)
			require.Equal(t, []string{historytest.Metric}, h.Metrics)
			require.Len(t, h.Runs, 3)
			require.Equal(t, []string{b.fx.A, b.fx.B, b.fx.C}, []string{h.Runs[0].Run.ID, h.Runs[1].Run.ID, h.Runs[2].Run.ID}, "oldest first")
			require.Len(t, h.Runs[1].Scores, 2)
			base := h.Runs[1].Scores[0]
			require.Equal(t, flywheel.EvalBase, base.EvalType)
			require.Equal(t, historytest.Candidate, base.Candidate)
			require.Equal(t, 42, base.Items)
			det := base.Scores[historytest.Metric]
			require.Equal(t, 42, det.N)
			require.InDelta(t, 36.0/42, det.Mean, 1e-12)
			require.Less(t, det.CILow, det.Mean)
			require.Greater(t, det.CIHigh, det.Mean)
			require.Equal(t, flywheel.EvalCustomized, h.Runs[1].Scores[1].EvalType)
			require.Equal(t, flywheel.EvalCustomized, h.Runs[1].Run.Recommendation.EvalType)
			require.Equal(t, 42, h.Runs[1].Run.Stats.Eval)

			h, err = b.svc.WorkloadHistory(ctx, flywheel.HistoryFilter{WorkloadID: historytest.Workload, ClientID: historytest.Client, Limit: 2})
			require.NoError(t, err)
			require.Len(t, h.Runs, 2)
			require.Equal(t, b.fx.B, h.Runs[0].Run.ID, "the newest two, oldest first")

			_, err = b.svc.WorkloadHistory(ctx, flywheel.HistoryFilter{WorkloadID: "nope"})
			require.Equal(t, flywheel.ENOTFOUND, flywheel.ErrorCode(err))
			_, err = b.svc.WorkloadHistory(ctx, flywheel.HistoryFilter{WorkloadID: historytest.Workload, ClientID: "other"})
			require.Equal(t, flywheel.ENOTFOUND, flywheel.ErrorCode(err))
		})
	}
}

func TestCompareJobs(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := setup(t, d)

			c, err := b.svc.CompareJobs(ctx, b.fx.A, b.fx.B)
			require.NoError(t, err)
			require.Equal(t, historytest.Shared, c.SharedItems)
			require.Equal(t, historytest.Ambiguous, c.AmbiguousItems)
			require.Equal(t, map[string]int{"lookup": 42}, c.ToolsA)
			require.Equal(t, "no candidate → m1 (customized-eval)", c.RecommendationChange)
			require.Len(t, c.Scores, 2)

			base := c.Scores[0]
			require.Equal(t, flywheel.EvalBase, base.EvalType)
			require.Equal(t, historytest.Metric, base.Metric)
			require.InDelta(t, 0.5, base.A.Mean, 1e-12)
			require.InDelta(t, 36.0/42, base.B.Mean, 1e-12)
			require.InDelta(t, 36.0/42-0.5, *base.Difference, 1e-12)
			require.Equal(t, historytest.Shared, base.SharedItems)
			require.NotNil(t, base.Paired)
			require.Equal(t, historytest.Shared, base.Paired.N)
			require.InDelta(t, 1.0/3, base.Paired.MeanA, 1e-12, "A on the shared items: ref-10…ref-19 of 30")
			require.InDelta(t, 1.0, base.Paired.MeanB, 1e-12)
			require.InDelta(t, historytest.PairedMean, base.Paired.Diff.Mean, 1e-12)
			// The same numbers as describing the per-item differences directly.
			diffs := make([]float64, 0, 30)
			for i := 10; i < 40; i++ {
				a := 0.0
				if i < 20 {
					a = 1
				}
				diffs = append(diffs, 1-a)
			}
			want := eval.Describe(diffs, eval.Bootstrap{})
			require.Equal(t, want, base.Paired.Diff)
			require.Positive(t, base.Paired.Diff.CILow)
			require.Equal(t, flywheel.VerdictBetter, base.Paired.Verdict)

			cust := c.Scores[1]
			require.Equal(t, flywheel.EvalCustomized, cust.EvalType)
			require.Nil(t, cust.A, "A has no customized evaluation")
			require.NotNil(t, cust.B)
			require.Nil(t, cust.Difference)
			require.Nil(t, cust.Paired)

			// Reversed, the paired difference changes sign.
			r, err := b.svc.CompareJobs(ctx, b.fx.B, b.fx.A)
			require.NoError(t, err)
			require.InDelta(t, -historytest.PairedMean, r.Scores[0].Paired.Diff.Mean, 1e-12)
			require.Equal(t, flywheel.VerdictWorse, r.Scores[0].Paired.Verdict)

			// Nothing shared: said, and no paired test.
			n, err := b.svc.CompareJobs(ctx, b.fx.A, b.fx.C)
			require.NoError(t, err)
			require.Zero(t, n.SharedItems)
			require.Nil(t, n.Scores[0].Paired)
			require.NotNil(t, n.Scores[0].Difference)
			require.Contains(t, n.Notes, "The runs share no evaluation item: the differences are between independent samples, not paired.")
			require.Equal(t, "unchanged: no candidate", n.RecommendationChange)

			for _, tc := range []struct {
				name, a, b, code, field string
			}{
				{"MissingA", "", b.fx.B, flywheel.EUNPROCESSABLE, "a"},
				{"MalformedB", b.fx.A, "xyz", flywheel.EUNPROCESSABLE, "b"},
				{"MalformedBUnknownA", store.NewID(start), "xyz", flywheel.EUNPROCESSABLE, "b"},
				{"UnknownB", b.fx.A, store.NewID(start), flywheel.ENOTFOUND, ""},
			} {
				_, err := b.svc.CompareJobs(ctx, tc.a, tc.b)
				require.Equal(t, tc.code, flywheel.ErrorCode(err), tc.name)
				if tc.field != "" {
					var fe *flywheel.Error
					require.ErrorAs(t, err, &fe)
					require.Equal(t, []string{"query", tc.field}, fe.Fields[0].Loc, tc.name)
				}
			}
		})
	}
}
