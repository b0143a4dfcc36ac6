package ui

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// Timeline limits: the audit entries read (newest first, a page at a
// time) when looking for a workload's, and the events shown.
const (
	timelineAuditPage  = 500
	timelineAuditScan  = 5000
	workloadEventsMost = 300
)

// Timeline events that are not audit actions.
const (
	eventRunFinished       = "run.finished"
	eventPromotionReplaced = "promotion.replaced"
	eventPromotionCreated  = "promotion.created"
)

type workloadEvent struct {
	At      time.Time
	Event   string
	Actor   string
	Subject string
	Link    string
	Detail  string
	// Alert marks a rollback or a failed trigger.
	Alert bool
}

type workloadTimelineView struct {
	page
	Workload, Client string
	Events           []workloadEvent
	// Truncated says that older events were left out.
	Truncated bool
	// ShowActor is set for admins (the audit log's actors are theirs to see).
	ShowActor bool
	// NoAudit says that the events of the audit log are missing.
	NoAudit bool
}

// workloadTimelinePage shows what happened to a workload, oldest first: the audit
// log's entries of its schedules (created, fired, skipped, failed,
// deleted), runs (created, cancelled, deleted) and promotions (promoted,
// rolled back, with the evidence), the promotions replaced by the next
// one, and the runs' ends.
func (h *Handler) workloadTimelinePage(w http.ResponseWriter, r *http.Request) {
	wid, client := r.PathValue("id"), r.URL.Query().Get("client_id")
	if len(wid) > flywheel.MaxIDBytes || len(client) > flywheel.MaxIDBytes {
		h.errorPage(w, r, flywheel.Errorf(flywheel.EINVALID, "The workload and client_id are at most %d bytes.", flywheel.MaxIDBytes))
		return
	}
	v := workloadTimelineView{page: h.page(r, "Timeline of "+wid), Workload: wid, Client: client, ShowActor: isAdmin(r)}
	v.Nav = "workloads"
	var events []workloadEvent
	if h.opts.Audit != nil {
		es, err := h.workloadAudit(r, wid, client)
		if err != nil {
			h.errorPage(w, r, err)
			return
		}
		events = es
	} else {
		v.NoAudit = true
	}
	if h.opts.Promotions != nil {
		ps, err := h.opts.Promotions.ListPromotions(r.Context(), wid, client)
		if err != nil {
			h.errorPage(w, r, err)
			return
		}
		for _, p := range ps {
			events = append(events, h.promotionEvents(p, v.NoAudit)...)
		}
	}
	if h.opts.History != nil {
		hist, err := h.opts.History.WorkloadHistory(r.Context(), flywheel.HistoryFilter{WorkloadID: wid, ClientID: client})
		if err != nil {
			h.errorPage(w, r, err)
			return
		}
		for _, hr := range hist.Runs {
			if hr.Run.FinishedAt == nil {
				continue
			}
			events = append(events, workloadEvent{At: *hr.Run.FinishedAt, Event: eventRunFinished, Subject: hr.Run.ID,
				Link: h.opts.Prefix + "/runs/" + url.PathEscape(hr.Run.ID), Detail: string(hr.Run.Status),
				Alert: hr.Run.Status == flywheel.RunFailed})
		}
	}
	slices.SortStableFunc(events, func(a, b workloadEvent) int { return a.At.Compare(b.At) })
	if len(events) > workloadEventsMost {
		events, v.Truncated = events[len(events)-workloadEventsMost:], true
	}
	v.Events = events
	h.render(w, r, http.StatusOK, "workloadtimeline", v)
}

// workloadAudit returns the events of the newest audit entries that
// concern the workload (and client): those whose detail names it, and the
// deletions of its schedules.
func (h *Handler) workloadAudit(r *http.Request, wid, client string) ([]workloadEvent, error) {
	var (
		mine      []flywheel.AuditEntry
		deletions []flywheel.AuditEntry
		schedules = map[string]bool{}
	)
	q := flywheel.AuditQuery{Limit: timelineAuditPage}
	for read := 0; read < timelineAuditScan; {
		page, err := h.opts.Audit.ListAudit(r.Context(), q)
		if err != nil {
			return nil, err
		}
		for _, e := range page {
			switch {
			case e.Action == flywheel.AuditScheduleDeleted:
				deletions = append(deletions, e)
			case detailString(e.Detail, "workload_id") == wid && (client == "" || detailString(e.Detail, "client_id") == client):
				mine = append(mine, e)
				if e.Action == flywheel.AuditScheduleCreated {
					schedules[e.Target] = true
				}
			}
		}
		read += len(page)
		if len(page) < q.Limit {
			break
		}
		q.Before = page[len(page)-1].ID
	}
	for _, e := range deletions {
		if schedules[e.Target] {
			mine = append(mine, e)
		}
	}
	// Oldest first: entries of one moment keep the order they were made in.
	slices.SortFunc(mine, func(a, b flywheel.AuditEntry) int { return cmp.Compare(a.ID, b.ID) })
	out := make([]workloadEvent, 0, len(mine))
	for _, e := range mine {
		out = append(out, h.auditEvent(e))
	}
	return out, nil
}

