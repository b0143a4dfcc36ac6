package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// ListWorkloads returns every workload and client that has runs, with its
// run counts and newest run, the one with the newest run first.
func (q *Queries) ListWorkloads(ctx context.Context) ([]flywheel.WorkloadSummary, error) {
	rows, err := q.query(ctx, `SELECT id, runs, finished FROM (
		SELECT id,
			COUNT(*) OVER (PARTITION BY workload_id, client_id) AS runs,
			COUNT(finished_at) OVER (PARTITION BY workload_id, client_id) AS finished,
			ROW_NUMBER() OVER (PARTITION BY workload_id, client_id ORDER BY started_at DESC, id DESC) AS rn
		FROM flywheel_runs) t WHERE rn = 1`)
	if err != nil {
		return nil, fmt.Errorf("list workloads: %w", err)
	}
	defer rows.Close()
	counts := map[string][2]int{}
	var ids []any
	for rows.Next() {
		var (
			id             string
			runs, finished int
		)
		if err := rows.Scan(&id, &runs, &finished); err != nil {
			return nil, fmt.Errorf("scan workload: %w", err)
		}
		counts[id] = [2]int{runs, finished}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list workloads: %w", err)
	}
	rows.Close()
	out := []flywheel.WorkloadSummary{}
	if len(ids) == 0 {
		return out, nil
	}
	runs, err := q.runsWhere(ctx, `id IN (`+placeholders(len(ids))+`) ORDER BY started_at DESC, id DESC`, ids...)
	if err != nil {
		return nil, err
	}
	for _, r := range runs {
		c := counts[r.ID]
		out = append(out, flywheel.WorkloadSummary{WorkloadID: r.WorkloadID, ClientID: r.ClientID, Runs: c[0], Finished: c[1], LastRun: r})
	}
	return out, nil
}

// CountWorkloadRuns counts the runs of a workload (of one client when
// clientID is not empty), finished or not.
func (q *Queries) CountWorkloadRuns(ctx context.Context, workloadID, clientID string) (int, error) {
	where, args := workloadWhere(workloadID, clientID)
	var n int
	if err := q.queryRow(ctx, `SELECT COUNT(*) FROM flywheel_runs WHERE `+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count workload runs: %w", err)
	}
	return n, nil
}

// FinishedRuns returns the newest limit finished runs of a workload (of
// one client when clientID is not empty), oldest first, without their
// datasets.
func (q *Queries) FinishedRuns(ctx context.Context, workloadID, clientID string, limit int) ([]*flywheel.Run, error) {
	where, args := workloadWhere(workloadID, clientID)
	runs, err := q.runsWhere(ctx, where+` AND finished_at IS NOT NULL ORDER BY started_at DESC, id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, err
	}
	slices.Reverse(runs)
	return runs, nil
}

func workloadWhere(workloadID, clientID string) (string, []any) {
	if clientID == "" {
		return "workload_id = ?", []any{workloadID}
	}
	return "workload_id = ? AND client_id = ?", []any{workloadID, clientID}
}

// runsWhere returns the runs a WHERE clause (with its ORDER BY) selects,
// without their datasets.
func (q *Queries) runsWhere(ctx context.Context, where string, args ...any) ([]*flywheel.Run, error) {
	rows, err := q.query(ctx, `SELECT `+runColumns+` FROM flywheel_runs WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	defer rows.Close()
	out := []*flywheel.Run{}
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("scan run: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// prefixScanner scans the leading columns of a row into prefix and the
// rest into what the caller asks for.
type prefixScanner struct {
	row    interface{ Scan(...any) error }
	prefix []any
}

func (p prefixScanner) Scan(dest ...any) error {
	return p.row.Scan(append(slices.Clone(p.prefix), dest...)...)
}

// RunEvaluations returns the evaluations of the runs' candidates, by run,
// then candidate in the run's order, then base, icl, customized.
func (q *Queries) RunEvaluations(ctx context.Context, runIDs ...string) ([]flywheel.CandidateEvaluation, error) {
	out := []flywheel.CandidateEvaluation{}
	if len(runIDs) == 0 {
		return out, nil
	}
	args := make([]any, len(runIDs))
	for i, id := range runIDs {
		args[i] = id
	}
	rows, err := q.query(ctx, `SELECT n.flywheel_run_id, n.model_name, e.id, e.nim_id, e.eval_type, e.scores, e.started_at, e.finished_at,
		e.runtime_seconds, e.progress, e.nmp_uri, e.mlflow_uri, e.job_id, e.error, e.details, e.summary
		FROM evaluations e JOIN nims n ON e.nim_id = n.id WHERE n.flywheel_run_id IN (`+placeholders(len(args))+`)
		ORDER BY n.flywheel_run_id, n.position,
			CASE e.eval_type WHEN 'base-eval' THEN 0 WHEN 'icl-eval' THEN 1 WHEN 'customized-eval' THEN 2 ELSE 3 END, e.started_at, e.eval_type`, args...)
	if err != nil {
		return nil, fmt.Errorf("list run evaluations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ce flywheel.CandidateEvaluation
		e, err := scanEval(prefixScanner{row: rows, prefix: []any{&ce.RunID, &ce.Candidate}})
		if err != nil {
			return nil, fmt.Errorf("scan evaluation: %w", err)
		}
		ce.Evaluation = *e
		out = append(out, ce)
	}
	return out, rows.Err()
}

// ItemScores returns every item of an evaluation with only what pairs and
// compares items: index, tool, reference (the production answer) and
// scores, in index order.
func (q *Queries) ItemScores(ctx context.Context, evaluationID string) ([]flywheel.ItemResult, error) {
	rows, err := q.query(ctx, `SELECT idx, tool, reference, scores FROM eval_items WHERE evaluation_id = ? ORDER BY idx`, evaluationID)
	if err != nil {
		return nil, fmt.Errorf("list item scores: %w", err)
	}
	defer rows.Close()
	out := []flywheel.ItemResult{}
	for rows.Next() {
		var (
			it     flywheel.ItemResult
			ref    sql.NullString
			scores string
		)
		if err := rows.Scan(&it.Index, &it.Tool, &ref, &scores); err != nil {
			return nil, fmt.Errorf("scan item scores: %w", err)
		}
		it.EvaluationID, it.Reference = evaluationID, rawBytes(ref)
		if err := fromJSON(sql.NullString{String: scores, Valid: true}, &it.Scores); err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return out, rows.Err()
}
