package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

const scheduleColumns = `id, workload_id, client_id, cron, min_new_records, agreement_below, agreement_metric, enabled,
	created_at, created_by, last_fired_at, last_run_id, next_fire_at, generation`

func scanSchedule(row interface{ Scan(...any) error }) (*flywheel.Schedule, error) {
	var (
		s               flywheel.Schedule
		minNew          sql.NullInt64
		below           sql.NullFloat64
		enabled         int
		lastFired, next sql.NullTime
		lastRun         sql.NullString
	)
	if err := row.Scan(&s.ID, &s.WorkloadID, &s.ClientID, &s.Cron, &minNew, &below, &s.AgreementMetric, &enabled,
		&s.CreatedAt, &s.CreatedBy, &lastFired, &lastRun, &next, &s.Generation); err != nil {
		return nil, err
	}
	if minNew.Valid {
		n := int(minNew.Int64)
		s.MinNewRecords = &n
	}
	if below.Valid {
		b := below.Float64
		s.AgreementBelow = &b
	}
	s.Enabled = enabled != 0
	s.CreatedAt = s.CreatedAt.UTC()
	s.LastFiredAt = timePtr(lastFired)
	s.LastRunID = lastRun.String
	s.NextFireAt = timePtr(next)
	return &s, nil
}

// CreateSchedule inserts a schedule.
func (q *Queries) CreateSchedule(ctx context.Context, s *flywheel.Schedule) error {
	var (
		minNew sql.NullInt64
		below  sql.NullFloat64
	)
	if s.MinNewRecords != nil {
		minNew = sql.NullInt64{Int64: int64(*s.MinNewRecords), Valid: true}
	}
	if s.AgreementBelow != nil {
		below = sql.NullFloat64{Float64: *s.AgreementBelow, Valid: true}
	}
	enabled := 0
	if s.Enabled {
		enabled = 1
	}
	_, err := q.exec(ctx, `INSERT INTO schedules (`+scheduleColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.ID, s.WorkloadID, s.ClientID, s.Cron, minNew, below, s.AgreementMetric, enabled, s.CreatedAt.UTC(), s.CreatedBy,
		nullTime(s.LastFiredAt), nullString(s.LastRunID), nullTime(s.NextFireAt), s.Generation)
	if err != nil {
		return fmt.Errorf("insert schedule: %w", err)
	}
	return nil
}

// GetSchedule returns a schedule; the error wraps flywheel.ErrNotFound when
// absent.
func (q *Queries) GetSchedule(ctx context.Context, id string) (*flywheel.Schedule, error) {
	s, err := scanSchedule(q.queryRow(ctx, `SELECT `+scheduleColumns+` FROM schedules WHERE id = ?`, id))
	if err != nil {
		return nil, notFound(err, "schedule "+id)
	}
	return s, nil
}

// ListSchedules returns the schedules, newest first; enabledOnly keeps the
// enabled ones.
func (q *Queries) ListSchedules(ctx context.Context, enabledOnly bool) ([]flywheel.Schedule, error) {
	query := `SELECT ` + scheduleColumns + ` FROM schedules`
	if enabledOnly {
		query += ` WHERE enabled = 1`
	}
	rows, err := q.query(ctx, query+` ORDER BY created_at DESC, id DESC`)
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	defer rows.Close()
	out := []flywheel.Schedule{}
	for rows.Next() {
		s, err := scanSchedule(rows)
		if err != nil {
			return nil, fmt.Errorf("scan schedule: %w", err)
		}
		out = append(out, *s)
	}
	return out, rows.Err()
}

