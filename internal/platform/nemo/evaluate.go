package nemo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// EvalFileDefault is the file of an evaluation dataset repo.
const EvalFileDefault = "eval_data.jsonl"

// Evaluate runs one evaluation through the NeMo Evaluator: it launches a
// job with the blueprint's inline config (or finds the job of
// req.EvaluationID launched earlier), polls it ("created" and "pending"
// are waiting, not failures), and reads its results into the blueprint's
// score keys. When ctx ends it cancels the remote job and returns ctx's
// error; a job without progress for EvalStallTimeout is cancelled too.
func (p *Platform) Evaluate(ctx context.Context, req flywheel.EvalRequest, progress flywheel.ProgressFunc) (flywheel.EvalResult, error) {
	if req.Dataset.NMPURI == nil || *req.Dataset.NMPURI == "" {
		return flywheel.EvalResult{}, p.invalid("evaluate %s: dataset %s is not published to the data store",
			req.EvaluationID, req.Dataset.Name)
	}
	if req.Target.Model == "" {
		return flywheel.EvalResult{}, p.invalid("evaluate %s: the target has no model", req.EvaluationID)
	}
	if req.Judge == nil || req.Judge.Model == "" {
		return flywheel.EvalResult{}, p.invalid("evaluate %s: the NeMo Evaluator needs an LLM judge", req.EvaluationID)
	}
	if progress == nil {
		progress = func(float64) {}
	}
	filesURL := strings.TrimRight(*req.Dataset.NMPURI, "/") + "/" + EvalFileDefault
	judge := p.judgeModel(*req.Judge)
	var config map[string]any
	if req.WorkloadType == flywheel.WorkloadToolCalling {
		config = ToolCallingConfig(filesURL, req.Limit, judge)
	} else {
		config = GenericConfig(filesURL, req.Limit, judge)
	}
	body := CreateEvaluationJob{
		Namespace:   p.cfg.Namespace,
		Description: fmt.Sprintf("flywheel %s %s of %s", req.RunID, req.EvalType, req.Target.Model),
		Config:      config,
		Target:      ModelTarget(req.Target.Model),
		CustomFields: map[string]any{
			customFieldEvaluationID: req.EvaluationID,
			"flywheel_run_id":       req.RunID,
			"flywheel_eval_type":    string(req.EvalType),
		},
	}
	job, err := p.launchEvaluation(ctx, req.EvaluationID, body)
	if err != nil {
		if ctx.Err() != nil && req.EvaluationID != "" {
			// Cancelled while the create call was out: the server may
			// have made the job all the same, and the ledger keeps
			// evaluation jobs as results, so nothing else would stop it.
			p.cancelEvaluationJob(ctx, "", req.EvaluationID)
		}
		return flywheel.EvalResult{}, err
	}
	p.logger.InfoContext(ctx, "Evaluation job running", slog.String("job_id", job.ID),
		slog.String("evaluation_id", req.EvaluationID))

	if err := p.waitEvaluation(ctx, job.ID, progress); err != nil {
		if ctx.Err() != nil || errors.Is(err, errEvalStalled) {
			p.cancelEvaluationJob(ctx, job.ID, "")
		}
		if ctx.Err() != nil {
			return flywheel.EvalResult{}, ctx.Err()
		}
		return flywheel.EvalResult{}, err
	}
	res, err := p.Eval.Results(ctx, job.ID)
	if err != nil {
		return flywheel.EvalResult{}, err
	}
	out, err := scoresOf(res, req.WorkloadType)
	if err != nil {
		return flywheel.EvalResult{}, flywheel.Permanent(fmt.Errorf("evaluation job %s: %w", job.ID, err))
	}
	progress(100)
	return out, nil
}

// cancelEvaluationJob cancels the evaluation job id, or the job of
// evaluationID when id is empty (none found is not an error), with a
// context of its own: ctx is usually the cancelled one. A failure is
// logged; the job's deletion with its run tries again.
func (p *Platform) cancelEvaluationJob(ctx context.Context, id, evaluationID string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cancelTimeout)
	defer cancel()
	if id == "" {
		job, ok, err := p.Eval.FindJob(cctx, customFieldEvaluationID, evaluationID, p.cfg.ListPages)
		if err != nil {
			p.logger.WarnContext(ctx, "Find evaluation job to cancel failed", slog.String("evaluation_id", evaluationID),
				slog.String("error", err.Error()))
			return
		}
		if !ok {
			return
		}
		id = job.ID
	}
	if err := p.Eval.CancelJob(cctx, id); err != nil {
		p.logger.WarnContext(ctx, "Cancel evaluation job failed", slog.String("job_id", id),
			slog.String("error", err.Error()))
	}
}

