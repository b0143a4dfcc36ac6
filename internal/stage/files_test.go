package stage

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRunFiles(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	r := &Runner{Settings: Settings{DataDir: data}}

	folders, err := r.RunFolders()
	require.NoError(t, err)
	require.Empty(t, folders, "no runs folder yet")

	for _, id := range []string{"run-a", "run-b"} {
		dir, err := RunDir(data, id)
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "datasets", "eval"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "datasets", "eval", "eval.jsonl"), []byte("{}\n"), 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(data, "runs", "stray-file"), nil, 0o644))
	folders, err = r.RunFolders()
	require.NoError(t, err)
	require.Equal(t, map[string]string{"run-a": filepath.Join(data, "runs", "run-a"), "run-b": filepath.Join(data, "runs", "run-b")}, folders)

	require.NoError(t, r.DeleteRunFiles("run-a"))
	require.NoDirExists(t, filepath.Join(data, "runs", "run-a"))
	require.DirExists(t, filepath.Join(data, "runs", "run-b"))
	require.NoError(t, r.DeleteRunFiles("run-a"), "nothing left to remove is fine")

	for _, bad := range []string{"", ".", "..", "../run-b", "a/b", `a\b`} {
		require.Error(t, r.DeleteRunFiles(bad), bad)
	}
	require.DirExists(t, filepath.Join(data, "runs", "run-b"))

	none := &Runner{}
	require.NoError(t, none.DeleteRunFiles("run-b"), "no data directory: nothing to remove")
}
