package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

var _ flywheel.AuditLog = (*Queries)(nil)

// AuditLimitMax is the largest page ListAudit returns.
const AuditLimitMax = 1000

// AddAudit stores an audit entry and sets its ID (and At, when zero).
func (q *Queries) AddAudit(ctx context.Context, e *flywheel.AuditEntry) error {
	if e.At.IsZero() {
		e.At = q.Now()
	}
	detail := []byte("{}")
	if len(e.Detail) > 0 {
		var err error
		if detail, err = json.Marshal(e.Detail); err != nil {
			return fmt.Errorf("audit entry %s: detail: %w", e.Action, err)
		}
	}
	query := `INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?) RETURNING id`
	if err := q.queryRow(ctx, query, e.At.UTC(), e.Actor, e.Action, e.Target, string(detail)).Scan(&e.ID); err != nil {
		return fmt.Errorf("add audit entry %s: %w", e.Action, err)
	}
	return nil
}

// ListAudit returns a page of the audit log, newest first.
func (q *Queries) ListAudit(ctx context.Context, aq flywheel.AuditQuery) ([]flywheel.AuditEntry, error) {
	limit := aq.Limit
	if limit <= 0 || limit > AuditLimitMax {
		limit = AuditLimitMax
	}
	query, args := `SELECT id, at, actor, action, target, detail FROM audit_log WHERE 1 = 1`, []any{}
	if aq.Before > 0 {
		query += ` AND id < ?`
		args = append(args, aq.Before)
	}
	if aq.Action != "" {
		query += ` AND action = ?`
		args = append(args, aq.Action)
	}
	query += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := q.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit log: %w", err)
	}
	defer rows.Close()
	out := []flywheel.AuditEntry{}
	for rows.Next() {
		var (
			e      flywheel.AuditEntry
			detail string
		)
		if err := rows.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.Target, &detail); err != nil {
			return nil, fmt.Errorf("scan audit entry: %w", err)
		}
		e.At = e.At.UTC()
		if err := json.Unmarshal([]byte(detail), &e.Detail); err != nil {
			e.Detail = map[string]any{"unreadable": detail}
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
