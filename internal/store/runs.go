package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

const runColumns = `id, workload_id, client_id, status, started_at, finished_at, num_records, datasets, error,
	spec, workload_type, stats, recommendation, idempotency_key, updated_at`

func scanRun(row interface{ Scan(...any) error }) (*flywheel.Run, error) {
	var (
		r                          flywheel.Run
		status, datasets, spec, wt string
		finished                   sql.NullTime
		errText, stats, rec, idem  sql.NullString
	)
	if err := row.Scan(&r.ID, &r.WorkloadID, &r.ClientID, &status, &r.StartedAt, &finished, &r.NumRecords,
		&datasets, &errText, &spec, &wt, &stats, &rec, &idem, &r.UpdatedAt); err != nil {
		return nil, err
	}
	r.Status = flywheel.RunStatus(status)
	r.StartedAt = r.StartedAt.UTC()
	r.UpdatedAt = r.UpdatedAt.UTC()
	r.FinishedAt = timePtr(finished)
	r.Error = errText.String
	r.WorkloadType = flywheel.WorkloadType(wt)
	r.IdempotencyKey = idem.String
	_ = datasets // the datasets table holds them (the column is from the first schema)
	if err := fromJSON(sql.NullString{String: spec, Valid: true}, &r.Spec); err != nil {
		return nil, err
	}
	if stats.Valid {
		r.Stats = &flywheel.DataStats{}
		if err := fromJSON(stats, r.Stats); err != nil {
			return nil, err
		}
	}
	if rec.Valid {
		r.Recommendation = &flywheel.Recommendation{}
		if err := fromJSON(rec, r.Recommendation); err != nil {
			return nil, err
		}
	}
	r.Datasets = []flywheel.Dataset{}
	return &r, nil
}