// auditEvent is the timeline's line of an audit entry.
func (h *Handler) auditEvent(e flywheel.AuditEntry) workloadEvent {
	ev := workloadEvent{At: e.At, Event: e.Action, Actor: e.Actor, Subject: e.Target}
	d := e.Detail
	switch e.Action {
	case flywheel.AuditJobCreated, flywheel.AuditJobCancelled, flywheel.AuditJobDeleted:
		ev.Link = h.opts.Prefix + "/runs/" + url.PathEscape(e.Target)
		if s := detailString(d, "schedule_id"); s != "" {
			ev.Detail = "started by schedule " + s
		}
	case flywheel.AuditScheduleCreated:
		var triggers []string
		if c := detailString(d, "cron"); c != "" {
			triggers = append(triggers, "cron "+c)
		}
		if n, ok := d["min_new_records"]; ok {
			triggers = append(triggers, fmt.Sprintf("min_new_records %v", n))
		}
		if a, ok := d["agreement_below"]; ok {
			triggers = append(triggers, fmt.Sprintf("%s below %v", cmp.Or(detailString(d, "agreement_metric"), flywheel.DefaultAgreementMetric), a))
		}
		ev.Detail = strings.Join(triggers, ", ")
	case flywheel.AuditScheduleFired, flywheel.AuditScheduleSkipped, flywheel.AuditScheduleFailed:
		ev.Detail = detailString(d, "reason")
		if run := detailString(d, "run_id"); run != "" {
			ev.Detail += " → run " + run
		}
		ev.Alert = e.Action == flywheel.AuditScheduleFailed
	case flywheel.AuditJobPromoted:
		ev.Link = h.opts.Prefix + "/runs/" + url.PathEscape(e.Target)
		ev.Detail = fmt.Sprintf("%s (%s) in %s", detailString(d, "candidate"), detailString(d, "variant"), detailString(d, "mode"))
		if p, ok := d["canary_percent"]; ok {
			ev.Detail += fmt.Sprintf(" %v%%", p)
		}
		ev.Detail += ": promotion " + detailString(d, "promotion_id")
		if rep := detailString(d, "replaced"); rep != "" {
			ev.Detail += ", replacing " + rep
		}
	case flywheel.AuditPromotionRolledBack:
		ev.Detail = fmt.Sprintf("%s in %s: %s", detailString(d, "candidate"), detailString(d, "mode"), detailString(d, "reason"))
		if b, err := json.Marshal(d["evidence"]); err == nil && d["evidence"] != nil {
			ev.Detail += evidenceSummary(b)
		}
		ev.Alert = true
	default:
		if len(d) > 0 {
			b, _ := json.Marshal(d)
			ev.Detail = string(b)
		}
	}
	return ev
}

// promotionEvents are the timeline's lines of a promotion the audit log
// does not hold: its replacement by the next one, and, without an audit
// log, its start and rollback.
func (h *Handler) promotionEvents(p flywheel.Promotion, noAudit bool) []workloadEvent {
	link := h.opts.Prefix + "/runs/" + url.PathEscape(p.JobID)
	var out []workloadEvent
	if noAudit {
		out = append(out, workloadEvent{At: p.CreatedAt, Event: eventPromotionCreated, Actor: p.CreatedBy, Subject: p.ID, Link: link,
			Detail: fmt.Sprintf("%s (%s) in %s", p.Candidate, p.Variant, p.Mode)})
	}
	if p.EndedAt == nil || (p.Status == flywheel.PromotionRolledBack && !noAudit) {
		return out
	}
	ev := workloadEvent{At: *p.EndedAt, Event: "promotion." + string(p.Status), Subject: p.ID, Link: link,
		Detail: fmt.Sprintf("%s in %s", p.Candidate, p.Mode)}
	if p.Status == flywheel.PromotionReplaced {
		ev.Event = eventPromotionReplaced
	}
	if p.Reason != "" {
		ev.Detail += ": " + p.Reason
	}
	if p.Status == flywheel.PromotionRolledBack {
		ev.Detail += evidenceSummary(p.Evidence)
		ev.Alert = true
	}
	return append(out, ev)
}

// evidenceSummary is the window of a rollback's evidence in a few words:
// n, the candidate's errors and the main metric's interval.
func evidenceSummary(raw json.RawMessage) string {
	var st flywheel.OnlineStats
	if len(raw) == 0 || json.Unmarshal(raw, &st) != nil || st.N == 0 {
		return ""
	}
	s := fmt.Sprintf(" (evidence: n=%d, %d candidate errors", st.N, st.Errors)
	for _, m := range onlineMetricOrder {
		if d, ok := st.Scores[m]; ok {
			s += fmt.Sprintf("; %s %.2f [%.2f, %.2f]", m, d.Mean, d.CILow, d.CIHigh)
			break
		}
	}
	return s + ")"
}

// workloadTimelineLink is the timeline page of a workload (and client).
func (h *Handler) workloadTimelineLink(workload, client string) string {
	link := h.opts.Prefix + "/workloads/" + url.PathEscape(workload) + "/timeline"
	if client != "" {
		link += "?client_id=" + url.QueryEscape(client)
	}
	return link
}

// detailString is a string value of an audit entry's detail ("" when
// absent or not a string).
func detailString(d map[string]any, key string) string {
	s, _ := d[key].(string)
	return s
}