// DeleteSchedule deletes a schedule and its events; the error wraps
// flywheel.ErrNotFound when absent.
func (q *Queries) DeleteSchedule(ctx context.Context, id string) error {
	// The events go first: SQLite enforces the cascade only with its
	// foreign_keys pragma on.
	if _, err := q.exec(ctx, `DELETE FROM schedule_events WHERE schedule_id = ?`, id); err != nil {
		return fmt.Errorf("delete schedule events: %w", err)
	}
	res, err := q.exec(ctx, `DELETE FROM schedules WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete schedule: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("schedule %s: %w", id, errNotFound)
	}
	return nil
}

// ClaimSchedule claims a due schedule for one fire: in one conditional
// UPDATE it moves the schedule on from generation (the value its caller
// read) and sets its next cron time. It reports false when the schedule
// was claimed by another process since, was disabled or deleted: then the
// caller must not fire. Of any number of processes claiming the same
// generation exactly one gets true.
func (q *Queries) ClaimSchedule(ctx context.Context, id string, generation int64, next *time.Time) (bool, error) {
	res, err := q.exec(ctx, `UPDATE schedules SET generation = generation + 1, next_fire_at = ?
		WHERE id = ? AND generation = ? AND enabled = 1`, nullTime(next), id, generation)
	if err != nil {
		return false, fmt.Errorf("claim schedule %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("claim schedule %s: %w", id, err)
	}
	return n == 1, nil
}

// ScheduleFired records the run a schedule started.
func (q *Queries) ScheduleFired(ctx context.Context, id string, at time.Time, runID string) error {
	if _, err := q.exec(ctx, `UPDATE schedules SET last_fired_at = ?, last_run_id = ? WHERE id = ?`, at.UTC(), runID, id); err != nil {
		return fmt.Errorf("record schedule %s fired: %w", id, err)
	}
	return nil
}

// AddScheduleEvent stores an event and sets its ID.
func (q *Queries) AddScheduleEvent(ctx context.Context, e *flywheel.ScheduleEvent) error {
	if e.At.IsZero() {
		e.At = q.Now()
	}
	err := q.queryRow(ctx, `INSERT INTO schedule_events (schedule_id, at, outcome, reason, run_id) VALUES (?, ?, ?, ?, ?) RETURNING id`,
		e.ScheduleID, e.At.UTC(), string(e.Outcome), e.Reason, nullString(e.RunID)).Scan(&e.ID)
	if err != nil {
		return fmt.Errorf("add schedule event: %w", err)
	}
	return nil
}

// ListScheduleEvents returns up to limit events of a schedule, newest first.
func (q *Queries) ListScheduleEvents(ctx context.Context, scheduleID string, limit int) ([]flywheel.ScheduleEvent, error) {
	rows, err := q.query(ctx, `SELECT id, schedule_id, at, outcome, reason, run_id FROM schedule_events
		WHERE schedule_id = ? ORDER BY id DESC LIMIT ?`, scheduleID, limit)
	if err != nil {
		return nil, fmt.Errorf("list schedule events: %w", err)
	}
	defer rows.Close()
	out := []flywheel.ScheduleEvent{}
	for rows.Next() {
		var (
			e       flywheel.ScheduleEvent
			outcome string
			runID   sql.NullString
		)
		if err := rows.Scan(&e.ID, &e.ScheduleID, &e.At, &outcome, &e.Reason, &runID); err != nil {
			return nil, fmt.Errorf("scan schedule event: %w", err)
		}
		e.At = e.At.UTC()
		e.Outcome = flywheel.ScheduleOutcome(outcome)
		e.RunID = runID.String
		out = append(out, e)
	}
	return out, rows.Err()
}

// UnfinishedRun returns the id of the newest unfinished run of a workload
// and client, or "" when every run of theirs has finished.
func (q *Queries) UnfinishedRun(ctx context.Context, workloadID, clientID string) (string, error) {
	var id string
	err := q.queryRow(ctx, `SELECT id FROM flywheel_runs WHERE workload_id = ? AND client_id = ? AND finished_at IS NULL
		ORDER BY started_at DESC, id DESC LIMIT 1`, workloadID, clientID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("find unfinished run: %w", err)
	}
	return id, nil
}

// NewestRunStart returns when the newest run of a workload and client was
// created, or nil when they have none.
func (q *Queries) NewestRunStart(ctx context.Context, workloadID, clientID string) (*time.Time, error) {
	var at time.Time
	err := q.queryRow(ctx, `SELECT started_at FROM flywheel_runs WHERE workload_id = ? AND client_id = ?
		ORDER BY started_at DESC, id DESC LIMIT 1`, workloadID, clientID).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find newest run: %w", err)
	}
	at = at.UTC()
	return &at, nil
}

// CountLogsSince counts the stored records of a workload and client logged
// after since (all of them when since is nil), counting no further than
// limit.
func (q *Queries) CountLogsSince(ctx context.Context, workloadID, clientID string, since *time.Time, limit int) (int, error) {
	query, args := `SELECT 1 FROM log_records WHERE workload_id = ? AND client_id = ?`, []any{workloadID, clientID}
	if since != nil {
		query += ` AND ts > ?`
		args = append(args, since.UTC())
	}
	args = append(args, limit)
	var n int
	if err := q.queryRow(ctx, `SELECT COUNT(*) FROM (`+query+` LIMIT ?) AS recent`, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count new log records: %w", err)
	}
	return n, nil
}
