package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/robfig/cron/v3"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/store"
)

// ScheduleIntervalDefault is how often the leader checks the schedules
// when Options.ScheduleInterval is 0.
const ScheduleIntervalDefault = 30 * time.Second

// ScheduleEventsShown is how many recent events GetSchedule returns.
const ScheduleEventsShown = 20

// ParseCron parses a schedule's cron expression: 5 fields (minute hour
// day-of-month month day-of-week) or one of the descriptors @hourly,
// @daily, @weekly, @monthly, @yearly and @every <duration>. Times are in
// UTC unless it starts with CRON_TZ=<zone>.
func ParseCron(expr string) (cron.Schedule, error) {
	return cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor).Parse(expr)
}

var _ flywheel.ScheduleService = (*Engine)(nil)

// ScheduleArgs are the arguments of the periodic schedule check.
type ScheduleArgs struct{}

// Kind implements river.JobArgs.
func (ScheduleArgs) Kind() string { return "flywheel_schedules" }

// InsertOpts puts the check on the maintenance queue, which long stages
// never fill.
func (ScheduleArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueMaintenance, MaxAttempts: 1}
}

type scheduleWorker struct {
	river.WorkerDefaults[ScheduleArgs]
	e *Engine
}

func (w *scheduleWorker) Timeout(*river.Job[ScheduleArgs]) time.Duration { return 5 * time.Minute }

// Work checks every enabled schedule and fires the due ones.
func (w *scheduleWorker) Work(ctx context.Context, _ *river.Job[ScheduleArgs]) error {
	if _, err := w.e.CheckSchedules(ctx); err != nil {
		w.e.logger.WarnContext(ctx, "Schedule check failed", slog.Any("error", err))
	}
	return nil
}

// CheckSchedules evaluates every enabled schedule once and fires those
// whose cron time has come or whose data trigger is met, and returns the
// events it recorded. A fire first claims the schedule (see
// store.Queries.ClaimSchedule), so that any number of processes checking
// at once fire each due schedule once; then, in the same transaction, it
// creates the run, or records a skip when a run of the workload and client
// is unfinished, or a failure when the run cannot be created.
func (e *Engine) CheckSchedules(ctx context.Context) ([]flywheel.ScheduleEvent, error) {
	scheds, err := e.store.ListSchedules(ctx, true)
	if err != nil {
		return nil, err
	}
	var (
		events []flywheel.ScheduleEvent
		errs   []error
	)
	for _, sc := range scheds {
		now := e.now().UTC()
		reasons, cronDue, err := e.dueReasons(ctx, &sc, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("schedule %s: %w", sc.ID, err))
			continue
		}
		if len(reasons) == 0 {
			continue
		}
		if !cronDue {
			// A data trigger stays met while the run it waits for runs:
			// one skip says so, not one per check.
			quiet, err := e.alreadySkipped(ctx, &sc)
			if err != nil {
				errs = append(errs, fmt.Errorf("schedule %s: %w", sc.ID, err))
				continue
			}
			if quiet {
				continue
			}
		}
		ev, err := e.fire(ctx, &sc, strings.Join(reasons, "; "), now)
		if err != nil {
			errs = append(errs, fmt.Errorf("schedule %s: %w", sc.ID, err))
			continue
		}
		if ev != nil {
			events = append(events, *ev)
		}
	}
	e.wakeUp(ctx)
	return events, errors.Join(errs...)
}

// dueReasons returns why a schedule is due now (none: it is not) and
// whether its cron time is among them.
func (e *Engine) dueReasons(ctx context.Context, sc *flywheel.Schedule, now time.Time) (reasons []string, cronDue bool, err error) {
	if sc.Cron != "" && sc.NextFireAt != nil && !now.Before(*sc.NextFireAt) {
		reasons = append(reasons, fmt.Sprintf("cron %q due at %s", sc.Cron, sc.NextFireAt.UTC().Format(time.RFC3339)))
		cronDue = true
	}
	if sc.MinNewRecords != nil {
		since, err := e.store.NewestRunStart(ctx, sc.WorkloadID, sc.ClientID)
		if err != nil {
			return nil, false, err
		}
		n, err := e.store.CountLogsSince(ctx, sc.WorkloadID, sc.ClientID, since, *sc.MinNewRecords)
		if err != nil {
			return nil, false, err
		}
		if n >= *sc.MinNewRecords {
			if since == nil {
				reasons = append(reasons, fmt.Sprintf("%d new records (no run yet)", n))
			} else {
				reasons = append(reasons, fmt.Sprintf("%d new records since the last run was created at %s", n, since.Format(time.RFC3339)))
			}
		}
	}
	if sc.AgreementBelow != nil && e.opts.Agreement != nil {
		r, err := e.agreementReason(ctx, sc)
		if err != nil {
			return nil, false, err
		}
		if r != "" {
			reasons = append(reasons, r)
		}
	}
	return reasons, cronDue, nil
}

