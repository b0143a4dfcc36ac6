package stage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// ensureDeployment starts a deployment once (the ledger and the platform's
// idempotency key make a re-run find it) and returns its current state and
// whether it is ready to serve.
func (r *Runner) ensureDeployment(ctx context.Context, runID, nimID string, req flywheel.DeployRequest) (flywheel.Deployment, bool, error) {
	res, err := r.Store.GetResource(ctx, flywheel.ResourceDeployment, req.Key)
	if err != nil && !errors.Is(err, flywheel.ErrNotFound) {
		return flywheel.Deployment{}, false, err
	}
	var dep flywheel.Deployment
	if res == nil || res.State != flywheel.ResourceLive {
		// Creating a remote resource and writing it to the ledger must not
		// be split by a cancel, or nothing could ever release it.
		err = r.uncancellable(ctx, runID, func(ctx context.Context) (*flywheel.Resource, error) {
			var err error
			dep, err = r.Platform.Deploy(ctx, req)
			if err != nil {
				return nil, fmt.Errorf("deploy %s: %w", req.Model.ModelName, err)
			}
			rec := &flywheel.Resource{RunID: runID, NIMID: nimID, Kind: flywheel.ResourceDeployment, Platform: r.Platform.Name(),
				RemoteID: dep.ID, Key: req.Key, Data: dep.Data, LeaseOwner: r.Settings.LeaseOwner, LeaseExpiresAt: r.lease()}
			return rec, r.Store.RecordResource(ctx, rec)
		})
		if err != nil {
			return flywheel.Deployment{}, false, err
		}
	} else {
		dep, err = r.Platform.Deployment(ctx, res.RemoteID)
		if err != nil {
			if errors.Is(err, flywheel.ErrNotFound) {
				// It vanished (a restart of the platform): start it again.
				if err := r.Store.MarkResourceReleased(ctx, res.ID); err != nil {
					return flywheel.Deployment{}, false, err
				}
				return flywheel.Deployment{}, false, fmt.Errorf("deployment %s disappeared; starting it again", res.RemoteID)
			}
			return flywheel.Deployment{}, false, fmt.Errorf("poll deployment %s: %w", res.RemoteID, err)
		}
	}
	return dep, dep.Status == flywheel.DeploymentReady, nil
}

type deployOutput struct {
	DeploymentID string            `json:"deployment_id"`
	Endpoint     flywheel.Endpoint `json:"endpoint"`
}

func (r *Runner) spinUpNIM(ctx context.Context, c Call) (Result, error) {
	if c.NIM.Status == flywheel.NIMPending {
		if err := r.Store.SetNIMStatus(ctx, c.NIM.ID, flywheel.NIMDeploying, flywheel.DeploymentCreated); err != nil {
			return Result{}, err
		}
	}
	cfg, err := candidateConfig(c.Run, c.NIM)
	if err != nil {
		return Result{}, err
	}
	if err := r.prepareModel(ctx, c, cfg); err != nil {
		return Result{}, err
	}
	dep, ready, err := r.ensureDeployment(ctx, c.Run.ID, c.NIM.ID, flywheel.DeployRequest{
		Key: c.Run.ID + "/" + c.NIM.ID, RunID: c.Run.ID, NIMID: c.NIM.ID, Model: cfg})
	if err != nil {
		return Result{}, err
	}
	if dep.Status == flywheel.DeploymentFailed {
		return failed("deployment %s failed: %s", dep.ID, dep.Message), nil
	}
	if !ready {
		if dep.Status != "" {
			if err := r.Store.SetNIMDeploymentStatus(ctx, c.NIM.ID, dep.Status); err != nil {
				return Result{}, err
			}
		}
		return r.snooze(), nil
	}
	if err := r.Store.SetNIMStatus(ctx, c.NIM.ID, flywheel.NIMRunningEvals, flywheel.DeploymentReady); err != nil {
		return Result{}, err
	}
	r.noteModel(ctx, c, cfg, nil)
	return succeeded(deployOutput{DeploymentID: dep.ID, Endpoint: dep.Endpoint}), nil
}

// prepareModel lets a platform that prepares models (flywheel.ModelPreparer)
// do so before the deployment, showing its progress on the stage in whole
// percents.
func (r *Runner) prepareModel(ctx context.Context, c Call, cfg flywheel.NIMConfig) error {
	mp, ok := r.Platform.(flywheel.ModelPreparer)
	if !ok {
		return nil
	}
	shown := -1
	err := mp.PrepareModel(ctx, cfg, func(percent float64) {
		if p := int(percent); p != shown {
			shown = p
			_ = r.Store.SetStageProgress(ctx, c.Run.ID, c.NIM.ID, c.Stage.Name, float64(p))
		}
	})
	if err != nil {
		return fmt.Errorf("prepare %s: %w", cfg.ModelName, err)
	}
	return nil
}

