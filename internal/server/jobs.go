package server

import (
	"errors"
	"net/http"
	"strings"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// AlreadyCancelledMessage is what the job service answers a cancel of a run
// that is already cancelled (a second cancel, or the losers of racing
// ones); CancelFinishedDetail is the blueprint's answer to a cancel of a
// finished job. Such a cancel answers 400 with both sentences:
// "Cannot cancel a job that has already finished. Job is already cancelled."
const (
	AlreadyCancelledMessage = "Job is already cancelled."
	CancelFinishedDetail    = "Cannot cancel a job that has already finished."
)

// IdempotencyKeyHeader names the header that makes POST /api/jobs safe to
// retry: a repeated key returns the run the first request created.
const IdempotencyKeyHeader = "Idempotency-Key"

func (s *Server) createJob(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, MaxJobBodyBytes)
	if errors.Is(err, errBodyTooLarge) {
		writeDetail(w, http.StatusRequestEntityTooLarge, "Request body too large")
		return
	}
	if err != nil {
		writeDetail(w, http.StatusBadRequest, "Could not read the request body")
		return
	}
	req, errs := decodeJobRequest(body)
	key := r.Header.Get(IdempotencyKeyHeader)
	if key != "" && !validIdempotencyKey(key) {
		errs = append(errs, withInput(verr("string_pattern_mismatch",
			"Idempotency-Key must be 1 to 255 printable ASCII characters", "header", "idempotency-key"),
			key, "pattern", "^[ -~]{1,255}$"))
	}
	if len(errs) > 0 {
		writeValidation(w, errs)
		return
	}
	req.IdempotencyKey = key
	run, err := s.opts.Jobs.CreateJob(r.Context(), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.JobResponse{
		ID:      run.ID,
		Status:  api.JobResponseStatusQueued,
		Message: api.JobResponseMessageQueued,
	})
}

// validIdempotencyKey accepts 1 to MaxIdempotencyKeyLen printable ASCII
// characters (spaces included).
func validIdempotencyKey(key string) bool {
	if len(key) > MaxIdempotencyKeyLen || strings.TrimSpace(key) == "" {
		return false
	}
	for _, c := range []byte(key) {
		if c < ' ' || c > '~' {
			return false
		}
	}
	return true
}

// listJobs answers GET /api/jobs: a page of runs (limit, the service's
// default 100 when absent), newest first unless order=oldest, and the cursor of the
// next page. In blueprint mode (Options.BlueprintJobList) a request without
// limit or cursor gets every run, oldest first, as the blueprint answers.
func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) {
	q := &query{r: r}
	f := flywheel.JobFilter{
		WorkloadID: q.text("workload_id", flywheel.MaxIDBytes),
		ClientID:   q.text("client_id", flywheel.MaxIDBytes),
		Status:     q.runStatus("status"),
		Limit:      q.intIn("limit", 0, 1, ListLimitMax),
		Cursor:     q.text("cursor", flywheel.MaxNameBytes),
	}
	defaultOrder := "newest"
	if s.opts.BlueprintJobList {
		defaultOrder = "oldest"
	}
	f.OldestFirst = q.oneOf("order", defaultOrder, "newest", "oldest") == "oldest"
	if len(q.errs) > 0 {
		writeValidation(w, q.errs)
		return
	}
	all := s.opts.BlueprintJobList && f.Limit == 0 && f.Cursor == ""
	if all {
		f.Limit = ListLimitMax
	}
	resp := api.JobsListResponse{Jobs: []api.JobListItem{}}
	for {
		page, err := s.opts.Jobs.ListJobs(r.Context(), f)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		for _, run := range page.Runs {
			if run != nil {
				resp.Jobs = append(resp.Jobs, listItem(run))
			}
		}
		if page.NextCursor != "" && all {
			f.Cursor = page.NextCursor
			continue
		}
		if page.NextCursor != "" {
			resp.NextCursor = &page.NextCursor
		}
		break
	}
	writeJSON(w, http.StatusOK, resp)
}

// jobID reads the job_id path parameter, answering 422 when it cannot be
// an id at all (too long, not UTF-8, a NUL).
func (s *Server) jobID(w http.ResponseWriter, r *http.Request) (string, bool) {
	q := &query{r: r}
	id := q.pathID("job_id")
	if len(q.errs) > 0 {
		writeValidation(w, q.errs)
		return "", false
	}
	return id, true
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) {
	id, ok := s.jobID(w, r)
	if !ok {
		return
	}
	d, err := s.opts.Jobs.GetJob(r.Context(), id)
	if err == nil && (d == nil || d.Run == nil) {
		err = errors.New("job service returned no run")
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, jobDetail(d))
}

func (s *Server) cancelJob(w http.ResponseWriter, r *http.Request) {
	id, ok := s.jobID(w, r)
	if !ok {
		return
	}
	msg, err := s.opts.Jobs.CancelJob(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if msg == AlreadyCancelledMessage {
		// The blueprint answers 400 for a job that has finished, and a
		// cancelled one has; the detail also says that it was cancelled,
		// which is what the loser of racing cancels needs to know.
		writeDetail(w, http.StatusBadRequest, CancelFinishedDetail+" "+AlreadyCancelledMessage)
		return
	}
	writeJSON(w, http.StatusOK, api.JobCancelResponse{ID: id, Message: msg})
}

func (s *Server) deleteJob(w http.ResponseWriter, r *http.Request) {
	id, ok := s.jobID(w, r)
	if !ok {
		return
	}
	msg, err := s.opts.Jobs.DeleteJob(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.JobDeleteResponse{ID: id, Message: msg})
}

func (s *Server) listItems(w http.ResponseWriter, r *http.Request) {
	q := &query{r: r}
	f := flywheel.ItemFilter{
		EvaluationID:  q.pathID("evaluation_id"),
		Tool:          q.text("tool", flywheel.MaxNameBytes),
		ErrorClass:    q.text("error_class", flywheel.MaxNameBytes),
		OnlyDivergent: q.boolean("divergent"),
		Limit:         q.intIn("limit", ItemsLimitDefault, 1, ItemsLimitMax),
		Offset:        q.intIn("offset", 0, 0, 1<<31-1),
	}
	if len(q.errs) > 0 {
		writeValidation(w, q.errs)
		return
	}
	page, err := s.opts.Jobs.ListItems(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	resp := api.ItemsResponse{
		Items:  page.Items,
		Total:  page.Total,
		Limit:  f.Limit,
		Offset: f.Offset,
	}
	if resp.Items == nil {
		resp.Items = []flywheel.ItemResult{}
	}
	for i := range resp.Items {
		resp.Items[i].Scores = finiteMap(resp.Items[i].Scores)
		resp.Items[i].LatencyMS = finite(resp.Items[i].LatencyMS)
	}
	if next := f.Offset + len(page.Items); len(page.Items) > 0 && next < page.Total {
		resp.NextOffset = &next
	}
	writeJSON(w, http.StatusOK, resp)
}
