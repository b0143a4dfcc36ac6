// Package engine runs flywheel runs as durable DAGs of River jobs, on the
// embedded SQLite database or on PostgreSQL with any number of worker
// processes. It is the only package that imports River.
//
// Each stage of a run is one River job. A stage's result, the stage rows of
// the successors that became ready and their River jobs are committed in one
// transaction together with the job's completion, so a crash at any point
// either re-runs the stage (stages are idempotent) or finds its successors
// enqueued, never both lost.
package engine

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"riverqueue.com/riverui"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/stage"
	"github.com/flywheel-go/flywheel/internal/store"
)

// Queue names.
const (
	QueueStages  = "stages"
	QueueCleanup = "cleanup"
	// QueueMaintenance runs the liveness check, which must never wait
	// behind long stages or cleanups.
	QueueMaintenance = "maintenance"
)

// Limit is a stage's time limits, measured from the stage's durable start
// (its first attempt), so restarts do not reset them. Soft cancels the
// stage's context and leaves Hard-Soft for cleaning up; Hard fails it.
type Limit struct {
	Hard time.Duration
	Soft time.Duration
}

// RetryPolicy is how transient stage failures are retried.
type RetryPolicy struct {
	MaxAttempts    int
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
}

// Options configures an Engine.
type Options struct {
	Store  *store.Store
	Runner *stage.Runner
	Logger *slog.Logger
	// Registry receives the engine's metrics (nil: none).
	Registry prometheus.Registerer
	// Spec is the configuration new runs are created from.
	Spec flywheel.RunSpec
	// Workers is how many stages this process runs at once; 0 makes an
	// API-only process that enqueues but runs nothing.
	Workers int
	// DeploymentBudget is how many candidates of one run are deployed at once.
	DeploymentBudget int
	// Limits holds per-stage limits; DefaultLimit applies to the others.
	Limits       map[flywheel.StageName]Limit
	DefaultLimit Limit
	Retry        RetryPolicy
	// RescueAfter is River's own rescuer's horizon, a backstop for jobs of
	// other kinds; stage jobs of dead processes are handed back after
	// DeadAfter by the liveness check.
	RescueAfter time.Duration
	// LeaseTTL is the lifetime of this process's leases on remote resources.
	LeaseTTL time.Duration
	// HeartbeatInterval is how often this process records that it is alive
	// and which jobs it holds.
	HeartbeatInterval time.Duration
	// DeadAfter is how long a process may go without a heartbeat before
	// its running jobs are handed to others.
	DeadAfter time.Duration
	// StrandedAfter is how long after a job was fetched for a live process
	// that process's heartbeat must list it; a job it does not hold by then
	// (the fetch never reached it) is handed back. At least 12 s: River
	// gives up a fetch after 10 s.
	StrandedAfter time.Duration
	// LivenessInterval is how often the leader runs the liveness check.
	LivenessInterval time.Duration
	// ReaperInterval is how often the leader releases orphaned resources.
	ReaperInterval time.Duration
	// Retention is the retention policy of stored log records, enforced
	// every RetentionInterval (default an hour) by the leader.
	Retention         store.Retention
	RetentionInterval time.Duration
	// ScheduleInterval is how often the leader checks the schedules
	// (0: ScheduleIntervalDefault); a cron time that comes sooner gets a
	// check of its own.
	ScheduleInterval time.Duration
	// Agreement reads the online agreement of agreement_below triggers
	// (nil: they never fire and report flywheel.AgreementUnavailable).
	Agreement flywheel.AgreementReader
	// Online checks the active promotions' online agreement every
	// OnlineCheckInterval (0: OnlineCheckIntervalDefault), on the leader;
	// nil never does.
	Online              OnlineChecker
	OnlineCheckInterval time.Duration
	// Embedded marks the single-process SQLite mode: at start, stages left
	// running by a previous (crashed) incarnation are resumed at once.
	Embedded bool
	// FetchPollInterval is how often idle workers look for jobs.
	FetchPollInterval time.Duration
	// FetchCooldown is the least time between two fetches of jobs. A fetch
	// follows each completed job and each new job inserted while workers
	// are free (at most one per cooldown), so the cooldown bounds how soon
	// a stage's successor starts; it costs nothing while idle, when workers
	// fetch only every FetchPollInterval. The default is 1 ms (River's
	// minimum) on Postgres and 20 ms on SQLite, whose one connection each
	// fetch takes from the stages: there a longer cooldown fetches more
	// jobs at once and completes more transitions per second (measured by
	// BenchmarkStageTransitions). It is at most FetchPollInterval.
	FetchCooldown time.Duration
	// ProcessID names this process in the ledger and in River.
	ProcessID string
	Now       func() time.Time
}

