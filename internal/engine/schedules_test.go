package engine_test

import (
	"context"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/engine"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/flywheeltest"
	"github.com/flywheel-go/flywheel/internal/stage"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// fakeAgreement is an AgreementReader with fixed statistics.
type fakeAgreement struct {
	mu    sync.Mutex
	stats flywheel.OnlineStats
	ok    bool
}

func (f *fakeAgreement) CurrentAgreement(context.Context, string, string) (flywheel.OnlineStats, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats, f.ok, nil
}

// scheduleEngine builds an engine on the database at url that runs no
// stages unless workers > 0 (then it is started), with clock now.
func scheduleEngine(t *testing.T, url string, workers int, now func() time.Time, mutate func(*engine.Options)) (*engine.Engine, *store.Store) {
	t.Helper()
	s := openMigrated(t, url)
	opts := engine.Options{Store: s, Logger: testLogger(t), Workers: workers, Now: now,
		Spec: flywheel.RunSpec{Candidates: twoCandidates(), Namespace: "dfwbp",
			Judge: flywheel.JudgeConfig{DeploymentType: flywheel.DeploymentTypeRemote}},
		Retry:             engine.RetryPolicy{MaxAttempts: 4, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond},
		LeaseTTL:          time.Second,
		ReaperInterval:    time.Hour,
		FetchPollInterval: 20 * time.Millisecond,
	}
	if mutate != nil {
		mutate(&opts)
	}
	if opts.Runner == nil {
		opts.Runner = testRunner(t, s, &flywheeltest.Platform{DeployPolls: 1, CustomizationPolls: 2})
	}
	e, err := engine.New(opts)
	require.NoError(t, err)
	if workers > 0 {
		require.NoError(t, e.Start(context.Background()))
	}
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Stop(stopCtx)
	})
	return e, s
}

// testRunner returns a stage runner on the fake platform p.
func testRunner(t *testing.T, s *store.Store, p *flywheeltest.Platform) *stage.Runner {
	return &stage.Runner{Store: s, Platform: p, Datasets: &flywheeltest.Builder{}, Evaluator: &flywheeltest.Evaluator{},
		Logger: testLogger(t), Settings: stage.Settings{PollInterval: 10 * time.Millisecond, DataDir: t.TempDir()}}
}

func intPtr(n int) *int           { return &n }
func floatPtr(f float64) *float64 { return &f }
func auditCount(t *testing.T, s *store.Store, action string) int {
	t.Helper()
	entries, err := s.ListAudit(context.Background(), flywheel.AuditQuery{Action: action})
	require.NoError(t, err)
	return len(entries)
}

// TestScheduleCronFiresThenSkips moves a clock past a cron schedule's
// times: the first due time creates a run, the second, while that run is
// unfinished, is recorded as skipped naming it, and once the run has
// finished the third creates a run again. Fires and skips are in the
// schedule's events and the audit log.
func TestScheduleCronFiresThenSkips(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			ctx := context.Background()
			clock := &fakeClock{t: time.Date(2026, 3, 1, 10, 2, 0, 0, time.UTC)}
			e, s := scheduleEngine(t, storetest.URL(t, d), 0, clock.Now, nil)
			sc, err := e.CreateSchedule(ctx, flywheel.CreateScheduleRequest{WorkloadID: "wl", ClientID: "cl", Cron: "*/5 * * * *"})
			require.NoError(t, err)
			require.Equal(t, time.Date(2026, 3, 1, 10, 5, 0, 0, time.UTC), *sc.NextFireAt)
			require.Equal(t, flywheel.ActorLocal, sc.CreatedBy)

			clock.Set(time.Date(2026, 3, 1, 10, 4, 59, 0, time.UTC))
			events, err := e.CheckSchedules(ctx)
			require.NoError(t, err)
			require.Empty(t, events, "not due yet")

			clock.Set(time.Date(2026, 3, 1, 10, 5, 1, 0, time.UTC))
			events, err = e.CheckSchedules(ctx)
			require.NoError(t, err)
			require.Len(t, events, 1)
			require.Equal(t, flywheel.ScheduleFired, events[0].Outcome)
			first := events[0].RunID
			run, err := s.GetRun(ctx, first)
			require.NoError(t, err)
			require.Equal(t, "wl", run.WorkloadID)
			events, err = e.CheckSchedules(ctx)
			require.NoError(t, err)
			require.Empty(t, events, "a due time fires once")

			clock.Set(time.Date(2026, 3, 1, 10, 10, 0, 0, time.UTC))
			events, err = e.CheckSchedules(ctx)
			require.NoError(t, err)
			require.Len(t, events, 1)
			require.Equal(t, flywheel.ScheduleSkipped, events[0].Outcome)
			require.Contains(t, events[0].Reason, "run "+first+" still running")
			require.Equal(t, first, events[0].RunID)

			_, err = s.FinishRun(ctx, first, flywheel.RunCompleted, "")
			require.NoError(t, err)
			clock.Set(time.Date(2026, 3, 1, 10, 16, 0, 0, time.UTC))
			events, err = e.CheckSchedules(ctx)
			require.NoError(t, err)
			require.Len(t, events, 1)
			require.Equal(t, flywheel.ScheduleFired, events[0].Outcome)
			require.NotEqual(t, first, events[0].RunID)

			got, err := e.GetSchedule(ctx, sc.ID)
			require.NoError(t, err)
			require.Len(t, got.Events, 3)
			require.Equal(t, events[0].RunID, got.LastRunID)
			require.Equal(t, time.Date(2026, 3, 1, 10, 20, 0, 0, time.UTC), *got.NextFireAt, "the next time after the late fire")
			require.Equal(t, 2, auditCount(t, s, flywheel.AuditScheduleFired))
			require.Equal(t, 1, auditCount(t, s, flywheel.AuditScheduleSkipped))
			require.Equal(t, 2, auditCount(t, s, flywheel.AuditJobCreated))
		})
	}
}