// CreateRun inserts a run. A run with the same non-empty IdempotencyKey
// makes it return ErrDuplicateKey.
func (q *Queries) CreateRun(ctx context.Context, r *flywheel.Run) error {
	spec, err := jsonText(r.Spec)
	if err != nil {
		return err
	}
	datasets, err := jsonText(r.Datasets)
	if err != nil {
		return err
	}
	_, err = q.exec(ctx, `INSERT INTO flywheel_runs (`+runColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?)`,
		r.ID, r.WorkloadID, r.ClientID, string(r.Status), r.StartedAt.UTC(), nullTime(r.FinishedAt), r.NumRecords,
		datasets, nullString(r.Error), spec, string(r.WorkloadType), nullString(r.IdempotencyKey), q.Now())
	if err != nil {
		if isUniqueViolation(err) {
			return ErrDuplicateKey
		}
		return fmt.Errorf("insert run: %w", err)
	}
	return nil
}

// ErrDuplicateKey is returned by CreateRun for a repeated idempotency key.
var ErrDuplicateKey = errors.New("duplicate idempotency key")

func isUniqueViolation(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "SQLSTATE 23505") ||
		strings.Contains(msg, "duplicate key value")
}

// GetRun returns a run; the error wraps flywheel.ErrNotFound when absent.
func (q *Queries) GetRun(ctx context.Context, id string) (*flywheel.Run, error) {
	r, err := scanRun(q.queryRow(ctx, `SELECT `+runColumns+` FROM flywheel_runs WHERE id = ?`, id))
	if err != nil {
		return nil, notFound(err, "run "+id)
	}
	return r, q.attachDatasets(ctx, r)
}

// RunFinished reports whether a run has ended (its finished_at is set),
// reading that column only; the error wraps flywheel.ErrNotFound when the
// run is absent. A stage transition asks it where GetRun would also read
// every column and the run's datasets.
func (q *Queries) RunFinished(ctx context.Context, id string) (bool, error) {
	var finished sql.NullTime
	if err := q.queryRow(ctx, `SELECT finished_at FROM flywheel_runs WHERE id = ?`, id).Scan(&finished); err != nil {
		return false, notFound(err, "run "+id)
	}
	return finished.Valid, nil
}

// GetRunByIdempotencyKey returns the run created with key.
func (q *Queries) GetRunByIdempotencyKey(ctx context.Context, key string) (*flywheel.Run, error) {
	r, err := scanRun(q.queryRow(ctx, `SELECT `+runColumns+` FROM flywheel_runs WHERE idempotency_key = ?`, key))
	if err != nil {
		return nil, notFound(err, "run with idempotency key")
	}
	return r, q.attachDatasets(ctx, r)
}

// ListRuns returns one page of runs, newest first, or oldest first when
// f.OldestFirst; ties on started_at are ordered by id the same way. A
// cursor continues in the order it was made in.
func (q *Queries) ListRuns(ctx context.Context, f flywheel.JobFilter) (flywheel.JobPage, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	var (
		where []string
		args  []any
	)
	if f.WorkloadID != "" {
		where = append(where, "workload_id = ?")
		args = append(args, f.WorkloadID)
	}
	if f.ClientID != "" {
		where = append(where, "client_id = ?")
		args = append(args, f.ClientID)
	}
	if f.Status != "" {
		where = append(where, "status = ?")
		args = append(args, string(f.Status))
	}
	if f.Cursor != "" {
		t, id, err := decodeCursor(f.Cursor)
		if err != nil {
			return flywheel.JobPage{}, flywheel.Errorf(flywheel.EINVALID, "Invalid cursor")
		}
		cmp := "<"
		if f.OldestFirst {
			cmp = ">"
		}
		where = append(where, "(started_at "+cmp+" ? OR (started_at = ? AND id "+cmp+" ?))")
		args = append(args, t, t, id)
	}
	query := `SELECT ` + runColumns + ` FROM flywheel_runs`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	if f.OldestFirst {
		query += " ORDER BY started_at ASC, id ASC LIMIT ?"
	} else {
		query += " ORDER BY started_at DESC, id DESC LIMIT ?"
	}
	args = append(args, limit+1)
	rows, err := q.query(ctx, query, args...)
	if err != nil {
		return flywheel.JobPage{}, fmt.Errorf("list runs: %w", err)
	}
	defer rows.Close()
	page := flywheel.JobPage{Runs: []*flywheel.Run{}}
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return flywheel.JobPage{}, fmt.Errorf("scan run: %w", err)
		}
		page.Runs = append(page.Runs, r)
	}
	if err := rows.Err(); err != nil {
		return flywheel.JobPage{}, fmt.Errorf("list runs: %w", err)
	}
	rows.Close()
	if len(page.Runs) > limit {
		page.Runs = page.Runs[:limit]
		last := page.Runs[limit-1]
		page.NextCursor = encodeCursor(last.StartedAt, last.ID)
	}
	return page, q.attachDatasets(ctx, page.Runs...)
}

func encodeCursor(t time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(t.UTC().Format(time.RFC3339Nano) + "|" + id))
}

func decodeCursor(c string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", err
	}
	ts, id, ok := strings.Cut(string(b), "|")
	if !ok || !ValidID(id) {
		return time.Time{}, "", errors.New("malformed cursor")
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	return t.UTC(), id, err
}

// CountRuns counts runs by status.
func (q *Queries) CountRuns(ctx context.Context) (map[flywheel.RunStatus]int, error) {
	rows, err := q.query(ctx, `SELECT status, COUNT(*) FROM flywheel_runs GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("count runs: %w", err)
	}
	defer rows.Close()
	out := map[flywheel.RunStatus]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, err
		}
		out[flywheel.RunStatus(s)] = n
	}
	return out, rows.Err()
}

// SetRunStatus moves a run that is not yet finished to status. It reports
// whether a row changed.
func (q *Queries) SetRunStatus(ctx context.Context, id string, status flywheel.RunStatus) (bool, error) {
	res, err := q.exec(ctx, `UPDATE flywheel_runs SET status = ?, updated_at = ? WHERE id = ? AND finished_at IS NULL`,
		string(status), q.Now(), id)
	return affected(res, err, "set run status")
}

