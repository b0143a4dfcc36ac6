package engine_test

import (
	"context"
	"database/sql"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

type noopArgs struct{}

func (noopArgs) Kind() string { return "bench_noop" }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
}

func (noopWorker) Work(context.Context, *river.Job[noopArgs]) error { return nil }

// riverSetup is one configuration of River's own client for no-op jobs.
type riverSetup struct {
	Name          string
	FetchCooldown time.Duration
	FetchPoll     time.Duration
	// Batch is how many jobs one InsertMany inserts.
	Batch int
	// PollOnly turns LISTEN/NOTIFY off (Postgres).
	PollOnly bool
}

// riverSetups are the configurations BenchmarkRiverNoop tries, each with the
// engine's worker count (8). River's minimum FetchCooldown and
// FetchPollInterval are 1 ms. The fetch cooldown decides the rate: a
// producer fetches at most once per cooldown, so 8 workers and 20 ms cap
// River near 400 jobs/s and its default 100 ms near 80; at 1 ms the poll
// interval, the batch size and LISTEN/NOTIFY change little (within the
// noise of a shared machine).
var riverSetups = []riverSetup{
	{Name: "engine-20ms", FetchCooldown: 20 * time.Millisecond, FetchPoll: 20 * time.Millisecond, Batch: 100},
	{Name: "river-default", FetchCooldown: 100 * time.Millisecond, FetchPoll: time.Second, Batch: 100},
	{Name: "cool5ms-poll20ms", FetchCooldown: 5 * time.Millisecond, FetchPoll: 20 * time.Millisecond, Batch: 100},
	{Name: "cool1ms-poll20ms", FetchCooldown: time.Millisecond, FetchPoll: 20 * time.Millisecond, Batch: 100},
	{Name: "cool1ms-poll1ms", FetchCooldown: time.Millisecond, FetchPoll: time.Millisecond, Batch: 100},
	{Name: "cool1ms-poll20ms-batch1000", FetchCooldown: time.Millisecond, FetchPoll: 20 * time.Millisecond, Batch: 1000},
	{Name: "cool1ms-poll20ms-batch10", FetchCooldown: time.Millisecond, FetchPoll: 20 * time.Millisecond, Batch: 10},
	{Name: "cool1ms-poll20ms-pollonly", FetchCooldown: time.Millisecond, FetchPoll: 20 * time.Millisecond, Batch: 100, PollOnly: true},
}

// riverBest are the configurations of riverSetups with the highest rates
// (see BenchmarkRiverNoop): River's minimum fetch cooldown, with either
// poll interval and batch size. BenchmarkStageTransitions measures the
// engine against the best of them.
var riverBest = []riverSetup{riverSetups[3], riverSetups[4], riverSetups[5]}