// TestScheduleMinNewRecords fires a min_new_records schedule only once N
// records were logged after the workload's newest run was created.
func TestScheduleMinNewRecords(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	clock := &fakeClock{t: t0}
	e, s := scheduleEngine(t, storetest.URL(t, store.SQLite), 0, clock.Now, nil)
	_, err := e.CreateSchedule(ctx, flywheel.CreateScheduleRequest{WorkloadID: "wl", ClientID: "cl", MinNewRecords: intPtr(3)})
	require.NoError(t, err)
	seq := 0
	logRecords := func(n int, at time.Time) {
		var recs []flywheel.LogRecord
		for range n {
			seq++
			recs = append(recs, flywheel.LogRecord{WorkloadID: "wl", ClientID: "cl", Timestamp: at,
				Request:  []byte(`{"messages":[{"role":"user","content":"q` + time.Duration(seq).String() + `"}]}`),
				Response: []byte(`{"choices":[{"message":{"role":"assistant","content":"a"}}]}`)})
		}
		_, _, err := s.InsertLogs(ctx, recs)
		require.NoError(t, err)
	}
	check := func() []flywheel.ScheduleEvent {
		events, err := e.CheckSchedules(ctx)
		require.NoError(t, err)
		return events
	}

	logRecords(2, t0.Add(time.Minute))
	require.Empty(t, check(), "2 of 3 records")
	logRecords(1, t0.Add(2*time.Minute))
	clock.Set(t0.Add(3 * time.Minute))
	events := check()
	require.Len(t, events, 1)
	require.Equal(t, flywheel.ScheduleFired, events[0].Outcome)
	require.Contains(t, events[0].Reason, "3 new records")
	runID := events[0].RunID
	require.Empty(t, check(), "the records before the new run no longer count")

	_, err = s.FinishRun(ctx, runID, flywheel.RunCompleted, "")
	require.NoError(t, err)
	logRecords(2, t0.Add(4*time.Minute))
	require.Empty(t, check())
	logRecords(1, t0.Add(5*time.Minute))
	events = check()
	require.Len(t, events, 1)
	require.Equal(t, flywheel.ScheduleFired, events[0].Outcome)
	require.NotEqual(t, runID, events[0].RunID)

	// Met again while that run is unfinished: one skip, not one per check.
	logRecords(3, t0.Add(6*time.Minute))
	clock.Set(t0.Add(7 * time.Minute))
	events = check()
	require.Len(t, events, 1)
	require.Equal(t, flywheel.ScheduleSkipped, events[0].Outcome)
	require.Empty(t, check())
}

