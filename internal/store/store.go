// Package store persists flywheel runs, candidates, evaluations,
// customizations, stages, the resource ledger and production logs in SQLite
// (embedded default) or PostgreSQL (scale-out). It is the only package that
// holds SQL. Both dialects go through database/sql, so a *sql.Tx of this
// package is the same type River's drivers take, and store writes and job
// enqueues commit together.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver
)

// Dialect names the SQL database behind a Store.
type Dialect string

// Supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

//go:embed migrations
var migrationsFS embed.FS

// Store is the database. It is safe for concurrent use.
type Store struct {
	*Queries
	db      *sql.DB
	dialect Dialect
	url     string
	logger  *slog.Logger
}

// Options configures Open.
type Options struct {
	Logger *slog.Logger
	// Now is the clock; it defaults to time.Now.
	Now func() time.Time
}

// ParseURL splits a database URL into its dialect and driver DSN. It accepts
// "sqlite:PATH", "sqlite://PATH", "postgres://…" and "postgresql://…".
func ParseURL(url string) (Dialect, string, error) {
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		return Postgres, url, nil
	case strings.HasPrefix(url, "sqlite://"):
		return SQLite, strings.TrimPrefix(url, "sqlite://"), nil
	case strings.HasPrefix(url, "sqlite:"):
		return SQLite, strings.TrimPrefix(url, "sqlite:"), nil
	}
	return "", "", fmt.Errorf("database url %q: want sqlite:PATH or postgres://…", url)
}

// Open connects to the database at url. It does not migrate; call Migrate.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	dialect, dsn, err := ParseURL(url)
	if err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	var db *sql.DB
	switch dialect {
	case SQLite:
		if dir := filepath.Dir(dsn); dir != "" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, fmt.Errorf("create database directory: %w", err)
			}
		}
		db, err = sql.Open("sqlite", "file:"+dsn+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate")
		if err != nil {
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		// One connection: SQLite allows one writer, and River's SQLite driver
		// advises it to avoid SQLITE_BUSY.
		db.SetMaxOpenConns(1)
	case Postgres:
		db, err = sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		db.SetMaxOpenConns(20)
		db.SetMaxIdleConns(10)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("connect to %s database: %w", dialect, classify(err))
	}
	s := &Store{db: db, dialect: dialect, url: url, logger: logger}
	s.Queries = &Queries{q: db, dialect: dialect, now: now}
	return s, nil
}

// DB returns the underlying pool (River's driver is built on it).
func (s *Store) DB() *sql.DB { return s.db }

// Dialect returns the database dialect.
func (s *Store) Dialect() Dialect { return s.dialect }

// Close closes the pool.
func (s *Store) Close() error { return s.db.Close() }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return classify(s.db.PingContext(ctx)) }

// InTx runs fn in a transaction, committing when it returns nil.
func (s *Store) InTx(ctx context.Context, fn func(q *Queries) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", classify(err))
	}
	q := &Queries{q: tx, tx: tx, dialect: s.dialect, now: s.now}
	if err := fn(q); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", classify(err))
	}
	return nil
}

// Migrate applies the store's pending migrations.
func (s *Store) Migrate(ctx context.Context) (applied []string, err error) {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS flywheel_migrations (version TEXT PRIMARY KEY, applied_at TEXT NOT NULL)`); err != nil {
		return nil, fmt.Errorf("create migrations table: %w", err)
	}
	dir := "migrations/" + string(s.dialect)
	entries, err := fs.ReadDir(migrationsFS, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, name := range names {
		version := strings.TrimSuffix(name, ".sql")
		err := s.InTx(ctx, func(q *Queries) error {
			var n int
			if err := q.queryRow(ctx, `SELECT COUNT(*) FROM flywheel_migrations WHERE version = ?`, version).Scan(&n); err != nil {
				return fmt.Errorf("check migration %s: %w", version, err)
			}
			if n > 0 {
				return nil
			}
			body, err := migrationsFS.ReadFile(dir + "/" + name)
			if err != nil {
				return err
			}
			for _, stmt := range splitStatements(string(body)) {
				if _, err := q.tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("apply migration %s: %w", version, err)
				}
			}
			if _, err := q.exec(ctx, `INSERT INTO flywheel_migrations (version, applied_at) VALUES (?, ?)`, version, s.now().UTC().Format(time.RFC3339)); err != nil {
				return fmt.Errorf("record migration %s: %w", version, err)
			}
			applied = append(applied, version)
			return nil
		})
		if err != nil {
			return applied, err
		}
	}
	return applied, nil
}

func splitStatements(body string) []string {
	var out []string
	for _, part := range strings.Split(body, ";") {
		if strings.TrimSpace(part) != "" {
			out = append(out, part)
		}
	}
	return out
}

// Queries runs the store's statements on the pool or inside a transaction.
type Queries struct {
	q       querier
	tx      *sql.Tx
	dialect Dialect
	now     func() time.Time
}

type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Tx returns the transaction these queries run in, or nil outside one.
func (q *Queries) Tx() *sql.Tx { return q.tx }

// Now returns the store clock's current time in UTC.
func (q *Queries) Now() time.Time { return q.now().UTC() }

func (q *Queries) rebind(query string) string {
	if q.dialect != Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// exec, query and queryRow run a statement; their errors are classified
// (see classify), so a database that is down or full answers 503, never 500.
func (q *Queries) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	res, err := q.q.ExecContext(ctx, q.rebind(query), args...)
	return res, classify(err)
}

func (q *Queries) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	rows, err := q.q.QueryContext(ctx, q.rebind(query), args...)
	return rows, classify(err)
}

func (q *Queries) queryRow(ctx context.Context, query string, args ...any) row {
	return row{q.q.QueryRowContext(ctx, q.rebind(query), args...)}
}

// row is a *sql.Row whose Scan classifies its error.
type row struct{ r *sql.Row }

// Scan copies the row's columns into dest (see sql.Row.Scan).
func (r row) Scan(dest ...any) error { return classify(r.r.Scan(dest...)) }

// notFound turns sql.ErrNoRows into flywheel's not-found error.
func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, errNotFound)
	}
	return err
}

// URL returns the database URL the store was opened with.
func (s *Store) URL() string { return s.url }
