package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/flywheel-go/flywheel/internal/dag"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/stage"
	"github.com/flywheel-go/flywheel/internal/store"
)

// StageArgs are the arguments of a stage job.
type StageArgs struct {
	RunID     string             `json:"run_id"`
	Candidate string             `json:"candidate,omitempty"`
	Stage     flywheel.StageName `json:"stage"`
}

// Kind implements river.JobArgs.
func (StageArgs) Kind() string { return "flywheel_stage" }

type stageWorker struct {
	river.WorkerDefaults[StageArgs]
	e *Engine
}

// Timeout is the hard limit of one attempt.
func (w *stageWorker) Timeout(job *river.Job[StageArgs]) time.Duration {
	return w.e.limit(job.Args.Stage).Hard
}

// NextRetry backs off exponentially with jitter.
func (w *stageWorker) NextRetry(job *river.Job[StageArgs]) time.Time {
	return w.e.now().Add(w.e.backoff(job.Attempt))
}

func (w *stageWorker) Work(ctx context.Context, job *river.Job[StageArgs]) error {
	return w.e.work(ctx, job)
}

func (e *Engine) work(ctx context.Context, job *river.Job[StageArgs]) error {
	a := job.Args
	log := e.logger.With("run_id", a.RunID, "candidate", a.Candidate, "stage", string(a.Stage), "attempt", job.Attempt)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer e.track(a.RunID, cancel)()
	defer e.hold(job.ID)()

	run, err := e.store.GetRun(ctx, a.RunID)
	if errors.Is(err, flywheel.ErrNotFound) {
		log.InfoContext(ctx, "Run deleted; dropping stage")
		return nil
	}
	if err != nil {
		return err
	}
	if run.FinishedAt != nil && a.Stage != flywheel.StageCleanup {
		// The run ended (cancelled or failed) after this job was enqueued.
		return e.complete(ctx, job, stage.Result{Status: flywheel.StageCancelled, Error: "run " + string(run.Status)})
	}
	st, open, err := e.store.BeginStageAttempt(ctx, a.RunID, a.Candidate, a.Stage, job.Attempt)
	if err != nil {
		return err
	}
	if !open {
		// Done already (a duplicate delivery): make sure successors exist.
		return e.complete(ctx, job, stage.Result{Status: st.Status})
	}
	call := stage.Call{Run: run, Stage: st}
	if a.Candidate != "" {
		if call.NIM, err = e.store.GetNIM(ctx, a.Candidate); err != nil {
			return err
		}
		log = log.With("model", call.NIM.ModelName)
	}

	limit := e.limit(a.Stage)
	started := e.now()
	if st.StartedAt != nil {
		started = *st.StartedAt
	}
	if elapsed := e.now().Sub(started); elapsed > limit.Hard {
		return e.fail(ctx, job, call, fmt.Sprintf("exceeded its time limit of %s", limit.Hard), log)
	}
	runCtx := ctx
	var stopSoft context.CancelFunc = func() {}
	if limit.Soft > 0 {
		runCtx, stopSoft = context.WithDeadline(ctx, started.Add(limit.Soft))
	}
	defer stopSoft()

	if job.Attempt == 1 {
		log.InfoContext(ctx, "Stage started")
	}
	res, err := e.runner.Run(runCtx, call)
	if err != nil {
		switch {
		case errors.Is(context.Cause(ctx), ErrLostContact):
			log.ErrorContext(ctx, "Stage stopped: this process lost contact with the database", "error", err)
			return fmt.Errorf("%w: %w", ErrLostContact, err)
		case errors.Is(context.Cause(ctx), ErrRunCancelled):
			log.InfoContext(ctx, "Stage stopped: run cancelled")
			e.metrics.outcome(a.Stage, "cancelled", e.now().Sub(started))
			return river.JobCancel(fmt.Errorf("run cancelled: %w", err))
		case errors.Is(context.Cause(ctx), river.ErrJobCancelledRemotely) || isRemoteCancel(ctx):
			return e.cancelledRemotely(ctx, job, started, err, log)
		case ctx.Err() != nil && !errors.Is(context.Cause(ctx), context.DeadlineExceeded):
			// This process is stopping: the stage is handed back without
			// counting the attempt (on the last one it would otherwise fail).
			log.InfoContext(ctx, "Stage interrupted: this process is stopping; handed back", "error", err)
			return river.JobSnooze(0)
		case ctx.Err() == nil && runCtx.Err() != nil:
			return e.fail(ctx, job, call, fmt.Sprintf("exceeded its soft time limit of %s: %v", limit.Soft, err), log)
		case errors.Is(err, flywheel.ErrPermanent):
			return e.fail(ctx, job, call, err.Error(), log)
		case job.Attempt >= job.MaxAttempts:
			return e.fail(ctx, job, call, fmt.Sprintf("%v (after %d attempts)", err, job.Attempt), log)
		}
		log.WarnContext(ctx, "Stage attempt failed; will retry", "error", err)
		e.metrics.retry(a.Stage)
		_ = e.store.SetStageNote(ctx, a.RunID, a.Candidate, a.Stage, fmt.Sprintf("attempt %d: %v", job.Attempt, err))
		return err
	}
	if res.Snooze > 0 {
		return river.JobSnooze(res.Snooze)
	}
	if res.Status == flywheel.StageFailed {
		return e.fail(ctx, job, call, res.Error, log)
	}
	log.InfoContext(ctx, "Stage finished", "status", string(res.Status), "duration_ms", e.now().Sub(started).Milliseconds())
	e.metrics.outcome(a.Stage, string(res.Status), e.now().Sub(started))
	return e.complete(ctx, job, res)
}

