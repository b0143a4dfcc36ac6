// Package storetest opens real databases for tests: a SQLite file in a
// temporary directory, and a fresh PostgreSQL database on the server named by
// FLYWHEEL_TEST_POSTGRES (default: the local server on 127.0.0.1:5432, which
// every development and CI machine of this project runs).
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/flywheel-go/flywheel/internal/store"
)

// PostgresURLDefault is the server tests use unless FLYWHEEL_TEST_POSTGRES is set.
const PostgresURLDefault = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// Dialects lists the databases every conformance test runs on.
func Dialects() []store.Dialect { return []store.Dialect{store.SQLite, store.Postgres} }

// URL returns the URL of a new, empty database of the dialect, removed when
// the test ends.
func URL(tb testing.TB, d store.Dialect) string {
	tb.Helper()
	switch d {
	case store.SQLite:
		return "sqlite:" + filepath.Join(tb.TempDir(), "flywheel.db")
	case store.Postgres:
		return NewPostgresDatabase(tb)
	}
	tb.Fatalf("unknown dialect %q", d)
	return ""
}

// NewPostgresDatabase creates a fresh database on the test server and
// returns its URL. It fails the test when the server cannot be reached:
// Postgres is part of this project's test environment, never skipped.
func NewPostgresDatabase(tb testing.TB) string {
	tb.Helper()
	admin := os.Getenv("FLYWHEEL_TEST_POSTGRES")
	if admin == "" {
		admin = PostgresURLDefault
	}
	db, err := sql.Open("pgx", admin)
	if err != nil {
		tb.Fatalf("open postgres %s: %v", admin, err)
	}
	defer db.Close()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "flywheel_test_" + hex.EncodeToString(b[:])
	if _, err := db.ExecContext(context.Background(), "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("create test database on %s (is PostgreSQL running? set FLYWHEEL_TEST_POSTGRES): %v", admin, err)
	}
	tb.Cleanup(func() {
		db, err := sql.Open("pgx", admin)
		if err != nil {
			return
		}
		defer db.Close()
		_, _ = db.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, err := url.Parse(admin)
	if err != nil {
		tb.Fatalf("parse %s: %v", admin, err)
	}
	u.Path = "/" + name
	return u.String()
}

// Open returns a migrated store on a new database of the dialect.
func Open(tb testing.TB, d store.Dialect) *store.Store {
	tb.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, URL(tb, d), store.Options{})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		tb.Fatalf("migrate: %v", err)
	}
	return s
}

// Name returns a subtest name for a dialect.
func Name(d store.Dialect) string { return string(d) }