// TestScheduleAgreementBelow fires when the upper bound of the online
// agreement's interval is below the threshold, once per window of evidence;
// without a reader the trigger reports that online evaluation is
// unavailable and never fires.
func TestScheduleAgreementBelow(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	clock := &fakeClock{t: t0}
	reader := &fakeAgreement{}
	e, s := scheduleEngine(t, storetest.URL(t, store.SQLite), 0, clock.Now, func(o *engine.Options) { o.Agreement = reader })
	sc, err := e.CreateSchedule(ctx, flywheel.CreateScheduleRequest{WorkloadID: "wl", ClientID: "cl", AgreementBelow: floatPtr(0.8)})
	require.NoError(t, err)
	require.Equal(t, flywheel.DefaultAgreementMetric, sc.AgreementMetric)
	require.Empty(t, sc.AgreementStatus)

	setStats := func(high float64, windowStart time.Time) {
		reader.mu.Lock()
		defer reader.mu.Unlock()
		reader.ok = true
		reader.stats = flywheel.OnlineStats{N: 50, WindowStart: windowStart, Scores: map[string]flywheel.ScoreDetail{
			flywheel.DefaultAgreementMetric: {N: 50, Mean: high - 0.1, CILow: high - 0.2, CIHigh: high}}}
	}
	events, err := e.CheckSchedules(ctx)
	require.NoError(t, err)
	require.Empty(t, events, "no promotion")
	setStats(0.85, t0)
	events, err = e.CheckSchedules(ctx)
	require.NoError(t, err)
	require.Empty(t, events, "the interval reaches the threshold: no evidence")
	setStats(0.75, t0)
	clock.Set(t0.Add(time.Minute))
	events, err = e.CheckSchedules(ctx)
	require.NoError(t, err)
	require.Len(t, events, 1)
	require.Equal(t, flywheel.ScheduleFired, events[0].Outcome)
	require.Contains(t, events[0].Reason, "below 0.8")
	_, err = s.FinishRun(ctx, events[0].RunID, flywheel.RunCompleted, "")
	require.NoError(t, err)
	events, err = e.CheckSchedules(ctx)
	require.NoError(t, err)
	require.Empty(t, events, "the same window's evidence does not fire twice")
	setStats(0.75, t0.Add(2*time.Minute))
	events, err = e.CheckSchedules(ctx)
	require.NoError(t, err)
	require.Len(t, events, 1, "a window of samples taken after the fire")

	bare, _ := scheduleEngine(t, storetest.URL(t, store.SQLite), 0, clock.Now, nil)
	sc, err = bare.CreateSchedule(ctx, flywheel.CreateScheduleRequest{WorkloadID: "wl", ClientID: "cl", AgreementBelow: floatPtr(0.8)})
	require.NoError(t, err)
	require.Equal(t, flywheel.AgreementUnavailable, sc.AgreementStatus)
	events, err = bare.CheckSchedules(ctx)
	require.NoError(t, err)
	require.Empty(t, events)
}

// TestScheduleValidation checks that each bad request names its field.
func TestScheduleValidation(t *testing.T) {
	e, _ := scheduleEngine(t, storetest.URL(t, store.SQLite), 0, nil, nil)
	cases := []struct {
		name  string
		req   flywheel.CreateScheduleRequest
		field string
	}{
		{"NoTrigger", flywheel.CreateScheduleRequest{WorkloadID: "w", ClientID: "c"}, ""},
		{"BadCron", flywheel.CreateScheduleRequest{WorkloadID: "w", ClientID: "c", Cron: "every hour"}, "cron"},
		{"SixFields", flywheel.CreateScheduleRequest{WorkloadID: "w", ClientID: "c", Cron: "0 0 * * * *"}, "cron"},
		{"NegativeN", flywheel.CreateScheduleRequest{WorkloadID: "w", ClientID: "c", MinNewRecords: intPtr(-1)}, "min_new_records"},
		{"ZeroN", flywheel.CreateScheduleRequest{WorkloadID: "w", ClientID: "c", MinNewRecords: intPtr(0)}, "min_new_records"},
		{"ThresholdAboveOne", flywheel.CreateScheduleRequest{WorkloadID: "w", ClientID: "c", AgreementBelow: floatPtr(1.5)}, "agreement_below"},
		{"ThresholdNegative", flywheel.CreateScheduleRequest{WorkloadID: "w", ClientID: "c", AgreementBelow: floatPtr(-0.1)}, "agreement_below"},
		{"MetricWithoutThreshold", flywheel.CreateScheduleRequest{WorkloadID: "w", ClientID: "c", Cron: "@hourly", AgreementMetric: "m"}, "agreement_metric"},
		{"NoWorkload", flywheel.CreateScheduleRequest{ClientID: "c", Cron: "@hourly"}, "workload_id"},
		{"NoClient", flywheel.CreateScheduleRequest{WorkloadID: "w", Cron: "@hourly"}, "client_id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.CreateSchedule(context.Background(), tc.req)
			require.Equal(t, flywheel.EUNPROCESSABLE, flywheel.ErrorCode(err), "%v", err)
			var fe *flywheel.Error
			require.ErrorAs(t, err, &fe)
			want := []string{"body"}
			if tc.field != "" {
				want = append(want, tc.field)
			}
			require.Equal(t, want, fe.Fields[0].Loc)
		})
	}
	_, err := e.GetSchedule(context.Background(), "nope")
	require.Equal(t, flywheel.EINVALID, flywheel.ErrorCode(err))
	_, err = e.GetSchedule(context.Background(), store.NewID(time.Now()))
	require.Equal(t, flywheel.ENOTFOUND, flywheel.ErrorCode(err))
	require.Equal(t, flywheel.ENOTFOUND, flywheel.ErrorCode(e.DeleteSchedule(context.Background(), store.NewID(time.Now()))))
}