// riverNoopRate measures River's rate of no-op jobs on the database s with
// the configuration rs and the given worker count: the limit a stage
// transition (one job each) is measured against. The client uses the
// engine's driver (LISTEN/NOTIFY on Postgres unless rs.PollOnly) and is
// started and warm before the clock starts; the jobs are then inserted in
// batches of rs.Batch with InsertMany, and a round's rate is the number of
// jobs over the time from the first insert to the last completion. It
// returns the best of rounds rounds on the same warm client.
func riverNoopRate(b *testing.B, s *store.Store, rs riverSetup, workers, jobs, rounds int) float64 {
	b.Helper()
	ctx := context.Background()
	ws := river.NewWorkers()
	river.AddWorker(ws, noopWorker{})
	cfg := &river.Config{Queues: map[string]river.QueueConfig{"noop": {MaxWorkers: workers}}, Workers: ws,
		FetchPollInterval: rs.FetchPoll, FetchCooldown: rs.FetchCooldown, PollOnly: rs.PollOnly,
		Logger: slog.New(slog.NewTextHandler(b.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))}
	var client *river.Client[*sql.Tx]
	var err error
	if s.Dialect() == store.SQLite {
		client, err = river.NewClient[*sql.Tx](riversqlite.New(s.DB()), cfg)
	} else if rs.PollOnly {
		client, err = river.NewClient[*sql.Tx](riverdatabasesql.New(s.DB()), cfg)
	} else {
		listener, perr := pgxpool.New(ctx, s.URL())
		require.NoError(b, perr)
		defer listener.Close()
		client, err = river.NewClient[*sql.Tx](riverdatabasesql.NewWithPgxListener(s.DB(), listener), cfg)
	}
	require.NoError(b, err)
	// A buffer for every job: events that overflow it are dropped.
	events, cancel := client.SubscribeConfig(&river.SubscribeConfig{ChanSize: jobs + 100, Kinds: []river.EventKind{river.EventKindJobCompleted}})
	defer cancel()
	require.NoError(b, client.Start(ctx))
	defer func() {
		stopCtx, stop := context.WithTimeout(ctx, 5*time.Second)
		defer stop()
		_ = client.Stop(stopCtx)
	}()
	// Warm up: the client has fetched, worked and completed a job (its
	// producer, connections and statements are live) before timing.
	_, err = client.Insert(ctx, noopArgs{}, &river.InsertOpts{Queue: "noop"})
	require.NoError(b, err)
	<-events
	best := 0.0
	for range rounds {
		start := time.Now()
		for done := 0; done < jobs; done += rs.Batch {
			params := make([]river.InsertManyParams, min(rs.Batch, jobs-done))
			for i := range params {
				params[i] = river.InsertManyParams{Args: noopArgs{}, InsertOpts: &river.InsertOpts{Queue: "noop"}}
			}
			_, err = client.InsertMany(ctx, params)
			require.NoError(b, err)
		}
		timeout := time.After(2 * time.Minute)
		for range jobs {
			select {
			case ev := <-events:
				require.Equal(b, rivertype.JobStateCompleted, ev.Job.State)
			case <-timeout:
				b.Fatalf("River did not complete %d no-op jobs within 2 minutes", jobs)
			}
		}
		best = max(best, float64(jobs)/time.Since(start).Seconds())
	}
	return best
}

// BenchmarkRiverNoop reports River's no-op job rate on each database for
// each configuration of riverSetups, with the engine's 8 workers, a warm
// client and the best of 3 rounds of 2,000 jobs: the search for the
// baseline of BenchmarkStageTransitions.
func BenchmarkRiverNoop(b *testing.B) {
	for _, d := range storetest.Dialects() {
		for _, rs := range riverSetups {
			if rs.PollOnly && d == store.SQLite {
				continue // SQLite always polls
			}
			b.Run(string(d)+"/"+rs.Name, func(b *testing.B) {
				bundle := setupB(b, d, setupOpts{mutate: func(tb *testBundle) { tb.opts.Workers = 0 }})
				// River runs alone: the (API-only) engine's heartbeat stops.
				stopCtx, stop := context.WithTimeout(context.Background(), 10*time.Second)
				require.NoError(b, bundle.engine.Stop(stopCtx))
				stop()
				var rate float64
				for b.Loop() {
					rate = max(rate, riverNoopRate(b, bundle.store, rs, 8, 2000, 3))
				}
				b.ReportMetric(rate, "jobs/s")
			})
		}
	}
}

func instant(b *testBundle) {
	b.platform.DeployPolls = 0
	b.platform.CustomizationPolls = 0
}

// BenchmarkStageTransitions reports the engine's stage transitions per second
// (each a River job whose completion commits with the DAG's progress) as a
// ratio to River's best no-op job rate on the same database (the best of
// the riverBest configurations, see riverNoopRate), with an instant
// platform, the engine's 8 workers and 10 runs of two candidates in flight. Both rates are the best of their rounds
// (each iteration of the benchmark; 3 rounds of River's), so that a machine
// shared with other work skews neither side more than the other.
func BenchmarkStageTransitions(b *testing.B) {
	for _, d := range storetest.Dialects() {
		b.Run(string(d), func(b *testing.B) {
			bundle := setupB(b, d, setupOpts{maxRuns: 100, mutate: instant})
			const runs = 10
			var rate float64 // the best iteration's
			for b.Loop() {
				start := time.Now()
				var ids []string
				for range runs {
					r, err := bundle.engine.CreateJob(context.Background(), flywheel.CreateJobRequest{WorkloadID: "w", ClientID: "c"})
					require.NoError(b, err)
					ids = append(ids, r.ID)
				}
				stages := 0
				for _, id := range ids {
					// Polled every 20 ms: the measurement's own reads stay
					// few on SQLite's single connection (each would delay a
					// transition), at the cost of up to 20 ms a round.
					_, err := bundle.engine.WaitFinished(context.Background(), id, 20*time.Millisecond)
					require.NoError(b, err)
					st, err := bundle.store.ListStages(context.Background(), id)
					require.NoError(b, err)
					stages += len(st)
				}
				rate = max(rate, float64(stages)/time.Since(start).Seconds())
			}
			// The engine stops first: River's client then has the database
			// to itself, as the engine's had.
			stopCtx, stop := context.WithTimeout(context.Background(), 10*time.Second)
			require.NoError(b, bundle.engine.Stop(stopCtx))
			stop()
			noop := 0.0
			for _, rs := range riverBest {
				r := riverNoopRate(b, bundle.store, rs, bundle.opts.Workers, 2000, 3)
				b.Logf("River %s: %.0f no-op jobs/s", rs.Name, r)
				noop = max(noop, r)
			}
			b.ReportMetric(rate, "transitions/s")
			b.ReportMetric(noop, "river_noop_jobs/s")
			b.ReportMetric(rate/noop, "ratio")
		})
	}
}