// Engine runs flywheel runs. It implements flywheel.JobService.
type Engine struct {
	opts       Options
	store      *store.Store
	runner     *stage.Runner
	logger     *slog.Logger
	client     *river.Client[*sql.Tx]
	completeTx func(ctx context.Context, tx *sql.Tx, job *river.Job[StageArgs]) error
	metrics    *metrics
	now        func() time.Time

	mu      sync.Mutex
	running map[string]map[*runningStage]struct{} // by run id
	held    map[int64]time.Time                   // job id → zero while held, else when released
	// lastBeat is when the last successful heartbeat was taken (unix ns).
	lastBeat atomic.Int64
	started  bool
	stopHB   context.CancelFunc
	hbDone   chan struct{}
	// wake is the in-process wake-up of the schedule check.
	wake scheduleTimer

	listener *pgxpool.Pool // Postgres only
}

type runningStage struct {
	cancel context.CancelCauseFunc
}

// ErrRunCancelled is the cause of a stage context cancelled by CancelJob.
var ErrRunCancelled = errors.New("flywheel run cancelled")

var _ flywheel.JobService = (*Engine)(nil)

// New builds an engine on opts.Store. Call Migrate once, then Start.
func New(opts Options) (*Engine, error) {
	if opts.Store == nil || opts.Runner == nil {
		return nil, errors.New("engine: Store and Runner are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.DeploymentBudget < 1 {
		opts.DeploymentBudget = 1
	}
	if opts.Retry.MaxAttempts < 1 {
		opts.Retry.MaxAttempts = 5
	}
	if opts.Retry.InitialBackoff <= 0 {
		opts.Retry.InitialBackoff = time.Second
	}
	if opts.Retry.MaxBackoff <= 0 {
		opts.Retry.MaxBackoff = time.Minute
	}
	if opts.DefaultLimit.Hard <= 0 {
		opts.DefaultLimit = Limit{Hard: 2 * time.Hour, Soft: 110 * time.Minute}
	}
	if opts.RescueAfter <= 0 {
		opts.RescueAfter = time.Hour
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = time.Minute
	}
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = 5 * time.Second
	}
	if opts.DeadAfter <= 0 {
		opts.DeadAfter = 30 * time.Second
	}
	if opts.StrandedAfter <= 0 {
		opts.StrandedAfter = 20 * time.Second
	}
	opts.StrandedAfter = max(opts.StrandedAfter, minStrandedAfter)
	if opts.LivenessInterval <= 0 {
		opts.LivenessInterval = 5 * time.Second
	}
	if opts.ReaperInterval <= 0 {
		opts.ReaperInterval = 30 * time.Second
	}
	if opts.ScheduleInterval <= 0 {
		opts.ScheduleInterval = ScheduleIntervalDefault
	}
	if opts.FetchPollInterval <= 0 {
		opts.FetchPollInterval = 200 * time.Millisecond
	}
	if opts.FetchCooldown <= 0 {
		opts.FetchCooldown = river.FetchCooldownMin
		if opts.Store.Dialect() == store.SQLite {
			opts.FetchCooldown = 20 * time.Millisecond
		}
	}
	opts.FetchCooldown = min(opts.FetchCooldown, opts.FetchPollInterval)
	if opts.ProcessID == "" {
		host, _ := os.Hostname()
		opts.ProcessID = fmt.Sprintf("%s-%d-%d", host, os.Getpid(), opts.Now().UnixNano()%1_000_000)
	}
	e := &Engine{
		opts: opts, store: opts.Store, runner: opts.Runner, now: opts.Now,
		logger:  opts.Logger.With("component", "engine"),
		running: map[string]map[*runningStage]struct{}{},
		held:    map[int64]time.Time{},
	}
	e.runner.Settings.LeaseOwner = opts.ProcessID
	e.runner.Settings.LeaseTTL = opts.LeaseTTL

	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &stageWorker{e: e}); err != nil {
		return nil, err
	}
	if err := river.AddWorkerSafely(workers, &deleteWorker{e: e}); err != nil {
		return nil, err
	}
	if err := river.AddWorkerSafely(workers, &reaperWorker{e: e}); err != nil {
		return nil, err
	}
	if err := river.AddWorkerSafely(workers, &livenessWorker{e: e}); err != nil {
		return nil, err
	}
	if err := river.AddWorkerSafely(workers, &retentionWorker{e: e}); err != nil {
		return nil, err
	}
	if err := river.AddWorkerSafely(workers, &scheduleWorker{e: e}); err != nil {
		return nil, err
	}
	if err := river.AddWorkerSafely(workers, &onlineWorker{e: e}); err != nil {
		return nil, err
	}
	cfg := &river.Config{
		ID:                   opts.ProcessID,
		Workers:              workers,
		Logger:               riverLogger(opts.Logger),
		RescueStuckJobsAfter: opts.RescueAfter,
		JobTimeout:           -1, // per stage, from Worker.Timeout
		FetchPollInterval:    opts.FetchPollInterval,
		FetchCooldown:        opts.FetchCooldown,
		MaxAttempts:          opts.Retry.MaxAttempts,
	}
	if opts.Workers > 0 {
		cfg.Queues = map[string]river.QueueConfig{
			QueueStages:  {MaxWorkers: opts.Workers},
			QueueCleanup: {MaxWorkers: 2},
			// The liveness check's queue is polled at most once a second:
			// its job comes every few seconds, and a fast poll would compete
			// with the stages for the database (one connection on SQLite).
			QueueMaintenance: {MaxWorkers: 1, FetchPollInterval: max(opts.FetchPollInterval, time.Second)},
		}
		cfg.PeriodicJobs = []*river.PeriodicJob{
			river.NewPeriodicJob(river.PeriodicInterval(opts.ReaperInterval),
				func() (river.JobArgs, *river.InsertOpts) { return ReaperArgs{}, nil },
				&river.PeriodicJobOpts{RunOnStart: true, ID: "reaper"}),
			river.NewPeriodicJob(river.PeriodicInterval(opts.LivenessInterval),
				func() (river.JobArgs, *river.InsertOpts) { return LivenessArgs{}, nil },
				&river.PeriodicJobOpts{RunOnStart: true, ID: "liveness"}),
			river.NewPeriodicJob(river.PeriodicInterval(opts.ScheduleInterval),
				func() (river.JobArgs, *river.InsertOpts) { return ScheduleArgs{}, nil },
				&river.PeriodicJobOpts{RunOnStart: true, ID: "schedules"}),
		}
		if retains(opts.Retention) {
			cfg.PeriodicJobs = append(cfg.PeriodicJobs, river.NewPeriodicJob(river.PeriodicInterval(cmp.Or(opts.RetentionInterval, time.Hour)),
				func() (river.JobArgs, *river.InsertOpts) { return RetentionArgs{}, nil },
				&river.PeriodicJobOpts{RunOnStart: true, ID: "retention"}))
		}
		if opts.Online != nil {
			cfg.PeriodicJobs = append(cfg.PeriodicJobs, onlinePeriodicJob(opts.OnlineCheckInterval))
		}
	}
	var err error
	switch opts.Store.Dialect() {
	case store.SQLite:
		drv := riversqlite.New(opts.Store.DB())
		e.client, err = river.NewClient[*sql.Tx](drv, cfg)
		e.completeTx = func(ctx context.Context, tx *sql.Tx, job *river.Job[StageArgs]) error {
			_, err := river.JobCompleteTx[*riversqlite.Driver](ctx, tx, job)
			return err
		}
	default:
		// A pgx pool only for LISTEN/NOTIFY: new jobs and cancellations
		// reach every process at once instead of at the next poll.
		e.listener, err = pgxpool.New(context.Background(), opts.Store.URL())
		if err != nil {
			return nil, fmt.Errorf("listener pool: %w", err)
		}
		drv := riverdatabasesql.NewWithPgxListener(opts.Store.DB(), e.listener)
		e.client, err = river.NewClient[*sql.Tx](drv, cfg)
		e.completeTx = func(ctx context.Context, tx *sql.Tx, job *river.Job[StageArgs]) error {
			_, err := river.JobCompleteTx[*riverdatabasesql.Driver](ctx, tx, job)
			return err
		}
	}
	if err != nil {
		return nil, fmt.Errorf("create river client: %w", err)
	}
	e.metrics = newMetrics(e)
	if opts.Registry != nil {
		if err := e.metrics.register(opts.Registry); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// Migrate applies the store's and River's migrations.
func Migrate(ctx context.Context, s *store.Store) ([]string, error) {
	applied, err := s.Migrate(ctx)
	if err != nil {
		return applied, err
	}
	var drv riverdriver.Driver[*sql.Tx]
	if s.Dialect() == store.SQLite {
		drv = riversqlite.New(s.DB())
	} else {
		drv = riverdatabasesql.New(s.DB())
	}
	m, err := rivermigrate.New(drv, nil)
	if err != nil {
		return applied, fmt.Errorf("river migrator: %w", err)
	}
	res, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return applied, fmt.Errorf("migrate river: %w", err)
	}
	for _, v := range res.Versions {
		applied = append(applied, fmt.Sprintf("river_%03d", v.Version))
	}
	return applied, nil
}

