package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

var _ flywheel.LogDeleter = (*Queries)(nil)

// DeleteLogs deletes the stored records of f's workload (and client, and
// before its time, when set) and returns how many it deleted.
func (q *Queries) DeleteLogs(ctx context.Context, f flywheel.LogFilter) (int64, error) {
	if f.WorkloadID == "" {
		return 0, flywheel.Errorf(flywheel.EINVALID, "delete logs: workload_id is required")
	}
	query, args := `DELETE FROM log_records WHERE workload_id = ?`, []any{f.WorkloadID}
	if f.ClientID != "" {
		query += ` AND client_id = ?`
		args = append(args, f.ClientID)
	}
	if !f.Before.IsZero() {
		query += ` AND ts < ?`
		args = append(args, f.Before.UTC())
	}
	res, err := q.exec(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("delete log records of workload %s: %w", f.WorkloadID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete log records of workload %s: %w", f.WorkloadID, err)
	}
	return n, nil
}

// Retention is the retention policy of stored records: records older than
// Days (by their timestamp) are deleted, or than Workloads[w] for workload
// w. Zero days keeps records forever.
type Retention struct {
	Days      int
	Workloads map[string]int
}

// ExpireLogs deletes the records the policy no longer keeps at now and
// returns how many it deleted per workload (only workloads with deletions).
func (q *Queries) ExpireLogs(ctx context.Context, p Retention, now time.Time) (map[string]int64, error) {
	out := map[string]int64{}
	overridden := slices.Sorted(maps.Keys(p.Workloads))
	for _, w := range overridden {
		days := p.Workloads[w]
		if days <= 0 {
			continue
		}
		n, err := q.DeleteLogs(ctx, flywheel.LogFilter{WorkloadID: w, Before: now.AddDate(0, 0, -days)})
		if err != nil {
			return out, err
		}
		if n > 0 {
			out[w] = n
		}
	}
	if p.Days <= 0 {
		return out, nil
	}
	// The default applies to every other workload: find those with expired
	// records, then delete per workload so the counts say whose went.
	cutoff := now.AddDate(0, 0, -p.Days).UTC()
	query, args := `SELECT DISTINCT workload_id FROM log_records WHERE ts < ?`, []any{cutoff}
	if len(overridden) > 0 {
		query += ` AND workload_id NOT IN (` + strings.TrimSuffix(strings.Repeat("?, ", len(overridden)), ", ") + `)`
		for _, w := range overridden {
			args = append(args, w)
		}
	}
	rows, err := q.query(ctx, query, args...)
	if err != nil {
		return out, fmt.Errorf("find expired log records: %w", err)
	}
	var workloads []string
	for rows.Next() {
		var w string
		if err := rows.Scan(&w); err != nil {
			rows.Close()
			return out, fmt.Errorf("scan workload: %w", err)
		}
		workloads = append(workloads, w)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("find expired log records: %w", err)
	}
	for _, w := range workloads {
		n, err := q.DeleteLogs(ctx, flywheel.LogFilter{WorkloadID: w, Before: cutoff})
		if err != nil {
			return out, err
		}
		if n > 0 {
			out[w] = n
		}
	}
	return out, nil
}

// RedactStored rewrites the stored records of a workload ("" for every
// workload) through redact, which changes a record in place and reports
// whether it did. A record whose redacted content is already stored is
// deleted as the duplicate it now is. It returns how many records it read,
// changed and deleted as duplicates.
func (q *Queries) RedactStored(ctx context.Context, workloadID string, redact func(*flywheel.LogRecord) bool) (scanned, changed, merged int, err error) {
	const page = 500
	var after int64
	for {
		query, args := `SELECT id, workload_id, client_id, ts, request, response FROM log_records WHERE id > ?`, []any{after}
		if workloadID != "" {
			query += ` AND workload_id = ?`
			args = append(args, workloadID)
		}
		query += ` ORDER BY id LIMIT ?`
		args = append(args, page)
		recs, err := q.scanLogs(ctx, query, args...)
		if err != nil {
			return scanned, changed, merged, err
		}
		for i := range recs {
			r := &recs[i]
			scanned++
			after = r.ID
			if !redact(r) {
				continue
			}
			h := r.Hash()
			var n int
			if err := q.queryRow(ctx, `SELECT COUNT(*) FROM log_records WHERE hash = ?`, h).Scan(&n); err != nil {
				return scanned, changed, merged, fmt.Errorf("redact log record %d: %w", r.ID, err)
			}
			if n > 0 {
				if _, err := q.exec(ctx, `DELETE FROM log_records WHERE id = ?`, r.ID); err != nil {
					return scanned, changed, merged, fmt.Errorf("redact log record %d: %w", r.ID, err)
				}
				merged++
				continue
			}
			if _, err := q.exec(ctx, `UPDATE log_records SET request = ?, response = ?, hash = ? WHERE id = ?`,
				string(r.Request), string(r.Response), h, r.ID); err != nil {
				return scanned, changed, merged, fmt.Errorf("redact log record %d: %w", r.ID, err)
			}
			changed++
		}
		if len(recs) < page {
			return scanned, changed, merged, nil
		}
	}
}

func (q *Queries) scanLogs(ctx context.Context, query string, args ...any) ([]flywheel.LogRecord, error) {
	rows, err := q.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read log records: %w", err)
	}
	defer rows.Close()
	var out []flywheel.LogRecord
	for rows.Next() {
		var (
			r             flywheel.LogRecord
			request, resp string
		)
		if err := rows.Scan(&r.ID, &r.WorkloadID, &r.ClientID, &r.Timestamp, &request, &resp); err != nil {
			return nil, fmt.Errorf("scan log record: %w", err)
		}
		r.Timestamp = r.Timestamp.UTC()
		r.Request, r.Response = []byte(request), []byte(resp)
		out = append(out, r)
	}
	return out, rows.Err()
}

