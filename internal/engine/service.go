package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"github.com/flywheel-go/flywheel/internal/dag"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/store"
)

// CreateJob records a pending run with its candidates and DAG and enqueues
// its first stage, in one transaction.
func (e *Engine) CreateJob(ctx context.Context, req flywheel.CreateJobRequest) (*flywheel.Run, error) {
	if req.Manifest != nil {
		if fields := manifestFields(&req, e.opts.Spec); len(fields) > 0 {
			return nil, &flywheel.Error{Code: flywheel.EUNPROCESSABLE, Message: fields[0].Msg, Fields: fields}
		}
	}
	if fields := validateRequest(req); len(fields) > 0 {
		return nil, &flywheel.Error{Code: flywheel.EUNPROCESSABLE, Message: fields[0].Msg, Fields: fields}
	}
	reqHash := requestHash(req)
	if req.IdempotencyKey != "" {
		if r, err := e.runForKey(ctx, req.IdempotencyKey, reqHash); err == nil {
			return r, nil
		} else if !errors.Is(err, flywheel.ErrNotFound) {
			return nil, err
		}
	}
	run, err := e.newRun(req)
	if err != nil {
		return nil, err
	}
	err = e.store.InTx(ctx, func(q *store.Queries) error { return e.insertRunTx(ctx, q, run, reqHash) })
	if errors.Is(err, store.ErrDuplicateKey) {
		return e.runForKey(ctx, req.IdempotencyKey, reqHash)
	}
	if err != nil {
		return nil, fmt.Errorf("create job: %w", err)
	}
	e.logger.InfoContext(ctx, "Job created", "run_id", run.ID, "workload_id", run.WorkloadID, "client_id", run.ClientID,
		"candidates", len(run.Spec.Candidates))
	return run, nil
}

// newRun returns a pending run of req on the engine's configuration,
// without touching the database.
func (e *Engine) newRun(req flywheel.CreateJobRequest) (*flywheel.Run, error) {
	now := e.now().UTC()
	spec := e.opts.Spec
	spec.DataSplit = req.DataSplitConfig.Merge(spec.DataSplit)
	if req.Manifest != nil {
		spec = manifestSpec(req.Manifest, e.opts.Spec)
	}
	if len(spec.Candidates) == 0 {
		return nil, flywheel.Errorf(flywheel.EINVALID, "No candidate models are configured (nims is empty)")
	}
	return &flywheel.Run{ID: store.NewID(now), WorkloadID: req.WorkloadID, ClientID: req.ClientID, Status: flywheel.RunPending,
		StartedAt: now, Datasets: []flywheel.Dataset{}, Spec: spec, IdempotencyKey: req.IdempotencyKey}, nil
}

// insertRunTx records run with its candidates and DAG and enqueues its
// first stage in q's transaction; reqHash is kept with an idempotency key.
func (e *Engine) insertRunTx(ctx context.Context, q *store.Queries, run *flywheel.Run, reqHash string) error {
	if err := q.CreateRun(ctx, run); err != nil {
		return err
	}
	if run.IdempotencyKey != "" {
		if err := q.SetIdempotencyHash(ctx, run.ID, reqHash); err != nil {
			return err
		}
	}
	var cands []dag.Candidate
	for i, c := range run.Spec.Candidates {
		n := &flywheel.NIMRun{ID: store.NewID(run.StartedAt), RunID: run.ID, ModelName: c.ModelName, Position: i,
			Status: flywheel.NIMPending, DeploymentStatus: flywheel.DeploymentPending}
		if err := q.CreateNIM(ctx, n); err != nil {
			return err
		}
		cands = append(cands, dag.Candidate{ID: n.ID, CustomizationEnabled: c.CustomizationEnabled})
	}
	stages := dag.Build(run.ID, cands, e.opts.DeploymentBudget)
	for i := range stages {
		stages[i].TimeLimitSeconds = e.limit(stages[i].Name).Hard.Seconds()
	}
	if err := q.InsertStages(ctx, stages); err != nil {
		return err
	}
	return e.advance(ctx, q, run.ID)
}

// runForKey returns the run created with an idempotency key, or ECONFLICT
// naming the key when that run was created by another request (hash).
func (e *Engine) runForKey(ctx context.Context, key, hash string) (*flywheel.Run, error) {
	r, err := e.store.GetRunByIdempotencyKey(ctx, key)
	if err != nil {
		return nil, err
	}
	stored, err := e.store.IdempotencyHash(ctx, key)
	if err != nil {
		return nil, err
	}
	if stored != "" && stored != hash {
		return nil, flywheel.Errorf(flywheel.ECONFLICT,
			"Idempotency-Key %q was already used with a different request (job %s); use a new key for a new request", key, r.ID)
	}
	return r, nil
}

