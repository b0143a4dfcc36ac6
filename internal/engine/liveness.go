package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/riverqueue/river"

	"github.com/flywheel-go/flywheel/internal/dag"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/stage"
	"github.com/flywheel-go/flywheel/internal/store"
)

// Liveness finding kinds (doctor reports them too).
const (
	// FindingStrandedJob is a job River shows running for a live process
	// that does not hold it: the process never received it (a fetch lost
	// in a database stall).
	FindingStrandedJob = "stranded_job"
	// FindingDeadWorkerJob is a job running in a process that stopped
	// sending heartbeats (killed, or its machine lost).
	FindingDeadWorkerJob = "dead_worker_job"
	// FindingEndedJob is a queued or running stage whose job ended or is
	// gone without the stage ending (cancelled in River's UI, discarded
	// after a failed completion, deleted).
	FindingEndedJob = "stage_job_ended"
)

// minStrandedAfter is the least StrandedAfter may be: River gives up a
// fetch after 10 s, so a job fetched for a process may reach it up to then.
const minStrandedAfter = 12 * time.Second

// LivenessArgs are the arguments of the periodic liveness check.
type LivenessArgs struct{}

// Kind implements river.JobArgs.
func (LivenessArgs) Kind() string { return "flywheel_liveness" }

// InsertOpts puts the check on its own queue, which long stages never fill.
func (LivenessArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueMaintenance, MaxAttempts: 1, UniqueOpts: river.UniqueOpts{ByPeriod: time.Second}}
}

type livenessWorker struct {
	river.WorkerDefaults[LivenessArgs]
	e *Engine
}

func (w *livenessWorker) Timeout(*river.Job[LivenessArgs]) time.Duration { return time.Minute }

// Work runs the liveness check and repairs what it finds.
func (w *livenessWorker) Work(ctx context.Context, _ *river.Job[LivenessArgs]) error {
	findings, err := w.e.Liveness(ctx, true)
	for _, f := range findings {
		lvl := w.e.logger.WarnContext
		if f.FixError != "" {
			lvl = w.e.logger.ErrorContext
		}
		lvl(ctx, "Liveness check repaired a stage", "kind", f.Kind, "run_id", f.RunID, "detail", f.Detail,
			"fixed", f.Fixed, "fix_error", f.FixError, "job_age", f.JobAge)
	}
	if err != nil {
		w.e.logger.WarnContext(ctx, "Liveness check failed", "error", err)
	}
	return nil
}

// hold records that this process works on a job, until the returned
// function is called. A released job stays in the heartbeat's held set for
// StrandedAfter, while River records its completion.
func (e *Engine) hold(jobID int64) func() {
	e.mu.Lock()
	e.held[jobID] = time.Time{}
	e.mu.Unlock()
	return func() {
		e.mu.Lock()
		e.held[jobID] = e.now()
		e.mu.Unlock()
	}
}