// dueTime pulls the cron time out of an event's reason.
var dueTime = regexp.MustCompile(`due at ([^\s;]+)`)

// TestScheduleTwoWorkersOnePostgres runs two started engines (two worker
// processes) on one Postgres database with a schedule due every second,
// and has both check it four times as often besides, as two leaders of a
// split brain would: every due time is fired or skipped exactly once, and
// each fire made exactly one run.
func TestScheduleTwoWorkersOnePostgres(t *testing.T) {
	ctx := context.Background()
	url := storetest.URL(t, store.Postgres)
	platform := &flywheeltest.Platform{DeployPolls: 1, CustomizationPolls: 2}
	short := func(o *engine.Options) {
		o.ScheduleInterval = 300 * time.Millisecond
		o.Runner = testRunner(t, o.Store, platform)
	}
	a, s := scheduleEngine(t, url, 2, nil, short)
	b, _ := scheduleEngine(t, url, 2, nil, short)
	sc, err := a.CreateSchedule(ctx, flywheel.CreateScheduleRequest{WorkloadID: "wl", ClientID: "cl", Cron: "@every 1s"})
	require.NoError(t, err)
	// Both processes also check on their own, as two leaders would in a
	// split brain.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, e := range []*engine.Engine{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				_, _ = e.CheckSchedules(ctx)
			}
		}()
	}
	time.Sleep(4500 * time.Millisecond)
	close(stop)
	wg.Wait()

	d, err := a.GetSchedule(ctx, sc.ID)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(d.Events), 3)
	seen := map[string]bool{}
	fired := 0
	for _, ev := range d.Events {
		m := dueTime.FindStringSubmatch(ev.Reason)
		require.NotNil(t, m, ev.Reason)
		require.False(t, seen[m[1]], "due time %s handled twice", m[1])
		seen[m[1]] = true
		if ev.Outcome == flywheel.ScheduleFired {
			fired++
			run, err := s.GetRun(ctx, ev.RunID)
			require.NoError(t, err)
			due, err := time.Parse(time.RFC3339, m[1])
			require.NoError(t, err)
			require.Less(t, run.StartedAt.Sub(due), 2*time.Second)
		}
	}
	page, err := s.ListRuns(ctx, flywheel.JobFilter{WorkloadID: "wl", Limit: 100})
	require.NoError(t, err)
	require.Len(t, page.Runs, fired, "one run per fire")
	require.GreaterOrEqual(t, fired, 1)
}

// TestScheduleFiresOnTime measures how soon after its cron time a
// schedule's run is created by a started engine with the default check
// interval (30 s): the wake-up armed for the next cron time fires it.
func TestScheduleFiresOnTime(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			ctx := context.Background()
			e, s := scheduleEngine(t, storetest.URL(t, d), 2, nil, nil)
			sc, err := e.CreateSchedule(ctx, flywheel.CreateScheduleRequest{WorkloadID: "wl", ClientID: "cl", Cron: "@every 1s"})
			require.NoError(t, err)
			var events []flywheel.ScheduleEvent
			require.Eventually(t, func() bool {
				got, err := e.GetSchedule(ctx, sc.ID)
				require.NoError(t, err)
				events = got.Events
				return len(events) >= 4
			}, 15*time.Second, 50*time.Millisecond)
			var worst time.Duration
			for _, ev := range events {
				m := dueTime.FindStringSubmatch(ev.Reason)
				require.NotNil(t, m, ev.Reason)
				due, err := time.Parse(time.RFC3339, m[1])
				require.NoError(t, err)
				lag := ev.At.Sub(due)
				if ev.Outcome == flywheel.ScheduleFired {
					run, err := s.GetRun(ctx, ev.RunID)
					require.NoError(t, err)
					lag = run.StartedAt.Sub(due)
				}
				worst = max(worst, lag)
				require.GreaterOrEqual(t, lag, time.Duration(0))
			}
			t.Logf("%s: %d due times, the latest handled %s after its time", d, len(events), worst)
			require.Less(t, worst, time.Second)
		})
	}
}