func isRemoteCancel(ctx context.Context) bool {
	var ce *river.JobCancelError
	return errors.As(context.Cause(ctx), &ce)
}

// fail ends a stage for good: the error is recorded where it happened and
// the DAG goes on (or, for a run-level stage, the run fails).
func (e *Engine) fail(ctx context.Context, job *river.Job[StageArgs], call stage.Call, msg string, log *slog.Logger) error {
	log.ErrorContext(ctx, "Stage failed", "error", msg)
	started := e.now()
	if call.Stage.StartedAt != nil {
		started = *call.Stage.StartedAt
	}
	e.metrics.outcome(job.Args.Stage, "failed", e.now().Sub(started))
	if err := e.runner.OnFailure(ctx, call, msg); err != nil {
		return fmt.Errorf("record failure of %s: %w", job.Args.Stage, err)
	}
	return e.complete(ctx, job, stage.Result{Status: flywheel.StageFailed, Error: msg})
}

// cancelledRemotely handles a stage whose job was cancelled through River:
// by a run's cancellation in another process, or outside Flywheel (River's
// UI or API). In the second case the stage fails here with a message that
// says so, and the DAG goes on, so the run never waits for it; should that
// fail, the liveness check finishes the stage the same way.
func (e *Engine) cancelledRemotely(ctx context.Context, job *river.Job[StageArgs], started time.Time, err error, log *slog.Logger) error {
	a := job.Args
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), completeTimeout)
	defer cancel()
	run, rerr := e.store.GetRun(dctx, a.RunID)
	if rerr == nil && run.FinishedAt == nil {
		msg := fmt.Sprintf("stage job %d was cancelled outside Flywheel (River UI or River API)", job.ID)
		if ferr := e.failStage(dctx, a.RunID, a.Candidate, a.Stage, job.ID, msg); ferr != nil {
			log.WarnContext(ctx, "Could not record a stage cancelled outside Flywheel; the liveness check will", "error", ferr)
		}
		return river.JobCancel(fmt.Errorf("%s: %w", msg, err))
	}
	log.InfoContext(ctx, "Stage stopped: run cancelled")
	e.metrics.outcome(a.Stage, "cancelled", e.now().Sub(started))
	return river.JobCancel(fmt.Errorf("run cancelled: %w", err))
}

// Completion retries: a stage's outcome is committed with up to
// completeAttempts tries, waiting completeBackoff, doubled each time, in
// between (about 3 s in all). Each try has completeTimeout.
const (
	completeAttempts = 5
	completeBackoff  = 200 * time.Millisecond
	completeTimeout  = 30 * time.Second
)

