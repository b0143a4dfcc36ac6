package stage

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

func (r *Runner) initialize(ctx context.Context, c Call) (Result, error) {
	if c.Run.Status == flywheel.RunPending {
		ok, err := r.Store.TryStartRun(ctx, c.Run.ID, r.Settings.MaxConcurrentRuns)
		if err != nil {
			return Result{}, err
		}
		if !ok {
			// Too many runs are running: wait for a slot.
			return r.snooze(), nil
		}
	}
	judge, err := r.Store.GetJudge(ctx, c.Run.ID)
	if err != nil {
		return Result{}, err
	}
	if judge == nil {
		j := c.Run.Spec.Judge
		status := flywheel.DeploymentReady
		if j.DeploymentType == flywheel.DeploymentTypeLocal {
			status = flywheel.DeploymentCreated
		}
		typ := j.DeploymentType
		if typ == "" {
			typ = flywheel.DeploymentTypeRemote
		}
		if err := r.Store.CreateJudge(ctx, &flywheel.LLMJudgeRun{ID: c.Run.ID, RunID: c.Run.ID, ModelName: j.ModelName,
			DeploymentType: typ, DeploymentStatus: status}); err != nil {
			return Result{}, err
		}
	}
	return succeeded(nil), nil
}

func (r *Runner) createDatasets(ctx context.Context, c Call) (Result, error) {
	if r.Datasets == nil {
		return Result{}, flywheel.Permanent(errors.New("no dataset builder configured"))
	}
	req := flywheel.BuildRequest{
		RunID: c.Run.ID, WorkloadID: c.Run.WorkloadID, ClientID: c.Run.ClientID,
		Split: c.Run.Spec.DataSplit, ICL: iclBudget(c.Run.Spec),
		Dir: filepath.Join(r.Settings.DataDir, "runs", c.Run.ID, "datasets"),
		// Milliseconds: runs of one workload started in the same second
		// must not share dataset names (and repos).
		Timestamp: c.Run.StartedAt.UnixMilli(),
		Replay:    c.Run.Spec.Replay,
	}
	res, err := r.Datasets.Build(ctx, req)
	if err != nil {
		if res.Stats.Total > 0 {
			_ = r.Store.SetRunStats(ctx, c.Run.ID, res.Stats)
		}
		return Result{}, err
	}
	if pub, ok := r.Platform.(flywheel.DatasetPublisher); ok {
		for i, ds := range res.Datasets {
			// The ledger learns of the repo before it is created (its name
			// is known), so a cancel during the upload leaves nothing that
			// job deletion cannot find.
			rec := &flywheel.Resource{RunID: c.Run.ID, Kind: flywheel.ResourceDataset, Platform: r.Platform.Name(),
				RemoteID: c.Run.Spec.Namespace + "/" + ds.Name, Key: c.Run.ID + "/dataset/" + ds.Name}
			if err := r.Store.RecordResource(ctx, rec); err != nil {
				return Result{}, err
			}
			out, err := pub.PublishDataset(ctx, c.Run.Spec.Namespace, ds)
			if err != nil {
				return Result{}, fmt.Errorf("publish dataset %s: %w", ds.Name, err)
			}
			res.Datasets[i] = out
		}
	}
	if err := r.writeManifest(ctx, c.Run, res); err != nil {
		return Result{}, err
	}
	if err := r.Store.SetRunDatasets(ctx, c.Run.ID, res); err != nil {
		return Result{}, err
	}
	return succeeded(map[string]any{"workload_type": res.WorkloadType, "num_records": res.NumRecords}), nil
}

func (r *Runner) waitForJudge(ctx context.Context, c Call) (Result, error) {
	j := c.Run.Spec.Judge
	if j.DeploymentType != flywheel.DeploymentTypeLocal {
		// A remote judge (or none) needs no deployment.
		if err := r.Store.SetJudgeStatus(ctx, c.Run.ID, flywheel.DeploymentReady, ""); err != nil {
			return Result{}, err
		}
		return succeeded(judgeOutput{Endpoint: remoteJudge(j)}), nil // the key is added at use
	}
	dep, done, err := r.ensureDeployment(ctx, c.Run.ID, "", flywheel.DeployRequest{
		Key: c.Run.ID + "/judge", RunID: c.Run.ID, Model: flywheel.NIMConfig{ModelName: j.ModelName, ModelType: "llm",
			ContextLength: j.ContextLength, GPUs: j.GPUs, PVCSize: j.PVCSize, Tag: j.Tag},
	})
	if err != nil {
		return Result{}, err
	}
	if err := r.Store.SetJudgeStatus(ctx, c.Run.ID, dep.Status, ""); err != nil {
		return Result{}, err
	}
	switch {
	case dep.Status == flywheel.DeploymentFailed:
		return failed("judge deployment failed: %s", dep.Message), nil
	case !done:
		return r.snooze(), nil
	}
	ep := dep.Endpoint
	return succeeded(judgeOutput{Endpoint: &ep}), nil
}

