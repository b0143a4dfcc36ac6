package nemotest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"time"
)

type evaluation struct {
	id, ns, model string
	body          map[string]any
	created       time.Time
	cancelled     *time.Time
	stuck         bool
	// finished is set once the result or failure is computed.
	finished bool
	failMsg  string
	result   map[string]any
	samples  int
}

// evalStatus returns the status at now, computing the results the first
// time the job is seen finished. The caller holds s.mu.
func (s *Server) evalStatus(e *evaluation, now time.Time) string {
	if e.cancelled != nil {
		return "cancelled"
	}
	t := now.Sub(e.created)
	o := s.opts
	switch {
	case t < o.JobStartAfter:
		return "created"
	case t < 2*o.JobStartAfter:
		return "pending"
	case e.stuck || t < 2*o.JobStartAfter+o.EvalDuration:
		return "running"
	}
	if !e.finished {
		e.finished = true
		e.result, e.samples, e.failMsg = s.runEvaluation(e, e.created.Add(2*o.JobStartAfter+o.EvalDuration))
	}
	if e.failMsg != "" {
		return "failed"
	}
	return "completed"
}

func (s *Server) evalProgress(e *evaluation, now time.Time) *float64 {
	st := s.evalStatus(e, now)
	var p float64
	switch st {
	case "created", "pending":
		return nil
	case "running":
		if e.stuck {
			p = 10
		} else {
			p = math.Min(99, float64(now.Sub(e.created)-2*s.opts.JobStartAfter)/float64(s.opts.EvalDuration)*100)
		}
	default:
		p = 100
	}
	return &p
}

func (s *Server) evalJSON(e *evaluation, now time.Time) map[string]any {
	out := map[string]any{}
	for k, v := range e.body {
		out[k] = v
	}
	st := s.evalStatus(e, now)
	msg := map[string]string{"created": "Job created", "pending": "Waiting for resources",
		"running": "Job running", "completed": "Job completed successfully", "cancelled": "Job cancelled"}[st]
	if st == "failed" {
		msg = e.failMsg
	}
	out["id"], out["namespace"], out["status"] = e.id, e.ns, st
	out["created_at"], out["updated_at"] = timestamp(e.created), timestamp(now)
	out["output_files_url"] = "hf://datasets/evaluation-results/" + e.id
	details := map[string]any{"message": msg, "progress": s.evalProgress(e, now)}
	if st == "completed" {
		details["samples_processed"] = e.samples
		out["result"] = "evaluation_result-" + strings.TrimPrefix(e.id, "eval-")
	}
	out["status_details"] = details
	return out
}

