package engine

import (
	"context"
	"errors"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

var _ flywheel.ManifestReader = (*Engine)(nil)

// GetManifest returns a run's manifest (GET /api/jobs/{id}/manifest):
// ENOTFOUND for a run that does not exist or has not built its datasets.
func (e *Engine) GetManifest(ctx context.Context, id string) (*flywheel.Manifest, error) {
	run, err := e.getRun(ctx, id)
	if err != nil {
		return nil, err
	}
	m, err := e.store.GetRunManifest(ctx, id)
	if errors.Is(err, flywheel.ErrNotFound) {
		return nil, flywheel.Errorf(flywheel.ENOTFOUND, "Job %s has no manifest: its datasets were not built (status %s)", id, run.Status)
	}
	return m, err
}

// manifestSpec returns the settings of a run made from a manifest: the
// manifest's, with its seed, its datasets pinned.
func manifestSpec(m *flywheel.Manifest) flywheel.RunSpec {
	spec := m.Config
	seed := m.Seed
	spec.DataSplit.RandomSeed = &seed
	spec.Replay = m.Replay()
	return spec
}

// manifestFields checks a create request that carries a manifest and fills
// in its workload and client.
func manifestFields(req *flywheel.CreateJobRequest) []flywheel.FieldError {
	m := req.Manifest
	out := m.Check()
	mismatch := func(field, got, want string) {
		out = append(out, flywheel.FieldError{Loc: []string{"body", field}, Type: "value_error",
			Msg: "Value error, " + field + " " + quote(got) + " is not the manifest's " + quote(want)})
	}
	if req.WorkloadID == "" {
		req.WorkloadID = m.WorkloadID
	} else if req.WorkloadID != m.WorkloadID {
		mismatch("workload_id", req.WorkloadID, m.WorkloadID)
	}
	if req.ClientID == "" {
		req.ClientID = m.ClientID
	} else if req.ClientID != m.ClientID {
		mismatch("client_id", req.ClientID, m.ClientID)
	}
	if req.DataSplitConfig != nil {
		out = append(out, flywheel.FieldError{Loc: []string{"body", "data_split_config"}, Type: "value_error",
			Msg: "Value error, data_split_config cannot be combined with manifest: a run made from a manifest uses its settings"})
	}
	return out
}

func quote(s string) string { return `"` + s + `"` }
