package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

const stageColumns = `run_id, candidate, name, position, deps, status, attempts, job_id, started_at, finished_at, error, output, progress, time_limit_seconds`

func scanStage(row interface{ Scan(...any) error }) (*flywheel.Stage, error) {
	var (
		s                  flywheel.Stage
		name, status, deps string
		started, finished  sql.NullTime
		errText, output    sql.NullString
	)
	if err := row.Scan(&s.RunID, &s.Candidate, &name, &s.Position, &deps, &status, &s.Attempts, &s.JobID, &started, &finished,
		&errText, &output, &s.Progress, &s.TimeLimitSeconds); err != nil {
		return nil, err
	}
	s.Name, s.Status = flywheel.StageName(name), flywheel.StageStatus(status)
	s.StartedAt, s.FinishedAt = timePtr(started), timePtr(finished)
	s.Error = errText.String
	if output.Valid && output.String != "" {
		s.Output = json.RawMessage(output.String)
	}
	if err := fromJSON(sql.NullString{String: deps, Valid: true}, &s.Deps); err != nil {
		return nil, err
	}
	return &s, nil
}

// InsertStages records a run's DAG.
func (q *Queries) InsertStages(ctx context.Context, stages []flywheel.Stage) error {
	for _, s := range stages {
		deps, err := jsonText(s.Deps)
		if err != nil {
			return err
		}
		_, err = q.exec(ctx, `INSERT INTO stages (run_id, candidate, name, position, deps, status, time_limit_seconds) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			s.RunID, s.Candidate, string(s.Name), s.Position, deps, string(s.Status), s.TimeLimitSeconds)
		if err != nil {
			return fmt.Errorf("insert stage %s: %w", s.Name, err)
		}
	}
	return nil
}

// ListStages returns a run's stages in DAG order.
func (q *Queries) ListStages(ctx context.Context, runID string) ([]flywheel.Stage, error) {
	rows, err := q.query(ctx, `SELECT `+stageColumns+` FROM stages WHERE run_id = ? ORDER BY position`, runID)
	if err != nil {
		return nil, fmt.Errorf("list stages: %w", err)
	}
	defer rows.Close()
	out := []flywheel.Stage{}
	for rows.Next() {
		s, err := scanStage(rows)
		if err != nil {
			return nil, fmt.Errorf("scan stage: %w", err)
		}
		out = append(out, *s)
	}
	return out, rows.Err()
}

// GetStage returns one stage.
func (q *Queries) GetStage(ctx context.Context, runID, candidate string, name flywheel.StageName) (*flywheel.Stage, error) {
	s, err := scanStage(q.queryRow(ctx, `SELECT `+stageColumns+` FROM stages WHERE run_id = ? AND candidate = ? AND name = ?`,
		runID, candidate, string(name)))
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("stage %s/%s/%s", runID, candidate, name))
	}
	return s, nil
}

// QueueStage moves a pending stage to queued with its job id. It reports
// false when the stage was not pending (someone else queued it).
func (q *Queries) QueueStage(ctx context.Context, runID, candidate string, name flywheel.StageName, jobID int64) (bool, error) {
	res, err := q.exec(ctx, `UPDATE stages SET status = 'queued', job_id = ? WHERE run_id = ? AND candidate = ? AND name = ? AND status = 'pending'`,
		jobID, runID, candidate, string(name))
	return affected(res, err, "queue stage")
}

// SetStageJob records the job id that runs a stage.
func (q *Queries) SetStageJob(ctx context.Context, runID, candidate string, name flywheel.StageName, jobID int64) error {
	_, err := q.exec(ctx, `UPDATE stages SET job_id = ? WHERE run_id = ? AND candidate = ? AND name = ?`, jobID, runID, candidate, string(name))
	if err != nil {
		return fmt.Errorf("set stage job: %w", err)
	}
	return nil
}

// BeginStageAttempt marks a stage running, records the attempt number and sets its
// durable start time on the first attempt. It returns the updated stage, and
// false when the stage is already done. The update returns the stage's row,
// so an open stage costs one statement; a done one is read after.
func (q *Queries) BeginStageAttempt(ctx context.Context, runID, candidate string, name flywheel.StageName, attempt int) (*flywheel.Stage, bool, error) {
	s, err := scanStage(q.queryRow(ctx, `UPDATE stages SET status = 'running', attempts = CASE WHEN attempts > ? THEN attempts ELSE ? END,
		started_at = COALESCE(started_at, ?)
		WHERE run_id = ? AND candidate = ? AND name = ? AND status IN ('pending', 'queued', 'running')
		RETURNING `+stageColumns, attempt, attempt, q.Now(), runID, candidate, string(name)))
	if err == nil {
		return s, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, false, fmt.Errorf("begin stage attempt: %w", err)
	}
	s, err = q.GetStage(ctx, runID, candidate, name)
	return s, false, err
}

// FinishStage ends a stage unless it already ended; it reports whether it did.
func (q *Queries) FinishStage(ctx context.Context, runID, candidate string, name flywheel.StageName, status flywheel.StageStatus, errMsg string, output json.RawMessage) (bool, error) {
	res, err := q.exec(ctx, `UPDATE stages SET status = ?, finished_at = ?, error = ?, output = COALESCE(?, output),
		progress = CASE WHEN ? = 'succeeded' THEN 100 ELSE progress END
		WHERE run_id = ? AND candidate = ? AND name = ? AND status NOT IN ('succeeded', 'failed', 'skipped', 'cancelled')`,
		string(status), q.Now(), nullString(errMsg), rawOrNull(output), string(status), runID, candidate, string(name))
	return affected(res, err, "finish stage")
}

// SetStageNote records the last transient error or message of a running stage.
func (q *Queries) SetStageNote(ctx context.Context, runID, candidate string, name flywheel.StageName, note string) error {
	_, err := q.exec(ctx, `UPDATE stages SET error = ? WHERE run_id = ? AND candidate = ? AND name = ?`, nullString(note), runID, candidate, string(name))
	if err != nil {
		return fmt.Errorf("set stage note: %w", err)
	}
	return nil
}

// SetStageProgress records a stage's progress (0..100).
func (q *Queries) SetStageProgress(ctx context.Context, runID, candidate string, name flywheel.StageName, progress float64) error {
	_, err := q.exec(ctx, `UPDATE stages SET progress = ? WHERE run_id = ? AND candidate = ? AND name = ?`, progress, runID, candidate, string(name))
	if err != nil {
		return fmt.Errorf("set stage progress: %w", err)
	}
	return nil
}

// SetStageOutput records a stage's durable state between attempts.
func (q *Queries) SetStageOutput(ctx context.Context, runID, candidate string, name flywheel.StageName, output json.RawMessage) error {
	_, err := q.exec(ctx, `UPDATE stages SET output = ? WHERE run_id = ? AND candidate = ? AND name = ?`, rawOrNull(output), runID, candidate, string(name))
	if err != nil {
		return fmt.Errorf("set stage output: %w", err)
	}
	return nil
}

// CancelOpenStages marks every unfinished stage of a run cancelled and
// returns the job ids of those that were queued or running.
func (q *Queries) CancelOpenStages(ctx context.Context, runID string) ([]int64, error) {
	rows, err := q.query(ctx, `SELECT job_id FROM stages WHERE run_id = ? AND status IN ('queued', 'running') AND job_id <> 0`, runID)
	if err != nil {
		return nil, fmt.Errorf("list open stage jobs: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	_, err = q.exec(ctx, `UPDATE stages SET status = 'cancelled', finished_at = ? WHERE run_id = ? AND status IN ('pending', 'queued', 'running')
		AND name <> 'cleanup'`, q.Now(), runID)
	if err != nil {
		return nil, fmt.Errorf("cancel stages: %w", err)
	}
	return ids, nil
}

// OpenStageJobs returns, for runs that are not finished, the job ids of
// stages that are queued or running (doctor compares them with River's jobs).
func (q *Queries) OpenStageJobs(ctx context.Context) (map[string][]int64, error) {
	rows, err := q.query(ctx, `SELECT s.run_id, s.job_id FROM stages s JOIN flywheel_runs r ON r.id = s.run_id
		WHERE r.finished_at IS NULL AND s.status IN ('queued', 'running')`)
	if err != nil {
		return nil, fmt.Errorf("list open stage jobs: %w", err)
	}
	defer rows.Close()
	out := map[string][]int64{}
	for rows.Next() {
		var run string
		var id int64
		if err := rows.Scan(&run, &id); err != nil {
			return nil, err
		}
		out[run] = append(out[run], id)
	}
	return out, rows.Err()
}

// ResetRunningJobs makes River jobs left running by a dead process available
// again. Only an embedded (single-process) deployment may call it at start,
// when no other process can be running them. It returns how many it reset.
func (q *Queries) ResetRunningJobs(ctx context.Context) (int, error) {
	res, err := q.exec(ctx, `UPDATE river_job SET state = 'available' WHERE state = 'running'`)
	if err != nil {
		return 0, fmt.Errorf("reset running jobs: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// JobStates returns River's job counts by queue and state (for metrics).
func (q *Queries) JobStates(ctx context.Context) (map[[2]string]int, error) {
	rows, err := q.query(ctx, `SELECT queue, state, COUNT(*) FROM river_job GROUP BY queue, state`)
	if err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	defer rows.Close()
	out := map[[2]string]int{}
	for rows.Next() {
		var queue, state string
		var n int
		if err := rows.Scan(&queue, &state, &n); err != nil {
			return nil, err
		}
		out[[2]string{queue, state}] = n
	}
	return out, rows.Err()
}

// ResetStage puts a queued or running stage whose job is gone back to
// pending, so the DAG enqueues it again (doctor's repair).
func (q *Queries) ResetStage(ctx context.Context, runID, candidate string, name flywheel.StageName) error {
	_, err := q.exec(ctx, `UPDATE stages SET status = 'pending', job_id = 0 WHERE run_id = ? AND candidate = ? AND name = ?
		AND status IN ('queued', 'running')`, runID, candidate, string(name))
	if err != nil {
		return fmt.Errorf("reset stage: %w", err)
	}
	return nil
}

// InconsistentRuns returns finished runs that still have unfinished
// candidates or open stages (other than cleanup).
func (q *Queries) InconsistentRuns(ctx context.Context) ([]string, error) {
	rows, err := q.query(ctx, `SELECT id FROM flywheel_runs r WHERE r.finished_at IS NOT NULL AND (
		EXISTS (SELECT 1 FROM nims n WHERE n.flywheel_run_id = r.id AND n.finished_at IS NULL)
		OR EXISTS (SELECT 1 FROM stages s WHERE s.run_id = r.id AND s.name <> 'cleanup' AND s.status IN ('pending', 'queued', 'running')))
		ORDER BY r.started_at`)
	if err != nil {
		return nil, fmt.Errorf("find inconsistent runs: %w", err)
	}
	return scanStrings(rows)
}