func candidateConfig(run *flywheel.Run, nim *flywheel.NIMRun) (flywheel.NIMConfig, error) {
	for _, c := range run.Spec.Candidates {
		if c.ModelName == nim.ModelName {
			return c, nil
		}
	}
	return flywheel.NIMConfig{}, flywheel.Permanent(fmt.Errorf("candidate %s is not in the run's configuration", nim.ModelName))
}

func (r *Runner) datasetOf(run *flywheel.Run, t flywheel.DatasetType) (flywheel.Dataset, bool) {
	for _, d := range run.Datasets {
		if d.Type == t {
			return d, true
		}
	}
	return flywheel.Dataset{}, false
}

func (r *Runner) runEval(ctx context.Context, c Call, t flywheel.EvalType) (Result, error) {
	if r.Evaluator == nil {
		return Result{}, flywheel.Permanent(errors.New("no evaluator configured"))
	}
	dsType := flywheel.DatasetBase
	if t == flywheel.EvalICL {
		dsType = flywheel.DatasetICL
	}
	ds, ok := r.datasetOf(c.Run, dsType)
	if !ok {
		return skipped(fmt.Sprintf("skipped: the run has no %s", dsType)), nil
	}
	var (
		target flywheel.Endpoint
		out    deployOutput
	)
	source := flywheel.StageSpinUpNIM
	if t == flywheel.EvalCustomized {
		source = flywheel.StageStartCustomization
	}
	if err := r.stageOutput(ctx, c.Run.ID, c.NIM.ID, source, &out); err != nil {
		return Result{}, flywheel.Permanent(fmt.Errorf("find the endpoint to evaluate: %w", err))
	}
	target = out.Endpoint
	cfg, err := candidateConfig(c.Run, c.NIM)
	if err != nil {
		return Result{}, err
	}
	// The deployment may have gone since it was found ready (a restart of a
	// local model server with the process that ran it): look again, and
	// evaluate the endpoint it has now.
	depReq := flywheel.DeployRequest{Key: c.Run.ID + "/" + c.NIM.ID, RunID: c.Run.ID, NIMID: c.NIM.ID, Model: cfg}
	if t == flywheel.EvalCustomized {
		var co customizationOutput
		if err := r.stageOutput(ctx, c.Run.ID, c.NIM.ID, source, &co); err == nil {
			job, err := r.Platform.Customization(ctx, co.JobID)
			if err == nil {
				depReq.Key += "/customized"
				depReq.Adapter = &job
			}
		}
	}
	if depReq.Adapter != nil || t != flywheel.EvalCustomized {
		dep, ready, err := r.ensureDeployment(ctx, c.Run.ID, c.NIM.ID, depReq)
		if err != nil {
			return Result{}, err
		}
		if dep.Status == flywheel.DeploymentFailed {
			// It died: forget it, so the next attempt starts it again.
			if res, err := r.Store.GetResource(ctx, flywheel.ResourceDeployment, depReq.Key); err == nil {
				_ = r.Store.MarkResourceReleased(ctx, res.ID)
			}
			return Result{}, fmt.Errorf("deployment %s is down; starting it again: %s", dep.ID, dep.Message)
		}
		if !ready {
			return r.snooze(), nil
		}
		target = dep.Endpoint
	}
	e, err := r.Store.UpsertEvaluation(ctx, c.NIM.ID, t)
	if err != nil {
		return Result{}, err
	}
	limit := 0
	if c.Run.Spec.DataSplit.Limit != nil {
		limit = *c.Run.Spec.DataSplit.Limit
	}
	var last time.Time
	progress := func(p float64) {
		if now := r.now(); now.Sub(last) >= time.Second || p >= 100 {
			last = now
			_ = r.Store.SetEvaluationProgress(ctx, e.ID, p, "", "")
			_ = r.Store.SetStageProgress(ctx, c.Run.ID, c.NIM.ID, c.Stage.Name, p)
		}
	}
	if rel, ok := r.Evaluator.(flywheel.ResourceReleaser); ok && rel != nil {
		// A remote evaluator (NeMo Evaluator) creates jobs: the ledger knows
		// them by the evaluation id, so job deletion removes them.
		if err := r.Store.RecordResource(ctx, &flywheel.Resource{RunID: c.Run.ID, NIMID: c.NIM.ID, Kind: flywheel.ResourceEvaluation,
			Platform: r.Platform.Name(), Key: e.ID}); err != nil {
			return Result{}, err
		}
	}
	res, err := r.Evaluator.Evaluate(ctx, flywheel.EvalRequest{
		EvaluationID: e.ID, RunID: c.Run.ID, EvalType: t, WorkloadType: c.Run.WorkloadType, Target: target,
		Dataset: ds, Limit: limit, Judge: r.judgeEndpoint(ctx, c.Run), PricePer1KTokens: cfg.PricePer1KTokens,
		Sampling: cfg.Sampling, PricePerHour: cfg.PricePerGPUHour * float64(max(cfg.GPUs, 1)),
	}, progress)
	if err != nil {
		return Result{}, err
	}
	if err := r.Store.ReplaceItems(ctx, e.ID, res.Items); err != nil {
		return Result{}, err
	}
	items := res.Items
	res.Items = nil
	if err := r.Store.FinishEvaluation(ctx, e.ID, &res, ""); err != nil {
		return Result{}, err
	}
	summary := res.Summary
	for _, w := range flywheel.EvalWarnings(c.NIM.ModelName, flywheel.Evaluation{EvalType: t, Summary: &summary}) {
		r.Logger.WarnContext(ctx, "Evaluation evidence is weak", "run_id", c.Run.ID, "evaluation_id", e.ID, "warning", w.Message)
	}
	if r.Exporter != nil {
		r.export(ctx, c, e.ID, items)
	}
	return succeeded(map[string]any{"evaluation_id": e.ID, "scores": res.Scores}), nil
}

