package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

const nimColumns = `id, flywheel_run_id, model_name, position, status, deployment_status, started_at, finished_at, runtime_seconds, error`

func scanNIM(row interface{ Scan(...any) error }) (*flywheel.NIMRun, error) {
	var (
		n                 flywheel.NIMRun
		status, depStatus string
		started, finished sql.NullTime
		errText           sql.NullString
	)
	if err := row.Scan(&n.ID, &n.RunID, &n.ModelName, &n.Position, &status, &depStatus, &started, &finished, &n.RuntimeSeconds, &errText); err != nil {
		return nil, err
	}
	n.Status = flywheel.NIMStatus(status)
	n.DeploymentStatus = flywheel.DeploymentStatus(depStatus)
	n.StartedAt, n.FinishedAt = timePtr(started), timePtr(finished)
	n.Error = errText.String
	return &n, nil
}

// CreateNIM inserts a candidate of a run.
func (q *Queries) CreateNIM(ctx context.Context, n *flywheel.NIMRun) error {
	_, err := q.exec(ctx, `INSERT INTO nims (`+nimColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		n.ID, n.RunID, n.ModelName, n.Position, string(n.Status), string(n.DeploymentStatus),
		nullTime(n.StartedAt), nullTime(n.FinishedAt), n.RuntimeSeconds, nullString(n.Error))
	if err != nil {
		return fmt.Errorf("insert nim: %w", err)
	}
	return nil
}

// GetNIM returns one candidate.
func (q *Queries) GetNIM(ctx context.Context, id string) (*flywheel.NIMRun, error) {
	n, err := scanNIM(q.queryRow(ctx, `SELECT `+nimColumns+` FROM nims WHERE id = ?`, id))
	if err != nil {
		return nil, notFound(err, "nim "+id)
	}
	return n, nil
}