// judgeModel returns the judge parameter: the model id when the judge is
// served by this platform's NIM proxy, else its endpoint.
func (p *Platform) judgeModel(j flywheel.Endpoint) any {
	base := strings.TrimRight(j.BaseURL, "/")
	local := base == "" || base == strings.TrimRight(p.cfg.NIM.BaseURL, "/")
	return JudgeModel(local, base+"/v1/chat/completions", j.Model, j.APIKey)
}

// launchEvaluation finds the job of evaluationID or creates it; before
// every retry it looks again, in case the failed attempt created it.
func (p *Platform) launchEvaluation(ctx context.Context, evaluationID string, body CreateEvaluationJob) (EvaluationJob, error) {
	var job EvaluationJob
	err := p.caller.withRetry(ctx, "create evaluation job", func(ctx context.Context) error {
		if evaluationID != "" {
			found, ok, err := p.Eval.FindJob(ctx, customFieldEvaluationID, evaluationID, p.cfg.ListPages)
			if err != nil {
				return err
			}
			if ok {
				job = found
				return nil
			}
		}
		var err error
		job, err = p.Eval.CreateJob(ctx, body)
		return err
	})
	if err != nil {
		return EvaluationJob{}, fmt.Errorf("launch evaluation %s: %w", evaluationID, err)
	}
	return job, nil
}

var errEvalStalled = errors.New("evaluation stalled")

func (p *Platform) waitEvaluation(ctx context.Context, id string, progress flywheel.ProgressFunc) error {
	last := -1.0
	lastChange := p.now()
	for {
		job, err := p.Eval.Job(ctx, id)
		if err != nil {
			return err
		}
		pct := 0.0
		if job.StatusDetails.Progress != nil {
			pct = *job.StatusDetails.Progress
		}
		switch job.Status {
		case "completed":
			return nil
		case "failed", "cancelled", "cancelling":
			msg := job.StatusDetails.Message
			if msg == "" {
				msg = "no details available"
			}
			return flywheel.Permanent(fmt.Errorf("evaluation job %s %s: %s", id, job.Status, msg))
		}
		if pct > last {
			last = pct
			lastChange = p.now()
			progress(math.Min(pct, 99.9))
		} else if p.now().Sub(lastChange) > p.cfg.EvalStallTimeout {
			return fmt.Errorf("evaluation job %s (%s) without progress for %s: %w", id, job.Status,
				p.cfg.EvalStallTimeout, errEvalStalled)
		}
		if err := p.caller.sleep(ctx, p.cfg.EvalPollInterval); err != nil {
			return err
		}
	}
}

func detailOf(s Score) flywheel.ScoreDetail {
	d := flywheel.ScoreDetail{Mean: s.Value}
	if s.Stats != nil {
		d.N = s.Stats.Count
		if s.Stats.Count > 0 && s.Stats.Mean != 0 {
			d.Mean = s.Stats.Mean
		}
		d.StdErr = s.Stats.StdErr
		if d.StdErr == 0 && s.Stats.StdDev > 0 && s.Stats.Count > 1 {
			d.StdErr = s.Stats.StdDev / math.Sqrt(float64(s.Stats.Count))
		}
	}
	d.CILow = d.Mean - 1.96*d.StdErr
	d.CIHigh = d.Mean + 1.96*d.StdErr
	return d
}

// scoresOf reads the blueprint's score keys out of an Evaluator result.
func scoresOf(res EvaluationResults, wt flywheel.WorkloadType) (flywheel.EvalResult, error) {
	out := flywheel.EvalResult{Scores: map[string]float64{}, Details: map[string]flywheel.ScoreDetail{}}
	type key struct{ task, metric, score, as string }
	var keys []key
	if wt == flywheel.WorkloadToolCalling {
		keys = []key{
			{TaskToolCalling, MetricToolCalling, ScoreFunctionAcc, flywheel.ScoreFunctionName},
			{TaskToolCalling, MetricToolCalling, ScoreNameArgsAcc, flywheel.ScoreFunctionNameAndArgs},
			{TaskToolCalling, MetricCorrectness, ScoreRating, flywheel.ScoreToolCallingCorrectness},
		}
	} else {
		keys = []key{{TaskLLMJudge, MetricLLMJudge, ScoreSimilarityRaw, flywheel.ScoreSimilarity}}
	}
	var missing []string
	for _, k := range keys {
		s, ok := res.Score(k.task, k.metric, k.score)
		if !ok {
			missing = append(missing, k.task+"."+k.metric+"."+k.score)
			continue
		}
		out.Scores[k.as] = s.Value
		d := detailOf(s)
		out.Details[k.as] = d
		out.Summary.Items = max(out.Summary.Items, d.N)
	}
	if len(out.Scores) == 0 {
		return out, fmt.Errorf("results have none of the expected scores (%s)", strings.Join(missing, ", "))
	}
	return out, nil
}