// runFootprintQueries count a run's rows, by what they hold.
var runFootprintQueries = []struct{ name, query string }{
	{"eval_items", `SELECT COUNT(*) FROM eval_items WHERE evaluation_id IN (SELECT e.id FROM evaluations e JOIN nims n ON e.nim_id = n.id WHERE n.flywheel_run_id = ?)`},
	{"evaluations", `SELECT COUNT(*) FROM evaluations WHERE nim_id IN (SELECT id FROM nims WHERE flywheel_run_id = ?)`},
	{"customizations", `SELECT COUNT(*) FROM customizations WHERE nim_id IN (SELECT id FROM nims WHERE flywheel_run_id = ?)`},
	{"nims", `SELECT COUNT(*) FROM nims WHERE flywheel_run_id = ?`},
	{"stages", `SELECT COUNT(*) FROM stages WHERE run_id = ?`},
	{"datasets", `SELECT COUNT(*) FROM datasets WHERE run_id = ?`},
	{"remote_resources", `SELECT COUNT(*) FROM resources WHERE run_id = ?`},
	{"live_remote_resources", `SELECT COUNT(*) FROM resources WHERE run_id = ? AND state <> 'released'`},
	{"runs", `SELECT COUNT(*) FROM flywheel_runs WHERE id = ?`},
}

// RunFootprint counts what a run has in the database: its evaluation
// items, evaluations, customizations, candidates, stages, datasets and
// remote resources (all, and those not released yet).
func (q *Queries) RunFootprint(ctx context.Context, runID string) (map[string]int64, error) {
	out := make(map[string]int64, len(runFootprintQueries))
	for _, f := range runFootprintQueries {
		var n int64
		if err := q.queryRow(ctx, f.query, runID).Scan(&n); err != nil {
			return nil, fmt.Errorf("count %s of run %s: %w", f.name, runID, err)
		}
		out[f.name] = n
	}
	return out, nil
}
