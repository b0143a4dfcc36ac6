package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrBackupUnsupported is returned by Backup on a database whose own tools
// make backups (PostgreSQL: pg_dump).
var ErrBackupUnsupported = errors.New("backup is for SQLite only; back up PostgreSQL with pg_dump")

// BackupResult describes a finished backup.
type BackupResult struct {
	// Path is the backup file.
	Path string
	// Bytes is its size.
	Bytes int64
	// Tables is the number of tables it holds.
	Tables int
}

// Backup writes a consistent copy of the SQLite database to path while the
// database stays in use (VACUUM INTO reads one snapshot; writers in other
// processes go on). The copy is written next to path and renamed into place
// only after SQLite's integrity check passed on it, so path never holds a
// partial backup. An existing path is refused unless overwrite is set.
func (s *Store) Backup(ctx context.Context, path string, overwrite bool) (*BackupResult, error) {
	if s.dialect != SQLite {
		return nil, ErrBackupUnsupported
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("backup path %q: %w", path, err)
	}
	if _, err := os.Stat(abs); err == nil && !overwrite {
		return nil, fmt.Errorf("backup file %s already exists (overwrite it with --force)", abs)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("backup file %s: %w", abs, err)
	}
	dir := filepath.Dir(abs)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create backup directory: %w", err)
	}
	// A name VACUUM INTO can create: it refuses an existing file.
	tmpf, err := os.CreateTemp(dir, "."+filepath.Base(abs)+".partial-*")
	if err != nil {
		return nil, fmt.Errorf("create backup file in %s: %w", dir, err)
	}
	tmp := tmpf.Name()
	_ = tmpf.Close()
	if err := os.Remove(tmp); err != nil {
		return nil, fmt.Errorf("create backup file in %s: %w", dir, err)
	}
	defer func() { _ = os.Remove(tmp) }()

	if _, err := s.db.ExecContext(ctx, "VACUUM INTO ?", tmp); err != nil {
		return nil, fmt.Errorf("write backup: %w", classify(err))
	}
	tables, err := checkSQLiteFile(ctx, tmp)
	if err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, abs); err != nil {
		return nil, fmt.Errorf("move backup into place: %w", err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("backup file: %w", err)
	}
	return &BackupResult{Path: abs, Bytes: fi.Size(), Tables: tables}, nil
}

// checkSQLiteFile runs SQLite's integrity check on the database file at path
// and counts its tables.
func checkSQLiteFile(ctx context.Context, path string) (int, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return 0, fmt.Errorf("open backup: %w", err)
	}
	defer db.Close()
	var verdict string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&verdict); err != nil {
		return 0, fmt.Errorf("check backup: %w", classify(err))
	}
	if verdict != "ok" {
		return 0, fmt.Errorf("backup failed SQLite's integrity check: %s", verdict)
	}
	var tables int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table'").Scan(&tables); err != nil {
		return 0, fmt.Errorf("check backup: %w", classify(err))
	}
	return tables, nil
}
