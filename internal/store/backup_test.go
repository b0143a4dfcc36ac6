package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

// TestBackupSQLiteOnline backs up a SQLite database while a second
// connection (another process, in production) keeps writing to it, and
// reads the backup as a database of its own.
func TestBackupSQLiteOnline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	url := "sqlite:" + filepath.Join(dir, "flywheel.db")
	s, err := store.Open(ctx, url, store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	_, err = s.Migrate(ctx)
	require.NoError(t, err)
	created := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	mk := func(name string) *flywheel.Token {
		id := flywheel.NewTokenID()
		return &flywheel.Token{ID: id, Name: name, Scope: flywheel.ScopeRead, Hash: flywheel.HashSecret(flywheel.NewTokenSecret(id)),
			CreatedAt: created}
	}
	before := mk("before-backup")
	require.NoError(t, s.CreateToken(ctx, before))

	writer, err := store.Open(ctx, url, store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = writer.Close() })
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var written int
	var writeErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := writer.CreateToken(ctx, mk(fmt.Sprintf("during-%d", i))); err != nil {
				writeErr = err
				return
			}
			written++
		}
	}()

	out := filepath.Join(dir, "backups", "flywheel-backup.db")
	res, err := s.Backup(ctx, out, false)
	close(stop)
	wg.Wait()
	require.NoError(t, err)
	require.NoError(t, writeErr, "writes go on during the backup")
	require.Positive(t, written)
	require.Equal(t, out, res.Path)
	fi, err := os.Stat(out)
	require.NoError(t, err)
	require.Equal(t, fi.Size(), res.Bytes)
	require.Greater(t, res.Tables, 5)
	leftovers, err := filepath.Glob(filepath.Join(dir, "backups", ".*partial*"))
	require.NoError(t, err)
	require.Empty(t, leftovers, "no partial file is left behind")

	b, err := store.Open(ctx, "sqlite:"+out, store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	got, err := b.GetToken(ctx, before.ID)
	require.NoError(t, err)
	require.Equal(t, "before-backup", got.Name)
	applied, err := b.Migrate(ctx)
	require.NoError(t, err)
	require.Empty(t, applied, "the backup holds the schema at its version")

	// An existing file is refused, and kept, unless overwrite is set.
	require.NoError(t, b.Close())
	_, err = s.Backup(ctx, out, false)
	require.ErrorContains(t, err, "already exists")
	require.NoError(t, s.CreateToken(ctx, mk("after-first-backup")))
	res2, err := s.Backup(ctx, out, true)
	require.NoError(t, err)
	b2, err := store.Open(ctx, "sqlite:"+res2.Path, store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b2.Close() })
	toks, err := b2.ListTokens(ctx)
	require.NoError(t, err)
	names := map[string]bool{}
	for _, tk := range toks {
		names[tk.Name] = true
	}
	require.True(t, names["after-first-backup"], "the overwritten backup is the new one")
}

func TestBackupPostgresRefused(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t, store.Postgres)
	_, err := s.Backup(context.Background(), filepath.Join(t.TempDir(), "x.db"), false)
	require.ErrorIs(t, err, store.ErrBackupUnsupported)
	require.ErrorContains(t, err, "pg_dump")
}
