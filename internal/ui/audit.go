package ui

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// auditPageSize is how many audit entries a page shows.
const auditPageSize = 100

// auditActions are the actions the audit page filters on.
var auditActions = []string{flywheel.AuditJobCreated, flywheel.AuditJobCancelled, flywheel.AuditJobDeleted, flywheel.AuditJobPurged,
	flywheel.AuditLogsIngested, flywheel.AuditLogsDeleted, flywheel.AuditLogsExpired, flywheel.AuditLogsRedacted,
	flywheel.AuditScheduleCreated, flywheel.AuditScheduleDeleted, flywheel.AuditScheduleFired, flywheel.AuditScheduleSkipped,
	flywheel.AuditScheduleFailed, flywheel.AuditJobPromoted, flywheel.AuditPromotionRolledBack}

type auditRow struct {
	At      time.Time
	Actor   string
	Action  string
	Target  string
	RunLink string
	Detail  string
}

type auditView struct {
	page
	Actions     []string
	Action      string
	Entries     []auditRow
	First, Next string
}

// auditPage shows the audit log, newest first, a page at a time.
func (h *Handler) auditPage(w http.ResponseWriter, r *http.Request) {
	if h.opts.Audit == nil {
		h.errorPage(w, r, flywheel.Errorf(flywheel.EUNAVAILABLE, "The audit log is not available in this process."))
		return
	}
	q := r.URL.Query()
	aq := flywheel.AuditQuery{Limit: auditPageSize + 1}
	for _, a := range auditActions {
		if q.Get("action") == a {
			aq.Action = a
		}
	}
	if c := q.Get("cursor"); c != "" {
		n, err := strconv.ParseInt(c, 10, 64)
		if err != nil || n <= 0 {
			h.errorPage(w, r, flywheel.Errorf(flywheel.EINVALID, "The page link is not valid (cursor %q).", c))
			return
		}
		aq.Before = n
	}
	entries, err := h.opts.Audit.ListAudit(r.Context(), aq)
	if err != nil {
		h.errorPage(w, r, err)
		return
	}
	v := auditView{page: h.page(r, "Audit log"), Actions: auditActions, Action: aq.Action}
	v.Nav = "audit"
	filter := url.Values{}
	if aq.Action != "" {
		filter.Set("action", aq.Action)
	}
	for i, e := range entries {
		if i == auditPageSize {
			next := url.Values{}
			for k, vs := range filter {
				next[k] = vs
			}
			next.Set("cursor", strconv.FormatInt(entries[i-1].ID, 10))
			v.Next = h.opts.Prefix + "/audit?" + next.Encode()
			break
		}
		row := auditRow{At: e.At, Actor: e.Actor, Action: e.Action, Target: e.Target}
		if len(e.Detail) > 0 {
			b, _ := json.Marshal(e.Detail)
			row.Detail = string(b)
		}
		switch e.Action {
		case flywheel.AuditJobCreated, flywheel.AuditJobCancelled, flywheel.AuditJobPromoted:
			row.RunLink = h.opts.Prefix + "/runs/" + url.PathEscape(e.Target)
		}
		v.Entries = append(v.Entries, row)
	}
	if aq.Before > 0 {
		v.First = h.opts.Prefix + "/audit?" + filter.Encode()
	}
	h.render(w, r, http.StatusOK, "audit", v)
}
