package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// onlineInsertChunk is how many samples one INSERT stores.
const onlineInsertChunk = 100

// OnlineSeriesLimitMax is the most series ListOnlineSeries returns.
const OnlineSeriesLimitMax = 100

// InsertOnlineScores stores scored online samples, in one transaction.
func (s *Store) InsertOnlineScores(ctx context.Context, samples []flywheel.OnlineScore) error {
	if len(samples) == 0 {
		return nil
	}
	return s.InTx(ctx, func(q *Queries) error {
		for start := 0; start < len(samples); start += onlineInsertChunk {
			chunk := samples[start:min(start+onlineInsertChunk, len(samples))]
			var b strings.Builder
			b.WriteString(`INSERT INTO online_samples (promotion_id, workload_id, client_id, model, at, scores, production_latency_ms, candidate_latency_ms, error) VALUES `)
			args := make([]any, 0, len(chunk)*9)
			for i, sm := range chunk {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?)")
				scores := sm.Scores
				if scores == nil {
					scores = map[string]float64{}
				}
				js, err := jsonText(scores)
				if err != nil {
					return fmt.Errorf("online sample of workload %s: scores: %w", sm.WorkloadID, err)
				}
				args = append(args, sm.PromotionID, sm.WorkloadID, sm.ClientID, sm.Model, sm.At.UTC(), js,
					sm.ProductionLatencyMS, sm.CandidateLatencyMS, sm.Error)
			}
			if _, err := q.exec(ctx, b.String(), args...); err != nil {
				return fmt.Errorf("store %d online samples: %w", len(chunk), err)
			}
		}
		return nil
	})
}

// ListOnlineScores returns the newest samples of one series that oq
// selects, newest first.
func (q *Queries) ListOnlineScores(ctx context.Context, oq flywheel.OnlineQuery) ([]flywheel.OnlineScore, error) {
	query := `SELECT id, promotion_id, workload_id, client_id, model, at, scores, production_latency_ms, candidate_latency_ms, error
		FROM online_samples WHERE workload_id = ? AND client_id = ? AND model = ? AND promotion_id = ? AND at >= ?
		ORDER BY at DESC, id DESC`
	args := []any{oq.WorkloadID, oq.ClientID, oq.Model, oq.PromotionID, oq.Since.UTC()}
	if oq.Limit > 0 {
		query += ` LIMIT ?`
		args = append(args, oq.Limit)
	}
	rows, err := q.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list online samples of workload %s: %w", oq.WorkloadID, err)
	}
	defer rows.Close()
	out := []flywheel.OnlineScore{}
	for rows.Next() {
		var (
			s      flywheel.OnlineScore
			scores string
		)
		if err := rows.Scan(&s.ID, &s.PromotionID, &s.WorkloadID, &s.ClientID, &s.Model, &s.At, &scores,
			&s.ProductionLatencyMS, &s.CandidateLatencyMS, &s.Error); err != nil {
			return nil, fmt.Errorf("scan online sample: %w", classify(err))
		}
		s.At = s.At.UTC()
		if err := json.Unmarshal([]byte(scores), &s.Scores); err != nil {
			return nil, fmt.Errorf("online sample %d: scores: %w", s.ID, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list online samples of workload %s: %w", oq.WorkloadID, classify(err))
	}
	return out, nil
}

// ListOnlineSeries returns the series of a workload (every workload when
// workloadID is empty; one client when clientID is not empty) with samples
// at or after since, newest first, at most limit (OnlineSeriesLimitMax
// when 0 or above).
func (q *Queries) ListOnlineSeries(ctx context.Context, workloadID, clientID string, since time.Time, limit int) ([]flywheel.OnlineSeries, error) {
	if limit <= 0 || limit > OnlineSeriesLimitMax {
		limit = OnlineSeriesLimitMax
	}
	// MAX(at) over the series' index; SQLite answers it as the text the
	// driver stored, Postgres as a time.
	query, args := `SELECT workload_id, client_id, model, promotion_id, MAX(at) AS last FROM online_samples WHERE at >= ?`, []any{since.UTC()}
	if workloadID != "" {
		query += ` AND workload_id = ?`
		args = append(args, workloadID)
	}
	if clientID != "" {
		query += ` AND client_id = ?`
		args = append(args, clientID)
	}
	query += ` GROUP BY workload_id, client_id, model, promotion_id`
	rows, err := q.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list online series of workload %s: %w", workloadID, err)
	}
	defer rows.Close()
	out := []flywheel.OnlineSeries{}
	for rows.Next() {
		var (
			s    flywheel.OnlineSeries
			last any
		)
		if err := rows.Scan(&s.WorkloadID, &s.ClientID, &s.Model, &s.PromotionID, &last); err != nil {
			return nil, fmt.Errorf("scan online series: %w", classify(err))
		}
		if s.Last, err = dbTime(last); err != nil {
			return nil, fmt.Errorf("online series of workload %s: newest sample: %w", s.WorkloadID, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list online series of workload %s: %w", workloadID, classify(err))
	}
	slices.SortFunc(out, func(a, b flywheel.OnlineSeries) int { return b.Last.Compare(a.Last) })
	return out[:min(len(out), limit)], nil
}

// sqliteTimeLayout is how the SQLite driver writes a time.Time (its
// String form), which an aggregate such as MAX returns as text.
const sqliteTimeLayout = "2006-01-02 15:04:05.999999999 -0700 MST"

// dbTime converts a time column read through an aggregate.
func dbTime(v any) (time.Time, error) {
	switch t := v.(type) {
	case time.Time:
		return t.UTC(), nil
	case string:
		for _, layout := range []string{sqliteTimeLayout, time.RFC3339Nano} {
			if p, err := time.Parse(layout, t); err == nil {
				return p.UTC(), nil
			}
		}
		return time.Time{}, fmt.Errorf("unreadable time %q", t)
	case []byte:
		return dbTime(string(t))
	}
	return time.Time{}, fmt.Errorf("unreadable time of type %T", v)
}

// ExpireOnlineScores deletes the online samples taken before before and
// returns how many it deleted.
func (q *Queries) ExpireOnlineScores(ctx context.Context, before time.Time) (int64, error) {
	res, err := q.exec(ctx, `DELETE FROM online_samples WHERE at < ?`, before.UTC())
	if err != nil {
		return 0, fmt.Errorf("expire online samples: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("expire online samples: %w", err)
	}
	return n, nil
}
