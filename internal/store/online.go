package store

import (
	"context"
	"encoding/json"
	"fmt"
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
	// The newest sample of each series, by time.
	inner, args := `SELECT workload_id, client_id, model, promotion_id, at, id,
		ROW_NUMBER() OVER (PARTITION BY workload_id, client_id, model, promotion_id ORDER BY at DESC, id DESC) AS rn
		FROM online_samples WHERE at >= ?`, []any{since.UTC()}
	if workloadID != "" {
		inner += ` AND workload_id = ?`
		args = append(args, workloadID)
	}
	if clientID != "" {
		inner += ` AND client_id = ?`
		args = append(args, clientID)
	}
	query := `SELECT workload_id, client_id, model, promotion_id, at FROM (` + inner + `) newest
		WHERE rn = 1 ORDER BY at DESC, id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := q.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list online series of workload %s: %w", workloadID, err)
	}
	defer rows.Close()
	out := []flywheel.OnlineSeries{}
	for rows.Next() {
		var s flywheel.OnlineSeries
		if err := rows.Scan(&s.WorkloadID, &s.ClientID, &s.Model, &s.PromotionID, &s.Last); err != nil {
			return nil, fmt.Errorf("scan online series: %w", classify(err))
		}
		s.Last = s.Last.UTC()
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list online series of workload %s: %w", workloadID, classify(err))
	}
	return out, nil
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
