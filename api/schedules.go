package api

// ScheduleRequest is the body of POST /api/schedules. At least one trigger
// is required: cron, min_new_records or agreement_below.
type ScheduleRequest struct {
	WorkloadID string `json:"workload_id"`
	ClientID   string `json:"client_id"`
	// Cron is a 5-field cron expression (minute hour day month weekday,
	// UTC) or @hourly, @daily, @weekly, @monthly, @every <duration>.
	Cron string `json:"cron,omitempty"`
	// MinNewRecords fires once this many records were logged since the
	// workload's newest run was created (at least 1).
	MinNewRecords *int `json:"min_new_records,omitempty"`
	// AgreementBelow fires when the upper bound of the online agreement's
	// interval is below it (more than 0, at most 1).
	AgreementBelow *float64 `json:"agreement_below,omitempty"`
	// AgreementMetric is the online metric read (default
	// function_name_and_args_accuracy).
	AgreementMetric string `json:"agreement_metric,omitempty"`
	// Enabled defaults to true.
	Enabled *bool `json:"enabled,omitempty"`
}

// Schedule is a schedule that starts runs of a workload and client.
type Schedule struct {
	ID              string   `json:"id"`
	WorkloadID      string   `json:"workload_id"`
	ClientID        string   `json:"client_id"`
	Cron            string   `json:"cron,omitempty"`
	MinNewRecords   *int     `json:"min_new_records,omitempty"`
	AgreementBelow  *float64 `json:"agreement_below,omitempty"`
	AgreementMetric string   `json:"agreement_metric,omitempty"`
	Enabled         bool     `json:"enabled"`
	CreatedAt       Time     `json:"created_at"`
	CreatedBy       string   `json:"created_by"`
	LastFiredAt     *Time    `json:"last_fired_at"`
	LastRunID       *string  `json:"last_run_id"`
	// NextFireAt is the cron expression's next time (null without one).
	NextFireAt *Time `json:"next_fire_at"`
	// AgreementStatus says why the agreement trigger cannot fire ("online
	// evaluation unavailable").
	AgreementStatus string `json:"agreement_status,omitempty"`
}

// ScheduleEvent is a due trigger of a schedule and what became of it:
// fired (run_id is the run started), skipped (run_id is the unfinished
// run it waited for) or failed.
type ScheduleEvent struct {
	ID      int64   `json:"id"`
	At      Time    `json:"at"`
	Outcome string  `json:"outcome"`
	Reason  string  `json:"reason"`
	RunID   *string `json:"run_id"`
}

// ScheduleDetail answers GET /api/schedules/{schedule_id}: the schedule
// and its recent events, newest first.
type ScheduleDetail struct {
	Schedule
	Events []ScheduleEvent `json:"events"`
}

// SchedulesResponse answers GET /api/schedules, newest first.
type SchedulesResponse struct {
	Schedules []Schedule `json:"schedules"`
}

// ScheduleDeleteResponse answers DELETE /api/schedules/{schedule_id}.
type ScheduleDeleteResponse struct {
	ID      string `json:"id"`
	Message string `json:"message"`
}
