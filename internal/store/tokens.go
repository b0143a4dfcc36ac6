package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

const tokenColumns = `id, name, scope, hash, created_at, last_used_at, expires_at, revoked_at`

func scanToken(row interface{ Scan(...any) error }) (*flywheel.Token, error) {
	var (
		t                      flywheel.Token
		scope                  string
		used, expires, revoked sql.NullTime
	)
	if err := row.Scan(&t.ID, &t.Name, &scope, &t.Hash, &t.CreatedAt, &used, &expires, &revoked); err != nil {
		return nil, err
	}
	t.Scope = flywheel.Scope(scope)
	t.CreatedAt = t.CreatedAt.UTC()
	t.LastUsedAt, t.ExpiresAt, t.RevokedAt = timePtr(used), timePtr(expires), timePtr(revoked)
	return &t, nil
}

// CreateToken stores an API token; only the hash of its secret.
func (q *Queries) CreateToken(ctx context.Context, t *flywheel.Token) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = q.Now()
	}
	_, err := q.exec(ctx, `INSERT INTO api_tokens (`+tokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.Name, string(t.Scope), t.Hash, t.CreatedAt.UTC(), nullTime(t.LastUsedAt), nullTime(t.ExpiresAt), nullTime(t.RevokedAt))
	if err != nil {
		return fmt.Errorf("create token %s: %w", t.ID, err)
	}
	return nil
}

// GetToken returns the token with the id.
func (q *Queries) GetToken(ctx context.Context, id string) (*flywheel.Token, error) {
	t, err := scanToken(q.queryRow(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE id = ?`, id))
	if err != nil {
		return nil, notFound(err, "token "+id)
	}
	return t, nil
}

// ListTokens returns every token, oldest first.
func (q *Queries) ListTokens(ctx context.Context) ([]flywheel.Token, error) {
	rows, err := q.query(ctx, `SELECT `+tokenColumns+` FROM api_tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	out := []flywheel.Token{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("scan token: %w", err)
		}
		out = append(out, *t)
	}
	return out, rows.Err()
}

// RevokeToken marks a token revoked and ends its dashboard sessions. A
// token revoked before keeps its first revocation time.
func (q *Queries) RevokeToken(ctx context.Context, id string, at time.Time) error {
	res, err := q.exec(ctx, `UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`, at.UTC(), id)
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("token %s: %w", id, errNotFound)
	}
	if _, err := q.exec(ctx, `DELETE FROM ui_sessions WHERE token_id = ?`, id); err != nil {
		return fmt.Errorf("end sessions of token %s: %w", id, err)
	}
	return nil
}

// TouchToken records a use of the token. It writes only when the stored
// time is older than at, so concurrent requests do not move it backwards.
func (q *Queries) TouchToken(ctx context.Context, id string, at time.Time) error {
	_, err := q.exec(ctx, `UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`,
		at.UTC(), id, at.UTC())
	if err != nil {
		return fmt.Errorf("touch token %s: %w", id, err)
	}
	return nil
}

// CreateSession stores a dashboard session.
func (q *Queries) CreateSession(ctx context.Context, s *flywheel.Session) error {
	if s.CreatedAt.IsZero() {
		s.CreatedAt = q.Now()
	}
	_, err := q.exec(ctx, `INSERT INTO ui_sessions (hash, token_id, created_at, expires_at) VALUES (?, ?, ?, ?)`,
		s.Hash, s.TokenID, s.CreatedAt.UTC(), s.ExpiresAt.UTC())
	if err != nil {
		return fmt.Errorf("create session for token %s: %w", s.TokenID, err)
	}
	return nil
}

// GetSession returns the session whose secret has the hash.
func (q *Queries) GetSession(ctx context.Context, hash string) (*flywheel.Session, error) {
	var s flywheel.Session
	err := q.queryRow(ctx, `SELECT hash, token_id, created_at, expires_at FROM ui_sessions WHERE hash = ?`, hash).
		Scan(&s.Hash, &s.TokenID, &s.CreatedAt, &s.ExpiresAt)
	if err != nil {
		return nil, notFound(err, "session")
	}
	s.CreatedAt, s.ExpiresAt = s.CreatedAt.UTC(), s.ExpiresAt.UTC()
	return &s, nil
}

// DeleteSession removes a session; removing one that does not exist is not an error.
func (q *Queries) DeleteSession(ctx context.Context, hash string) error {
	if _, err := q.exec(ctx, `DELETE FROM ui_sessions WHERE hash = ?`, hash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteExpiredSessions removes the sessions that expired before the time given.
func (q *Queries) DeleteExpiredSessions(ctx context.Context, before time.Time) (int64, error) {
	res, err := q.exec(ctx, `DELETE FROM ui_sessions WHERE expires_at < ?`, before.UTC())
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

var _ flywheel.TokenStore = (*Store)(nil)
