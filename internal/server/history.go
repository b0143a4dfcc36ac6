package server

import (
	"net/http"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// HistoryLimitMax is the most finished runs GET
// /api/workloads/{workload_id}/history answers.
const HistoryLimitMax = 500

// listWorkloads answers GET /api/workloads.
func (s *Server) listWorkloads(w http.ResponseWriter, r *http.Request) {
	if s.opts.History == nil {
		writeDetail(w, http.StatusServiceUnavailable, "Run history is not available")
		return
	}
	ws, err := s.opts.History.ListWorkloads(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	resp := api.WorkloadsResponse{Workloads: make([]api.WorkloadSummary, 0, len(ws))}
	for _, ws := range ws {
		item := api.WorkloadSummary{WorkloadID: ws.WorkloadID, ClientID: ws.ClientID, Runs: ws.Runs, FinishedRuns: ws.Finished}
		if ws.LastRun != nil {
			item.LastRun = runRef(ws.LastRun)
		}
		resp.Workloads = append(resp.Workloads, item)
	}
	writeJSON(w, http.StatusOK, resp)
}

// workloadHistory answers GET /api/workloads/{workload_id}/history.
func (s *Server) workloadHistory(w http.ResponseWriter, r *http.Request) {
	if s.opts.History == nil {
		writeDetail(w, http.StatusServiceUnavailable, "Run history is not available")
		return
	}
	q := &query{r: r}
	f := flywheel.HistoryFilter{
		WorkloadID: q.pathID("workload_id"),
		ClientID:   q.text("client_id", flywheel.MaxIDBytes),
		Limit:      q.intIn("limit", 0, 1, HistoryLimitMax),
	}
	if len(q.errs) > 0 {
		writeValidation(w, q.errs)
		return
	}
	h, err := s.opts.History.WorkloadHistory(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	resp := api.WorkloadHistoryResponse{WorkloadID: h.WorkloadID, ClientID: h.ClientID, Metrics: h.Metrics,
		Runs: make([]api.HistoryRun, 0, len(h.Runs))}
	if resp.Metrics == nil {
		resp.Metrics = []string{}
	}
	for _, hr := range h.Runs {
		run := hr.Run
		out := api.HistoryRun{ID: run.ID, ClientID: run.ClientID, Status: string(orStatus(run.Status, flywheel.RunPending)),
			StartedAt: api.NewTime(run.StartedAt), FinishedAt: api.NewTimePtr(run.FinishedAt), NumRecords: max(run.NumRecords, 0),
			DataStats: run.Stats, Recommendation: recommendation(run.Recommendation),
			Evaluations: make([]api.HistoryEvaluation, 0, len(hr.Scores))}
		for _, es := range hr.Scores {
			e := api.HistoryEvaluation{Candidate: es.Candidate, EvalType: string(es.EvalType), EvaluationID: es.EvaluationID,
				Items: max(es.Items, 0), Scores: make(map[string]flywheel.ScoreDetail, len(es.Scores)), Error: strPtr(es.Error)}
			for m, d := range es.Scores {
				e.Scores[m] = scoreDetail(d)
			}
			out.Evaluations = append(out.Evaluations, e)
		}
		resp.Runs = append(resp.Runs, out)
	}
	writeJSON(w, http.StatusOK, resp)
}

// compareJobs answers GET /api/jobs/compare?a=&b=.
func (s *Server) compareJobs(w http.ResponseWriter, r *http.Request) {
	if s.opts.History == nil {
		writeDetail(w, http.StatusServiceUnavailable, "Run history is not available")
		return
	}
	q := &query{r: r}
	a := q.text("a", flywheel.MaxIDBytes)
	b := q.text("b", flywheel.MaxIDBytes)
	for _, p := range []struct{ name, v string }{{"a", a}, {"b", b}} {
		if p.v == "" && r.URL.Query().Get(p.name) == "" {
			q.errs = append(q.errs, verr("missing", "Field required", "query", p.name))
		}
	}
	if len(q.errs) > 0 {
		writeValidation(w, q.errs)
		return
	}
	c, err := s.opts.History.CompareJobs(r.Context(), a, b)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	resp := api.JobCompareResponse{A: compareRun(c.A, c.ToolsA), B: compareRun(c.B, c.ToolsB),
		PairedBy: c.PairedBy, SharedItems: c.SharedItems, AmbiguousItems: c.AmbiguousItems, Scores: make([]api.CompareScore, 0, len(c.Scores)),
		RecommendationChange: c.RecommendationChange, Notes: c.Notes}
	if resp.Notes == nil {
		resp.Notes = []string{}
	}
	for _, sc := range c.Scores {
		out := api.CompareScore{Candidate: sc.Candidate, EvalType: string(sc.EvalType), Metric: sc.Metric,
			A: scoreDetailPtr(sc.A), B: scoreDetailPtr(sc.B), SharedItems: sc.SharedItems}
		if sc.Difference != nil {
			d := finite(*sc.Difference)
			out.Difference = &d
		}
		if p := sc.Paired; p != nil {
			t := *p
			t.MeanA, t.MeanB, t.Diff = finite(t.MeanA), finite(t.MeanB), scoreDetail(t.Diff)
			out.Paired = &t
		}
		resp.Scores = append(resp.Scores, out)
	}
	writeJSON(w, http.StatusOK, resp)
}

func runRef(run *flywheel.Run) api.RunRef {
	return api.RunRef{ID: run.ID, Status: string(orStatus(run.Status, flywheel.RunPending)),
		StartedAt: api.NewTime(run.StartedAt), FinishedAt: api.NewTimePtr(run.FinishedAt)}
}

func compareRun(run *flywheel.Run, tools map[string]int) api.CompareRun {
	if tools == nil {
		tools = map[string]int{}
	}
	return api.CompareRun{ID: run.ID, WorkloadID: run.WorkloadID, ClientID: run.ClientID,
		Status: string(orStatus(run.Status, flywheel.RunPending)), StartedAt: api.NewTime(run.StartedAt),
		FinishedAt: api.NewTimePtr(run.FinishedAt), NumRecords: max(run.NumRecords, 0), DataStats: run.Stats,
		Recommendation: recommendation(run.Recommendation), Tools: tools}
}

func scoreDetailPtr(d *flywheel.ScoreDetail) *flywheel.ScoreDetail {
	if d == nil {
		return nil
	}
	v := scoreDetail(*d)
	return &v
}
