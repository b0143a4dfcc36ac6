package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/stage"
	"github.com/flywheel-go/flywheel/internal/store"
)

// Finding is one problem doctor found.
type Finding struct {
	Kind   string `json:"kind"`
	RunID  string `json:"run_id,omitempty"`
	Detail string `json:"detail"`
	Fixed  bool   `json:"fixed"`
	// FixError says why a repair failed.
	FixError string `json:"fix_error,omitempty"`
}

// Finding kinds.
const (
	FindingStuckRun     = "stuck_run"
	FindingOrphan       = "orphaned_resource"
	FindingInconsistent = "inconsistent_run"
)

// Doctor checks the database for runs that cannot make progress (running,
// but with no live stage job), resources left live by finished or deleted
// runs, and finished runs with unfinished candidates or stages. With fix, it
// repairs them: stuck stages are enqueued again, orphans released, and
// inconsistent rows settled.
func (e *Engine) Doctor(ctx context.Context, fix bool) ([]Finding, error) {
	var out []Finding
	ids, err := e.store.RunIDs(ctx, flywheel.RunPending, flywheel.RunRunning)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		f, err := e.checkRun(ctx, id, fix)
		if err != nil {
			return out, err
		}
		out = append(out, f...)
	}

	orphans, err := e.store.OrphanedResources(ctx)
	if err != nil {
		return out, err
	}
	for _, r := range orphans {
		if stage.IsArtifact(r.Kind) {
			if _, err := e.store.GetRun(ctx, r.RunID); err == nil {
				continue // artifacts of a finished run stay until it is deleted
			}
		}
		f := Finding{Kind: FindingOrphan, RunID: r.RunID, Detail: fmt.Sprintf("%s %s on %s is %s", r.Kind, r.RemoteID, r.Platform, r.State)}
		if r.Error != "" {
			f.Detail += " (last release error: " + r.Error + ")"
		}
		if fix {
			if err := e.runner.Release(ctx, r); err != nil {
				f.FixError = err.Error()
			} else {
				f.Fixed = true
			}
		}
		out = append(out, f)
	}

	bad, err := e.store.InconsistentRuns(ctx)
	if err != nil {
		return out, err
	}
	for _, id := range bad {
		run, err := e.store.GetRun(ctx, id)
		if err != nil {
			return out, err
		}
		f := Finding{Kind: FindingInconsistent, RunID: id,
			Detail: fmt.Sprintf("run is %s but has unfinished candidates or stages", run.Status)}
		if fix {
			err := e.store.InTx(ctx, func(q *store.Queries) error {
				status, msg := flywheel.NIMFailed, "Flywheel run "+string(run.Status)
				if run.Status == flywheel.RunCancelled {
					status, msg = flywheel.NIMCancelled, "Flywheel run cancelled"
				}
				if err := q.FinishOpenNIMs(ctx, id, status, msg); err != nil {
					return err
				}
				return e.cancelOpenStagesTx(ctx, q, id, 0)
			})
			f.Fixed = err == nil
			if err != nil {
				f.FixError = err.Error()
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// checkRun finds the stages of an unfinished run whose jobs are gone.
func (e *Engine) checkRun(ctx context.Context, id string, fix bool) ([]Finding, error) {
	stages, err := e.store.ListStages(ctx, id)
	if err != nil {
		return nil, err
	}
	var stale []flywheel.Stage
	live := 0
	for _, s := range stages {
		if s.Status != flywheel.StageQueued && s.Status != flywheel.StageRunning {
			continue
		}
		job, err := e.client.JobGet(ctx, s.JobID)
		switch {
		case errors.Is(err, river.ErrNotFound):
			stale = append(stale, s)
		case err != nil:
			return nil, err
		case job.State == rivertype.JobStateCompleted || job.State == rivertype.JobStateCancelled || job.State == rivertype.JobStateDiscarded:
			stale = append(stale, s)
		default:
			live++
		}
	}
	if len(stale) == 0 {
		if live > 0 {
			return nil, nil
		}
		if anyPending(stages) {
			f := Finding{Kind: FindingStuckRun, RunID: id, Detail: "run has pending stages but no stage job queued or running"}
			if fix {
				err := e.store.InTx(ctx, func(q *store.Queries) error { return e.advance(ctx, q, id) })
				if err == nil {
					after, err2 := e.store.ListStages(ctx, id)
					if err2 == nil && anyQueued(after) {
						f.Fixed = true
						return []Finding{f}, nil
					}
				}
				return []Finding{e.closeStuck(ctx, id, fix)}, nil
			}
			return []Finding{f}, nil
		}
		return []Finding{e.closeStuck(ctx, id, fix)}, nil
	}
	f := Finding{Kind: FindingStuckRun, RunID: id}
	for _, s := range stale {
		f.Detail += fmt.Sprintf("stage %s%s is %s but its job %d is gone or finished; ", s.Name, candidateSuffix(s.Candidate), s.Status, s.JobID)
	}
	if fix {
		err := e.store.InTx(ctx, func(q *store.Queries) error {
			for _, s := range stale {
				if err := q.ResetStage(ctx, id, s.Candidate, s.Name); err != nil {
					return err
				}
			}
			return e.advance(ctx, q, id)
		})
		f.Fixed = err == nil
		if err != nil {
			f.FixError = err.Error()
		}
	}
	return []Finding{f}, nil
}

func anyPending(stages []flywheel.Stage) bool {
	for _, s := range stages {
		if s.Status == flywheel.StagePending {
			return true
		}
	}
	return false
}

func anyQueued(stages []flywheel.Stage) bool {
	for _, s := range stages {
		if s.Status == flywheel.StageQueued || s.Status == flywheel.StageRunning {
			return true
		}
	}
	return false
}

// closeStuck handles a run with no open and no pending stage that never
// finished: nothing will ever finish it, so it is failed.
func (e *Engine) closeStuck(ctx context.Context, id string, fix bool) Finding {
	f := Finding{Kind: FindingStuckRun, RunID: id, Detail: "run is not finished but has no stage left to run"}
	if fix {
		err := e.store.InTx(ctx, func(q *store.Queries) error {
			return e.endRunTx(ctx, q, id, flywheel.RunFailed, "run was stuck with no stage left to run; closed by flywheel doctor", 0)
		})
		f.Fixed = err == nil
		if err != nil {
			f.FixError = err.Error()
		}
	}
	return f
}

func candidateSuffix(c string) string {
	if c == "" {
		return ""
	}
	return " of candidate " + c
}