type customizationOutput struct {
	deployOutput
	JobID       string `json:"job_id"`
	OutputModel string `json:"output_model"`
}

func (r *Runner) startCustomization(ctx context.Context, c Call) (Result, error) {
	cfg, err := candidateConfig(c.Run, c.NIM)
	if err != nil {
		return Result{}, err
	}
	if !cfg.CustomizationEnabled {
		return skipped("skipped: customization is not enabled for this candidate"), nil
	}
	train, ok := r.datasetOf(c.Run, flywheel.DatasetTrain)
	if !ok {
		return skipped("skipped: the run has no training dataset"), nil
	}
	cust, err := r.Store.UpsertCustomization(ctx, c.NIM.ID, c.Run.WorkloadID, c.NIM.ModelName)
	if err != nil {
		return Result{}, err
	}
	key := c.Run.ID + "/" + c.NIM.ID + "/customization"
	res, err := r.Store.GetResource(ctx, flywheel.ResourceCustomization, key)
	if err != nil && !errors.Is(err, flywheel.ErrNotFound) {
		return Result{}, err
	}
	var job flywheel.CustomizationJob
	if res == nil {
		err = r.uncancellable(ctx, c.Run.ID, func(ctx context.Context) (*flywheel.Resource, error) {
			var err error
			job, err = r.Platform.StartCustomization(ctx, flywheel.CustomizationRequest{
				Key: key, RunID: c.Run.ID, NIMID: c.NIM.ID, WorkloadID: c.Run.WorkloadID, Namespace: c.Run.Spec.Namespace,
				Model: cfg, Training: c.Run.Spec.Training, LoRA: c.Run.Spec.LoRA, TrainDataset: train,
				OutputName: "customized-" + strings.ReplaceAll(c.NIM.ModelName, "/", "-"),
			})
			if err != nil {
				return nil, fmt.Errorf("start customization of %s: %w", c.NIM.ModelName, err)
			}
			res = &flywheel.Resource{RunID: c.Run.ID, NIMID: c.NIM.ID, Kind: flywheel.ResourceCustomization, Platform: r.Platform.Name(),
				RemoteID: job.ID, Key: key, Data: job.Data, LeaseOwner: r.Settings.LeaseOwner, LeaseExpiresAt: r.lease()}
			return res, r.Store.RecordResource(ctx, res)
		})
		if err != nil {
			return Result{}, err
		}
	} else {
		job, err = r.Platform.Customization(ctx, res.RemoteID)
		if err != nil {
			return Result{}, fmt.Errorf("poll customization %s: %w", res.RemoteID, err)
		}
	}
	if err := r.Store.UpdateCustomization(ctx, cust.ID, job, job.URI); err != nil {
		return Result{}, err
	}
	_ = r.Store.SetStageProgress(ctx, c.Run.ID, c.NIM.ID, c.Stage.Name, job.Progress)
	switch job.Status {
	case flywheel.JobFailed, flywheel.JobCancelled:
		if err := r.Store.MarkResourceReleased(ctx, res.ID); err != nil {
			return Result{}, err
		}
		return failed("customization job %s %s: %s", job.ID, job.Status, job.Message), nil
	case flywheel.JobCompleted:
		if res.State == flywheel.ResourceLive {
			if err := r.Store.MarkResourceReleased(ctx, res.ID); err != nil {
				return Result{}, err
			}
		}
		if job.OutputModel != "" {
			model := &flywheel.Resource{RunID: c.Run.ID, NIMID: c.NIM.ID, Kind: flywheel.ResourceModel, Platform: r.Platform.Name(),
				RemoteID: job.OutputModel, Key: key + "/model"}
			if err := r.Store.RecordResource(ctx, model); err != nil {
				return Result{}, err
			}
		}
	default:
		_, progressAt, err := r.Store.GetCustomization(ctx, c.NIM.ID)
		if err != nil {
			return Result{}, err
		}
		if stall := r.Settings.StallTimeout; stall > 0 && progressAt != nil && r.now().Sub(*progressAt) > stall {
			cancelCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if err := r.Platform.CancelCustomization(cancelCtx, job.ID); err != nil {
				r.Logger.WarnContext(ctx, "Cancel stalled customization", "run_id", c.Run.ID, "job_id", job.ID, "error", err)
			} else {
				_ = r.Store.MarkResourceReleased(ctx, res.ID)
			}
			return failed("customization job %s stalled: no progress for %s", job.ID, stall), nil
		}
		return r.snooze(), nil
	}

	// Serve the customized model and wait until it answers.
	dep, ready, err := r.ensureDeployment(ctx, c.Run.ID, c.NIM.ID, flywheel.DeployRequest{
		Key: c.Run.ID + "/" + c.NIM.ID + "/customized", RunID: c.Run.ID, NIMID: c.NIM.ID, Model: cfg, Adapter: &job})
	if err != nil {
		return Result{}, err
	}
	if dep.Status == flywheel.DeploymentFailed {
		return failed("customized model %s failed to deploy: %s", job.OutputModel, dep.Message), nil
	}
	if !ready {
		return r.snooze(), nil
	}
	r.noteModel(ctx, c, cfg, &job)
	if err := r.Store.FinishCustomization(ctx, cust.ID, 100, ""); err != nil {
		return Result{}, err
	}
	return succeeded(customizationOutput{deployOutput: deployOutput{DeploymentID: dep.ID, Endpoint: dep.Endpoint},
		JobID: job.ID, OutputModel: job.OutputModel}), nil
}

