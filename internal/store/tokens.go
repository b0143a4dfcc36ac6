package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

const tokenColumns = `id, name, scope, hash, created_at, last_used_at, expires_at, revoked_at, source`

func scanToken(row interface{ Scan(...any) error }) (*flywheel.Token, error) {
	var (
		t                      flywheel.Token
		scope, source          string
		used, expires, revoked sql.NullTime
	)
	if err := row.Scan(&t.ID, &t.Name, &scope, &t.Hash, &t.CreatedAt, &used, &expires, &revoked, &source); err != nil {
		return nil, err
	}
	t.Scope, t.Source = flywheel.Scope(scope), flywheel.TokenSource(source)
	t.CreatedAt = t.CreatedAt.UTC()
	t.LastUsedAt, t.ExpiresAt, t.RevokedAt = timePtr(used), timePtr(expires), timePtr(revoked)
	return &t, nil
}

// CreateToken stores an API token; only the hash of its secret.
func (q *Queries) CreateToken(ctx context.Context, t *flywheel.Token) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = q.Now()
	}
	if t.Source == "" {
		t.Source = flywheel.TokenSourceCLI
	}
	_, err := q.exec(ctx, `INSERT INTO api_tokens (`+tokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.Name, string(t.Scope), t.Hash, t.CreatedAt.UTC(), nullTime(t.LastUsedAt), nullTime(t.ExpiresAt), nullTime(t.RevokedAt),
		string(t.Source))
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

// GetFileTokenByHash returns the tokens file's token whose secret has the
// hash (the hash is of a secret the caller sent, so the lookup's timing
// tells nothing about stored secrets).
func (q *Queries) GetFileTokenByHash(ctx context.Context, hash string) (*flywheel.Token, error) {
	// A renamed line keeps its secret: the revoked row of the old name has
	// the same hash, and the active one wins.
	t, err := scanToken(q.queryRow(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE hash = ? AND source = ?
		ORDER BY CASE WHEN revoked_at IS NULL THEN 0 ELSE 1 END, created_at DESC, id LIMIT 1`,
		hash, string(flywheel.TokenSourceFile)))
	if err != nil {
		return nil, notFound(err, "token")
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

// FileTokensSync is what SyncFileTokens changed, by token id.
type FileTokensSync struct {
	// Added are tokens new to the database, or listed again after removal.
	Added []string
	// Changed are tokens whose secret or scope changed; a changed secret
	// ends the token's dashboard sessions.
	Changed []string
	// Revoked are tokens of the file no longer listed in it.
	Revoked []string
	// Unchanged counts listed tokens stored as they are.
	Unchanged int
}

// SyncFileTokens makes the database's file tokens (source file) those of
// tokens (from flywheel.ParseTokensFile): it inserts new ones, updates the
// secret and scope of changed ones, and revokes those no longer listed,
// in one transaction. Running it again with the same tokens changes
// nothing, and several processes may run it at once: rows are upserted on
// their id (derived from the name), so none is stored twice.
func (s *Store) SyncFileTokens(ctx context.Context, tokens []flywheel.Token, at time.Time) (FileTokensSync, error) {
	// The same order in every process: concurrent syncs lock rows alike.
	tokens = slices.Clone(tokens)
	slices.SortFunc(tokens, func(a, b flywheel.Token) int { return strings.Compare(a.ID, b.ID) })
	var res FileTokensSync
	err := s.InTx(ctx, func(q *Queries) error {
		res = FileTokensSync{}
		listed := make([]any, 0, len(tokens))
		for i := range tokens {
			t := &tokens[i]
			if t.Source != flywheel.TokenSourceFile || t.ID != flywheel.FileTokenID(t.Name) || t.Hash == "" {
				return fmt.Errorf("sync file tokens: token %q is not a tokens file's token", t.Name)
			}
			listed = append(listed, t.ID)
			old, err := scanToken(q.queryRow(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE id = ?`, t.ID))
			switch {
			case errors.Is(err, sql.ErrNoRows):
				old = nil
			case err != nil:
				return fmt.Errorf("read token %s: %w", t.ID, err)
			}
			if old != nil && old.Hash == t.Hash && old.Scope == t.Scope && old.RevokedAt == nil && old.Name == t.Name &&
				old.Source == flywheel.TokenSourceFile {
				res.Unchanged++
				continue
			}
			// A concurrent sync may have inserted the row since it was
			// read: the upsert then updates it in place.
			if _, err := q.exec(ctx, `INSERT INTO api_tokens (`+tokenColumns+`) VALUES (?, ?, ?, ?, ?, NULL, NULL, NULL, ?)
				ON CONFLICT (id) DO UPDATE SET name = excluded.name, scope = excluded.scope, hash = excluded.hash,
				expires_at = NULL, revoked_at = NULL, source = excluded.source`,
				t.ID, t.Name, string(t.Scope), t.Hash, at.UTC(), string(flywheel.TokenSourceFile)); err != nil {
				return fmt.Errorf("store token %s: %w", t.ID, err)
			}
			switch {
			case old == nil || old.RevokedAt != nil:
				res.Added = append(res.Added, t.ID)
			default:
				res.Changed = append(res.Changed, t.ID)
			}
			if old != nil && old.Hash != t.Hash {
				if _, err := q.exec(ctx, `DELETE FROM ui_sessions WHERE token_id = ?`, t.ID); err != nil {
					return fmt.Errorf("end sessions of token %s: %w", t.ID, err)
				}
			}
		}
		query := `SELECT id FROM api_tokens WHERE source = ? AND revoked_at IS NULL`
		args := []any{string(flywheel.TokenSourceFile)}
		if len(listed) > 0 {
			query += ` AND id NOT IN (?` + strings.Repeat(", ?", len(listed)-1) + `)`
			args = append(args, listed...)
		}
		rows, err := q.query(ctx, query+` ORDER BY id`, args...)
		if err != nil {
			return fmt.Errorf("find removed file tokens: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				_ = rows.Close()
				return fmt.Errorf("scan token id: %w", err)
			}
			res.Revoked = append(res.Revoked, id)
		}
		_ = rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("find removed file tokens: %w", err)
		}
		for _, id := range res.Revoked {
			if err := q.RevokeToken(ctx, id, at); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return FileTokensSync{}, err
	}
	return res, nil
}

var _ flywheel.TokenStore = (*Store)(nil)
