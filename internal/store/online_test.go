package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

// TestOnlineScores: scored online samples are stored, read back per series
// newest first within a window, listed as series, and expired.
func TestOnlineScores(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := storetest.Open(t, d)
			base := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
			var samples []flywheel.OnlineScore
			for i := range 250 { // more than one INSERT's chunk
				samples = append(samples, flywheel.OnlineScore{PromotionID: "p1", WorkloadID: "w", ClientID: "c", Model: "small",
					At: base.Add(time.Duration(i) * time.Second), Scores: map[string]float64{flywheel.ScoreFunctionNameAndArgs: float64(i % 2)},
					ProductionLatencyMS: 100 + float64(i), CandidateLatencyMS: 50.5})
			}
			samples = append(samples,
				flywheel.OnlineScore{PromotionID: "p0", WorkloadID: "w", ClientID: "c", Model: "older", At: base.Add(-time.Hour),
					Error: "candidate: 503", Scores: map[string]float64{flywheel.ScoreFunctionNameAndArgs: 0}},
				flywheel.OnlineScore{PromotionID: "p2", WorkloadID: "w", ClientID: "other", Model: "small", At: base.Add(-2 * time.Hour)},
				flywheel.OnlineScore{PromotionID: "p3", WorkloadID: "x", ClientID: "c", Model: "small", At: base})
			require.NoError(t, s.InsertOnlineScores(ctx, samples))
			// A sample stored late (a slow shadow answer) is not its series' newest.
			require.NoError(t, s.InsertOnlineScores(ctx, []flywheel.OnlineScore{{PromotionID: "p1", WorkloadID: "w", ClientID: "c",
				Model: "small", At: base.Add(-10 * time.Minute)}}))

			got, err := s.ListOnlineScores(ctx, flywheel.OnlineQuery{WorkloadID: "w", ClientID: "c", Model: "small", PromotionID: "p1",
				Since: base.Add(200 * time.Second), Limit: 30})
			require.NoError(t, err)
			require.Len(t, got, 30)
			require.Equal(t, base.Add(249*time.Second), got[0].At)
			require.Equal(t, base.Add(220*time.Second), got[29].At)
			require.Equal(t, map[string]float64{flywheel.ScoreFunctionNameAndArgs: 1}, got[0].Scores)
			require.InDelta(t, 349, got[0].ProductionLatencyMS, 1e-9)
			require.InDelta(t, 50.5, got[0].CandidateLatencyMS, 1e-9)

			got, err = s.ListOnlineScores(ctx, flywheel.OnlineQuery{WorkloadID: "w", ClientID: "c", Model: "small", PromotionID: "p1",
				Since: base.Add(200 * time.Second)})
			require.NoError(t, err)
			require.Len(t, got, 50, "the window's start bounds the samples")

			older, err := s.ListOnlineScores(ctx, flywheel.OnlineQuery{WorkloadID: "w", ClientID: "c", Model: "older", PromotionID: "p0"})
			require.NoError(t, err)
			require.Len(t, older, 1)
			require.Equal(t, "candidate: 503", older[0].Error)

			series, err := s.ListOnlineSeries(ctx, "w", "c", base.Add(-24*time.Hour), 0)
			require.NoError(t, err)
			require.Equal(t, []flywheel.OnlineSeries{
				{WorkloadID: "w", ClientID: "c", Model: "small", PromotionID: "p1", Last: base.Add(249 * time.Second)},
				{WorkloadID: "w", ClientID: "c", Model: "older", PromotionID: "p0", Last: base.Add(-time.Hour)},
			}, series)
			series, err = s.ListOnlineSeries(ctx, "w", "", base.Add(-90*time.Minute), 0)
			require.NoError(t, err)
			require.Len(t, series, 2, "the other client's series is older than since")
			series, err = s.ListOnlineSeries(ctx, "", "", time.Time{}, 0)
			require.NoError(t, err)
			require.Len(t, series, 4)

			n, err := s.ExpireOnlineScores(ctx, base)
			require.NoError(t, err)
			require.EqualValues(t, 3, n)
			series, err = s.ListOnlineSeries(ctx, "", "", time.Time{}, 0)
			require.NoError(t, err)
			require.Len(t, series, 2)
		})
	}
}