// complete commits a stage's outcome, the DAG's next stages and the job's
// completion in one transaction. A database error is retried a few times;
// if the outcome still cannot be committed, complete returns the error so
// that River retries the attempt (stages are idempotent): never is the job
// done while its stage is not. The commit does not depend on the stage's
// context: an outcome reached is committed even if the process is stopping
// (though not retried once that context has ended).
func (e *Engine) complete(ctx context.Context, job *river.Job[StageArgs], res stage.Result) error {
	wait := completeBackoff
	for try := 1; ; try++ {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), completeTimeout)
		err := e.completeOnce(cctx, job, res)
		cancel()
		if err == nil {
			return nil
		}
		if try >= completeAttempts || ctx.Err() != nil {
			e.metrics.retry(job.Args.Stage)
			return fmt.Errorf("commit outcome %s of stage %s (tried %d times): %w", res.Status, job.Args.Stage, try, err)
		}
		e.logger.WarnContext(ctx, "Committing a stage's outcome failed; retrying", "run_id", job.Args.RunID,
			"candidate", job.Args.Candidate, "stage", string(job.Args.Stage), "try", try, "error", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		wait *= 2
	}
}

func (e *Engine) completeOnce(ctx context.Context, job *river.Job[StageArgs], res stage.Result) error {
	a := job.Args
	return e.store.InTx(ctx, func(q *store.Queries) error {
		if err := q.LockRun(ctx, a.RunID); err != nil {
			return err
		}
		if _, err := q.FinishStage(ctx, a.RunID, a.Candidate, a.Stage, res.Status, res.Error, res.Output); err != nil {
			return err
		}
		if res.Status == flywheel.StageFailed && dag.RunLevel(a.Stage) {
			if err := e.endRunTx(ctx, q, a.RunID, flywheel.RunFailed, stage.RunErrorMessage(a.Stage, res.Error), job.ID); err != nil {
				return err
			}
		} else if err := e.advance(ctx, q, a.RunID); err != nil {
			return err
		}
		return e.completeTx(ctx, q.Tx(), job)
	})
}

// advance enqueues every stage of the run whose dependencies are done, and
// skips those a failed dependency rules out, until nothing changes. The
// stages that became ready are enqueued with one insert of their River jobs.
func (e *Engine) advance(ctx context.Context, q *store.Queries, runID string) error {
	finished, err := q.RunFinished(ctx, runID)
	if err != nil {
		return err
	}
	if finished {
		return nil
	}
	for range 100 {
		stages, err := q.ListStages(ctx, runID)
		if err != nil {
			return err
		}
		decisions := dag.Frontier(stages)
		if len(decisions) == 0 {
			return nil
		}
		skippedAny := false
		var ready []stageKey
		for _, d := range decisions {
			if d.Skip {
				if _, err := q.FinishStage(ctx, runID, d.Key.Candidate, d.Key.Name, flywheel.StageSkipped, d.Reason, nil); err != nil {
					return err
				}
				skippedAny = true
				continue
			}
			ready = append(ready, stageKey{candidate: d.Key.Candidate, name: d.Key.Name})
		}
		if err := e.enqueueMany(ctx, q, runID, ready); err != nil {
			return err
		}
		if !skippedAny {
			return nil
		}
	}
	return fmt.Errorf("advance run %s: the DAG did not settle", runID)
}

// stageKey names one stage of a run.
type stageKey struct {
	candidate string
	name      flywheel.StageName
}

func (e *Engine) enqueue(ctx context.Context, q *store.Queries, runID, candidate string, name flywheel.StageName) error {
	return e.enqueueMany(ctx, q, runID, []stageKey{{candidate: candidate, name: name}})
}

