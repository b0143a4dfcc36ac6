package engine

import (
	"context"
	"fmt"
	"time"

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
	// JobAge is, for a job handed back, how long it had been running
	// (since it was fetched) when found.
	JobAge time.Duration `json:"-"`
}

// Finding kinds.
const (
	FindingStuckRun     = "stuck_run"
	FindingOrphan       = "orphaned_resource"
	FindingInconsistent = "inconsistent_run"
)

// Doctor checks the database for work nobody is doing and runs that cannot
// make progress (see Liveness: stranded jobs, jobs of dead processes, stages
// whose job ended without them, runs with no stage left to run), resources
// left live by finished or deleted runs, and finished runs with unfinished
// candidates or stages. With fix, it repairs them, the liveness findings
// with the same code as the periodic liveness check.
func (e *Engine) Doctor(ctx context.Context, fix bool) ([]Finding, error) {
	out, err := e.Liveness(ctx, fix)
	if err != nil {
		return out, err
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
	folders, err := e.orphanRunFolders(ctx, fix)
	return append(out, folders...), err
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

func candidateSuffix(c string) string {
	if c == "" {
		return ""
	}
	return " of candidate " + c
}
