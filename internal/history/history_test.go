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
			require.Equal(t, flywheel.PairedByAnswer, c.PairedBy, "the fixture runs have no manifest")
			require.Contains(t, c.Notes, "Run "+b.fx.A+" has no manifest: items were matched by their production answer, not by their logged record.")
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

// Runs with manifests are paired by logged record, even where every
// production answer is the same (which pairing by answer cannot tell
// apart); a run without one falls back to the answers.
func TestCompareJobsByRecord(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := storetest.Open(t, d)
			items := func(from, n int, score func(int) float64) []historytest.Item {
				out := historytest.Items(from, n, score)
				for i := range out {
					out[i].Record, out[i].Ref = out[i].Ref, "the same answer"
				}
				return out
			}
			a := historytest.AddRun(t, s, historytest.RunSpec{Start: start, Manifest: true,
				Evals: []historytest.Eval{{Type: flywheel.EvalBase, Items: items(0, 40, func(i int) float64 { return b2f(i%4 == 0) })}}})
			b := historytest.AddRun(t, s, historytest.RunSpec{Start: start.Add(time.Hour), Manifest: true,
				Evals: []historytest.Eval{{Type: flywheel.EvalBase, Items: items(10, 40, func(int) float64 { return 1 })}}})
			noManifest := historytest.AddRun(t, s, historytest.RunSpec{Start: start.Add(2 * time.Hour),
				Evals: []historytest.Eval{{Type: flywheel.EvalBase, Items: items(10, 40, func(int) float64 { return 1 })}}})
			svc := &history.Service{Store: s}

			c, err := svc.CompareJobs(ctx, a, b)
			require.NoError(t, err)
			require.Equal(t, flywheel.PairedByRecord, c.PairedBy)
			require.Equal(t, 30, c.SharedItems, "records 10…39")
			require.Zero(t, c.AmbiguousItems)
			require.Empty(t, c.Notes)
			p := c.Scores[0].Paired
			require.Equal(t, 30, p.N)
			// A scores 1 on records 12, 16, …, 36 (7 of 30), B on all.
			require.InDelta(t, 7.0/30, p.MeanA, 1e-12)
			require.InDelta(t, 23.0/30, p.Diff.Mean, 1e-12)

			c, err = svc.CompareJobs(ctx, a, noManifest)
			require.NoError(t, err)
			require.Equal(t, flywheel.PairedByAnswer, c.PairedBy)
			require.Zero(t, c.SharedItems, "every answer is the same: nothing can be paired by answer")
			require.Equal(t, 1, c.AmbiguousItems)
			require.Nil(t, c.Scores[0].Paired)
			require.Contains(t, c.Notes, "Run "+noManifest+" has no manifest: items were matched by their production answer, not by their logged record.")
		})
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
