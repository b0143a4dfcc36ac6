package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// WorkerHold is a process's last heartbeat and the jobs it reported holding
// in it.
type WorkerHold struct {
	ID          string
	HeartbeatAt time.Time
	// HeldAt is when the process took the snapshot of Held (its own clock,
	// taken before the snapshot); zero when it never reported one.
	HeldAt time.Time
	Held   []int64
}

// HeartbeatHolding records that a process is alive and which jobs it held
// at heldAt.
func (q *Queries) HeartbeatHolding(ctx context.Context, w Worker, held []int64, heldAt time.Time) error {
	if held == nil {
		held = []int64{}
	}
	ids, err := jsonText(held)
	if err != nil {
		return err
	}
	_, err = q.exec(ctx, `INSERT INTO workers (id, hostname, pid, started_at, heartbeat_at, held_jobs, held_at) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, held_jobs = excluded.held_jobs, held_at = excluded.held_at`,
		w.ID, w.Hostname, w.PID, w.StartedAt.UTC(), q.Now(), ids, heldAt.UTC())
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	return nil
}

// WorkerHolds returns every process's last heartbeat and held jobs.
func (q *Queries) WorkerHolds(ctx context.Context) ([]WorkerHold, error) {
	rows, err := q.query(ctx, `SELECT id, heartbeat_at, held_at, held_jobs FROM workers`)
	if err != nil {
		return nil, fmt.Errorf("list worker holds: %w", err)
	}
	defer rows.Close()
	var out []WorkerHold
	for rows.Next() {
		var (
			w      WorkerHold
			heldAt sql.NullTime
			held   string
		)
		if err := rows.Scan(&w.ID, &w.HeartbeatAt, &heldAt, &held); err != nil {
			return nil, fmt.Errorf("scan worker hold: %w", err)
		}
		w.HeartbeatAt = w.HeartbeatAt.UTC()
		if heldAt.Valid {
			w.HeldAt = heldAt.Time.UTC()
		}
		if err := json.Unmarshal([]byte(held), &w.Held); err != nil {
			return nil, fmt.Errorf("worker %s: held jobs: %w", w.ID, err)
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// RunningJob is a River job in state running.
type RunningJob struct {
	ID      int64
	Kind    string
	Attempt int
	// Owner is the process that fetched the job last.
	Owner string
	// Age is how long ago, by the database's clock, it was fetched.
	Age time.Duration
	// AttemptedAt is the fetch time as stored, to guard a hand-back against
	// a job fetched again meanwhile.
	AttemptedAt string
}

// RunningJobs returns River's running jobs of the given kinds.
func (q *Queries) RunningJobs(ctx context.Context, kinds ...string) ([]RunningJob, error) {
	query := `SELECT id, kind, attempt, COALESCE(attempted_by[array_length(attempted_by, 1)], ''),
		EXTRACT(EPOCH FROM (now() - attempted_at))::float8, attempted_at::text
		FROM river_job WHERE state = 'running' AND attempted_at IS NOT NULL`
	if q.dialect == SQLite {
		query = `SELECT id, kind, attempt, COALESCE(json_extract(attempted_by, '$[#-1]'), ''),
		(julianday('now') - julianday(attempted_at)) * 86400.0, CAST(attempted_at AS TEXT)
		FROM river_job WHERE state = 'running' AND attempted_at IS NOT NULL`
	}
	rows, err := q.query(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("list running jobs: %w", err)
	}
	defer rows.Close()
	want := map[string]bool{}
	for _, k := range kinds {
		want[k] = true
	}
	var out []RunningJob
	for rows.Next() {
		var (
			j   RunningJob
			age float64
		)
		if err := rows.Scan(&j.ID, &j.Kind, &j.Attempt, &j.Owner, &age, &j.AttemptedAt); err != nil {
			return nil, fmt.Errorf("scan running job: %w", err)
		}
		if len(want) > 0 && !want[j.Kind] {
			continue
		}
		j.Age = time.Duration(age * float64(time.Second))
		out = append(out, j)
	}
	return out, rows.Err()
}

// HandBackJob makes a running job available again, unless it changed since
// it was read (finished, or fetched again). undoAttempt gives back the
// attempt River counted when the job was fetched (a fetch the process never
// received is no attempt). A job whose cancellation was requested while it
// was stranded is cancelled instead. It reports whether the job was handed
// back.
func (q *Queries) HandBackJob(ctx context.Context, id int64, attemptedAt string, undoAttempt bool) (bool, error) {
	query := `UPDATE river_job SET
		state = CASE WHEN metadata->>'cancel_attempted_at' IS NOT NULL THEN 'cancelled'::river_job_state ELSE 'available'::river_job_state END,
		finalized_at = CASE WHEN metadata->>'cancel_attempted_at' IS NOT NULL THEN now() ELSE finalized_at END,
		scheduled_at = now(),
		attempt = CASE WHEN ? THEN GREATEST(attempt - 1, 0) ELSE attempt END
		WHERE id = ? AND state = 'running' AND attempted_at::text = ?`
	if q.dialect == SQLite {
		query = `UPDATE river_job SET
		state = CASE WHEN json_extract(metadata, '$.cancel_attempted_at') IS NOT NULL THEN 'cancelled' ELSE 'available' END,
		finalized_at = CASE WHEN json_extract(metadata, '$.cancel_attempted_at') IS NOT NULL THEN datetime('now', 'subsec') ELSE finalized_at END,
		scheduled_at = datetime('now', 'subsec'),
		attempt = CASE WHEN ? THEN MAX(attempt - 1, 0) ELSE attempt END
		WHERE id = ? AND state = 'running' AND CAST(attempted_at AS TEXT) = ?`
	}
	res, err := q.exec(ctx, query, undoAttempt, id, attemptedAt)
	return affected(res, err, "hand back job")
}

// EndedJobStage is an open stage (queued or running) whose River job ended
// or is gone, so nothing will ever finish it.
type EndedJobStage struct {
	RunID     string
	Candidate string
	Name      string
	Status    string
	JobID     int64
	// JobState is River's state of the job, or "" when the job is gone.
	JobState string
	Attempt  int
	// LastError is the job's last recorded error, if any.
	LastError string
}

// StagesWithEndedJobs returns the queued or running stages whose River job
// is completed, cancelled, discarded or missing.
func (q *Queries) StagesWithEndedJobs(ctx context.Context) ([]EndedJobStage, error) {
	query := `SELECT s.run_id, s.candidate, s.name, s.status, s.job_id, COALESCE(j.state::text, ''), COALESCE(j.attempt, 0),
		COALESCE(j.errors[array_length(j.errors, 1)]->>'error', '')
		FROM stages s LEFT JOIN river_job j ON j.id = s.job_id
		WHERE s.status IN ('queued', 'running') AND (j.id IS NULL OR j.state IN ('completed', 'cancelled', 'discarded'))
		ORDER BY s.run_id, s.position`
	if q.dialect == SQLite {
		query = `SELECT s.run_id, s.candidate, s.name, s.status, s.job_id, COALESCE(j.state, ''), COALESCE(j.attempt, 0),
		COALESCE(json_extract(j.errors, '$[#-1].error'), '')
		FROM stages s LEFT JOIN river_job j ON j.id = s.job_id
		WHERE s.status IN ('queued', 'running') AND (j.id IS NULL OR j.state IN ('completed', 'cancelled', 'discarded'))
		ORDER BY s.run_id, s.position`
	}
	rows, err := q.query(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("find stages with ended jobs: %w", err)
	}
	defer rows.Close()
	var out []EndedJobStage
	for rows.Next() {
		var s EndedJobStage
		if err := rows.Scan(&s.RunID, &s.Candidate, &s.Name, &s.Status, &s.JobID, &s.JobState, &s.Attempt, &s.LastError); err != nil {
			return nil, fmt.Errorf("scan stage with ended job: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// RunsWithoutOpenStages returns unfinished runs none of whose stages is
// queued or running: unless the engine enqueues their pending stages,
// nothing will ever finish them.
func (q *Queries) RunsWithoutOpenStages(ctx context.Context) ([]string, error) {
	rows, err := q.query(ctx, `SELECT r.id FROM flywheel_runs r WHERE r.finished_at IS NULL
		AND NOT EXISTS (SELECT 1 FROM stages s WHERE s.run_id = r.id AND s.status IN ('queued', 'running'))
		ORDER BY r.started_at`)
	if err != nil {
		return nil, fmt.Errorf("find runs without open stages: %w", err)
	}
	return scanStrings(rows)
}
