package engine_test

import (
	"context"
	"database/sql"
	"slices"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
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

// riverNoopRate measures River's own rate of no-op jobs on the database: the
// limit a stage transition (one job each) is measured against.
func riverNoopRate(b *testing.B, s *store.Store, jobs int) float64 {
	b.Helper()
	ctx := context.Background()
	workers := river.NewWorkers()
	river.AddWorker(workers, noopWorker{})
	cfg := &river.Config{Queues: map[string]river.QueueConfig{"noop": {MaxWorkers: 8}}, Workers: workers,
		FetchPollInterval: 20 * time.Millisecond, FetchCooldown: 20 * time.Millisecond}
	var client *river.Client[*sql.Tx]
	var err error
	if s.Dialect() == store.SQLite {
		client, err = river.NewClient[*sql.Tx](riversqlite.New(s.DB()), cfg)
	} else {
		client, err = river.NewClient[*sql.Tx](riverdatabasesql.New(s.DB()), cfg)
	}
	require.NoError(b, err)
	events, cancel := client.Subscribe(river.EventKindJobCompleted)
	defer cancel()
	params := make([]river.InsertManyParams, jobs)
	for i := range params {
		params[i] = river.InsertManyParams{Args: noopArgs{}, InsertOpts: &river.InsertOpts{Queue: "noop"}}
	}
	_, err = client.InsertMany(ctx, params)
	require.NoError(b, err)
	start := time.Now()
	require.NoError(b, client.Start(ctx))
	for range jobs {
		<-events
	}
	elapsed := time.Since(start)
	stopCtx, stop := context.WithTimeout(ctx, 5*time.Second)
	defer stop()
	_ = client.Stop(stopCtx)
	return float64(jobs) / elapsed.Seconds()
}

func instant(b *testBundle) {
	b.platform.DeployPolls = 0
	b.platform.CustomizationPolls = 0
}

// BenchmarkStageTransitions reports the engine's stage transitions per second
// (each a River job whose completion commits with the DAG's progress) as a
// ratio to River's own no-op job rate on the same database, with an instant
// platform and 10 runs of two candidates in flight.
func BenchmarkStageTransitions(b *testing.B) {
	for _, d := range storetest.Dialects() {
		b.Run(string(d), func(b *testing.B) {
			bundle := setupB(b, d, setupOpts{maxRuns: 100, mutate: instant})
			const runs = 10
			var rate float64
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
					_, err := bundle.engine.WaitFinished(context.Background(), id, 5*time.Millisecond)
					require.NoError(b, err)
					st, err := bundle.store.ListStages(context.Background(), id)
					require.NoError(b, err)
					stages += len(st)
				}
				rate = float64(stages) / time.Since(start).Seconds()
			}
			noop := riverNoopRate(b, bundle.store, 400)
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
