package stage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// RunDir returns the folder of a run's files under dataDir (its datasets,
// which hold captured production traffic). A run id that is not a single
// plain path element is refused, so no id can name a folder elsewhere.
func RunDir(dataDir, runID string) (string, error) {
	if runID == "" || runID == "." || runID == ".." || strings.ContainsAny(runID, `/\`) || filepath.Base(runID) != runID {
		return "", fmt.Errorf("run id %q is not a folder name", runID)
	}
	return filepath.Join(dataDir, "runs", runID), nil
}

// DeleteRunFiles removes the folder of a run's files. A run with no folder,
// or a runner with no data directory, has nothing to remove.
func (r *Runner) DeleteRunFiles(runID string) error {
	if r.Settings.DataDir == "" {
		return nil
	}
	dir, err := RunDir(r.Settings.DataDir, runID)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove the files of run %s: %w", runID, err)
	}
	return nil
}

// RunFolders lists the ids of the runs that have a folder of files, with
// the folder of each.
func (r *Runner) RunFolders() (map[string]string, error) {
	out := map[string]string{}
	if r.Settings.DataDir == "" {
		return out, nil
	}
	root := filepath.Join(r.Settings.DataDir, "runs")
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list run folders: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() {
			out[e.Name()] = filepath.Join(root, e.Name())
		}
	}
	return out, nil
}