// agreementReason says why the online agreement calls for a run, or ""
// when it does not: the upper bound of the metric's interval is below the
// threshold, over samples taken after the schedule's last fire (a run
// started for the same evidence does not start another).
func (e *Engine) agreementReason(ctx context.Context, sc *flywheel.Schedule) (string, error) {
	stats, ok, err := e.opts.Agreement.CurrentAgreement(ctx, sc.WorkloadID, sc.ClientID)
	if err != nil {
		return "", fmt.Errorf("read online agreement: %w", err)
	}
	if !ok {
		return "", nil
	}
	metric := sc.AgreementMetric
	if metric == "" {
		metric = flywheel.DefaultAgreementMetric
	}
	sd, ok := stats.Scores[metric]
	if !ok || sd.N == 0 || math.IsNaN(sd.CIHigh) || sd.CIHigh >= *sc.AgreementBelow {
		return "", nil
	}
	if sc.LastFiredAt != nil && !stats.WindowStart.After(*sc.LastFiredAt) {
		return "", nil
	}
	return fmt.Sprintf("online %s %.3f [%.3f, %.3f] over %d samples is below %g", metric, sd.Mean, sd.CILow, sd.CIHigh, sd.N,
		*sc.AgreementBelow), nil
}

// alreadySkipped reports whether the schedule's newest event is a skip for
// the run that is still unfinished.
func (e *Engine) alreadySkipped(ctx context.Context, sc *flywheel.Schedule) (bool, error) {
	running, err := e.store.UnfinishedRun(ctx, sc.WorkloadID, sc.ClientID)
	if err != nil || running == "" {
		return false, err
	}
	last, err := e.store.ListScheduleEvents(ctx, sc.ID, 1)
	if err != nil {
		return false, err
	}
	return len(last) == 1 && last[0].Outcome == flywheel.ScheduleSkipped && last[0].RunID == running, nil
}

// fire claims a due schedule and, in the same transaction, starts its run
// or records why it starts none. It returns nil when another process
// claimed the schedule first.
func (e *Engine) fire(ctx context.Context, sc *flywheel.Schedule, reason string, now time.Time) (*flywheel.ScheduleEvent, error) {
	var next *time.Time
	if sc.Cron != "" {
		cs, err := ParseCron(sc.Cron)
		if err != nil {
			return nil, fmt.Errorf("cron %q: %w", sc.Cron, err)
		}
		n := cs.Next(now).UTC()
		next = &n
	}
	run, prepErr := e.newRun(flywheel.CreateJobRequest{WorkloadID: sc.WorkloadID, ClientID: sc.ClientID})
	var ev *flywheel.ScheduleEvent
	err := e.store.InTx(ctx, func(q *store.Queries) error {
		ev = nil
		won, err := q.ClaimSchedule(ctx, sc.ID, sc.Generation, next)
		if err != nil || !won {
			return err
		}
		ev = &flywheel.ScheduleEvent{ScheduleID: sc.ID, At: now, Reason: reason}
		running, err := q.UnfinishedRun(ctx, sc.WorkloadID, sc.ClientID)
		if err != nil {
			return err
		}
		switch {
		case running != "":
			ev.Outcome, ev.RunID = flywheel.ScheduleSkipped, running
			ev.Reason += fmt.Sprintf("; run %s still running", running)
		case prepErr != nil:
			ev.Outcome = flywheel.ScheduleFailed
			ev.Reason += "; the run could not be created: " + flywheel.ErrorMessage(prepErr)
		default:
			if err := e.insertRunTx(ctx, q, run, ""); err != nil {
				return err
			}
			if err := q.ScheduleFired(ctx, sc.ID, now, run.ID); err != nil {
				return err
			}
			ev.Outcome, ev.RunID = flywheel.ScheduleFired, run.ID
			if err := q.AddAudit(ctx, &flywheel.AuditEntry{At: now, Actor: flywheel.ActorScheduler, Action: flywheel.AuditJobCreated,
				Target: run.ID, Detail: map[string]any{"workload_id": sc.WorkloadID, "client_id": sc.ClientID, "schedule_id": sc.ID}}); err != nil {
				return err
			}
		}
		if err := q.AddScheduleEvent(ctx, ev); err != nil {
			return err
		}
		detail := map[string]any{"workload_id": sc.WorkloadID, "client_id": sc.ClientID, "reason": ev.Reason}
		if ev.RunID != "" {
			detail["run_id"] = ev.RunID
		}
		return q.AddAudit(ctx, &flywheel.AuditEntry{At: now, Actor: flywheel.ActorScheduler, Action: auditAction(ev.Outcome),
			Target: sc.ID, Detail: detail})
	})
	if err != nil {
		return nil, fmt.Errorf("fire: %w", err)
	}
	if ev == nil {
		return nil, nil
	}
	log := e.logger.InfoContext
	if ev.Outcome != flywheel.ScheduleFired {
		log = e.logger.WarnContext
	}
	log(ctx, "Schedule "+string(ev.Outcome), slog.String("schedule_id", sc.ID), slog.String("workload_id", sc.WorkloadID),
		slog.String("client_id", sc.ClientID), slog.String("run_id", ev.RunID), slog.String("reason", ev.Reason),
		slog.Duration("after_due", scheduleLag(sc, now)))
	return ev, nil
}