func (s *Server) evaluatorRoutes() {
	s.handle(EndpointEvaluationCreate, func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if !decode(w, r, &body) {
			return
		}
		cfg, _ := body["config"].(map[string]any)
		tasks, _ := cfg["tasks"].(map[string]any)
		target, _ := body["target"].(map[string]any)
		model, _ := target["model"].(string)
		switch {
		case len(tasks) == 0:
			missingField(w, "config.tasks")
			return
		case target["type"] != "model" || model == "":
			missingField(w, "target.model")
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if cf, ok := body["custom_fields"].(map[string]any); ok && cf["flywheel_evaluation_id"] != nil {
			for _, e := range s.evals {
				if old, _ := e.body["custom_fields"].(map[string]any); old != nil &&
					old["flywheel_evaluation_id"] == cf["flywheel_evaluation_id"] {
					s.duplicates[KindEvaluation]++
					break
				}
			}
		}
		ns, _ := body["namespace"].(string)
		e := &evaluation{id: s.newID("eval"), ns: ns, model: model, body: body, created: s.opts.Now(),
			stuck: s.opts.StuckEvaluations}
		s.evals[e.id] = e
		s.created[KindEvaluation]++
		writeJSON(w, http.StatusOK, s.evalJSON(e, e.created))
	})
	s.handle(EndpointEvaluationList, func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		now := s.opts.Now()
		jobs := make([]*evaluation, 0, len(s.evals))
		for _, e := range s.evals {
			jobs = append(jobs, e)
		}
		sort.Slice(jobs, func(i, j int) bool {
			if !jobs[i].created.Equal(jobs[j].created) {
				return jobs[i].created.After(jobs[j].created)
			}
			return jobs[i].id > jobs[j].id
		})
		items := make([]any, 0, len(jobs))
		for _, e := range jobs {
			items = append(items, s.evalJSON(e, now))
		}
		listPage(w, r, items)
	})
	s.handle(EndpointEvaluationGet, func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		e, ok := s.evals[r.PathValue("id")]
		if !ok {
			detail(w, http.StatusNotFound, "evaluation job not found")
			return
		}
		writeJSON(w, http.StatusOK, s.evalJSON(e, s.opts.Now()))
	})
	s.handle("GET /v1/evaluation/jobs/{id}/status", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		e, ok := s.evals[r.PathValue("id")]
		if !ok {
			detail(w, http.StatusNotFound, "evaluation job not found")
			return
		}
		j := s.evalJSON(e, s.opts.Now())
		writeJSON(w, http.StatusOK, j["status_details"])
	})
	s.handle(EndpointEvaluationResults, func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		e, ok := s.evals[r.PathValue("id")]
		if !ok {
			detail(w, http.StatusNotFound, "evaluation job not found")
			return
		}
		if st := s.evalStatus(e, s.opts.Now()); st != "completed" {
			detail(w, http.StatusNotFound, "evaluation job %s has no results (status %s)", e.id, st)
			return
		}
		writeJSON(w, http.StatusOK, e.result)
	})
	s.handle(EndpointEvaluationCancel, func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		e, ok := s.evals[r.PathValue("id")]
		if !ok {
			detail(w, http.StatusNotFound, "evaluation job not found")
			return
		}
		now := s.opts.Now()
		switch st := s.evalStatus(e, now); st {
		case "completed", "failed":
			detail(w, http.StatusConflict, "cannot cancel a job that is %s", st)
			return
		case "cancelled":
		default:
			e.cancelled = &now
			s.cancelled[KindEvaluation]++
		}
		writeJSON(w, http.StatusOK, s.evalJSON(e, now))
	})
	s.handle(EndpointEvaluationDelete, func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		e, ok := s.evals[r.PathValue("id")]
		if !ok {
			detail(w, http.StatusNotFound, "evaluation job not found")
			return
		}
		if !terminal(s.evalStatus(e, s.opts.Now())) {
			detail(w, http.StatusConflict, "evaluation job %s is still running; cancel it first", e.id)
			return
		}
		delete(s.evals, e.id)
		s.deleted[KindEvaluation]++
		w.WriteHeader(http.StatusNoContent)
	})
}

// runEvaluation scores the job's model on its dataset with the fake NIM's
// answers, as the Evaluator would. It returns the results object, the
// number of samples, or a failure message.
func (s *Server) runEvaluation(e *evaluation, at time.Time) (map[string]any, int, string) {
	cfg, _ := e.body["config"].(map[string]any)
	tasks, _ := cfg["tasks"].(map[string]any)
	if !s.isServed(e.model, at) {
		return nil, 0, fmt.Sprintf("model %s is not served by the NIM proxy", e.model)
	}
	outTasks := map[string]any{}
	samples := 0
	for taskName, raw := range tasks {
		task, _ := raw.(map[string]any)
		ds, _ := task["dataset"].(map[string]any)
		filesURL, _ := ds["files_url"].(string)
		limit, _ := ds["limit"].(float64)
		rows, err := s.datasetRows(filesURL, int(limit))
		if err != nil {
			return nil, 0, err.Error()
		}
		samples = max(samples, len(rows))
		metrics, _ := task["metrics"].(map[string]any)
		outMetrics := map[string]any{}
		for metricName, mraw := range metrics {
			m, _ := mraw.(map[string]any)
			scores := map[string][]float64{}
			for _, row := range rows {
				ans := s.answerFor(e.model, row.Request)
				switch m["type"] {
				case "tool-calling":
					name, args := compareToolCalls(row.reference(), ans)
					scores["function_name_accuracy"] = append(scores["function_name_accuracy"], name)
					scores["function_name_and_args_accuracy"] = append(scores["function_name_and_args_accuracy"], args)
				case "llm-judge":
					sc, _ := m["params"].(map[string]any)["scores"].(map[string]any)
					for scoreName := range sc {
						scores[scoreName] = append(scores[scoreName], judge(scoreName, row.reference(), ans))
					}
				default:
					return nil, 0, fmt.Sprintf("metric type %v is not supported by nemotest", m["type"])
				}
			}
			outScores := map[string]any{}
			for name, vals := range scores {
				outScores[name] = scoreJSON(vals)
			}
			outMetrics[metricName] = map[string]any{"scores": outScores}
		}
		outTasks[taskName] = map[string]any{"metrics": outMetrics}
	}
	return map[string]any{
		"id":         "evaluation_result-" + strings.TrimPrefix(e.id, "eval-"),
		"job":        e.id,
		"created_at": timestamp(at), "updated_at": timestamp(at), "namespace": e.ns,
		"files_url": "hf://datasets/evaluation-results/" + e.id,
		"tasks":     outTasks, "groups": map[string]any{},
	}, samples, ""
}