func (r *Runner) shutdownDeployment(ctx context.Context, c Call) (Result, error) {
	deps, err := r.Store.ListNIMResources(ctx, c.NIM.ID, flywheel.ResourceDeployment, flywheel.ResourceLive, flywheel.ResourceReleaseFailed)
	if err != nil {
		return Result{}, err
	}
	var errs []string
	for _, d := range deps {
		if err := r.release(ctx, d); err != nil {
			errs = append(errs, err.Error())
		}
	}
	run, err := r.Store.GetRun(ctx, c.Run.ID)
	if err != nil {
		return Result{}, err
	}
	if run.Status == flywheel.RunCancelled {
		return succeeded(nil), r.Store.FinishNIM(ctx, c.NIM.ID, flywheel.NIMCancelled, flywheel.DeploymentCancelled, "Flywheel run cancelled")
	}
	status, errMsg, err := r.candidateOutcome(ctx, c)
	if err != nil {
		return Result{}, err
	}
	if len(errs) > 0 {
		return Result{}, fmt.Errorf("shut down %s: %s", c.NIM.ModelName, strings.Join(errs, "; "))
	}
	dep := flywheel.DeploymentCompleted
	if status == flywheel.NIMFailed {
		dep = ""
	}
	if err := r.Store.FinishNIM(ctx, c.NIM.ID, status, dep, errMsg); err != nil {
		return Result{}, err
	}
	return succeeded(nil), nil
}

// candidateOutcome settles a candidate from its stages: completed when it
// was deployed and at least one evaluation produced scores (failed branches
// are named in its error), failed otherwise.
func (r *Runner) candidateOutcome(ctx context.Context, c Call) (flywheel.NIMStatus, string, error) {
	stages, err := r.Store.ListStages(ctx, c.Run.ID)
	if err != nil {
		return "", "", err
	}
	var (
		problems  []string
		evalsOK   int
		deployErr string
		deployed  bool
	)
	for _, s := range stages {
		if s.Candidate != c.NIM.ID {
			continue
		}
		switch {
		case s.Name == flywheel.StageSpinUpNIM:
			deployed = s.Status == flywheel.StageSucceeded
			if !deployed {
				deployErr = s.Error
			}
		case s.Status == flywheel.StageSucceeded && (s.Name == flywheel.StageRunBaseEval || s.Name == flywheel.StageRunICLEval || s.Name == flywheel.StageRunCustomizationEval):
			evalsOK++
		case s.Status == flywheel.StageFailed:
			problems = append(problems, fmt.Sprintf("%s failed: %s", s.Name, s.Error))
		}
	}
	switch {
	case !deployed:
		if deployErr == "" {
			deployErr = "not deployed"
		}
		return flywheel.NIMFailed, "Error spinning up NIM: " + deployErr, nil
	case evalsOK == 0:
		return flywheel.NIMFailed, "no evaluation succeeded: " + strings.Join(problems, "; "), nil
	}
	return flywheel.NIMCompleted, strings.Join(problems, "; "), nil
}