// enqueueMany inserts the River jobs of a run's stages in one statement and
// moves the stages to queued with their job ids.
func (e *Engine) enqueueMany(ctx context.Context, q *store.Queries, runID string, keys []stageKey) error {
	if len(keys) == 0 {
		return nil
	}
	params := make([]river.InsertManyParams, len(keys))
	for i, k := range keys {
		queue := QueueStages
		maxAttempts := e.opts.Retry.MaxAttempts
		if k.name == flywheel.StageCleanup {
			queue, maxAttempts = QueueCleanup, max(maxAttempts, 25)
		}
		params[i] = river.InsertManyParams{Args: StageArgs{RunID: runID, Candidate: k.candidate, Stage: k.name},
			InsertOpts: &river.InsertOpts{Queue: queue, MaxAttempts: maxAttempts, Tags: []string{"run-" + runID}}}
	}
	res, err := e.client.InsertManyTx(ctx, q.Tx(), params)
	if err != nil {
		return fmt.Errorf("enqueue %s: %w", keys[0].name, err)
	}
	// The jobs are matched to their stages by their arguments: River does
	// not promise to return them in the order given.
	ids := make(map[stageKey]int64, len(res))
	for _, r := range res {
		var a StageArgs
		if err := json.Unmarshal(r.Job.EncodedArgs, &a); err != nil {
			return fmt.Errorf("enqueue stages of run %s: job %d: %w", runID, r.Job.ID, err)
		}
		ids[stageKey{candidate: a.Candidate, name: a.Stage}] = r.Job.ID
	}
	for _, k := range keys {
		id, ok := ids[k]
		if !ok {
			return fmt.Errorf("enqueue stages of run %s: River returned no job for stage %s of %q", runID, k.name, k.candidate)
		}
		if _, err := q.QueueStage(ctx, runID, k.candidate, k.name, id); err != nil {
			return err
		}
	}
	return nil
}

// endRunTx ends a run early (cancelled, or failed by a run-level stage): the
// run and its open candidates end, open stages are cancelled along with
// their jobs (except the job calling, which is completing), and a cleanup
// stage is enqueued to release the run's resources.
func (e *Engine) endRunTx(ctx context.Context, q *store.Queries, runID string, status flywheel.RunStatus, msg string, except int64) error {
	if err := q.LockRun(ctx, runID); err != nil {
		return err
	}
	if _, err := q.FinishRun(ctx, runID, status, msg); err != nil {
		return err
	}
	nimStatus, nimMsg := flywheel.NIMCancelled, "Flywheel run cancelled"
	if status == flywheel.RunFailed {
		nimStatus, nimMsg = flywheel.NIMFailed, "Flywheel run failed: "+msg
	}
	if err := q.FinishOpenNIMs(ctx, runID, nimStatus, nimMsg); err != nil {
		return err
	}
	j, err := q.GetJudge(ctx, runID)
	if err != nil {
		return err
	}
	switch {
	case j == nil:
	case status == flywheel.RunCancelled:
		err = q.SetJudgeStatus(ctx, runID, flywheel.DeploymentCancelled, msg)
	case j.DeploymentStatus != flywheel.DeploymentReady:
		err = q.SetJudgeStatus(ctx, runID, flywheel.DeploymentFailed, msg)
	}
	if err != nil {
		return err
	}
	if err := e.cancelOpenStagesTx(ctx, q, runID, except); err != nil {
		return err
	}
	if _, err := q.GetStage(ctx, runID, "", flywheel.StageCleanup); err == nil {
		return nil
	}
	stages, err := q.ListStages(ctx, runID)
	if err != nil {
		return err
	}
	if err := q.InsertStages(ctx, []flywheel.Stage{{RunID: runID, Name: flywheel.StageCleanup, Status: flywheel.StagePending,
		Position: len(stages)}}); err != nil {
		return err
	}
	return e.enqueue(ctx, q, runID, "", flywheel.StageCleanup)
}

// cancelOpenStagesTx marks a run's unfinished stages cancelled and cancels
// their River jobs, except the job calling (which is completing).
func (e *Engine) cancelOpenStagesTx(ctx context.Context, q *store.Queries, runID string, except int64) error {
	jobIDs, err := q.CancelOpenStages(ctx, runID)
	if err != nil {
		return err
	}
	for _, id := range jobIDs {
		if id == except {
			continue
		}
		if _, err := e.client.JobCancelTx(ctx, q.Tx(), id); err != nil && !errors.Is(err, river.ErrNotFound) {
			return fmt.Errorf("cancel job %d: %w", id, err)
		}
	}
	return nil
}
