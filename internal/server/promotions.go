package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// MaxPromoteBodyBytes caps the bodies of the promotion endpoints.
const MaxPromoteBodyBytes = 64 << 10

func (s *Server) promotionsAvailable(w http.ResponseWriter) bool {
	if s.opts.Promotions == nil {
		writeDetail(w, http.StatusServiceUnavailable, "Promotions are not available")
		return false
	}
	return true
}

// promoteJob answers POST /api/jobs/{job_id}/promote.
func (s *Server) promoteJob(w http.ResponseWriter, r *http.Request) {
	if !s.promotionsAvailable(w) {
		return
	}
	id, ok := s.jobID(w, r)
	if !ok {
		return
	}
	var body api.PromoteRequest
	if !s.decodeStrict(w, r, &body, true) {
		return
	}
	p, err := s.opts.Promotions.Promote(r.Context(), flywheel.PromoteRequest{JobID: id, Candidate: body.Candidate,
		Variant: flywheel.PromotionVariant(body.Variant), Mode: flywheel.PromotionMode(body.Mode), CanaryPercent: body.CanaryPercent})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, promotionOf(p))
}

// rollbackPromotion answers POST /api/promotions/{promotion_id}/rollback.
func (s *Server) rollbackPromotion(w http.ResponseWriter, r *http.Request) {
	if !s.promotionsAvailable(w) {
		return
	}
	q := &query{r: r}
	id := q.pathID("promotion_id")
	if len(q.errs) > 0 {
		writeValidation(w, q.errs)
		return
	}
	var body api.RollbackRequest
	if !s.decodeStrict(w, r, &body, false) {
		return
	}
	if e := textError(body.Reason, flywheel.MaxNameBytes, "body", "reason"); e != nil {
		writeValidation(w, []api.ValidationError{*e})
		return
	}
	p, err := s.opts.Promotions.Rollback(r.Context(), id, body.Reason, nil)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, promotionOf(p))
}

// getPromotion answers GET /api/promotions/{promotion_id}.
func (s *Server) getPromotion(w http.ResponseWriter, r *http.Request) {
	if !s.promotionsAvailable(w) {
		return
	}
	q := &query{r: r}
	id := q.pathID("promotion_id")
	if len(q.errs) > 0 {
		writeValidation(w, q.errs)
		return
	}
	p, err := s.opts.Promotions.GetPromotion(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, promotionOf(p))
}

// listPromotions answers GET /api/promotions?workload_id=&client_id=.
func (s *Server) listPromotions(w http.ResponseWriter, r *http.Request) {
	if !s.promotionsAvailable(w) {
		return
	}
	q := &query{r: r}
	wid := q.text("workload_id", flywheel.MaxIDBytes)
	cid := q.text("client_id", flywheel.MaxIDBytes)
	if len(q.errs) > 0 {
		writeValidation(w, q.errs)
		return
	}
	ps, err := s.opts.Promotions.ListPromotions(r.Context(), wid, cid)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	resp := api.PromotionsResponse{Promotions: make([]api.Promotion, 0, len(ps))}
	for i := range ps {
		resp.Promotions = append(resp.Promotions, promotionOf(&ps[i]))
	}
	writeJSON(w, http.StatusOK, resp)
}

// decodeStrict reads a small JSON object body into v, refusing unknown
// fields (422 naming the field); an empty body is allowed unless required.
func (s *Server) decodeStrict(w http.ResponseWriter, r *http.Request, v any, required bool) bool {
	body, err := readBody(w, r, MaxPromoteBodyBytes)
	if errors.Is(err, errBodyTooLarge) {
		writeDetail(w, http.StatusRequestEntityTooLarge, "Request body too large")
		return false
	}
	if err != nil {
		writeDetail(w, http.StatusBadRequest, "Could not read the request body")
		return false
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if required {
			writeValidation(w, []api.ValidationError{withInput(verr("missing", "Field required", "body"), nil)})
			return false
		}
		return true
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		msg := err.Error()
		loc := []any{"body"}
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te):
			loc = append(loc, te.Field)
			msg = "Input should be a valid " + te.Type.String()
		case strings.HasPrefix(msg, "json: unknown field "):
			loc = append(loc, strings.Trim(strings.TrimPrefix(msg, "json: unknown field "), `"`))
			msg = "Extra inputs are not permitted"
		}
		writeValidation(w, []api.ValidationError{verr("value_error", msg, loc...)})
		return false
	}
	return true
}

func promotionOf(p *flywheel.Promotion) api.Promotion {
	return api.Promotion{
		ID: p.ID, WorkloadID: p.WorkloadID, ClientID: p.ClientID, JobID: p.JobID, Candidate: p.Candidate,
		Variant: string(p.Variant), Mode: string(p.Mode), CanaryPercent: p.CanaryPercent, Endpoint: p.Endpoint,
		ServedModel: p.ServedModel, Status: string(p.Status), Reason: p.Reason, CreatedBy: p.CreatedBy,
		CreatedAt: api.NewTime(p.CreatedAt), EndedAt: api.NewTimePtr(p.EndedAt), Evidence: p.Evidence,
	}
}
