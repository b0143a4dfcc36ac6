package server

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// AuditLimitDefault and AuditLimitMax are the page sizes of GET /api/audit.
const (
	AuditLimitDefault = 100
	AuditLimitMax     = 1000
)

// audit records an entry; a failure is logged and never fails the request
// whose action it records.
func (s *Server) audit(r *http.Request, action, target string, detail map[string]any) {
	if s.opts.Audit == nil {
		return
	}
	e := &flywheel.AuditEntry{Actor: flywheel.ActorFrom(r.Context()), Action: action, Target: target, Detail: detail}
	if err := s.opts.Audit.AddAudit(r.Context(), e); err != nil {
		s.logger.WarnContext(r.Context(), "Audit entry not recorded", slog.String("action", action),
			slog.String("target", target), slog.Any("error", err))
	}
}

// listAudit answers GET /api/audit: a page of the audit log, newest first
// (limit, cursor, action).
func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) {
	if s.opts.Audit == nil {
		writeDetail(w, http.StatusServiceUnavailable, "The audit log is not available")
		return
	}
	q := &query{r: r}
	aq := flywheel.AuditQuery{
		Limit:  q.intIn("limit", AuditLimitDefault, 1, AuditLimitMax),
		Action: q.text("action", flywheel.MaxNameBytes),
	}
	if c := q.r.URL.Query().Get("cursor"); c != "" {
		n, err := strconv.ParseInt(c, 10, 64)
		if err != nil || n <= 0 {
			q.errs = append(q.errs, withInput(verr("value_error", "Value error, cursor must be the next_cursor of a previous page", "query", "cursor"), c))
		}
		aq.Before = n
	}
	if len(q.errs) > 0 {
		writeValidation(w, q.errs)
		return
	}
	entries, err := s.opts.Audit.ListAudit(r.Context(), flywheel.AuditQuery{Limit: aq.Limit + 1, Before: aq.Before, Action: aq.Action})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	resp := api.AuditPage{Entries: []api.AuditEntry{}}
	for i, e := range entries {
		if i == aq.Limit {
			next := strconv.FormatInt(entries[i-1].ID, 10)
			resp.NextCursor = &next
			break
		}
		resp.Entries = append(resp.Entries, api.AuditEntry{ID: e.ID, At: api.NewTime(e.At), Actor: e.Actor, Action: e.Action, Target: e.Target, Detail: e.Detail})
	}
	writeJSON(w, http.StatusOK, resp)
}

// deleteLogs answers DELETE /api/logs?workload_id=W[&client_id=C][&before=T]:
// it deletes the stored records selected and says how many.
func (s *Server) deleteLogs(w http.ResponseWriter, r *http.Request) {
	if s.opts.LogDeleter == nil {
		writeDetail(w, http.StatusServiceUnavailable, "Log deletion is not available")
		return
	}
	q := &query{r: r}
	f := flywheel.LogFilter{
		WorkloadID: q.text("workload_id", flywheel.MaxIDBytes),
		ClientID:   q.text("client_id", flywheel.MaxIDBytes),
	}
	if f.WorkloadID == "" && len(q.errs) == 0 {
		q.errs = append(q.errs, verr("missing", "Field required", "query", "workload_id"))
	}
	if b := q.r.URL.Query().Get("before"); b != "" {
		t, err := time.Parse(time.RFC3339Nano, b)
		if err != nil {
			q.errs = append(q.errs, withInput(verr("datetime_from_date_parsing", "Input should be an RFC 3339 time, such as 2025-01-31T00:00:00Z", "query", "before"), b))
		}
		f.Before = t
	}
	if len(q.errs) > 0 {
		writeValidation(w, q.errs)
		return
	}
	n, err := s.opts.LogDeleter.DeleteLogs(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	resp := api.LogsDeleteResponse{WorkloadID: f.WorkloadID, ClientID: f.ClientID, Deleted: n}
	detail := map[string]any{"deleted": n, "workload_id": f.WorkloadID}
	if f.ClientID != "" {
		detail["client_id"] = f.ClientID
	}
	if !f.Before.IsZero() {
		b := api.NewTime(f.Before)
		resp.Before = &b
		detail["before"] = f.Before.UTC().Format(time.RFC3339Nano)
	}
	s.audit(r, flywheel.AuditLogsDeleted, logsTarget(f.WorkloadID, f.ClientID), detail)
	s.logger.InfoContext(r.Context(), "Logs deleted", slog.String("workload_id", f.WorkloadID),
		slog.String("client_id", f.ClientID), slog.Int64("deleted", n), slog.String("actor", flywheel.ActorFrom(r.Context())))
	writeJSON(w, http.StatusOK, resp)
}

// logsTarget names the logs of a workload and client in the audit log.
func logsTarget(workloadID, clientID string) string {
	if clientID == "" {
		return workloadID
	}
	return workloadID + "/" + clientID
}