// releaseRun releases a run's live resources: deployments and running remote
// jobs, and with artifacts also its datasets and models (job deletion).
func (r *Runner) releaseRun(ctx context.Context, runID string, artifacts bool) error {
	res, err := r.Store.ListResources(ctx, runID, flywheel.ResourceLive, flywheel.ResourceReleaseFailed)
	if err != nil {
		return err
	}
	var errs []error
	for _, x := range res {
		if !artifacts && IsArtifact(x.Kind) {
			continue
		}
		if err := r.release(ctx, x); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Release releases one ledger resource and records the outcome: released, or
// release_failed with the error (the reaper retries those).
func (r *Runner) Release(ctx context.Context, x flywheel.Resource) error { return r.release(ctx, x) }

func (r *Runner) release(ctx context.Context, x flywheel.Resource) error {
	// Release even when the stage's own context was cancelled.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	var err error
	switch x.Kind {
	case flywheel.ResourceDeployment:
		err = r.Platform.Undeploy(ctx, x.RemoteID)
	case flywheel.ResourceCustomization:
		err = r.Platform.CancelCustomization(ctx, x.RemoteID)
	default:
		if rel, ok := r.Platform.(flywheel.ResourceReleaser); ok {
			err = rel.Release(ctx, x)
		}
	}
	if err != nil && !errors.Is(err, flywheel.ErrNotFound) {
		_ = r.Store.MarkResourceReleaseFailed(ctx, x.ID, err.Error())
		return fmt.Errorf("release %s %s: %w", x.Kind, x.RemoteID, err)
	}
	r.Logger.InfoContext(ctx, "Released resource", "run_id", x.RunID, "kind", x.Kind, "remote_id", x.RemoteID)
	return r.Store.MarkResourceReleased(ctx, x.ID)
}

// DeleteRunResources releases everything a run created, artifacts included.
func (r *Runner) DeleteRunResources(ctx context.Context, runID string) error {
	return r.releaseRun(ctx, runID, true)
}

// export sends a finished evaluation to the experiment tracker; a failure
// is logged and never fails the stage.
func (r *Runner) export(ctx context.Context, c Call, evalID string, items []flywheel.ItemResult) {
	e, err := r.Store.GetEvaluation(ctx, evalID)
	if err != nil {
		r.Logger.WarnContext(ctx, "Export skipped", "run_id", c.Run.ID, "error", err)
		return
	}
	uri, err := r.Exporter.ExportEvaluation(ctx, c.Run, c.NIM, e, items)
	if err != nil {
		r.Logger.WarnContext(ctx, "Export of evaluation failed", "run_id", c.Run.ID, "model", c.NIM.ModelName,
			"eval_type", string(e.EvalType), "error", err)
		return
	}
	if uri != "" {
		_ = r.Store.SetEvaluationMLflowURI(ctx, evalID, uri)
	}
}

// uncancellable runs the creation of a remote resource and its ledger write
// even when ctx is cancelled meanwhile, so the resource is always findable.
// When the run ended while it ran, the resource is released at once.
func (r *Runner) uncancellable(ctx context.Context, runID string, create func(ctx context.Context) (*flywheel.Resource, error)) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	rec, err := create(cctx)
	if err != nil {
		return err
	}
	if ctx.Err() != nil && rec != nil {
		if run, err := r.Store.GetRun(cctx, runID); err == nil && run.FinishedAt != nil {
			_ = r.release(cctx, *rec)
		}
		return ctx.Err()
	}
	return nil
}

// IsArtifact reports whether a resource kind is a result kept until its job
// is deleted (datasets, fine-tuned models, evaluation jobs) rather than
// running work that cleanup stops.
func IsArtifact(k flywheel.ResourceKind) bool {
	return k == flywheel.ResourceDataset || k == flywheel.ResourceModel || k == flywheel.ResourceEvaluation
}
