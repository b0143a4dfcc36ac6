package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

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
// manifest's, with its seed, its datasets pinned, in this server's
// namespace.
func manifestSpec(m *flywheel.Manifest, configured flywheel.RunSpec) flywheel.RunSpec {
	spec := m.Config
	seed := m.Seed
	spec.DataSplit.RandomSeed = &seed
	spec.Replay = m.Replay()
	spec.Namespace = configured.Namespace
	return spec
}

// manifestFields checks a create request that carries a manifest and fills
// in its workload and client. The models a run deploys and the judge it
// calls are never taken from a request: each candidate of the manifest
// must be one this server is configured with, exactly, and so must the
// judge (a request could otherwise send the platform's keys to any URL).
func manifestFields(req *flywheel.CreateJobRequest, configured flywheel.RunSpec) []flywheel.FieldError {
	m := req.Manifest
	out := m.Check()
	byName := map[string]flywheel.NIMConfig{}
	for _, c := range configured.Candidates {
		byName[c.ModelName] = c
	}
	for i, c := range m.Config.Candidates {
		loc := []string{"body", "manifest", "config", "candidates", fmt.Sprint(i)}
		conf, ok := byName[c.ModelName]
		switch {
		case !ok:
			out = append(out, flywheel.FieldError{Loc: loc, Type: "value_error",
				Msg: fmt.Sprintf("Value error, candidate %s is not configured on this server (nims)", quote(c.ModelName))})
		case !sameJSON(c, conf):
			out = append(out, flywheel.FieldError{Loc: loc, Type: "value_error",
				Msg: fmt.Sprintf("Value error, candidate %s differs from this server's configuration (nims): a run made from a manifest deploys the configured models only", quote(c.ModelName))})
		}
	}
	if !sameJSON(m.Config.Judge, configured.Judge) {
		out = append(out, flywheel.FieldError{Loc: []string{"body", "manifest", "config", "llm_judge_config"}, Type: "value_error",
			Msg: "Value error, llm_judge_config differs from this server's configuration: a run made from a manifest calls the configured judge only"})
	}
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

// sameJSON reports whether a and b encode to the same JSON.
func sameJSON(a, b any) bool {
	x, errX := json.Marshal(a)
	y, errY := json.Marshal(b)
	return errX == nil && errY == nil && bytes.Equal(x, y)
}
