package server

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// getManifest answers GET /api/jobs/{job_id}/manifest: what the run was
// made of (its datasets' records and hashes, settings, seed, models and
// versions), the document POST /api/jobs takes as manifest.
func (s *Server) getManifest(w http.ResponseWriter, r *http.Request) {
	id, ok := s.jobID(w, r)
	if !ok {
		return
	}
	if s.opts.Manifests == nil {
		writeDetail(w, http.StatusServiceUnavailable, "Run manifests are not available")
		return
	}
	m, err := s.opts.Manifests.GetManifest(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

// decodeManifest reads the manifest field of POST /api/jobs. Its contents
// are checked by the job service, which names the field at fault.
func decodeManifest(raw any, errs []api.ValidationError) (*flywheel.Manifest, []api.ValidationError) {
	if _, ok := raw.(map[string]any); !ok {
		return nil, append(errs, withInput(verr("model_type",
			"Input should be a valid dictionary or instance of Manifest (the answer of GET /api/jobs/{job_id}/manifest)", "body", "manifest"),
			raw, "class_name", "Manifest"))
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, append(errs, withInput(verr("value_error", "Value error, "+err.Error(), "body", "manifest"), nil))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	m := &flywheel.Manifest{}
	if err := dec.Decode(m); err != nil {
		return nil, append(errs, withInput(verr("value_error", "Value error, manifest: "+err.Error(), "body", "manifest"), nil))
	}
	return m, errs
}
