package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

var _ flywheel.RecordSource = (*Queries)(nil)
var _ flywheel.LogIngester = (*Store)(nil)

// logBatch is how many records go in one INSERT statement (SQLite allows
// 32766 bound parameters; six per record).
const logBatch = 1000

// InsertLogs stores records in one transaction, skipping those whose
// content hash is already stored.
func (s *Store) InsertLogs(ctx context.Context, recs []flywheel.LogRecord) (inserted, duplicates int, err error) {
	err = s.InTx(ctx, func(q *Queries) error {
		inserted, duplicates, err = q.InsertLogs(ctx, recs)
		return err
	})
	return inserted, duplicates, err
}

// InsertLogs stores records, skipping those already stored.
func (q *Queries) InsertLogs(ctx context.Context, recs []flywheel.LogRecord) (inserted, duplicates int, err error) {
	for start := 0; start < len(recs); start += logBatch {
		end := min(start+logBatch, len(recs))
		args := make([]any, 0, (end-start)*6)
		for _, r := range recs[start:end] {
			h := r.ContentHash
			if h == "" {
				h = r.Hash()
			}
			args = append(args, r.WorkloadID, r.ClientID, r.Timestamp.UTC(), string(r.Request), string(r.Response), h)
		}
		values := strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?), ", end-start), ", ")
		res, err := q.exec(ctx, `INSERT INTO log_records (workload_id, client_id, ts, request, response, hash) VALUES `+values+
			` ON CONFLICT (hash) DO NOTHING`, args...)
		if err != nil {
			return inserted, duplicates, fmt.Errorf("insert log records: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return inserted, duplicates, fmt.Errorf("insert log records: %w", err)
		}
		inserted += int(n)
		duplicates += end - start - int(n)
	}
	return inserted, duplicates, nil
}

// NewestRecords returns up to limit records of a workload and client, newest first.
func (q *Queries) NewestRecords(ctx context.Context, workloadID, clientID string, limit int) ([]flywheel.LogRecord, error) {
	query := `SELECT id, workload_id, client_id, ts, request, response FROM log_records WHERE workload_id = ? AND client_id = ?
		ORDER BY ts DESC, id DESC`
	args := []any{workloadID, clientID}
	if limit > 0 {
		query += ` LIMIT ?`
		args = append(args, limit)
	}
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

// CountLogs counts the stored records of a workload and client ("" for all).
func (q *Queries) CountLogs(ctx context.Context, workloadID, clientID string) (int, error) {
	query, args := `SELECT COUNT(*) FROM log_records`, []any{}
	if workloadID != "" {
		query += ` WHERE workload_id = ? AND client_id = ?`
		args = append(args, workloadID, clientID)
	}
	var n int
	if err := q.queryRow(ctx, query, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count log records: %w", err)
	}
	return n, nil
}
