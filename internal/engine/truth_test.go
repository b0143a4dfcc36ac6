package engine_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/store"
)

// TestRacingCancels cancels one run from 20 goroutines at once: exactly
// one answer says the cancellation was initiated, every other one that it
// was already cancelled.
func TestRacingCancels(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d store.Dialect) {
		b := setup(t, d, setupOpts{mutate: func(b *testBundle) { b.evaluator.Block = true }})
		run := b.create(t)
		ctx := context.Background()
		const n = 20
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			msgs  = make(chan string, n)
			errs  = make(chan error, n)
		)
		for range n {
			wg.Go(func() {
				<-start
				msg, err := b.engine.CancelJob(ctx, run.ID)
				if err != nil {
					errs <- err
					return
				}
				msgs <- msg
			})
		}
		close(start)
		wg.Wait()
		close(msgs)
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		counts := map[string]int{}
		for m := range msgs {
			counts[m]++
		}
		require.Equal(t, map[string]int{
			"Job cancellation initiated successfully.": 1,
			"Job is already cancelled.":                n - 1,
		}, counts)
		require.Equal(t, flywheel.RunCancelled, b.wait(t, run.ID).Run.Status)
	})
}

// TestIdempotencyKeyWithAnotherRequest reuses a key with another body: the
// answer is a conflict naming the key; the same body (however spelled)
// still returns the first run.
func TestIdempotencyKeyWithAnotherRequest(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d store.Dialect) {
		b := setup(t, d, setupOpts{})
		ctx := context.Background()
		size := 5
		req := flywheel.CreateJobRequest{WorkloadID: "w", ClientID: "c", IdempotencyKey: "order-42"}
		first, err := b.engine.CreateJob(ctx, req)
		require.NoError(t, err)

		same := req
		same.DataSplitConfig = &flywheel.DataSplitOverride{} // no override, spelled {}
		again, err := b.engine.CreateJob(ctx, same)
		require.NoError(t, err)
		require.Equal(t, first.ID, again.ID)

		for _, other := range []flywheel.CreateJobRequest{
			{WorkloadID: "w2", ClientID: "c", IdempotencyKey: "order-42"},
			{WorkloadID: "w", ClientID: "c2", IdempotencyKey: "order-42"},
			{WorkloadID: "w", ClientID: "c", IdempotencyKey: "order-42", DataSplitConfig: &flywheel.DataSplitOverride{EvalSize: &size}},
		} {
			_, err := b.engine.CreateJob(ctx, other)
			require.Equal(t, flywheel.ECONFLICT, flywheel.ErrorCode(err), "%v", err)
			require.Contains(t, flywheel.ErrorMessage(err), `Idempotency-Key "order-42" was already used with a different request`)
			require.Contains(t, flywheel.ErrorMessage(err), first.ID)
		}
		page, err := b.engine.ListJobs(ctx, flywheel.JobFilter{})
		require.NoError(t, err)
		require.Len(t, page.Runs, 1)
		b.wait(t, first.ID)
	})
}

// TestDatabaseDownIsUnavailable closes the store under the engine: the
// API's calls answer EUNAVAILABLE (503), not internal errors.
func TestDatabaseDownIsUnavailable(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d store.Dialect) {
		b := setup(t, d, setupOpts{mutate: func(b *testBundle) { b.evaluator.Block = true }})
		run := b.create(t)
		ctx := context.Background()
		require.NoError(t, b.store.Close())
		_, err := b.engine.CreateJob(ctx, flywheel.CreateJobRequest{WorkloadID: "w", ClientID: "c"})
		require.Equal(t, flywheel.EUNAVAILABLE, flywheel.ErrorCode(err), "%v", err)
		_, err = b.engine.ListJobs(ctx, flywheel.JobFilter{})
		require.Equal(t, flywheel.EUNAVAILABLE, flywheel.ErrorCode(err), "%v", err)
		_, err = b.engine.GetJob(ctx, run.ID)
		require.Equal(t, flywheel.EUNAVAILABLE, flywheel.ErrorCode(err), "%v", err)
		_, err = b.engine.CancelJob(ctx, run.ID)
		require.Equal(t, flywheel.EUNAVAILABLE, flywheel.ErrorCode(err), "%v", err)
		require.Equal(t, flywheel.EUNAVAILABLE, flywheel.ErrorCode(b.engine.Ready(ctx)))
	})
}
