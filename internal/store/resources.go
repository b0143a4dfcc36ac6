package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

const resourceColumns = `id, run_id, nim_id, kind, platform, remote_id, key, state, data, lease_owner, lease_expires_at, created_at, released_at, error`

func scanResource(row interface{ Scan(...any) error }) (*flywheel.Resource, error) {
	var (
		r               flywheel.Resource
		kind, state     string
		data, errText   sql.NullString
		lease, released sql.NullTime
	)
	if err := row.Scan(&r.ID, &r.RunID, &r.NIMID, &kind, &r.Platform, &r.RemoteID, &r.Key, &state, &data, &r.LeaseOwner, &lease,
		&r.CreatedAt, &released, &errText); err != nil {
		return nil, err
	}
	r.Kind, r.State = flywheel.ResourceKind(kind), flywheel.ResourceState(state)
	r.Data = rawBytes(data)
	r.LeaseExpiresAt, r.ReleasedAt = timePtr(lease), timePtr(released)
	r.CreatedAt = r.CreatedAt.UTC()
	r.Error = errText.String
	return &r, nil
}

// RecordResource adds a live resource to the ledger, or refreshes the entry
// with the same kind and key (a stage re-run finds what it created; a
// resource started again under the same key is live again).
func (q *Queries) RecordResource(ctx context.Context, r *flywheel.Resource) error {
	now := q.Now()
	_, err := q.exec(ctx, `INSERT INTO resources (run_id, nim_id, kind, platform, remote_id, key, state, data, lease_owner, lease_expires_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?, 'live', ?, ?, ?, ?)
		ON CONFLICT (kind, key) DO UPDATE SET remote_id = excluded.remote_id, data = excluded.data, lease_owner = excluded.lease_owner,
		lease_expires_at = excluded.lease_expires_at, state = 'live', released_at = NULL, error = NULL`,
		r.RunID, r.NIMID, string(r.Kind), r.Platform, r.RemoteID, r.Key, rawOrNull(r.Data), r.LeaseOwner, nullTime(r.LeaseExpiresAt), now)
	if err != nil {
		return fmt.Errorf("record resource %s %s: %w", r.Kind, r.Key, err)
	}
	got, err := q.GetResource(ctx, r.Kind, r.Key)
	if err != nil {
		return err
	}
	*r = *got
	return nil
}

// GetResource returns the ledger entry of a kind and key.
func (q *Queries) GetResource(ctx context.Context, kind flywheel.ResourceKind, key string) (*flywheel.Resource, error) {
	r, err := scanResource(q.queryRow(ctx, `SELECT `+resourceColumns+` FROM resources WHERE kind = ? AND key = ?`, string(kind), key))
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("resource %s %s", kind, key))
	}
	return r, nil
}

// ListResources returns a run's ledger entries in the given states (all when none given).
func (q *Queries) ListResources(ctx context.Context, runID string, states ...flywheel.ResourceState) ([]flywheel.Resource, error) {
	query := `SELECT ` + resourceColumns + ` FROM resources WHERE run_id = ?`
	args := []any{runID}
	if len(states) > 0 {
		query += ` AND state IN (` + placeholders(len(states)) + `)`
		for _, s := range states {
			args = append(args, string(s))
		}
	}
	return q.listResources(ctx, query+` ORDER BY id`, args...)
}

// ListNIMResources returns a candidate's ledger entries in the given states.
func (q *Queries) ListNIMResources(ctx context.Context, nimID string, kind flywheel.ResourceKind, states ...flywheel.ResourceState) ([]flywheel.Resource, error) {
	query := `SELECT ` + resourceColumns + ` FROM resources WHERE nim_id = ? AND kind = ?`
	args := []any{nimID, string(kind)}
	if len(states) > 0 {
		query += ` AND state IN (` + placeholders(len(states)) + `)`
		for _, s := range states {
			args = append(args, string(s))
		}
	}
	return q.listResources(ctx, query+` ORDER BY id`, args...)
}