// scheduleLag is how long after its cron time a schedule fired (0 for a
// data trigger).
func scheduleLag(sc *flywheel.Schedule, now time.Time) time.Duration {
	if sc.NextFireAt == nil || now.Before(*sc.NextFireAt) {
		return 0
	}
	return now.Sub(*sc.NextFireAt)
}

func auditAction(o flywheel.ScheduleOutcome) string {
	switch o {
	case flywheel.ScheduleFired:
		return flywheel.AuditScheduleFired
	case flywheel.ScheduleSkipped:
		return flywheel.AuditScheduleSkipped
	}
	return flywheel.AuditScheduleFailed
}

// scheduleTimer is the in-process wake-up of a started engine: a check at
// the earliest cron time that comes before the next periodic check, so
// that a cron schedule fires within moments of its time rather than up to
// a check interval late.
type scheduleTimer struct {
	mu      sync.Mutex
	timer   *time.Timer
	at      time.Time
	stopped bool
}

// wakeUp arms the wake-up for the earliest cron time of the enabled
// schedules.
func (e *Engine) wakeUp(ctx context.Context) {
	scheds, err := e.store.ListSchedules(ctx, true)
	if err != nil {
		return
	}
	now := e.now()
	var first *time.Time
	for _, sc := range scheds {
		if sc.NextFireAt != nil && sc.NextFireAt.After(now) && (first == nil || sc.NextFireAt.Before(*first)) {
			first = sc.NextFireAt
		}
	}
	if first != nil {
		e.wakeUpAt(*first)
	}
}

// wakeUpAt arms a check at due when due comes before the next periodic
// check and before the check already armed. Only a started engine with
// workers (one that runs the periodic check) arms one.
func (e *Engine) wakeUpAt(due time.Time) {
	wait := due.Sub(e.now())
	if wait >= e.opts.ScheduleInterval || e.opts.Workers == 0 {
		return
	}
	e.mu.Lock()
	started := e.started
	e.mu.Unlock()
	w := &e.wake
	w.mu.Lock()
	defer w.mu.Unlock()
	if !started || w.stopped || (w.timer != nil && w.at.After(e.now()) && !w.at.After(due)) {
		return
	}
	if w.timer != nil {
		w.timer.Stop()
	}
	w.at = due
	w.timer = time.AfterFunc(max(wait, 0), func() {
		// Spent: a check that finds the schedule not quite due yet
		// (clocks) arms it again.
		w.mu.Lock()
		if w.at.Equal(due) {
			w.at = time.Time{}
		}
		w.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := e.CheckSchedules(ctx); err != nil {
			e.logger.WarnContext(ctx, "Schedule check failed", slog.Any("error", err))
		}
	})
}

// stopWakeUps disarms the wake-up for good (Stop).
func (e *Engine) stopWakeUps() {
	w := &e.wake
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	if w.timer != nil {
		w.timer.Stop()
	}
}

// CreateSchedule validates and stores a schedule; a cron schedule's first
// fire is its expression's next time after now.
func (e *Engine) CreateSchedule(ctx context.Context, req flywheel.CreateScheduleRequest) (*flywheel.Schedule, error) {
	cs, fields := validateSchedule(req)
	if len(fields) > 0 {
		return nil, &flywheel.Error{Code: flywheel.EUNPROCESSABLE, Message: fields[0].Msg, Fields: fields}
	}
	now := e.now().UTC()
	sc := &flywheel.Schedule{ID: store.NewID(now), WorkloadID: req.WorkloadID, ClientID: req.ClientID, Cron: req.Cron,
		MinNewRecords: req.MinNewRecords, AgreementBelow: req.AgreementBelow, Enabled: req.Enabled == nil || *req.Enabled,
		CreatedAt: now, CreatedBy: flywheel.ActorFrom(ctx)}
	if req.AgreementBelow != nil {
		sc.AgreementMetric = req.AgreementMetric
		if sc.AgreementMetric == "" {
			sc.AgreementMetric = flywheel.DefaultAgreementMetric
		}
	}
	if cs != nil {
		next := cs.Next(now).UTC()
		sc.NextFireAt = &next
	}
	if err := e.store.CreateSchedule(ctx, sc); err != nil {
		return nil, err
	}
	if sc.NextFireAt != nil && sc.Enabled {
		e.wakeUpAt(*sc.NextFireAt)
	}
	e.annotate(sc)
	e.logger.InfoContext(ctx, "Schedule created", slog.String("schedule_id", sc.ID), slog.String("workload_id", sc.WorkloadID),
		slog.String("client_id", sc.ClientID), slog.String("cron", sc.Cron))
	return sc, nil
}

