package store_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

func probedAt(t *testing.T, s *store.Store) string {
	t.Helper()
	var at string
	require.NoError(t, s.DB().QueryRowContext(context.Background(), `SELECT checked_at FROM flywheel_probe WHERE id = 1`).Scan(&at))
	return at
}

// TestProbeWrite checks that the write probe writes, that a fresh probe
// counts without writing again, and that a closed database is unavailable.
func TestProbeWrite(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := storetest.Open(t, d)
			require.NoError(t, s.ProbeWrite(ctx, time.Hour))
			first := probedAt(t, s)
			require.NoError(t, s.ProbeWrite(ctx, time.Hour))
			require.Equal(t, first, probedAt(t, s), "a fresh probe counts")
			time.Sleep(2 * time.Millisecond)
			require.NoError(t, s.ProbeWrite(ctx, time.Millisecond))
			require.NotEqual(t, first, probedAt(t, s), "a stale probe writes again")

			require.NoError(t, s.Close())
			err := s.ProbeWrite(ctx, time.Hour)
			require.Error(t, err)
			require.Equal(t, flywheel.EUNAVAILABLE, flywheel.ErrorCode(err))
		})
	}
}

// TestProbeWriteDiskFull fills the small tmpfs holding a SQLite database:
// the probe answers EUNAVAILABLE "disk full" while it is full, and nil once
// space returns.
func TestProbeWriteDiskFull(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", dir).CombinedOutput()
	require.NoError(t, err, "mount a tmpfs: %s", out)
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })

	ctx := context.Background()
	s, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "flywheel.db"), store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	_, err = s.Migrate(ctx)
	require.NoError(t, err)
	require.NoError(t, s.ProbeWrite(ctx, 0))

	filler := filepath.Join(dir, "filler")
	fill(t, filler)
	err = s.ProbeWrite(ctx, 0)
	require.Error(t, err)
	require.Equal(t, flywheel.EUNAVAILABLE, flywheel.ErrorCode(err))
	require.Equal(t, "Database unavailable: disk full", flywheel.ErrorMessage(err))
	time.Sleep(2 * time.Millisecond)
	require.Error(t, s.ProbeWrite(ctx, time.Millisecond), "a failed probe is not remembered as a success")

	require.NoError(t, os.Remove(filler))
	require.NoError(t, s.ProbeWrite(ctx, 0))
}

// fill writes path until the disk it is on has no space left.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			require.True(t, errors.Is(err, syscall.ENOSPC), "fill: %v", err)
			return
		}
	}
}
