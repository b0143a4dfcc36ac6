package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// probeFileSize is how much the SQLite write probe writes beside the
// database file.
const probeFileSize = 64 << 10

// ProbeWrite checks that the database accepts a write. A probe that
// succeeded less than fresh ago, in this process or another one on the
// same database, counts; otherwise it probes again: on SQLite it writes,
// syncs and removes a small file beside the database file (SQLite may
// serve a small write from space its WAL file already holds while the disk
// is full, so a row alone can hide a full disk), then it rewrites the one
// row of flywheel_probe with the time. Failures are not remembered: every
// call while writes fail probes again. A full disk returns EUNAVAILABLE
// with the reason "disk full", like every other write of the store.
func (s *Store) ProbeWrite(ctx context.Context, fresh time.Duration) error {
	now := s.now().UTC()
	var last string
	err := s.queryRow(ctx, `SELECT checked_at FROM flywheel_probe WHERE id = 1`).Scan(&last)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("read probe: %w", classify(err))
	default:
		if t, perr := time.Parse(time.RFC3339Nano, last); perr == nil {
			if age := now.Sub(t); age >= 0 && age < fresh {
				return nil
			}
		}
	}
	if s.dialect == SQLite {
		if dir := s.sqliteDir(); dir != "" {
			if err := probeDir(dir); err != nil {
				return fmt.Errorf("write probe beside the database: %w", classify(err))
			}
		}
	}
	_, err = s.exec(ctx, `INSERT INTO flywheel_probe (id, checked_at) VALUES (1, ?)
		ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at`, now.Format(time.RFC3339Nano))
	if err != nil {
		return fmt.Errorf("write probe: %w", err)
	}
	return nil
}

// sqliteDir is the directory of the SQLite database file, or "" for a
// database in memory.
func (s *Store) sqliteDir() string {
	_, dsn, err := ParseURL(s.url)
	if err != nil || dsn == "" || strings.HasPrefix(dsn, ":memory:") || strings.Contains(dsn, "mode=memory") {
		return ""
	}
	return filepath.Dir(dsn)
}

// probeDir writes, syncs and removes a small file in dir.
func probeDir(dir string) error {
	f, err := os.CreateTemp(dir, ".flywheel-probe-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(make([]byte, probeFileSize)); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
