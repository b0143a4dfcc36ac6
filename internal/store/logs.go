package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

var _ flywheel.RecordSource = (*Queries)(nil)
var _ flywheel.LogIngester = (*Store)(nil)

// logBatch is how many records go in one INSERT statement (SQLite allows
// 32766 bound parameters; six per record).
const logBatch = 1000

// InsertLogs stores records in one transaction, skipping those whose
// content hash is already stored. Records that cannot be stored are left
// out and returned as *flywheel.RecordErrors; the others are stored and
// counted.
func (s *Store) InsertLogs(ctx context.Context, recs []flywheel.LogRecord) (inserted, duplicates int, err error) {
	var recErrs *flywheel.RecordErrors
	err = s.InTx(ctx, func(q *Queries) error {
		var err error
		inserted, duplicates, err = q.InsertLogs(ctx, recs)
		if errors.As(err, &recErrs) {
			return nil // commit the good records
		}
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	if recErrs != nil {
		return inserted, duplicates, recErrs
	}
	return inserted, duplicates, nil
}

// InsertLogs stores records, skipping those already stored. Records that
// break flywheel's storability rules (flywheel.CheckRecord), and any other
// record the database refuses with a data error, are left out and returned
// as *flywheel.RecordErrors, by their index in recs; every other record is
// stored and counted. Other errors (the database is down) are returned as
// they are, and nothing is known to be stored.
func (q *Queries) InsertLogs(ctx context.Context, recs []flywheel.LogRecord) (inserted, duplicates int, err error) {
	var (
		rejected flywheel.RecordErrors
		good     = make([]int, 0, len(recs)) // indexes into recs
	)
	for i, r := range recs {
		if field, reason := flywheel.CheckRecord(r); reason != "" {
			rejected.Items = append(rejected.Items, flywheel.RecordError{Index: i, Field: field, Reason: reason})
			continue
		}
		good = append(good, i)
	}
	for start := 0; start < len(good); start += logBatch {
		batch := good[start:min(start+logBatch, len(good))]
		n, err := q.insertLogBatch(ctx, recs, batch, &rejected)
		if err != nil {
			return inserted, duplicates, err
		}
		inserted += n
	}
	duplicates = len(good) - inserted
	if len(rejected.Items) > 0 {
		duplicates -= countIn(rejected.Items, good)
		slices.SortFunc(rejected.Items, func(a, b flywheel.RecordError) int { return a.Index - b.Index })
		return inserted, duplicates, &rejected
	}
	return inserted, duplicates, nil
}

// countIn counts the items whose index is in idx (sorted).
func countIn(items []flywheel.RecordError, idx []int) int {
	n := 0
	for _, it := range items {
		if _, ok := slices.BinarySearch(idx, it.Index); ok {
			n++
		}
	}
	return n
}

// insertLogBatch inserts recs[i] for every i of batch in one statement. When
// the database refuses it with a data error, it splits the batch in halves
// until the refused records are alone, stores all the others, and adds the
// refused ones to rejected. Inside a transaction each attempt runs under a
// savepoint, because Postgres aborts a transaction at its first error.
func (q *Queries) insertLogBatch(ctx context.Context, recs []flywheel.LogRecord, batch []int, rejected *flywheel.RecordErrors) (int, error) {
	n, err := q.attempt(ctx, func() (int, error) { return q.insertLogRows(ctx, recs, batch) })
	if err == nil || !isDataError(err) {
		return n, err
	}
	if len(batch) == 1 {
		rejected.Items = append(rejected.Items, flywheel.RecordError{Index: batch[0], Reason: "the database refused it: " + dataReason(err)})
		return 0, nil
	}
	half := len(batch) / 2
	a, err := q.insertLogBatch(ctx, recs, batch[:half], rejected)
	if err != nil {
		return a, err
	}
	b, err := q.insertLogBatch(ctx, recs, batch[half:], rejected)
	return a + b, err
}

// attempt runs fn under a savepoint when q is in a transaction, rolling back
// to it when fn fails, so the transaction can go on.
func (q *Queries) attempt(ctx context.Context, fn func() (int, error)) (int, error) {
	if q.tx == nil {
		return fn()
	}
	if _, err := q.exec(ctx, `SAVEPOINT insert_logs`); err != nil {
		return 0, fmt.Errorf("insert log records: %w", err)
	}
	n, err := fn()
	if err != nil {
		if _, rbErr := q.exec(ctx, `ROLLBACK TO SAVEPOINT insert_logs`); rbErr != nil {
			return 0, fmt.Errorf("insert log records: %w", errors.Join(err, rbErr))
		}
		_, _ = q.exec(ctx, `RELEASE SAVEPOINT insert_logs`)
		return 0, err
	}
	if _, err := q.exec(ctx, `RELEASE SAVEPOINT insert_logs`); err != nil {
		return 0, fmt.Errorf("insert log records: %w", err)
	}
	return n, nil
}

// insertLogRows inserts recs[i] for every i of batch in one statement and
// returns how many rows were new.
func (q *Queries) insertLogRows(ctx context.Context, recs []flywheel.LogRecord, batch []int) (int, error) {
	args := make([]any, 0, len(batch)*6)
	for _, i := range batch {
		r := recs[i]
		h := r.ContentHash
		if h == "" {
			h = r.Hash()
		}
		args = append(args, r.WorkloadID, r.ClientID, r.Timestamp.UTC(), string(r.Request), string(r.Response), h)
	}
	values := strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?), ", len(batch)), ", ")
	res, err := q.exec(ctx, `INSERT INTO log_records (workload_id, client_id, ts, request, response, hash) VALUES `+values+
		` ON CONFLICT (hash) DO NOTHING`, args...)
	if err != nil {
		return 0, fmt.Errorf("insert log records: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("insert log records: %w", err)
	}
	return int(n), nil
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
	return q.scanLogs(ctx, query, args...)
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
