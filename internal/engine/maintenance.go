package engine

import (
	"context"
	"errors"

	"time"

	"github.com/riverqueue/river"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/stage"
)

// DeleteArgs are the arguments of a job deletion.
type DeleteArgs struct {
	RunID string `json:"run_id"`
}

// Kind implements river.JobArgs.
func (DeleteArgs) Kind() string { return "flywheel_delete" }

type deleteWorker struct {
	river.WorkerDefaults[DeleteArgs]
	e *Engine
}

func (w *deleteWorker) Timeout(*river.Job[DeleteArgs]) time.Duration { return 10 * time.Minute }

// Work releases every remote resource of the run (artifacts included),
// removes its files (datasets) and deletes its rows. Resources that could
// not be released stay in the ledger as release_failed; the reaper retries
// them.
func (w *deleteWorker) Work(ctx context.Context, job *river.Job[DeleteArgs]) error {
	e := w.e
	defer e.hold(job.ID)()
	log := e.logger.With("run_id", job.Args.RunID, "stage", "delete")
	before := e.footprint(ctx, job.Args.RunID)
	if err := e.runner.DeleteRunResources(ctx, job.Args.RunID); err != nil {
		log.WarnContext(ctx, "Some resources could not be released; kept for retry", "error", err)
	}
	if err := e.runner.DeleteRunFiles(job.Args.RunID); err != nil {
		log.WarnContext(ctx, "The run's files could not be removed; flywheel doctor --fix removes them", "error", err)
	}
	if err := e.store.DeleteRun(ctx, job.Args.RunID); err != nil {
		return err
	}
	e.reportDeletion(ctx, job.Args.RunID, before, e.footprint(ctx, job.Args.RunID))
	return nil
}

// ReaperArgs are the arguments of the periodic reaper.
type ReaperArgs struct{}

// Kind implements river.JobArgs.
func (ReaperArgs) Kind() string { return "flywheel_reaper" }

// InsertOpts puts the reaper on the cleanup queue, which always has room.
func (ReaperArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueCleanup, MaxAttempts: 1, UniqueOpts: river.UniqueOpts{ByPeriod: 5 * time.Second}}
}

type reaperWorker struct {
	river.WorkerDefaults[ReaperArgs]
	e *Engine
}

func (w *reaperWorker) Timeout(*river.Job[ReaperArgs]) time.Duration { return 5 * time.Minute }

// Work releases orphaned resources: live resources of finished or deleted
// runs (a crash between a stage and its cleanup, a failed release).
func (w *reaperWorker) Work(ctx context.Context, _ *river.Job[ReaperArgs]) error {
	n, err := w.e.Reap(ctx)
	if n > 0 || err != nil {
		w.e.logger.InfoContext(ctx, "Reaper released orphaned resources", "released", n, "error", err)
	}
	return nil
}

// Reap releases the resources of finished or deleted runs that are still
// live, and returns how many it released.
func (e *Engine) Reap(ctx context.Context) (int, error) {
	orphans, err := e.store.OrphanedResources(ctx)
	if err != nil {
		return 0, err
	}
	var (
		errs     []error
		released int
	)
	for _, r := range orphans {
		run, err := e.store.GetRun(ctx, r.RunID)
		deleted := errors.Is(err, flywheel.ErrNotFound)
		if err != nil && !deleted {
			errs = append(errs, err)
			continue
		}
		// Artifacts (datasets, models) of a finished run stay until the job is deleted.
		if !deleted && run != nil && stage.IsArtifact(r.Kind) {
			continue
		}
		if err := e.runner.Release(ctx, r); err != nil {
			errs = append(errs, err)
			continue
		}
		released++
	}
	e.metrics.reaped(released)
	return released, errors.Join(errs...)
}
