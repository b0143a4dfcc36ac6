// Package mlflowtest is a stateful stand-in for an MLflow tracking server:
// it speaks the REST endpoints the exporter uses (experiments get-by-name and
// create, runs create, search, log-batch and update, and the mlflow-artifacts
// upload) and keeps what it was sent, so tests can read it back. It can be
// told to fail, for a while or for good.
package mlflowtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Experiment is a stored experiment.
type Experiment struct {
	ID   string
	Name string
}

// Metric is a logged metric value.
type Metric struct {
	Key       string  `json:"key"`
	Value     float64 `json:"value"`
	Timestamp int64   `json:"timestamp"`
	Step      int64   `json:"step"`
}

// Run is a stored run.
type Run struct {
	ID           string
	ExperimentID string
	Name         string
	Status       string
	StartTime    int64
	EndTime      int64
	Tags         map[string]string
	Params       map[string]string
	Metrics      []Metric
}

// Server is the fake MLflow server.
type Server struct {
	*httptest.Server

	mu          sync.Mutex
	experiments []*Experiment
	runs        []*Run
	artifacts   map[string][]byte
	requests    map[string]int
	failStatus  int
	failNext    int
	failPath    string
}

// New starts a fake server, closed when the test ends.
func New(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{artifacts: map[string][]byte{}, requests: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/2.0/mlflow/experiments/get-by-name", s.getExperiment)
	mux.HandleFunc("POST /api/2.0/mlflow/experiments/create", s.createExperiment)
	mux.HandleFunc("POST /api/2.0/mlflow/runs/create", s.createRun)
	mux.HandleFunc("POST /api/2.0/mlflow/runs/search", s.searchRuns)
	mux.HandleFunc("POST /api/2.0/mlflow/runs/log-batch", s.logBatch)
	mux.HandleFunc("POST /api/2.0/mlflow/runs/update", s.updateRun)
	mux.HandleFunc("PUT /api/2.0/mlflow-artifacts/artifacts/{path...}", s.putArtifact)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "ENDPOINT_NOT_FOUND", "no endpoint "+r.Method+" "+r.URL.Path)
	})
	s.Server = httptest.NewServer(s.guard(mux))
	tb.Cleanup(s.Close)
	return s
}

// FailAll makes every request answer status (0 heals the server).
func (s *Server) FailAll(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failStatus, s.failNext = status, 0
}

// FailNext makes the next n requests whose path contains path answer 503.
func (s *Server) FailNext(n int, path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext, s.failPath = n, path
}

// Requests returns how many requests each path received.
func (s *Server) Requests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.requests {
		out[k] = v
	}
	return out
}

// Experiments returns the stored experiments.
func (s *Server) Experiments() []Experiment {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Experiment, 0, len(s.experiments))
	for _, e := range s.experiments {
		out = append(out, *e)
	}
	return out
}

// Runs returns copies of the stored runs.
func (s *Server) Runs() []Run {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Run, 0, len(s.runs))
	for _, r := range s.runs {
		c := *r
		c.Metrics = append([]Metric(nil), r.Metrics...)
		out = append(out, c)
	}
	return out
}

// Artifact returns an uploaded file by its path under the artifact root.
func (s *Server) Artifact(path string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.artifacts[path]
	return b, ok
}

func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests[r.URL.Path]++
		status := s.failStatus
		if status == 0 && s.failNext > 0 && strings.Contains(r.URL.Path, s.failPath) {
			s.failNext--
			status = http.StatusServiceUnavailable
		}
		s.mu.Unlock()
		if status != 0 {
			writeError(w, status, "INTERNAL_ERROR", "scripted failure")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error_code": code, "message": msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "MALFORMED_REQUEST", "invalid JSON: "+err.Error())
		return false
	}
	return true
}

func (s *Server) getExperiment(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("experiment_name")
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.experiments {
		if e.Name == name {
			writeJSON(w, map[string]any{"experiment": map[string]any{"experiment_id": e.ID, "name": e.Name,
				"artifact_location": "mlflow-artifacts:/" + e.ID, "lifecycle_stage": "active"}})
			return
		}
	}
	writeError(w, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf("Could not find experiment with name '%s'", name))
}

func (s *Server) createExperiment(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name string `json:"name"`
	}
	if !decode(w, r, &in) {
		return
	}
	if in.Name == "" {
		writeError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'name'")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.experiments {
		if e.Name == in.Name {
			writeError(w, http.StatusBadRequest, "RESOURCE_ALREADY_EXISTS", fmt.Sprintf("Experiment '%s' already exists.", in.Name))
			return
		}
	}
	e := &Experiment{ID: strconv.Itoa(len(s.experiments) + 1), Name: in.Name}
	s.experiments = append(s.experiments, e)
	writeJSON(w, map[string]string{"experiment_id": e.ID})
}

type tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func (s *Server) runInfo(run *Run) map[string]any {
	return map[string]any{"run_id": run.ID, "run_uuid": run.ID, "experiment_id": run.ExperimentID, "run_name": run.Name,
		"status": run.Status, "start_time": run.StartTime, "end_time": run.EndTime,
		"artifact_uri": "mlflow-artifacts:/" + run.ExperimentID + "/" + run.ID + "/artifacts", "lifecycle_stage": "active"}
}

func (s *Server) createRun(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ExperimentID string `json:"experiment_id"`
		RunName      string `json:"run_name"`
		StartTime    int64  `json:"start_time"`
		Tags         []tag  `json:"tags"`
	}
	if !decode(w, r, &in) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	found := false
	for _, e := range s.experiments {
		found = found || e.ID == in.ExperimentID
	}
	if !found {
		writeError(w, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", "No Experiment with id="+in.ExperimentID+" exists")
		return
	}
	run := &Run{ID: fmt.Sprintf("%032x", len(s.runs)+1), ExperimentID: in.ExperimentID, Name: in.RunName, Status: "RUNNING",
		StartTime: in.StartTime, Tags: map[string]string{}, Params: map[string]string{}}
	for _, t := range in.Tags {
		run.Tags[t.Key] = t.Value
	}
	s.runs = append(s.runs, run)
	writeJSON(w, map[string]any{"run": map[string]any{"info": s.runInfo(run), "data": map[string]any{}}})
}

// filterRe matches the one filter form the fake understands: tags.`k` = 'v'.
var filterRe = regexp.MustCompile("^tags\\.`?([^`=]+?)`?\\s*=\\s*'([^']*)'$")

func (s *Server) searchRuns(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ExperimentIDs []string `json:"experiment_ids"`
		Filter        string   `json:"filter"`
		MaxResults    int      `json:"max_results"`
	}
	if !decode(w, r, &in) {
		return
	}
	var key, value string
	if in.Filter != "" {
		m := filterRe.FindStringSubmatch(strings.TrimSpace(in.Filter))
		if m == nil {
			writeError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "unsupported filter "+in.Filter)
			return
		}
		key, value = m[1], m[2]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, run := range s.runs {
		inExp := false
		for _, id := range in.ExperimentIDs {
			inExp = inExp || id == run.ExperimentID
		}
		if !inExp || (key != "" && run.Tags[key] != value) {
			continue
		}
		out = append(out, map[string]any{"info": s.runInfo(run)})
		if in.MaxResults > 0 && len(out) >= in.MaxResults {
			break
		}
	}
	writeJSON(w, map[string]any{"runs": out})
}

func (s *Server) findRun(id string) *Run {
	for _, run := range s.runs {
		if run.ID == id {
			return run
		}
	}
	return nil
}

func (s *Server) logBatch(w http.ResponseWriter, r *http.Request) {
	var in struct {
		RunID   string   `json:"run_id"`
		Metrics []Metric `json:"metrics"`
		Params  []tag    `json:"params"`
		Tags    []tag    `json:"tags"`
	}
	if !decode(w, r, &in) {
		return
	}
	if len(in.Metrics)+len(in.Params)+len(in.Tags) > 1000 || len(in.Params) > 100 || len(in.Tags) > 100 {
		writeError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "A batch logging request can contain at most 1000 metrics, 100 params and 100 tags")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	run := s.findRun(in.RunID)
	if run == nil {
		writeError(w, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", "Run '"+in.RunID+"' not found")
		return
	}
	for _, p := range in.Params {
		if old, ok := run.Params[p.Key]; ok && old != p.Value {
			writeError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Changing param values is not allowed. Param with key='"+p.Key+"' was already logged")
			return
		}
	}
	for _, p := range in.Params {
		run.Params[p.Key] = p.Value
	}
	for _, t := range in.Tags {
		run.Tags[t.Key] = t.Value
	}
	run.Metrics = append(run.Metrics, in.Metrics...)
	writeJSON(w, map[string]any{})
}

func (s *Server) updateRun(w http.ResponseWriter, r *http.Request) {
	var in struct {
		RunID   string `json:"run_id"`
		Status  string `json:"status"`
		EndTime int64  `json:"end_time"`
	}
	if !decode(w, r, &in) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	run := s.findRun(in.RunID)
	if run == nil {
		writeError(w, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", "Run '"+in.RunID+"' not found")
		return
	}
	switch in.Status {
	case "RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED":
	default:
		writeError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Invalid run status "+in.Status)
		return
	}
	run.Status, run.EndTime = in.Status, in.EndTime
	writeJSON(w, map[string]any{"run_info": s.runInfo(run)})
}

func (s *Server) putArtifact(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "MALFORMED_REQUEST", err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.artifacts[r.PathValue("path")] = b
	writeJSON(w, map[string]any{})
}
