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