// requestHash is a hash of what a create request asks for (ids and data
// split overrides, not their spelling in JSON).
func requestHash(req flywheel.CreateJobRequest) string {
	ds := req.DataSplitConfig
	if ds != nil && *ds == (flywheel.DataSplitOverride{}) {
		ds = nil // {} asks for nothing more than no override
	}
	b, _ := json.Marshal(struct {
		WorkloadID string                      `json:"workload_id"`
		ClientID   string                      `json:"client_id"`
		DataSplit  *flywheel.DataSplitOverride `json:"data_split_config"`
		Manifest   *flywheel.Manifest          `json:"manifest,omitempty"`
	}{req.WorkloadID, req.ClientID, ds, req.Manifest})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func validateRequest(req flywheel.CreateJobRequest) []flywheel.FieldError {
	var out []flywheel.FieldError
	missing := func(field string) {
		out = append(out, flywheel.FieldError{Loc: []string{"body", field}, Msg: "Field required", Type: "missing"})
	}
	if req.WorkloadID == "" {
		missing("workload_id")
	}
	if req.ClientID == "" {
		missing("client_id")
	}
	if o := req.DataSplitConfig; o != nil {
		bad := func(field, msg, typ string) {
			out = append(out, flywheel.FieldError{Loc: []string{"body", "data_split_config", field}, Msg: msg, Type: typ})
		}
		if o.ValRatio != nil && (*o.ValRatio < 0 || *o.ValRatio >= 1) {
			bad("val_ratio", "Input should be greater than or equal to 0 and less than 1", "value_error")
		}
		if o.EvalSize != nil && *o.EvalSize < 1 {
			bad("eval_size", "Input should be greater than or equal to 1", "greater_than_equal")
		}
		if o.MinTotalRecords != nil && *o.MinTotalRecords < 1 {
			bad("min_total_records", "Input should be greater than or equal to 1", "greater_than_equal")
		}
		if o.Limit != nil && *o.Limit < 1 {
			bad("limit", "Input should be greater than or equal to 1", "greater_than_equal")
		}
	}
	return out
}

// ListJobs returns runs, newest first.
func (e *Engine) ListJobs(ctx context.Context, f flywheel.JobFilter) (flywheel.JobPage, error) {
	if f.Status != "" && !f.Status.Valid() {
		return flywheel.JobPage{}, flywheel.Errorf(flywheel.EINVALID, "Invalid status %q", f.Status)
	}
	if f.Limit > 1000 {
		f.Limit = 1000
	}
	return e.store.ListRuns(ctx, f)
}

func (e *Engine) getRun(ctx context.Context, id string) (*flywheel.Run, error) {
	if !store.ValidID(id) {
		return nil, flywheel.Errorf(flywheel.EINVALID, "Invalid job_id format")
	}
	run, err := e.store.GetRun(ctx, id)
	if errors.Is(err, flywheel.ErrNotFound) {
		return nil, flywheel.Errorf(flywheel.ENOTFOUND, "Job with ID %s not found", id)
	}
	return run, err
}

// GetJob returns a run with its candidates, evaluations, customizations,
// judge and stages.
func (e *Engine) GetJob(ctx context.Context, id string) (*flywheel.JobDetail, error) {
	run, err := e.getRun(ctx, id)
	if err != nil {
		if flywheel.ErrorCode(err) == flywheel.ENOTFOUND {
			return nil, flywheel.Errorf(flywheel.ENOTFOUND, "Job not found")
		}
		return nil, err
	}
	d := &flywheel.JobDetail{Run: run, NIMs: []flywheel.NIMDetail{}}
	nims, err := e.store.ListNIMs(ctx, id)
	if err != nil {
		return nil, err
	}
	for _, n := range nims {
		evals, err := e.store.ListEvaluations(ctx, n.ID)
		if err != nil {
			return nil, err
		}
		custs, err := e.store.ListCustomizations(ctx, n.ID)
		if err != nil {
			return nil, err
		}
		d.NIMs = append(d.NIMs, flywheel.NIMDetail{NIMRun: *n, Evaluations: evals, Customizations: custs})
	}
	if d.Judge, err = e.store.GetJudge(ctx, id); err != nil {
		return nil, err
	}
	if d.Stages, err = e.store.ListStages(ctx, id); err != nil {
		return nil, err
	}
	return d, nil
}

// CancelJob cancels a run: in one transaction the run is marked cancelled,
// its queued and running stage jobs are cancelled and a cleanup stage is
// enqueued. Stages running in this process see their context cancelled at
// once; those in other processes through River within a fraction of a second.
func (e *Engine) CancelJob(ctx context.Context, id string) (string, error) {
	run, err := e.getRun(ctx, id)
	if err != nil {
		return "", err
	}
	if run.Status == flywheel.RunCancelled {
		return "Job is already cancelled.", nil
	}
	if run.FinishedAt != nil {
		return "", flywheel.Errorf(flywheel.EPRECONDITION, "Cannot cancel a job that has already finished.")
	}
	// Decide under the run's lock, in the transaction that flips the
	// status: of racing cancels exactly one initiates, the others see it.
	already := false
	err = e.store.InTx(ctx, func(q *store.Queries) error {
		if err := q.LockRun(ctx, id); err != nil {
			return err
		}
		cur, err := q.GetRun(ctx, id)
		if err != nil {
			return err
		}
		switch {
		case cur.Status == flywheel.RunCancelled:
			already = true
			return nil
		case cur.FinishedAt != nil:
			return flywheel.Errorf(flywheel.EPRECONDITION, "Cannot cancel a job that has already finished.")
		}
		return e.endRunTx(ctx, q, id, flywheel.RunCancelled, "Job cancelled by user", 0)
	})
	if err != nil {
		switch flywheel.ErrorCode(err) {
		case flywheel.EPRECONDITION, flywheel.EUNAVAILABLE:
			return "", err
		}
		return "", flywheel.Errorf(flywheel.EINTERNAL, "Failed to cancel job %s: %v", id, err)
	}
	if already {
		return "Job is already cancelled.", nil
	}
	n := e.cancelLocal(id)
	e.logger.InfoContext(ctx, "Job cancelled", "run_id", id, "local_stages_interrupted", n)
	return "Job cancellation initiated successfully.", nil
}

// DeleteJob deletes a finished run: its remote resources are released and
// its rows removed in the background.
func (e *Engine) DeleteJob(ctx context.Context, id string) (string, error) {
	run, err := e.getRun(ctx, id)
	if err != nil {
		return "", err
	}
	if run.FinishedAt == nil {
		return "", flywheel.Errorf(flywheel.EPRECONDITION, "Cannot delete a running job. Please cancel the job first.")
	}
	err = e.store.InTx(ctx, func(q *store.Queries) error {
		_, err := e.client.InsertTx(ctx, q.Tx(), DeleteArgs{RunID: id}, &river.InsertOpts{Queue: QueueCleanup, MaxAttempts: 10,
			Tags: []string{"run-" + id}, UniqueOpts: river.UniqueOpts{ByArgs: true}})
		return err
	})
	if err != nil {
		if flywheel.ErrorCode(err) == flywheel.EUNAVAILABLE {
			return "", err
		}
		return "", flywheel.Errorf(flywheel.EINTERNAL, "Failed to initiate job deletion for %s: %v", id, err)
	}
	return "Job deletion started. Resources will be cleaned up in the background.", nil
}

// ListItems returns per-item evaluation results.
func (e *Engine) ListItems(ctx context.Context, f flywheel.ItemFilter) (flywheel.ItemPage, error) {
	if !store.ValidID(f.EvaluationID) {
		return flywheel.ItemPage{}, flywheel.Errorf(flywheel.EINVALID, "Invalid evaluation id format")
	}
	if _, err := e.store.GetEvaluation(ctx, f.EvaluationID); err != nil {
		if errors.Is(err, flywheel.ErrNotFound) {
			return flywheel.ItemPage{}, flywheel.Errorf(flywheel.ENOTFOUND, "Evaluation not found")
		}
		return flywheel.ItemPage{}, err
	}
	if f.Limit > 1000 {
		f.Limit = 1000
	}
	return e.store.ListItems(ctx, f)
}

// Readiness probe settings: a write probe waits at most probeTimeout, and
// one that succeeded less than probeFresh ago counts.
const (
	probeTimeout = 2 * time.Second
	probeFresh   = 2 * time.Second
)

// Ready returns nil when the database answers, accepts a write (a full
// disk makes the process not ready until space returns) and some process
// runs stages.
func (e *Engine) Ready(ctx context.Context) error {
	if err := e.store.Ping(ctx); err != nil {
		return unavailable("database unreachable", err)
	}
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if err := e.store.ProbeWrite(pctx, probeFresh); err != nil {
		return unavailable("the database cannot write", err)
	}
	live, err := e.store.LiveWorkers(ctx, e.now().Add(-e.opts.DeadAfter))
	if err != nil {
		return unavailable("database error", err)
	}
	if len(live) == 0 {
		return flywheel.Errorf(flywheel.EUNAVAILABLE, "no worker process is running")
	}
	return nil
}

// unavailable is the error of a failed readiness check: err itself when
// the store gave it a reason ("Database unavailable: disk full"), else an
// EUNAVAILABLE naming what failed.
func unavailable(what string, err error) error {
	if flywheel.ErrorCode(err) == flywheel.EUNAVAILABLE {
		return fmt.Errorf("%s: %w", what, err)
	}
	return flywheel.Errorf(flywheel.EUNAVAILABLE, "%s: %v", what, err)
}

// WaitFinished polls until the run finishes or ctx ends (for tests and the CLI).
func (e *Engine) WaitFinished(ctx context.Context, id string, every time.Duration) (*flywheel.Run, error) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		run, err := e.store.GetRun(ctx, id)
		if err != nil {
			return nil, err
		}
		if run.FinishedAt != nil {
			return run, nil
		}
		select {
		case <-ctx.Done():
			return run, ctx.Err()
		case <-t.C:
		}
	}
}
