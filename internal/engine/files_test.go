package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/engine"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/store"
)

// writeRunFiles puts a dataset file in the run folder of id and returns the
// folder.
func writeRunFiles(t *testing.T, dataDir, id string) string {
	t.Helper()
	dir := filepath.Join(dataDir, "runs", id)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "datasets", "eval"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "datasets", "eval", "eval.jsonl"), []byte(`{"request":{}}`+"\n"), 0o644))
	return dir
}

// TestDeleteRemovesRunFiles deletes a finished run and checks that its
// folder of files goes with it, and that doctor reports (and with --fix
// removes) a run folder whose run does not exist, keeping the others.
func TestDeleteRemovesRunFiles(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		b := setup(t, d, setupOpts{})
		dataDir := b.opts.Runner.Settings.DataDir
		run := b.create(t)
		b.wait(t, run.ID)
		runDir := writeRunFiles(t, dataDir, run.ID)
		orphanID := store.NewID(time.Now())
		orphanDir := writeRunFiles(t, dataDir, orphanID)

		findings, err := b.engine.Doctor(ctx, false)
		require.NoError(t, err)
		var folders []engine.Finding
		for _, f := range findings {
			if f.Kind == engine.FindingOrphanFolder {
				folders = append(folders, f)
			}
		}
		require.Len(t, folders, 1, "%+v", findings)
		require.Equal(t, orphanID, folders[0].RunID)
		require.Contains(t, folders[0].Detail, orphanDir)
		require.False(t, folders[0].Fixed)
		require.DirExists(t, orphanDir, "reported, not removed, without fix")

		findings, err = b.engine.Doctor(ctx, true)
		require.NoError(t, err)
		fixed := 0
		for _, f := range findings {
			if f.Kind == engine.FindingOrphanFolder {
				require.True(t, f.Fixed, "%+v", f)
				fixed++
			}
		}
		require.Equal(t, 1, fixed)
		require.NoDirExists(t, orphanDir)
		require.DirExists(t, runDir, "a run's own folder stays")

		_, err = b.engine.DeleteJob(ctx, run.ID)
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			_, err := b.engine.GetJob(ctx, run.ID)
			return flywheel.ErrorCode(err) == flywheel.ENOTFOUND
		}, 10*time.Second, 10*time.Millisecond)
		require.NoDirExists(t, runDir, "deleting a job deletes its files")
		findings, err = b.engine.Doctor(ctx, false)
		require.NoError(t, err)
		require.Empty(t, findings)
	})
}
