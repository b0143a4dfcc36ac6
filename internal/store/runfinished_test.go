package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

// TestRunFinished checks the stage transition's light read of a run's end
// against GetRun on both databases: open, finished and absent runs.
func TestRunFinished(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			s := storetest.Open(t, d)
			r := newRun(t, s.Queries, time.Now().UTC(), "w")
			done, err := s.RunFinished(ctx, r.ID)
			require.NoError(t, err)
			require.False(t, done)

			ok, err := s.FinishRun(ctx, r.ID, flywheel.RunFailed, "boom")
			require.NoError(t, err)
			require.True(t, ok)
			done, err = s.RunFinished(ctx, r.ID)
			require.NoError(t, err)
			require.True(t, done)
			got, err := s.GetRun(ctx, r.ID)
			require.NoError(t, err)
			require.NotNil(t, got.FinishedAt, "RunFinished agrees with GetRun")

			_, err = s.RunFinished(ctx, "no-such-run")
			require.ErrorIs(t, err, flywheel.ErrNotFound)
		})
	}
}

// TestBeginStageAttemptReturnsStoredRow checks that the stage row the
// update returns is the one stored (times included) on both databases, and
// that a done stage is reported as such with its row.
func TestBeginStageAttemptReturnsStoredRow(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			s := storetest.Open(t, d)
			r := newRun(t, s.Queries, time.Now().UTC(), "w")
			require.NoError(t, s.InsertStages(ctx, []flywheel.Stage{{RunID: r.ID, Candidate: "n1", Name: flywheel.StageInitialize,
				Status: flywheel.StagePending, Deps: []flywheel.StageDep{}}}))
			got, open, err := s.BeginStageAttempt(ctx, r.ID, "n1", flywheel.StageInitialize, 2)
			require.NoError(t, err)
			require.True(t, open)
			require.Equal(t, flywheel.StageRunning, got.Status)
			require.Equal(t, 2, got.Attempts)
			require.NotNil(t, got.StartedAt)
			stored, err := s.GetStage(ctx, r.ID, "n1", flywheel.StageInitialize)
			require.NoError(t, err)
			require.Equal(t, stored, got)

			_, err = s.FinishStage(ctx, r.ID, "n1", flywheel.StageInitialize, flywheel.StageSucceeded, "", nil)
			require.NoError(t, err)
			got, open, err = s.BeginStageAttempt(ctx, r.ID, "n1", flywheel.StageInitialize, 3)
			require.NoError(t, err)
			require.False(t, open)
			require.Equal(t, flywheel.StageSucceeded, got.Status)
			require.Equal(t, 2, got.Attempts, "a done stage's attempts are left alone")
		})
	}
}
