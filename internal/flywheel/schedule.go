package flywheel

import (
	"context"
	"time"
)

// DefaultAgreementMetric is the online metric an agreement_below trigger
// reads when the schedule names none.
const DefaultAgreementMetric = "function_name_and_args_accuracy"

// AgreementUnavailable is what a schedule's agreement trigger reports when
// the process has no online evaluation to read.
const AgreementUnavailable = "online evaluation unavailable"

// Audit actions of schedules.
const (
	AuditScheduleCreated = "schedule.created"
	AuditScheduleDeleted = "schedule.deleted"
	// AuditScheduleFired records a run a schedule started; skipped and
	// failed record a due trigger that started none, and why.
	AuditScheduleFired   = "schedule.fired"
	AuditScheduleSkipped = "schedule.skipped"
	AuditScheduleFailed  = "schedule.failed"
)

// ActorScheduler is the actor of the audit entries of schedule fires.
const ActorScheduler = "scheduler"

// Schedule starts runs of a workload and client by itself: when its cron
// expression comes due, when MinNewRecords records were logged since the
// workload's last run was created, or when the online agreement of the
// workload's promoted candidate falls below AgreementBelow. It needs at
// least one of the three.
type Schedule struct {
	ID         string `json:"id"`
	WorkloadID string `json:"workload_id"`
	ClientID   string `json:"client_id"`
	// Cron is a 5-field cron expression (minute hour day month weekday),
	// evaluated in UTC.
	Cron string `json:"cron,omitempty"`
	// MinNewRecords fires when this many records of the workload and
	// client were logged after the newest run of theirs was created.
	MinNewRecords *int `json:"min_new_records,omitempty"`
	// AgreementBelow fires when the upper bound of the interval of
	// AgreementMetric's online agreement is below it: the evidence says
	// the promoted candidate agrees less than this with production.
	AgreementBelow  *float64   `json:"agreement_below,omitempty"`
	AgreementMetric string     `json:"agreement_metric,omitempty"`
	Enabled         bool       `json:"enabled"`
	CreatedAt       time.Time  `json:"created_at"`
	CreatedBy       string     `json:"created_by,omitempty"`
	LastFiredAt     *time.Time `json:"last_fired_at,omitempty"`
	LastRunID       string     `json:"last_run_id,omitempty"`
	// NextFireAt is when the cron expression is next due (absent without
	// one).
	NextFireAt *time.Time `json:"next_fire_at,omitempty"`
	// Generation counts the claims of the schedule: a fire claims it by
	// moving it on from the generation it read, so that of two processes
	// that see it due only one fires.
	Generation int64 `json:"-"`
	// AgreementStatus, when set, says why the agreement trigger cannot be
	// evaluated (AgreementUnavailable).
	AgreementStatus string `json:"agreement_status,omitempty"`
}

// ScheduleOutcome is what became of a due trigger.
type ScheduleOutcome string

// The outcomes of a due trigger.
const (
	// ScheduleFired started a run.
	ScheduleFired ScheduleOutcome = "fired"
	// ScheduleSkipped started none: a run of the workload and client was
	// still unfinished.
	ScheduleSkipped ScheduleOutcome = "skipped"
	// ScheduleFailed started none: the run could not be created.
	ScheduleFailed ScheduleOutcome = "failed"
)

// ScheduleEvent is one due trigger of a schedule and its outcome.
type ScheduleEvent struct {
	ID         int64           `json:"id"`
	ScheduleID string          `json:"schedule_id"`
	At         time.Time       `json:"at"`
	Outcome    ScheduleOutcome `json:"outcome"`
	// Reason says which trigger was due and, for a skip or a failure, why
	// no run started.
	Reason string `json:"reason"`
	RunID  string `json:"run_id,omitempty"`
}

// ScheduleDetail is a schedule with its most recent events, newest first.
type ScheduleDetail struct {
	Schedule
	Events []ScheduleEvent `json:"events"`
}

// CreateScheduleRequest is the body of POST /api/schedules.
type CreateScheduleRequest struct {
	WorkloadID      string   `json:"workload_id"`
	ClientID        string   `json:"client_id"`
	Cron            string   `json:"cron,omitempty"`
	MinNewRecords   *int     `json:"min_new_records,omitempty"`
	AgreementBelow  *float64 `json:"agreement_below,omitempty"`
	AgreementMetric string   `json:"agreement_metric,omitempty"`
	// Enabled defaults to true.
	Enabled *bool `json:"enabled,omitempty"`
}

// ScheduleService keeps schedules. Errors are *Error values: EUNPROCESSABLE
// naming the field of a bad request, ENOTFOUND for a missing schedule.
type ScheduleService interface {
	// CreateSchedule validates and stores a schedule; CreatedBy is the
	// actor of ctx.
	CreateSchedule(ctx context.Context, req CreateScheduleRequest) (*Schedule, error)
	// ListSchedules returns every schedule, newest first.
	ListSchedules(ctx context.Context) ([]Schedule, error)
	// GetSchedule returns a schedule with its recent events.
	GetSchedule(ctx context.Context, id string) (*ScheduleDetail, error)
	// DeleteSchedule deletes a schedule and its events.
	DeleteSchedule(ctx context.Context, id string) error
}