// Start starts the workers (when Workers > 0) and the heartbeat.
func (e *Engine) Start(ctx context.Context) error {
	if e.opts.Embedded {
		n, err := e.store.ResetRunningJobs(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			e.logger.InfoContext(ctx, "Resuming stages left running by a previous process", "jobs", n)
		}
	}
	if e.opts.Workers > 0 {
		if err := e.client.Start(ctx); err != nil {
			return fmt.Errorf("start river: %w", err)
		}
	}
	hbCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.mu.Lock()
	e.started, e.stopHB, e.hbDone = true, cancel, make(chan struct{})
	e.mu.Unlock()
	go e.heartbeat(hbCtx)
	return nil
}

// Stop stops taking new stages and waits up to ctx's deadline for running
// ones; stages still running then are interrupted and handed back (River
// retries them here or in another process). It never cancels a run.
func (e *Engine) Stop(ctx context.Context) error {
	e.mu.Lock()
	started, stopHB, hbDone := e.started, e.stopHB, e.hbDone
	e.started = false
	e.mu.Unlock()
	if !started {
		if e.listener != nil {
			e.listener.Close()
		}
		return nil
	}
	e.stopWakeUps()
	var err error
	if e.opts.Workers > 0 {
		err = e.client.Stop(ctx)
		if err != nil {
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			err = e.client.StopAndCancel(stopCtx)
		}
	}
	stopHB()
	<-hbDone
	rmCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = e.store.RemoveWorker(rmCtx, e.opts.ProcessID)
	if e.listener != nil {
		e.listener.Close()
	}
	return err
}

