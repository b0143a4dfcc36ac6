package ui

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// scheduleEventsShown is how many recent events the schedules page shows
// per schedule.
const scheduleEventsShown = 5

type scheduleRow struct {
	flywheel.Schedule
	Triggers string
	Events   []flywheel.ScheduleEvent
}

type schedulesView struct {
	page
	Schedules []scheduleRow
}

// schedulesPage lists the schedules with their next cron time, last run
// and recent events (fired, skipped or failed, and why).
func (h *Handler) schedulesPage(w http.ResponseWriter, r *http.Request) {
	if h.opts.Schedules == nil {
		h.errorPage(w, r, flywheel.Errorf(flywheel.EUNAVAILABLE, "Schedules are not available in this process."))
		return
	}
	scheds, err := h.opts.Schedules.ListSchedules(r.Context())
	if err != nil {
		h.errorPage(w, r, err)
		return
	}
	v := schedulesView{page: h.page(r, "Schedules")}
	v.Nav = "schedules"
	for _, sc := range scheds {
		d, err := h.opts.Schedules.GetSchedule(r.Context(), sc.ID)
		if err != nil {
			h.errorPage(w, r, err)
			return
		}
		row := scheduleRow{Schedule: sc, Triggers: scheduleTriggers(&sc), Events: d.Events}
		if len(row.Events) > scheduleEventsShown {
			row.Events = row.Events[:scheduleEventsShown]
		}
		v.Schedules = append(v.Schedules, row)
	}
	h.render(w, r, http.StatusOK, "schedules", v)
}

// scheduleTriggers describes a schedule's triggers in one line.
func scheduleTriggers(sc *flywheel.Schedule) string {
	var parts []string
	if sc.Cron != "" {
		parts = append(parts, "cron "+sc.Cron+" (UTC)")
	}
	if sc.MinNewRecords != nil {
		parts = append(parts, fmt.Sprintf("%d new records", *sc.MinNewRecords))
	}
	if sc.AgreementBelow != nil {
		p := fmt.Sprintf("online %s below %g", sc.AgreementMetric, *sc.AgreementBelow)
		if sc.AgreementStatus != "" {
			p += " (" + sc.AgreementStatus + ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}