// FinishRun sets a run's terminal status, finish time and error, unless the
// run has already finished (the first terminal outcome wins).
func (q *Queries) FinishRun(ctx context.Context, id string, status flywheel.RunStatus, errMsg string) (bool, error) {
	now := q.Now()
	res, err := q.exec(ctx, `UPDATE flywheel_runs SET status = ?, finished_at = ?, error = COALESCE(error, ?), updated_at = ?
		WHERE id = ? AND finished_at IS NULL`, string(status), now, nullString(errMsg), now, id)
	return affected(res, err, "finish run")
}

// SetRunDatasets records what create_datasets produced: the datasets (in
// the datasets table, replacing an earlier attempt's), the statistics, the
// record count and the workload type.
func (q *Queries) SetRunDatasets(ctx context.Context, id string, res flywheel.BuildResult) error {
	stats, err := jsonText(res.Stats)
	if err != nil {
		return err
	}
	if _, err := q.exec(ctx, `DELETE FROM datasets WHERE run_id = ?`, id); err != nil {
		return fmt.Errorf("clear run datasets: %w", err)
	}
	for i, d := range res.Datasets {
		_, err := q.exec(ctx, `INSERT INTO datasets (run_id, type, name, num_records, nmp_uri, path, position) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			id, string(d.Type), d.Name, d.NumRecords, nullStringPtr(d.NMPURI), d.Path, i)
		if err != nil {
			return fmt.Errorf("insert dataset %s: %w", d.Name, err)
		}
	}
	_, err = q.exec(ctx, `UPDATE flywheel_runs SET stats = ?, num_records = ?, workload_type = ?, updated_at = ? WHERE id = ?`,
		stats, res.NumRecords, string(res.WorkloadType), q.Now(), id)
	if err != nil {
		return fmt.Errorf("set run datasets: %w", err)
	}
	return nil
}

// attachDatasets fills the runs' datasets from the datasets table.
func (q *Queries) attachDatasets(ctx context.Context, runs ...*flywheel.Run) error {
	if len(runs) == 0 {
		return nil
	}
	byID := make(map[string]*flywheel.Run, len(runs))
	args := make([]any, 0, len(runs))
	for _, r := range runs {
		byID[r.ID] = r
		args = append(args, r.ID)
	}
	rows, err := q.query(ctx, `SELECT run_id, type, name, num_records, nmp_uri, path FROM datasets WHERE run_id IN (`+placeholders(len(args))+`)
		ORDER BY run_id, position`, args...)
	if err != nil {
		return fmt.Errorf("read datasets: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			runID, typ string
			d          flywheel.Dataset
			uri        sql.NullString
		)
		if err := rows.Scan(&runID, &typ, &d.Name, &d.NumRecords, &uri, &d.Path); err != nil {
			return fmt.Errorf("scan dataset: %w", err)
		}
		d.Type, d.NMPURI = flywheel.DatasetType(typ), strPtr(uri)
		if r := byID[runID]; r != nil {
			r.Datasets = append(r.Datasets, d)
		}
	}
	return rows.Err()
}

// SetRunStats records data statistics (also when dataset creation failed).
func (q *Queries) SetRunStats(ctx context.Context, id string, stats flywheel.DataStats) error {
	text, err := jsonText(stats)
	if err != nil {
		return err
	}
	if _, err := q.exec(ctx, `UPDATE flywheel_runs SET stats = ?, updated_at = ? WHERE id = ?`, text, q.Now(), id); err != nil {
		return fmt.Errorf("set run stats: %w", err)
	}
	return nil
}

// SetRunRecommendation records finalize's recommendation.
func (q *Queries) SetRunRecommendation(ctx context.Context, id string, rec *flywheel.Recommendation) error {
	text, err := nullJSON(rec, rec != nil)
	if err != nil {
		return err
	}
	if _, err := q.exec(ctx, `UPDATE flywheel_runs SET recommendation = ?, updated_at = ? WHERE id = ?`, text, q.Now(), id); err != nil {
		return fmt.Errorf("set run recommendation: %w", err)
	}
	return nil
}

// DeleteRun deletes a run and every row that belongs to it.
func (q *Queries) DeleteRun(ctx context.Context, id string) error {
	for _, stmt := range []string{
		`DELETE FROM eval_items WHERE evaluation_id IN (SELECT e.id FROM evaluations e JOIN nims n ON e.nim_id = n.id WHERE n.flywheel_run_id = ?)`,
		`DELETE FROM evaluations WHERE nim_id IN (SELECT id FROM nims WHERE flywheel_run_id = ?)`,
		`DELETE FROM customizations WHERE nim_id IN (SELECT id FROM nims WHERE flywheel_run_id = ?)`,
		`DELETE FROM nims WHERE flywheel_run_id = ?`,
		`DELETE FROM llm_judge_runs WHERE flywheel_run_id = ?`,
		`DELETE FROM stages WHERE run_id = ?`,
		`DELETE FROM datasets WHERE run_id = ?`,
		`DELETE FROM run_manifest_models WHERE run_id = ?`,
		`DELETE FROM run_manifests WHERE run_id = ?`,
		`DELETE FROM resources WHERE run_id = ? AND state = 'released'`,
		`DELETE FROM flywheel_runs WHERE id = ?`,
	} {
		if _, err := q.exec(ctx, stmt, id); err != nil {
			return fmt.Errorf("delete run %s: %w", id, err)
		}
	}
	return nil
}

// RunIDs returns the ids of runs in any of the given statuses.
func (q *Queries) RunIDs(ctx context.Context, statuses ...flywheel.RunStatus) ([]string, error) {
	if len(statuses) == 0 {
		return nil, nil
	}
	args := make([]any, len(statuses))
	for i, s := range statuses {
		args[i] = string(s)
	}
	rows, err := q.query(ctx, `SELECT id FROM flywheel_runs WHERE status IN (`+placeholders(len(statuses))+`) ORDER BY started_at`, args...)
	if err != nil {
		return nil, fmt.Errorf("list run ids: %w", err)
	}
	return scanStrings(rows)
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func scanStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func affected(res sql.Result, err error, what string) (bool, error) {
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	return n > 0, nil
}

// TryStartRun moves a pending run to running when fewer than maxRunning runs
// are running (maxRunning <= 0: no cap) and no older run is still waiting
// (first come, first served). It reports whether the run started. On
// Postgres two processes racing for the last slot may both take it; the cap
// is a budget, not a lock.
func (q *Queries) TryStartRun(ctx context.Context, id string, maxRunning int) (bool, error) {
	if maxRunning <= 0 {
		res, err := q.exec(ctx, `UPDATE flywheel_runs SET status = 'running', updated_at = ? WHERE id = ? AND status = 'pending'`, q.Now(), id)
		return affected(res, err, "start run")
	}
	// Room for this run once every older waiting run has its slot.
	res, err := q.exec(ctx, `UPDATE flywheel_runs SET status = 'running', updated_at = ? WHERE id = ? AND status = 'pending'
		AND (SELECT COUNT(*) FROM flywheel_runs WHERE status = 'running')
		  + (SELECT COUNT(*) FROM flywheel_runs o, flywheel_runs me WHERE me.id = ? AND o.status = 'pending'
			AND (o.started_at < me.started_at OR (o.started_at = me.started_at AND o.id < me.id))) < ?`,
		q.Now(), id, id, maxRunning)
	return affected(res, err, "start run")
}

// LockRun takes the run's row lock for the rest of the transaction, so that
// transactions changing a run's stages (a stage completing, a cancel) take
// their locks in one order and cannot deadlock. SQLite transactions are
// already serial; there it does nothing.
func (q *Queries) LockRun(ctx context.Context, id string) error {
	if q.dialect != Postgres || q.tx == nil {
		return nil
	}
	var got string
	err := q.queryRow(ctx, `SELECT id FROM flywheel_runs WHERE id = ? FOR UPDATE`, id).Scan(&got)
	if err != nil && err != sql.ErrNoRows {
		return fmt.Errorf("lock run %s: %w", id, err)
	}
	return nil
}