// ProcessID returns the id this process uses in River and the ledger.
func (e *Engine) ProcessID() string { return e.opts.ProcessID }

// RiverUI returns River's web UI handler, mounted under prefix.
func (e *Engine) RiverUI(ctx context.Context, prefix string) (http.Handler, error) {
	h, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints: riverui.NewEndpoints(e.client, nil),
		Logger:    e.opts.Logger.With("component", "riverui"),
		Prefix:    prefix,
	})
	if err != nil {
		return nil, fmt.Errorf("river ui: %w", err)
	}
	if err := h.Start(ctx); err != nil {
		return nil, fmt.Errorf("start river ui: %w", err)
	}
	return h, nil
}

func (e *Engine) heartbeat(ctx context.Context) {
	defer close(e.hbDone)
	host, _ := os.Hostname()
	w := store.Worker{ID: e.opts.ProcessID, Hostname: host, PID: os.Getpid(), StartedAt: e.now()}
	interval := max(min(e.opts.HeartbeatInterval, e.opts.LeaseTTL/3), 50*time.Millisecond)
	e.lastBeat.Store(e.now().UnixNano())
	fenceDone := make(chan struct{})
	go e.fence(ctx, interval, fenceDone)
	defer func() { <-fenceDone }()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		// The time is taken before the snapshot: every job fetched for this
		// process more than StrandedAfter before it is in the snapshot, or
		// was never received.
		at := e.now()
		held := e.heldJobs()
		if err := e.store.HeartbeatHolding(ctx, w, held, at); err != nil && ctx.Err() == nil {
			e.logger.WarnContext(ctx, "Heartbeat failed", "error", err)
		} else if err == nil {
			e.lastBeat.Store(at.UnixNano())
		}
		if err := e.store.RenewLeases(ctx, e.opts.ProcessID, e.now().Add(e.opts.LeaseTTL)); err != nil && ctx.Err() == nil {
			e.logger.WarnContext(ctx, "Lease renewal failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ErrLostContact is the cause of a stage context cancelled because this
// process could not record a heartbeat for nearly engine.dead_after: other
// processes are about to take its stages over, so it stops working on them.
var ErrLostContact = errors.New("this process lost contact with the database; its stages are handed to other processes")

// fence stops this process's stages once it has gone without a successful
// heartbeat for DeadAfter less one interval, before other processes take
// them over, so that a stage never runs in two processes for long.
func (e *Engine) fence(ctx context.Context, interval time.Duration, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	fenced := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		since := e.now().Sub(time.Unix(0, e.lastBeat.Load()))
		if since <= e.opts.DeadAfter-interval {
			fenced = false
			continue
		}
		if fenced {
			continue
		}
		fenced = true
		e.mu.Lock()
		n := 0
		for _, stages := range e.running {
			for rs := range stages {
				rs.cancel(ErrLostContact)
				n++
			}
		}
		e.mu.Unlock()
		e.logger.ErrorContext(ctx, "No heartbeat recorded for too long; stopping this process's stages so that others take them over",
			"since_last_heartbeat", since.Round(time.Millisecond), "dead_after", e.opts.DeadAfter, "stages_stopped", n)
	}
}

func (e *Engine) limit(name flywheel.StageName) Limit {
	if l, ok := e.opts.Limits[name]; ok && l.Hard > 0 {
		return l
	}
	return e.opts.DefaultLimit
}

func (e *Engine) backoff(attempt int) time.Duration {
	d := e.opts.Retry.InitialBackoff
	for i := 1; i < attempt && d < e.opts.Retry.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, e.opts.Retry.MaxBackoff)
	// Up to 20% jitter so retries of many stages do not align.
	return d + time.Duration(rand.Int64N(int64(d)/5+1))
}

func (e *Engine) track(runID string, cancel context.CancelCauseFunc) func() {
	rs := &runningStage{cancel: cancel}
	e.mu.Lock()
	if e.running[runID] == nil {
		e.running[runID] = map[*runningStage]struct{}{}
	}
	e.running[runID][rs] = struct{}{}
	e.mu.Unlock()
	return func() {
		e.mu.Lock()
		delete(e.running[runID], rs)
		if len(e.running[runID]) == 0 {
			delete(e.running, runID)
		}
		e.mu.Unlock()
	}
}

// cancelLocal cancels the contexts of a run's stages running in this process
// at once; River's cancel reaches stages running in other processes.
func (e *Engine) cancelLocal(runID string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	for rs := range e.running[runID] {
		rs.cancel(ErrRunCancelled)
	}
	return len(e.running[runID])
}

// riverLogger passes on River's warnings and errors only: its informational
// lines (producer counts every few seconds) drown the flywheel's own.
func riverLogger(l *slog.Logger) *slog.Logger {
	return slog.New(&minLevel{Handler: l.Handler(), min: slog.LevelWarn}).With("component", "river")
}

type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h *minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h *minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &minLevel{Handler: h.Handler.WithAttrs(attrs), min: h.min}
}

func (h *minLevel) WithGroup(name string) slog.Handler {
	return &minLevel{Handler: h.Handler.WithGroup(name), min: h.min}
}