// OrphanedResources returns live (or failed-to-release) entries whose run
// has finished or no longer exists: what the reaper must release. (A live
// entry of a running run belongs to a stage that will resume and find it.)
func (q *Queries) OrphanedResources(ctx context.Context) ([]flywheel.Resource, error) {
	return q.listResources(ctx, `SELECT `+resourceColumns+` FROM resources WHERE state IN ('live', 'release_failed')
		AND (run_id NOT IN (SELECT id FROM flywheel_runs) OR run_id IN (SELECT id FROM flywheel_runs WHERE finished_at IS NOT NULL))
		ORDER BY id`)
}

func (q *Queries) listResources(ctx context.Context, query string, args ...any) ([]flywheel.Resource, error) {
	rows, err := q.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list resources: %w", err)
	}
	defer rows.Close()
	var out []flywheel.Resource
	for rows.Next() {
		r, err := scanResource(rows)
		if err != nil {
			return nil, fmt.Errorf("scan resource: %w", err)
		}
		out = append(out, *r)
	}
	return out, rows.Err()
}

// MarkResourceReleased records that a resource was released.
func (q *Queries) MarkResourceReleased(ctx context.Context, id int64) error {
	_, err := q.exec(ctx, `UPDATE resources SET state = 'released', released_at = ?, error = NULL WHERE id = ?`, q.Now(), id)
	if err != nil {
		return fmt.Errorf("mark resource released: %w", err)
	}
	return nil
}

// MarkResourceReleaseFailed keeps a resource for a later retry with the error.
func (q *Queries) MarkResourceReleaseFailed(ctx context.Context, id int64, errMsg string) error {
	_, err := q.exec(ctx, `UPDATE resources SET state = 'release_failed', error = ? WHERE id = ?`, errMsg, id)
	if err != nil {
		return fmt.Errorf("mark resource release failed: %w", err)
	}
	return nil
}

// RenewLeases extends the leases a process holds.
func (q *Queries) RenewLeases(ctx context.Context, owner string, until time.Time) error {
	_, err := q.exec(ctx, `UPDATE resources SET lease_expires_at = ? WHERE lease_owner = ? AND state = 'live'`, until.UTC(), owner)
	if err != nil {
		return fmt.Errorf("renew leases: %w", err)
	}
	return nil
}

// Worker is a running flywheel process.
type Worker struct {
	ID          string
	Hostname    string
	PID         int
	StartedAt   time.Time
	HeartbeatAt time.Time
}

// Heartbeat records that a process is alive.
func (q *Queries) Heartbeat(ctx context.Context, w Worker) error {
	now := q.Now()
	_, err := q.exec(ctx, `INSERT INTO workers (id, hostname, pid, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`, w.ID, w.Hostname, w.PID, w.StartedAt.UTC(), now)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	return nil
}

// LiveWorkers returns processes that sent a heartbeat after since.
func (q *Queries) LiveWorkers(ctx context.Context, since time.Time) ([]Worker, error) {
	rows, err := q.query(ctx, `SELECT id, hostname, pid, started_at, heartbeat_at FROM workers WHERE heartbeat_at >= ? ORDER BY started_at`, since.UTC())
	if err != nil {
		return nil, fmt.Errorf("list workers: %w", err)
	}
	defer rows.Close()
	var out []Worker
	for rows.Next() {
		var w Worker
		if err := rows.Scan(&w.ID, &w.Hostname, &w.PID, &w.StartedAt, &w.HeartbeatAt); err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// RemoveWorker deletes a process's heartbeat row (on graceful stop) and
// drops its leases so nothing waits for it.
func (q *Queries) RemoveWorker(ctx context.Context, id string) error {
	if _, err := q.exec(ctx, `DELETE FROM workers WHERE id = ?`, id); err != nil {
		return fmt.Errorf("remove worker: %w", err)
	}
	return nil
}