// heldJobs returns the jobs this process holds or released within
// StrandedAfter, and forgets older ones.
func (e *Engine) heldJobs() []int64 {
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]int64, 0, len(e.held))
	for id, released := range e.held {
		if !released.IsZero() && now.Sub(released) > e.opts.StrandedAfter {
			delete(e.held, id)
			continue
		}
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

func (e *Engine) holds(jobID int64) bool {
	return slices.Contains(e.heldJobs(), jobID)
}

// Liveness finds work nobody is doing and, with fix, repairs it:
//   - a job River shows running for a live process whose heartbeat, taken
//     StrandedAfter after the job was fetched, does not list it (a fetch
//     lost in a database stall) is handed back, and the attempt River
//     counted for it given back;
//   - a job running in a process with no heartbeat for DeadAfter is handed
//     back;
//   - a queued or running stage whose job ended or is gone is finished:
//     failed when the job was cancelled or discarded outside the engine
//     (the message says which), enqueued again when the job completed
//     without it or disappeared; the DAG then goes on, or the run ends;
//   - an unfinished run with no stage queued or running gets its ready
//     stages enqueued, or, with none left to run, is failed.
//
// The periodic check (leader only) and doctor call it; it is safe to run
// concurrently with itself, every repair being guarded.
func (e *Engine) Liveness(ctx context.Context, fix bool) ([]Finding, error) {
	var out []Finding
	held, err := e.strandedJobs(ctx, fix)
	out = append(out, held...)
	if err != nil {
		return out, err
	}
	ended, err := e.store.StagesWithEndedJobs(ctx)
	if err != nil {
		return out, err
	}
	for _, s := range ended {
		out = append(out, e.endedJobStage(ctx, s, fix))
	}
	ids, err := e.store.RunsWithoutOpenStages(ctx)
	if err != nil {
		return out, err
	}
	for _, id := range ids {
		if f, ok := e.runWithoutOpenStages(ctx, id, fix); ok {
			out = append(out, f)
		}
	}
	return out, nil
}

func (e *Engine) strandedJobs(ctx context.Context, fix bool) ([]Finding, error) {
	holds, err := e.store.WorkerHolds(ctx)
	if err != nil {
		return nil, err
	}
	jobs, err := e.store.RunningJobs(ctx, StageArgs{}.Kind(), DeleteArgs{}.Kind())
	if err != nil {
		return nil, err
	}
	byID := make(map[string]store.WorkerHold, len(holds))
	for _, w := range holds {
		byID[w.ID] = w
	}
	now := e.now()
	var out []Finding
	for _, j := range jobs {
		fetched := now.Add(-j.Age)
		var f Finding
		switch w, ok := byID[j.Owner]; {
		case j.Owner == e.opts.ProcessID && e.opts.Workers > 0:
			// This process: what it holds is known exactly.
			if j.Age <= e.opts.StrandedAfter || e.holds(j.ID) {
				continue
			}
			f = Finding{Kind: FindingStrandedJob, Detail: fmt.Sprintf("job %d (%s) is running for this process %s, which does not hold it (fetched %s ago)",
				j.ID, j.Kind, j.Owner, j.Age.Round(time.Second))}
		case !ok || now.Sub(w.HeartbeatAt) > e.opts.DeadAfter:
			if j.Age <= e.opts.DeadAfter {
				continue
			}
			last := "no heartbeat on record"
			if ok {
				last = fmt.Sprintf("last heartbeat %s ago", now.Sub(w.HeartbeatAt).Round(time.Second))
			}
			f = Finding{Kind: FindingDeadWorkerJob, Detail: fmt.Sprintf("job %d (%s) is running in process %s, which is gone (%s; dead after %s)",
				j.ID, j.Kind, j.Owner, last, e.opts.DeadAfter)}
		case !w.HeldAt.IsZero() && w.HeldAt.Sub(fetched) > e.opts.StrandedAfter && !slices.Contains(w.Held, j.ID):
			f = Finding{Kind: FindingStrandedJob, Detail: fmt.Sprintf("job %d (%s) is running for live process %s, which does not hold it (fetched %s ago; its heartbeat %s after the fetch lists %d other jobs)",
				j.ID, j.Kind, j.Owner, j.Age.Round(time.Second), w.HeldAt.Sub(fetched).Round(time.Second), len(w.Held))}
		default:
			continue
		}
		f.RunID, f.JobAge = e.runOfJob(ctx, j.ID), j.Age
		if fix {
			ok, err := e.store.HandBackJob(ctx, j.ID, j.AttemptedAt, f.Kind == FindingStrandedJob)
			switch {
			case err != nil:
				f.FixError = err.Error()
			case !ok:
				f.FixError = "the job changed meanwhile; nothing to do"
			default:
				f.Fixed = true
				f.Detail += "; handed back"
				e.metrics.liveness(f.Kind)
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// runOfJob names the run of a stage job, for findings ("" when unknown).
func (e *Engine) runOfJob(ctx context.Context, id int64) string {
	job, err := e.client.JobGet(ctx, id)
	if err != nil {
		return ""
	}
	var a StageArgs
	if err := json.Unmarshal(job.EncodedArgs, &a); err != nil {
		return ""
	}
	return a.RunID
}

// endedJobStage finishes a stage whose job ended without it.
func (e *Engine) endedJobStage(ctx context.Context, s store.EndedJobStage, fix bool) Finding {
	name := flywheel.StageName(s.Name)
	what := fmt.Sprintf("stage %s%s is %s but its job %d ", name, candidateSuffix(s.Candidate), s.Status, s.JobID)
	var msg string
	switch s.JobState {
	case "":
		what += "is gone"
	case "completed":
		what += "completed without recording the stage's outcome"
	case "cancelled":
		msg = fmt.Sprintf("stage job %d was cancelled outside Flywheel (River UI or River API)", s.JobID)
		what += "was cancelled outside Flywheel"
	case "discarded":
		msg = fmt.Sprintf("stage job %d was discarded by River after %d attempts", s.JobID, s.Attempt)
		if s.LastError != "" {
			msg += ": " + s.LastError
		}
		what += fmt.Sprintf("was discarded after %d attempts", s.Attempt)
	}
	f := Finding{Kind: FindingEndedJob, RunID: s.RunID, Detail: what}
	if !fix {
		return f
	}
	var err error
	if msg != "" {
		err = e.failStage(ctx, s.RunID, s.Candidate, name, s.JobID, msg)
		f.Detail += "; stage failed"
	} else {
		err = e.requeueStage(ctx, s.RunID, s.Candidate, name, s.JobID)
		f.Detail += "; stage enqueued again"
	}
	if err != nil {
		f.FixError = err.Error()
	} else {
		f.Fixed = true
		e.metrics.liveness(f.Kind)
	}
	return f
}

// failStage ends a stage whose job ended outside the engine as failed, the
// way a failing attempt does: the failure is recorded where it happened,
// and the DAG goes on (or the run fails, for a run-level stage).
func (e *Engine) failStage(ctx context.Context, runID, candidate string, name flywheel.StageName, jobID int64, msg string) error {
	run, err := e.store.GetRun(ctx, runID)
	if err != nil {
		return err
	}
	st, err := e.store.GetStage(ctx, runID, candidate, name)
	if err != nil {
		return err
	}
	if st.Status.Done() || st.JobID != jobID {
		return nil // finished or enqueued again meanwhile
	}
	if run.FinishedAt == nil {
		call := stage.Call{Run: run, Stage: st}
		if candidate != "" {
			if call.NIM, err = e.store.GetNIM(ctx, candidate); err != nil {
				return err
			}
		}
		if err := e.runner.OnFailure(ctx, call, msg); err != nil {
			return fmt.Errorf("record failure of %s: %w", name, err)
		}
	}
	e.logger.ErrorContext(ctx, "Stage failed", "run_id", runID, "candidate", candidate, "stage", string(name), "error", msg)
	e.metrics.outcomes.WithLabelValues(string(name), "failed").Inc()
	return e.store.InTx(ctx, func(q *store.Queries) error {
		if owned, err := stageOwnedBy(ctx, q, runID, candidate, name, jobID); err != nil || !owned {
			return err
		}
		if _, err := q.FinishStage(ctx, runID, candidate, name, flywheel.StageFailed, msg, nil); err != nil {
			return err
		}
		if dag.RunLevel(name) {
			return e.endRunTx(ctx, q, runID, flywheel.RunFailed, stage.RunErrorMessage(name, msg), jobID)
		}
		return e.advance(ctx, q, runID)
	})
}

// stageOwnedBy locks the run and reports whether its stage is still the
// one job jobID runs: not done, and not enqueued again meanwhile.
func stageOwnedBy(ctx context.Context, q *store.Queries, runID, candidate string, name flywheel.StageName, jobID int64) (bool, error) {
	if err := q.LockRun(ctx, runID); err != nil {
		return false, err
	}
	cur, err := q.GetStage(ctx, runID, candidate, name)
	if err != nil {
		return false, err
	}
	return !cur.Status.Done() && cur.JobID == jobID, nil
}

// requeueStage enqueues again a stage whose job completed without it or
// disappeared (stages are idempotent). A stage of a run that ended meanwhile
// is cancelled instead, except the run's cleanup.
func (e *Engine) requeueStage(ctx context.Context, runID, candidate string, name flywheel.StageName, jobID int64) error {
	return e.store.InTx(ctx, func(q *store.Queries) error {
		if owned, err := stageOwnedBy(ctx, q, runID, candidate, name, jobID); err != nil || !owned {
			return err
		}
		run, err := q.GetRun(ctx, runID)
		if err != nil {
			return err
		}
		if run.FinishedAt != nil && name != flywheel.StageCleanup {
			_, err := q.FinishStage(ctx, runID, candidate, name, flywheel.StageCancelled, "run "+string(run.Status), nil)
			return err
		}
		if err := q.ResetStage(ctx, runID, candidate, name); err != nil {
			return err
		}
		return e.enqueue(ctx, q, runID, candidate, name)
	})
}

// runWithoutOpenStages repairs an unfinished run none of whose stages is
// queued or running. It reports false when the run changed meanwhile.
func (e *Engine) runWithoutOpenStages(ctx context.Context, id string, fix bool) (Finding, bool) {
	stages, err := e.store.ListStages(ctx, id)
	if err != nil || anyQueued(stages) {
		return Finding{}, false
	}
	f := Finding{Kind: FindingStuckRun, RunID: id, Detail: "run is not finished but has no stage left to run"}
	if anyPending(stages) {
		f.Detail = "run has pending stages but no stage job queued or running"
	}
	if !fix {
		return f, true
	}
	err = e.store.InTx(ctx, func(q *store.Queries) error {
		if err := q.LockRun(ctx, id); err != nil {
			return err
		}
		run, err := q.GetRun(ctx, id)
		if err != nil {
			return err
		}
		if run.FinishedAt != nil {
			return nil
		}
		if err := e.advance(ctx, q, id); err != nil {
			return err
		}
		after, err := q.ListStages(ctx, id)
		if err != nil {
			return err
		}
		if anyQueued(after) {
			f.Detail += "; ready stages enqueued"
			return nil
		}
		f.Detail += "; run failed"
		return e.endRunTx(ctx, q, id, flywheel.RunFailed, "run was stuck with no stage left to run; closed by the liveness check", 0)
	})
	if err != nil {
		f.FixError = err.Error()
		return f, true
	}
	f.Fixed = true
	e.metrics.liveness(f.Kind)
	return f, true
}