// ListNIMs returns a run's candidates in configuration order.
func (q *Queries) ListNIMs(ctx context.Context, runID string) ([]*flywheel.NIMRun, error) {
	rows, err := q.query(ctx, `SELECT `+nimColumns+` FROM nims WHERE flywheel_run_id = ? ORDER BY position`, runID)
	if err != nil {
		return nil, fmt.Errorf("list nims: %w", err)
	}
	defer rows.Close()
	var out []*flywheel.NIMRun
	for rows.Next() {
		n, err := scanNIM(rows)
		if err != nil {
			return nil, fmt.Errorf("scan nim: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// SetNIMStatus sets a candidate's status and deployment status unless the
// candidate already ended. An empty deployment status leaves it unchanged.
func (q *Queries) SetNIMStatus(ctx context.Context, id string, status flywheel.NIMStatus, dep flywheel.DeploymentStatus) error {
	now := q.Now()
	_, err := q.exec(ctx, `UPDATE nims SET status = ?, deployment_status = COALESCE(NULLIF(?, ''), deployment_status),
		started_at = COALESCE(started_at, ?) WHERE id = ? AND finished_at IS NULL`,
		string(status), string(dep), now, id)
	if err != nil {
		return fmt.Errorf("set nim status: %w", err)
	}
	return nil
}

// SetNIMDeploymentStatus records a deployment status and the runtime so far.
func (q *Queries) SetNIMDeploymentStatus(ctx context.Context, id string, dep flywheel.DeploymentStatus) error {
	_, err := q.exec(ctx, `UPDATE nims SET deployment_status = ? WHERE id = ? AND finished_at IS NULL`, string(dep), id)
	if err != nil {
		return fmt.Errorf("set nim deployment status: %w", err)
	}
	return nil
}

// FinishNIM ends a candidate with status and (for failures) an error; the
// first terminal outcome wins.
func (q *Queries) FinishNIM(ctx context.Context, id string, status flywheel.NIMStatus, dep flywheel.DeploymentStatus, errMsg string) error {
	now := q.Now()
	n, err := q.GetNIM(ctx, id)
	if err != nil {
		return err
	}
	if n.FinishedAt != nil {
		return nil
	}
	runtime := 0.0
	if n.StartedAt != nil {
		runtime = now.Sub(*n.StartedAt).Seconds()
	}
	_, err = q.exec(ctx, `UPDATE nims SET status = ?, deployment_status = COALESCE(NULLIF(?, ''), deployment_status), finished_at = ?,
		runtime_seconds = ?, error = COALESCE(error, ?) WHERE id = ? AND finished_at IS NULL`,
		string(status), string(dep), now, runtime, nullString(errMsg), id)
	if err != nil {
		return fmt.Errorf("finish nim: %w", err)
	}
	return nil
}

// SetNIMError records an error on a candidate without ending it.
func (q *Queries) SetNIMError(ctx context.Context, id, errMsg string) error {
	_, err := q.exec(ctx, `UPDATE nims SET error = COALESCE(error, ?) WHERE id = ?`, nullString(errMsg), id)
	if err != nil {
		return fmt.Errorf("set nim error: %w", err)
	}
	return nil
}

// FinishOpenNIMs ends every unfinished candidate of a run with status
// (cancelled or failed) and msg.
func (q *Queries) FinishOpenNIMs(ctx context.Context, runID string, status flywheel.NIMStatus, msg string) error {
	now := q.Now()
	dep := flywheel.DeploymentCancelled
	if status == flywheel.NIMFailed {
		dep = flywheel.DeploymentFailed
	}
	_, err := q.exec(ctx, `UPDATE nims SET status = ?, deployment_status = CASE WHEN deployment_status IN ('ready', 'running', 'pending', 'created') THEN ? ELSE deployment_status END,
		finished_at = ?, error = COALESCE(error, ?) WHERE flywheel_run_id = ? AND finished_at IS NULL`,
		string(status), string(dep), now, nullString(msg), runID)
	if err != nil {
		return fmt.Errorf("cancel nims: %w", err)
	}
	return nil
}

const evalColumns = `id, nim_id, eval_type, scores, started_at, finished_at, runtime_seconds, progress, nmp_uri, mlflow_uri, job_id, error, details, summary`

func scanEval(row interface{ Scan(...any) error }) (*flywheel.Evaluation, error) {
	var (
		e                                            flywheel.Evaluation
		evalType, scores                             string
		finished                                     sql.NullTime
		nmpURI, mlflowURI, errText, details, summary sql.NullString
	)
	if err := row.Scan(&e.ID, &e.NIMID, &evalType, &scores, &e.StartedAt, &finished, &e.RuntimeSeconds, &e.Progress,
		&nmpURI, &mlflowURI, &e.JobID, &errText, &details, &summary); err != nil {
		return nil, err
	}
	e.EvalType = flywheel.EvalType(evalType)
	e.StartedAt = e.StartedAt.UTC()
	e.FinishedAt = timePtr(finished)
	e.NMPURI, e.MLflowURI = strPtr(nmpURI), strPtr(mlflowURI)
	e.Error = errText.String
	e.Scores = map[string]float64{}
	if err := fromJSON(sql.NullString{String: scores, Valid: true}, &e.Scores); err != nil {
		return nil, err
	}
	if err := fromJSON(details, &e.Details); err != nil {
		return nil, err
	}
	if summary.Valid {
		e.Summary = &flywheel.EvalSummary{}
		if err := fromJSON(summary, e.Summary); err != nil {
			return nil, err
		}
	}
	return &e, nil
}

// UpsertEvaluation returns the evaluation of a candidate and type, creating
// it (progress 0) when absent: a stage re-run finds the row it made before.
func (q *Queries) UpsertEvaluation(ctx context.Context, nimID string, t flywheel.EvalType) (*flywheel.Evaluation, error) {
	e, err := scanEval(q.queryRow(ctx, `SELECT `+evalColumns+` FROM evaluations WHERE nim_id = ? AND eval_type = ?`, nimID, string(t)))
	if err == nil {
		return e, nil
	}
	if err != sql.ErrNoRows {
		return nil, fmt.Errorf("find evaluation: %w", err)
	}
	now := q.Now()
	e = &flywheel.Evaluation{ID: NewID(now), NIMID: nimID, EvalType: t, Scores: map[string]float64{}, StartedAt: now}
	_, err = q.exec(ctx, `INSERT INTO evaluations (id, nim_id, eval_type, scores, started_at) VALUES (?, ?, ?, '{}', ?)`,
		e.ID, nimID, string(t), now)
	if err != nil {
		return nil, fmt.Errorf("insert evaluation: %w", err)
	}
	return e, nil
}

// GetEvaluation returns one evaluation.
func (q *Queries) GetEvaluation(ctx context.Context, id string) (*flywheel.Evaluation, error) {
	e, err := scanEval(q.queryRow(ctx, `SELECT `+evalColumns+` FROM evaluations WHERE id = ?`, id))
	if err != nil {
		return nil, notFound(err, "evaluation "+id)
	}
	return e, nil
}

// ListEvaluations returns a candidate's evaluations in one order: base,
// icl, customized (then any other type), whichever started first.
func (q *Queries) ListEvaluations(ctx context.Context, nimID string) ([]flywheel.Evaluation, error) {
	rows, err := q.query(ctx, `SELECT `+evalColumns+` FROM evaluations WHERE nim_id = ?
		ORDER BY CASE eval_type WHEN 'base-eval' THEN 0 WHEN 'icl-eval' THEN 1 WHEN 'customized-eval' THEN 2 ELSE 3 END, started_at, eval_type`, nimID)
	if err != nil {
		return nil, fmt.Errorf("list evaluations: %w", err)
	}
	defer rows.Close()
	out := []flywheel.Evaluation{}
	for rows.Next() {
		e, err := scanEval(rows)
		if err != nil {
			return nil, fmt.Errorf("scan evaluation: %w", err)
		}
		out = append(out, *e)
	}
	return out, rows.Err()
}

// SetEvaluationProgress records progress (0..100) and, when given, the remote job.
func (q *Queries) SetEvaluationProgress(ctx context.Context, id string, progress float64, jobID, nmpURI string) error {
	_, err := q.exec(ctx, `UPDATE evaluations SET progress = ?, job_id = COALESCE(NULLIF(?, ''), job_id), nmp_uri = COALESCE(?, nmp_uri)
		WHERE id = ? AND finished_at IS NULL`, progress, jobID, nullString(nmpURI), id)
	if err != nil {
		return fmt.Errorf("set evaluation progress: %w", err)
	}
	return nil
}

// FinishEvaluation stores an evaluation's result, or its error.
func (q *Queries) FinishEvaluation(ctx context.Context, id string, res *flywheel.EvalResult, errMsg string) error {
	e, err := q.GetEvaluation(ctx, id)
	if err != nil {
		return err
	}
	now := q.Now()
	scores, details, summary := "{}", sql.NullString{}, sql.NullString{}
	progress := e.Progress
	if res != nil {
		if scores, err = jsonText(res.Scores); err != nil {
			return err
		}
		if details, err = nullJSON(res.Details, len(res.Details) > 0); err != nil {
			return err
		}
		if summary, err = nullJSON(res.Summary, true); err != nil {
			return err
		}
		progress = 100
	}
	_, err = q.exec(ctx, `UPDATE evaluations SET scores = ?, details = ?, summary = ?, finished_at = ?, runtime_seconds = ?,
		progress = ?, error = ? WHERE id = ?`, scores, details, summary, now, now.Sub(e.StartedAt).Seconds(), progress, nullString(errMsg), id)
	if err != nil {
		return fmt.Errorf("finish evaluation: %w", err)
	}
	return nil
}

// SetEvaluationMLflowURI records where an evaluation was exported.
func (q *Queries) SetEvaluationMLflowURI(ctx context.Context, id, uri string) error {
	if _, err := q.exec(ctx, `UPDATE evaluations SET mlflow_uri = ? WHERE id = ?`, uri, id); err != nil {
		return fmt.Errorf("set mlflow uri: %w", err)
	}
	return nil
}

// ReplaceItems stores the per-item results of an evaluation, replacing any
// from an earlier attempt.
func (q *Queries) ReplaceItems(ctx context.Context, evaluationID string, items []flywheel.ItemResult) error {
	if _, err := q.exec(ctx, `DELETE FROM eval_items WHERE evaluation_id = ?`, evaluationID); err != nil {
		return fmt.Errorf("clear items: %w", err)
	}
	const batch = 200
	for start := 0; start < len(items); start += batch {
		end := min(start+batch, len(items))
		var args []any
		for _, it := range items[start:end] {
			scores, err := jsonText(it.Scores)
			if err != nil {
				return fmt.Errorf("item %d: %w", it.Index, err)
			}
			args = append(args, evaluationID, it.Index, it.Tool, rawOrNull(it.Request), rawOrNull(it.Reference), rawOrNull(it.Prediction),
				scores, it.ErrorClass, it.Error, it.LatencyMS, it.PromptTokens, it.CompletionTokens)
		}
		values := strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?), ", end-start), ", ")
		if _, err := q.exec(ctx, `INSERT INTO eval_items (evaluation_id, idx, tool, request, reference, prediction, scores, error_class, error,
			latency_ms, prompt_tokens, completion_tokens) VALUES `+values, args...); err != nil {
			return fmt.Errorf("insert items: %w", err)
		}
	}
	return nil
}

func rawOrNull(b []byte) sql.NullString {
	return sql.NullString{String: string(b), Valid: len(b) > 0}
}

// ListItems returns a page of per-item results.
func (q *Queries) ListItems(ctx context.Context, f flywheel.ItemFilter) (flywheel.ItemPage, error) {
	where := "evaluation_id = ?"
	args := []any{f.EvaluationID}
	if f.Tool != "" {
		where += " AND tool = ?"
		args = append(args, f.Tool)
	}
	if f.ErrorClass != "" {
		where += " AND error_class = ?"
		args = append(args, f.ErrorClass)
	}
	if f.OnlyDivergent {
		where += " AND (error_class <> '' OR error <> '')"
	}
	var page flywheel.ItemPage
	if err := q.queryRow(ctx, `SELECT COUNT(*) FROM eval_items WHERE `+where, args...).Scan(&page.Total); err != nil {
		return page, fmt.Errorf("count items: %w", err)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	rows, err := q.query(ctx, `SELECT evaluation_id, idx, tool, request, reference, prediction, scores, error_class, error, latency_ms,
		prompt_tokens, completion_tokens FROM eval_items WHERE `+where+` ORDER BY idx LIMIT ? OFFSET ?`, append(args, limit, f.Offset)...)
	if err != nil {
		return page, fmt.Errorf("list items: %w", err)
	}
	defer rows.Close()
	page.Items = []flywheel.ItemResult{}
	for rows.Next() {
		var (
			it             flywheel.ItemResult
			req, ref, pred sql.NullString
			scores         string
		)
		if err := rows.Scan(&it.EvaluationID, &it.Index, &it.Tool, &req, &ref, &pred, &scores, &it.ErrorClass, &it.Error,
			&it.LatencyMS, &it.PromptTokens, &it.CompletionTokens); err != nil {
			return page, fmt.Errorf("scan item: %w", err)
		}
		it.Request, it.Reference, it.Prediction = rawBytes(req), rawBytes(ref), rawBytes(pred)
		if err := fromJSON(sql.NullString{String: scores, Valid: true}, &it.Scores); err != nil {
			return page, err
		}
		page.Items = append(page.Items, it)
	}
	return page, rows.Err()
}

func rawBytes(ns sql.NullString) []byte {
	if !ns.Valid {
		return nil
	}
	return []byte(ns.String)
}

const custColumns = `id, nim_id, job_id, workload_id, base_model, customized_model, started_at, finished_at, runtime_seconds, progress,
	epochs_completed, steps_completed, nmp_uri, error, losses, progress_at`

func scanCust(row interface{ Scan(...any) error }) (*flywheel.Customization, *time.Time, error) {
	var (
		c                              flywheel.Customization
		model, nmpURI, errText, losses sql.NullString
		finished, progressAt           sql.NullTime
	)
	if err := row.Scan(&c.ID, &c.NIMID, &c.JobID, &c.WorkloadID, &c.BaseModel, &model, &c.StartedAt, &finished, &c.RuntimeSeconds,
		&c.Progress, &c.EpochsCompleted, &c.StepsCompleted, &nmpURI, &errText, &losses, &progressAt); err != nil {
		return nil, nil, err
	}
	c.StartedAt = c.StartedAt.UTC()
	c.CustomizedModel, c.NMPURI = strPtr(model), strPtr(nmpURI)
	c.FinishedAt = timePtr(finished)
	c.Error = errText.String
	if err := fromJSON(losses, &c.Losses); err != nil {
		return nil, nil, err
	}
	return &c, timePtr(progressAt), nil
}

// UpsertCustomization returns the customization of a candidate, creating it when absent.
func (q *Queries) UpsertCustomization(ctx context.Context, nimID, workloadID, baseModel string) (*flywheel.Customization, error) {
	c, _, err := scanCust(q.queryRow(ctx, `SELECT `+custColumns+` FROM customizations WHERE nim_id = ?`, nimID))
	if err == nil {
		return c, nil
	}
	if err != sql.ErrNoRows {
		return nil, fmt.Errorf("find customization: %w", err)
	}
	now := q.Now()
	c = &flywheel.Customization{ID: NewID(now), NIMID: nimID, WorkloadID: workloadID, BaseModel: baseModel, StartedAt: now}
	_, err = q.exec(ctx, `INSERT INTO customizations (id, nim_id, workload_id, base_model, started_at, progress_at) VALUES (?, ?, ?, ?, ?, ?)`,
		c.ID, nimID, workloadID, baseModel, now, now)
	if err != nil {
		return nil, fmt.Errorf("insert customization: %w", err)
	}
	return c, nil
}

// GetCustomization returns a candidate's customization and when its progress last changed.
func (q *Queries) GetCustomization(ctx context.Context, nimID string) (*flywheel.Customization, *time.Time, error) {
	c, at, err := scanCust(q.queryRow(ctx, `SELECT `+custColumns+` FROM customizations WHERE nim_id = ?`, nimID))
	if err != nil {
		return nil, nil, notFound(err, "customization of nim "+nimID)
	}
	return c, at, nil
}

// ListCustomizations returns a candidate's customizations (zero or one).
func (q *Queries) ListCustomizations(ctx context.Context, nimID string) ([]flywheel.Customization, error) {
	c, _, err := q.GetCustomization(ctx, nimID)
	if err != nil {
		if isNotFound(err) {
			return []flywheel.Customization{}, nil
		}
		return nil, err
	}
	return []flywheel.Customization{*c}, nil
}

// UpdateCustomization records a fine-tuning job's state. progress_at moves
// only when progress, epochs or steps changed (stall detection reads it).
func (q *Queries) UpdateCustomization(ctx context.Context, id string, job flywheel.CustomizationJob, uri string) error {
	c, _, err := scanCust(q.queryRow(ctx, `SELECT `+custColumns+` FROM customizations WHERE id = ?`, id))
	if err != nil {
		return notFound(err, "customization "+id)
	}
	now := q.Now()
	var progressAt any
	if job.Progress != c.Progress || job.EpochsCompleted != c.EpochsCompleted || job.StepsCompleted != c.StepsCompleted || len(job.Losses) != len(c.Losses) {
		progressAt = now
	}
	losses, err := nullJSON(job.Losses, len(job.Losses) > 0)
	if err != nil {
		return err
	}
	_, err = q.exec(ctx, `UPDATE customizations SET job_id = COALESCE(NULLIF(?, ''), job_id), progress = ?, epochs_completed = ?, steps_completed = ?,
		losses = COALESCE(?, losses), nmp_uri = COALESCE(?, nmp_uri), customized_model = COALESCE(?, customized_model),
		runtime_seconds = ?, progress_at = COALESCE(?, progress_at) WHERE id = ?`,
		job.ID, job.Progress, job.EpochsCompleted, job.StepsCompleted, losses, nullString(uri), nullString(job.OutputModel),
		now.Sub(c.StartedAt).Seconds(), progressAt, id)
	if err != nil {
		return fmt.Errorf("update customization: %w", err)
	}
	return nil
}

// FinishCustomization ends a customization, with an error on failure.
func (q *Queries) FinishCustomization(ctx context.Context, id string, progress float64, errMsg string) error {
	now := q.Now()
	_, err := q.exec(ctx, `UPDATE customizations SET finished_at = ?, progress = ?, error = COALESCE(error, ?) WHERE id = ? AND finished_at IS NULL`,
		now, progress, nullString(errMsg), id)
	if err != nil {
		return fmt.Errorf("finish customization: %w", err)
	}
	return nil
}

const judgeColumns = `id, flywheel_run_id, model_name, deployment_type, deployment_status, error`

// CreateJudge inserts a run's judge.
func (q *Queries) CreateJudge(ctx context.Context, j *flywheel.LLMJudgeRun) error {
	_, err := q.exec(ctx, `INSERT INTO llm_judge_runs (`+judgeColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
		j.ID, j.RunID, j.ModelName, j.DeploymentType, string(j.DeploymentStatus), nullString(j.Error))
	if err != nil {
		return fmt.Errorf("insert judge: %w", err)
	}
	return nil
}

// GetJudge returns a run's judge, or nil when it has none.
func (q *Queries) GetJudge(ctx context.Context, runID string) (*flywheel.LLMJudgeRun, error) {
	var (
		j       flywheel.LLMJudgeRun
		status  string
		errText sql.NullString
	)
	err := q.queryRow(ctx, `SELECT `+judgeColumns+` FROM llm_judge_runs WHERE flywheel_run_id = ?`, runID).
		Scan(&j.ID, &j.RunID, &j.ModelName, &j.DeploymentType, &status, &errText)
	if err == sql.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get judge: %w", err)
	}
	j.DeploymentStatus = flywheel.DeploymentStatus(status)
	j.Error = errText.String
	return &j, nil
}

// SetJudgeStatus records the judge's deployment status and error.
func (q *Queries) SetJudgeStatus(ctx context.Context, runID string, status flywheel.DeploymentStatus, errMsg string) error {
	_, err := q.exec(ctx, `UPDATE llm_judge_runs SET deployment_status = ?, error = COALESCE(error, ?) WHERE flywheel_run_id = ?`,
		string(status), nullString(errMsg), runID)
	if err != nil {
		return fmt.Errorf("set judge status: %w", err)
	}
	return nil
}