type judgeOutput struct {
	Endpoint *flywheel.Endpoint `json:"endpoint,omitempty"`
}

func remoteJudge(j flywheel.JudgeConfig) *flywheel.Endpoint {
	if j.URL == "" {
		return nil
	}
	return &flywheel.Endpoint{BaseURL: flywheel.BaseURL(j.URL), Model: j.ModelName}
}

// judgeEndpoint returns the run's judge, or nil when none is configured.
func (r *Runner) judgeEndpoint(ctx context.Context, run *flywheel.Run) *flywheel.Endpoint {
	var out judgeOutput
	if err := r.stageOutput(ctx, run.ID, "", flywheel.StageWaitForJudge, &out); err != nil {
		return nil
	}
	if out.Endpoint != nil && out.Endpoint.APIKey == "" {
		out.Endpoint.APIKey = r.Settings.JudgeAPIKey
	}
	return out.Endpoint
}

func (r *Runner) finalize(ctx context.Context, c Call) (Result, error) {
	run, err := r.Store.GetRun(ctx, c.Run.ID)
	if err != nil {
		return Result{}, err
	}
	// Release what is still live (a local judge, anything a failed stage
	// left behind). Datasets and models stay until the job is deleted.
	if err := r.releaseRun(ctx, run.ID, false); err != nil {
		return Result{}, err
	}
	if run.FinishedAt != nil {
		return succeeded(nil), nil
	}
	stages, err := r.Store.ListStages(ctx, run.ID)
	if err != nil {
		return Result{}, err
	}
	for _, s := range stages {
		if s.Candidate == "" && s.Status == flywheel.StageFailed {
			_, err := r.Store.FinishRun(ctx, run.ID, flywheel.RunFailed, RunErrorMessage(s.Name, s.Error))
			return succeeded(nil), err
		}
	}
	nims, err := r.Store.ListNIMs(ctx, run.ID)
	if err != nil {
		return Result{}, err
	}
	var details []flywheel.NIMDetail
	completed := 0
	for _, n := range nims {
		if n.Status == flywheel.NIMCompleted {
			completed++
		}
		evals, err := r.Store.ListEvaluations(ctx, n.ID)
		if err != nil {
			return Result{}, err
		}
		details = append(details, flywheel.NIMDetail{NIMRun: *n, Evaluations: evals})
	}
	if r.Recommender != nil && completed > 0 {
		rec, err := r.Recommender.Recommend(ctx, run, details)
		if err != nil {
			r.Logger.WarnContext(ctx, "Recommendation failed", "run_id", run.ID, "error", err)
		} else if err := r.Store.SetRunRecommendation(ctx, run.ID, rec); err != nil {
			return Result{}, err
		}
	}
	if completed == 0 {
		_, err := r.Store.FinishRun(ctx, run.ID, flywheel.RunFailed, fmt.Sprintf("all %d candidates failed", len(nims)))
		return succeeded(nil), err
	}
	_, err = r.Store.FinishRun(ctx, run.ID, flywheel.RunCompleted, "")
	return succeeded(nil), err
}

// cleanup releases every live resource of a cancelled, failed or crashed run.
func (r *Runner) cleanup(ctx context.Context, c Call) (Result, error) {
	if err := r.releaseRun(ctx, c.Run.ID, false); err != nil {
		return Result{}, err
	}
	return succeeded(nil), nil
}

// iclBudget caps the few-shot prompt budget at the smallest context of the
// candidates that will read it (the blueprint ignores nims[].context_length
// and overflows small models).
func iclBudget(spec flywheel.RunSpec) flywheel.ICLConfig {
	icl := spec.ICL
	for _, c := range spec.Candidates {
		if c.ContextLength > 0 && (icl.MaxContextLength <= 0 || c.ContextLength < icl.MaxContextLength) {
			icl.MaxContextLength = c.ContextLength
		}
	}
	if icl.ReservedTokens >= icl.MaxContextLength && icl.MaxContextLength > 0 {
		icl.ReservedTokens = icl.MaxContextLength / 4
	}
	return icl
}
