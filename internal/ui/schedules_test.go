package ui_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/ui"
)

// fixedSchedules serves one schedule with a fire and a skip.
type fixedSchedules struct{ flywheel.ScheduleService }

func (fixedSchedules) sample() flywheel.Schedule {
	next := time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)
	fired := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	n, below := 500, 0.8
	return flywheel.Schedule{ID: "sched-1", WorkloadID: "support-bot", ClientID: "acme", Cron: "0 * * * *", MinNewRecords: &n,
		AgreementBelow: &below, AgreementMetric: flywheel.DefaultAgreementMetric, AgreementStatus: flywheel.AgreementUnavailable,
		Enabled: true, NextFireAt: &next, LastFiredAt: &fired, LastRunID: "run-7"}
}

func (f fixedSchedules) ListSchedules(context.Context) ([]flywheel.Schedule, error) {
	return []flywheel.Schedule{f.sample()}, nil
}

func (f fixedSchedules) GetSchedule(context.Context, string) (*flywheel.ScheduleDetail, error) {
	return &flywheel.ScheduleDetail{Schedule: f.sample(), Events: []flywheel.ScheduleEvent{
		{ID: 2, At: time.Date(2026, 3, 1, 10, 30, 0, 0, time.UTC), Outcome: flywheel.ScheduleSkipped,
			Reason: "612 new records since the last run was created; run run-7 still running", RunID: "run-7"},
		{ID: 1, At: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), Outcome: flywheel.ScheduleFired, Reason: "cron due", RunID: "run-7"},
	}}, nil
}

// TestSchedulesPage lists schedules with their triggers, next cron time,
// last run and recent events, and is linked from the navigation.
func TestSchedulesPage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	get := func(h http.Handler) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, "/ui/schedules", nil))
		return rec.Code, rec.Body.String()
	}
	code, body := get(ui.New(ui.Options{Schedules: fixedSchedules{}, Prefix: "/ui"}))
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `aria-current="page">Schedules`)
	require.Contains(t, body, "cron 0 * * * * (UTC); 500 new records; online function_name_and_args_accuracy below 0.8 (online evaluation unavailable)")
	require.Contains(t, body, "2026-03-01 11:00:00")
	require.Contains(t, body, `href="/ui/runs/run-7"`)
	require.Contains(t, body, `badge s-skipped`)
	require.Contains(t, body, `badge s-fired`)
	require.Contains(t, body, "run run-7 still running")

	code, _ = get(ui.New(ui.Options{Prefix: "/ui"}))
	require.Equal(t, http.StatusServiceUnavailable, code)
}