// BenchmarkTwoCandidateRun reports the wall time of one run with two
// candidates (every stage, fine-tuning included) on an instant platform.
func BenchmarkTwoCandidateRun(b *testing.B) {
	for _, d := range storetest.Dialects() {
		b.Run(string(d), func(b *testing.B) {
			bundle := setupB(b, d, setupOpts{mutate: instant})
			var walls []float64
			for b.Loop() {
				start := time.Now()
				r, err := bundle.engine.CreateJob(context.Background(), flywheel.CreateJobRequest{WorkloadID: "w", ClientID: "c"})
				require.NoError(b, err)
				run, err := bundle.engine.WaitFinished(context.Background(), r.ID, 2*time.Millisecond)
				require.NoError(b, err)
				require.Equal(b, flywheel.RunCompleted, run.Status)
				walls = append(walls, time.Since(start).Seconds())
			}
			slices.Sort(walls)
			b.ReportMetric(walls[len(walls)/2], "wall_s_p50")
			b.ReportMetric(walls[len(walls)-1], "wall_s_max")
		})
	}
}

// BenchmarkCancelLatency reports the time from the cancel call to the
// context of every running stage being cancelled: in the process that runs
// the stages (embedded), and from another process through River (scale-out,
// Postgres, an API-only engine cancelling stages a worker engine runs).
func BenchmarkCancelLatency(b *testing.B) {
	for _, mode := range []string{"sqlite-same-process", "postgres-same-process", "postgres-other-process"} {
		b.Run(mode, func(b *testing.B) {
			d := store.SQLite
			if mode != "sqlite-same-process" {
				d = store.Postgres
			}
			url := storetest.URL(b, d)
			started := make(chan flywheel.EvalRequest, 64)
			worker := setupB(b, d, setupOpts{dbURL: url, maxRuns: 1000, mutate: func(tb *testBundle) {
				tb.evaluator.Block = true
				tb.evaluator.Started = started
				instant(tb)
			}})
			canceller := worker.engine
			if mode == "postgres-other-process" {
				api := setupB(b, d, setupOpts{dbURL: url, mutate: func(tb *testBundle) { tb.opts.Workers = 0 }})
				canceller = api.engine
			}
			var lat []float64
			for b.Loop() {
				r, err := canceller.CreateJob(context.Background(), flywheel.CreateJobRequest{WorkloadID: "w", ClientID: "c"})
				require.NoError(b, err)
				<-started
				<-started // base and ICL evaluations are running
				before := len(worker.evaluator.CancelledAt())
				begin := time.Now()
				_, err = canceller.CancelJob(context.Background(), r.ID)
				require.NoError(b, err)
				deadline := time.Now().Add(10 * time.Second)
				for len(worker.evaluator.CancelledAt()) < before+2 && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
				}
				at := worker.evaluator.CancelledAt()
				require.Len(b, at, before+2, "both running stages saw the cancel")
				for _, t := range at[before:] {
					lat = append(lat, t.Sub(begin).Seconds())
				}
			}
			slices.Sort(lat)
			p := func(q float64) float64 { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
			b.ReportMetric(p(0.5)*1000, "ms_p50")
			b.ReportMetric(p(0.99)*1000, "ms_p99")
			b.ReportMetric(float64(len(lat)), "samples")
		})
	}
}
