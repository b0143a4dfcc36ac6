package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// FindingOrphanFolder is a folder of run files (datasets, captured
// traffic) under the data directory whose run does not exist.
const FindingOrphanFolder = "orphaned_run_folder"

// orphanRunFolders finds the run folders under the data directory that
// belong to no run; with fix, it removes them.
func (e *Engine) orphanRunFolders(ctx context.Context, fix bool) ([]Finding, error) {
	folders, err := e.runner.RunFolders()
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(folders))
	for id := range folders {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out []Finding
	for _, id := range ids {
		_, err := e.store.GetRun(ctx, id)
		if err == nil {
			continue
		}
		if !errors.Is(err, flywheel.ErrNotFound) {
			return out, err
		}
		f := Finding{Kind: FindingOrphanFolder, RunID: id, Detail: fmt.Sprintf("folder %s has no run", folders[id])}
		if fix {
			if err := os.RemoveAll(folders[id]); err != nil {
				f.FixError = err.Error()
			} else {
				f.Fixed = true
			}
		}
		out = append(out, f)
	}
	return out, nil
}
