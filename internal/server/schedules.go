package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// MaxScheduleBodyBytes caps the body of POST /api/schedules.
const MaxScheduleBodyBytes = 64 << 10

// schedulesAvailable answers 503 when the server has no schedule service.
func (s *Server) schedulesAvailable(w http.ResponseWriter) bool {
	if s.opts.Schedules == nil {
		writeDetail(w, http.StatusServiceUnavailable, "Schedules are not available")
		return false
	}
	return true
}

// createSchedule answers POST /api/schedules.
func (s *Server) createSchedule(w http.ResponseWriter, r *http.Request) {
	if !s.schedulesAvailable(w) {
		return
	}
	body, err := readBody(w, r, MaxScheduleBodyBytes)
	if errors.Is(err, errBodyTooLarge) {
		writeDetail(w, http.StatusRequestEntityTooLarge, "Request body too large")
		return
	}
	if err != nil {
		writeDetail(w, http.StatusBadRequest, "Could not read the request body")
		return
	}
	req, verrs := decodeScheduleRequest(body)
	if len(verrs) > 0 {
		writeValidation(w, verrs)
		return
	}
	sc, err := s.opts.Schedules.CreateSchedule(r.Context(), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	detail := map[string]any{"workload_id": sc.WorkloadID, "client_id": sc.ClientID, "enabled": sc.Enabled}
	if sc.Cron != "" {
		detail["cron"] = sc.Cron
	}
	if sc.MinNewRecords != nil {
		detail["min_new_records"] = *sc.MinNewRecords
	}
	if sc.AgreementBelow != nil {
		detail["agreement_below"] = *sc.AgreementBelow
		detail["agreement_metric"] = sc.AgreementMetric
	}
	s.audit(r, flywheel.AuditScheduleCreated, sc.ID, detail)
	writeJSON(w, http.StatusCreated, scheduleOf(sc))
}

// decodeScheduleRequest reads a POST /api/schedules body: a JSON object of
// the request's fields and no other; a field of the wrong type is named.
func decodeScheduleRequest(body []byte) (flywheel.CreateScheduleRequest, []api.ValidationError) {
	var req flywheel.CreateScheduleRequest
	if len(bytes.TrimSpace(body)) == 0 {
		return req, []api.ValidationError{withInput(verr("missing", "Field required", "body"), nil)}
	}
	if !utf8.Valid(body) {
		return req, []api.ValidationError{verr("json_invalid", "JSON decode error: invalid UTF-8", "body")}
	}
	var in api.ScheduleRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(&in)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("extra data after the JSON value")
		}
	}
	if err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te) && te.Field != "":
			return req, []api.ValidationError{verr("type_error", "Input should be a valid "+jsonTypeName(te.Type.Kind().String()), "body", te.Field)}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return req, []api.ValidationError{verr("extra_forbidden", "Extra inputs are not permitted", "body", field)}
		case errors.As(err, &te):
			return req, []api.ValidationError{verr("model_attributes_type", "Input should be a valid dictionary or object to extract fields from", "body")}
		}
		return req, []api.ValidationError{withInput(verr("json_invalid", "JSON decode error", "body"), map[string]any{}, "error", err.Error())}
	}
	return flywheel.CreateScheduleRequest{WorkloadID: in.WorkloadID, ClientID: in.ClientID, Cron: strings.TrimSpace(in.Cron),
		MinNewRecords: in.MinNewRecords, AgreementBelow: in.AgreementBelow, AgreementMetric: in.AgreementMetric, Enabled: in.Enabled}, nil
}

// jsonTypeName names a Go kind as the JSON type a field wants.
func jsonTypeName(kind string) string {
	switch {
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"):
		return "integer"
	case strings.HasPrefix(kind, "float"):
		return "number"
	case kind == "bool":
		return "boolean"
	}
	return kind
}

// listSchedules answers GET /api/schedules.
func (s *Server) listSchedules(w http.ResponseWriter, r *http.Request) {
	if !s.schedulesAvailable(w) {
		return
	}
	scheds, err := s.opts.Schedules.ListSchedules(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	resp := api.SchedulesResponse{Schedules: make([]api.Schedule, 0, len(scheds))}
	for i := range scheds {
		resp.Schedules = append(resp.Schedules, scheduleOf(&scheds[i]))
	}
	writeJSON(w, http.StatusOK, resp)
}

// getSchedule answers GET /api/schedules/{schedule_id}.
func (s *Server) getSchedule(w http.ResponseWriter, r *http.Request) {
	if !s.schedulesAvailable(w) {
		return
	}
	q := &query{r: r}
	id := q.pathID("schedule_id")
	if len(q.errs) > 0 {
		writeValidation(w, q.errs)
		return
	}
	d, err := s.opts.Schedules.GetSchedule(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	resp := api.ScheduleDetail{Schedule: scheduleOf(&d.Schedule), Events: make([]api.ScheduleEvent, 0, len(d.Events))}
	for _, e := range d.Events {
		resp.Events = append(resp.Events, api.ScheduleEvent{ID: e.ID, At: api.NewTime(e.At), Outcome: string(e.Outcome),
			Reason: e.Reason, RunID: optional(e.RunID)})
	}
	writeJSON(w, http.StatusOK, resp)
}

// deleteSchedule answers DELETE /api/schedules/{schedule_id}.
func (s *Server) deleteSchedule(w http.ResponseWriter, r *http.Request) {
	if !s.schedulesAvailable(w) {
		return
	}
	q := &query{r: r}
	id := q.pathID("schedule_id")
	if len(q.errs) > 0 {
		writeValidation(w, q.errs)
		return
	}
	if err := s.opts.Schedules.DeleteSchedule(r.Context(), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.audit(r, flywheel.AuditScheduleDeleted, id, nil)
	s.logger.InfoContext(r.Context(), "Schedule deleted", slog.String("schedule_id", id),
		slog.String("actor", flywheel.ActorFrom(r.Context())))
	writeJSON(w, http.StatusOK, api.ScheduleDeleteResponse{ID: id, Message: "Schedule deleted; the runs it started are kept."})
}

// scheduleOf is the API form of a schedule.
func scheduleOf(sc *flywheel.Schedule) api.Schedule {
	return api.Schedule{ID: sc.ID, WorkloadID: sc.WorkloadID, ClientID: sc.ClientID, Cron: sc.Cron,
		MinNewRecords: sc.MinNewRecords, AgreementBelow: sc.AgreementBelow, AgreementMetric: sc.AgreementMetric,
		Enabled: sc.Enabled, CreatedAt: api.NewTime(sc.CreatedAt), CreatedBy: sc.CreatedBy,
		LastFiredAt: api.NewTimePtr(sc.LastFiredAt), LastRunID: optional(sc.LastRunID),
		NextFireAt: api.NewTimePtr(sc.NextFireAt), AgreementStatus: sc.AgreementStatus}
}

// optional is nil for "" (a JSON null).
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
