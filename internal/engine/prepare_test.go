package engine_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/store"
)

// A platform that prepares its models (the local platform pre-training a
// base on first use) shows the preparation's progress on the spin-up
// stage, and a cancel stops the preparation: nothing is deployed.
func TestModelPreparationShowsProgressAndCancels(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d store.Dialect) {
		stopped := make(chan error, 1)
		b := setup(t, d, setupOpts{candidates: twoCandidates()[:1], mutate: func(b *testBundle) {
			b.platform.Prepare = func(ctx context.Context, m flywheel.NIMConfig, progress func(float64)) error {
				progress(12.5)
				progress(40.7)
				<-ctx.Done()
				stopped <- ctx.Err()
				return ctx.Err()
			}
		}})
		run := b.create(t)
		ctx := context.Background()
		require.Eventually(t, func() bool {
			dt, err := b.engine.GetJob(ctx, run.ID)
			require.NoError(t, err)
			for _, s := range dt.Stages {
				if s.Name == flywheel.StageSpinUpNIM && s.Status == flywheel.StageRunning && s.Progress == 40 {
					return true
				}
			}
			return false
		}, 10*time.Second, 10*time.Millisecond, "the stage shows the preparation's progress in whole percents")

		_, err := b.engine.CancelJob(ctx, run.ID)
		require.NoError(t, err)
		select {
		case err := <-stopped:
			require.ErrorIs(t, err, context.Canceled)
		case <-time.After(5 * time.Second):
			t.Fatal("the cancel did not stop the preparation")
		}
		detail := b.wait(t, run.ID)
		require.Equal(t, flywheel.RunCancelled, detail.Run.Status)
		require.Empty(t, b.platform.Creations(), "nothing was deployed")
	})
}

// A failed preparation fails the candidate with the platform's reason.
func TestModelPreparationFailure(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d store.Dialect) {
		b := setup(t, d, setupOpts{candidates: twoCandidates()[:1], mutate: func(b *testBundle) {
			b.platform.Prepare = func(ctx context.Context, m flywheel.NIMConfig, progress func(float64)) error {
				return flywheel.Permanent(errTrainerMissing)
			}
		}})
		run := b.create(t)
		detail := b.wait(t, run.ID)
		require.Equal(t, flywheel.StageFailed, stageStatus(detail, detail.NIMs[0].ID, flywheel.StageSpinUpNIM))
		var msg string
		for _, s := range detail.Stages {
			if s.Name == flywheel.StageSpinUpNIM {
				msg = s.Error
			}
		}
		require.Contains(t, msg, "prepare meta/llama-3.2-1b-instruct: trainer missing")
	})
}

var errTrainerMissing = errors.New("trainer missing")