// validateSchedule checks a create request and returns its parsed cron
// expression (nil without one) or the fields at fault.
func validateSchedule(req flywheel.CreateScheduleRequest) (cron.Schedule, []flywheel.FieldError) {
	var out []flywheel.FieldError
	bad := func(field, msg, typ string) {
		loc := []string{"body"}
		if field != "" {
			loc = append(loc, field)
		}
		out = append(out, flywheel.FieldError{Loc: loc, Msg: msg, Type: typ})
	}
	for _, f := range []struct{ name, v string }{{"workload_id", req.WorkloadID}, {"client_id", req.ClientID}} {
		if f.v == "" {
			bad(f.name, "Field required", "missing")
		} else if reason := flywheel.CheckText(f.v, flywheel.MaxIDBytes); reason != "" {
			bad(f.name, "Value error, "+f.name+" is "+reason, "value_error")
		}
	}
	var cs cron.Schedule
	if req.Cron != "" {
		var err error
		if cs, err = ParseCron(req.Cron); err != nil {
			bad("cron", "Value error, not a 5-field cron expression (minute hour day month weekday) or @hourly, @daily, @every 1h: "+err.Error(), "value_error")
		}
	}
	if n := req.MinNewRecords; n != nil && *n < 1 {
		bad("min_new_records", "Input should be greater than or equal to 1", "greater_than_equal")
	}
	if b := req.AgreementBelow; b != nil && (math.IsNaN(*b) || *b <= 0 || *b > 1) {
		bad("agreement_below", "Input should be greater than 0 and less than or equal to 1", "value_error")
	}
	if req.AgreementMetric != "" {
		if req.AgreementBelow == nil {
			bad("agreement_metric", "Value error, agreement_metric needs agreement_below", "value_error")
		} else if reason := flywheel.CheckText(req.AgreementMetric, flywheel.MaxNameBytes); reason != "" {
			bad("agreement_metric", "Value error, agreement_metric is "+reason, "value_error")
		}
	}
	if req.Cron == "" && req.MinNewRecords == nil && req.AgreementBelow == nil {
		bad("", "Value error, give at least one trigger: cron, min_new_records or agreement_below", "value_error")
	}
	return cs, out
}

// annotate fills what a schedule's reader needs to know beyond its row.
func (e *Engine) annotate(sc *flywheel.Schedule) {
	if sc.AgreementBelow != nil && e.opts.Agreement == nil {
		sc.AgreementStatus = flywheel.AgreementUnavailable
	}
}

// ListSchedules returns every schedule, newest first.
func (e *Engine) ListSchedules(ctx context.Context) ([]flywheel.Schedule, error) {
	scheds, err := e.store.ListSchedules(ctx, false)
	if err != nil {
		return nil, err
	}
	for i := range scheds {
		e.annotate(&scheds[i])
	}
	return scheds, nil
}

// GetSchedule returns a schedule with its ScheduleEventsShown most recent
// events.
func (e *Engine) GetSchedule(ctx context.Context, id string) (*flywheel.ScheduleDetail, error) {
	if !store.ValidID(id) {
		return nil, flywheel.Errorf(flywheel.EINVALID, "Invalid schedule id format")
	}
	sc, err := e.store.GetSchedule(ctx, id)
	if errors.Is(err, flywheel.ErrNotFound) {
		return nil, flywheel.Errorf(flywheel.ENOTFOUND, "Schedule %s not found", id)
	}
	if err != nil {
		return nil, err
	}
	e.annotate(sc)
	events, err := e.store.ListScheduleEvents(ctx, id, ScheduleEventsShown)
	if err != nil {
		return nil, err
	}
	return &flywheel.ScheduleDetail{Schedule: *sc, Events: events}, nil
}

// DeleteSchedule deletes a schedule and its events; the runs it started
// stay.
func (e *Engine) DeleteSchedule(ctx context.Context, id string) error {
	if !store.ValidID(id) {
		return flywheel.Errorf(flywheel.EINVALID, "Invalid schedule id format")
	}
	err := e.store.InTx(ctx, func(q *store.Queries) error { return q.DeleteSchedule(ctx, id) })
	if errors.Is(err, flywheel.ErrNotFound) {
		return flywheel.Errorf(flywheel.ENOTFOUND, "Schedule %s not found", id)
	}
	return err
}