type evalRow struct {
	Request  json.RawMessage `json:"request"`
	Response json.RawMessage `json:"response"`
}

// reference returns the logged assistant message.
func (r evalRow) reference() map[string]any {
	var resp struct {
		Choices []struct {
			Message map[string]any `json:"message"`
		} `json:"choices"`
	}
	if json.Unmarshal(r.Response, &resp) != nil || len(resp.Choices) == 0 {
		return map[string]any{}
	}
	return resp.Choices[0].Message
}

// datasetRows reads hf://datasets/{ns}/{name}/{path} from the data store.
// The caller holds s.mu.
func (s *Server) datasetRows(filesURL string, limit int) ([]evalRow, error) {
	rest, ok := strings.CutPrefix(filesURL, "hf://datasets/")
	parts := strings.SplitN(rest, "/", 3)
	if !ok || len(parts) != 3 {
		return nil, fmt.Errorf("dataset files_url %q is not hf://datasets/{ns}/{name}/{file}", filesURL)
	}
	rp := s.repos[parts[0]+"/"+parts[1]]
	if rp == nil {
		return nil, fmt.Errorf("dataset repo %s/%s not found", parts[0], parts[1])
	}
	b, ok := rp.files[parts[2]]
	if !ok {
		return nil, fmt.Errorf("file %s not found in dataset repo %s/%s", parts[2], parts[0], parts[1])
	}
	var rows []evalRow
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var row evalRow
		if err := json.Unmarshal(line, &row); err != nil || row.Request == nil {
			return nil, fmt.Errorf("%s line %d: not a logged record", filesURL, n)
		}
		rows = append(rows, row)
		if limit > 0 && len(rows) >= limit {
			break
		}
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("dataset %s is empty", filesURL)
	}
	return rows, nil
}

type call struct {
	name string
	args any
}

func toolCalls(msg map[string]any) []call {
	raw, _ := msg["tool_calls"].([]any)
	var out []call
	for _, c := range raw {
		cm, _ := c.(map[string]any)
		fn, _ := cm["function"].(map[string]any)
		name, _ := fn["name"].(string)
		var args any = fn["arguments"]
		if s, ok := args.(string); ok {
			var v any
			if json.Unmarshal([]byte(s), &v) == nil {
				args = v
			}
		}
		out = append(out, call{name: name, args: args})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// compareToolCalls scores one prediction: names equal (order ignored) and
// names plus arguments equal.
func compareToolCalls(ref, pred map[string]any) (name, args float64) {
	r, p := toolCalls(ref), toolCalls(pred)
	if len(r) != len(p) || len(r) == 0 {
		return 0, 0
	}
	name, args = 1, 1
	for i := range r {
		if r[i].name != p[i].name {
			return 0, 0
		}
		if !reflect.DeepEqual(r[i].args, p[i].args) {
			args = 0
		}
	}
	return name, args
}

// judge plays the LLM judge: a rating of 0/1 for tool calls, a similarity
// of 1-10 for text.
func judge(score string, ref, pred map[string]any) float64 {
	if score == "rating" {
		_, args := compareToolCalls(ref, pred)
		return args
	}
	if fmt.Sprint(ref["content"]) == fmt.Sprint(pred["content"]) {
		return 10
	}
	return 2
}

func scoreJSON(vals []float64) map[string]any {
	n := float64(len(vals))
	var sum, sq float64
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range vals {
		sum += v
		sq += v * v
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	mean := sum / n
	std := math.Sqrt(math.Max(0, sq/n-mean*mean))
	return map[string]any{"value": mean, "stats": map[string]any{
		"count": len(vals), "sum": sum, "sum_squared": sq, "min": lo, "max": hi,
		"mean": mean, "stddev": std, "stderr": std / math.Sqrt(n), "nan_count": 0,
	}}
}
