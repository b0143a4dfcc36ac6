package engine_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/engine"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

func oneCandidate() []flywheel.NIMConfig {
	return []flywheel.NIMConfig{{ModelName: "meta/llama-3.2-1b-instruct"}}
}

// cancelInRiverUI cancels stage jobs the way an operator does in River's UI.
func cancelInRiverUI(t *testing.T, e *engine.Engine, ids ...int64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h, err := e.RiverUI(ctx, "/ui/river")
	require.NoError(t, err)
	var quoted []string
	for _, id := range ids {
		quoted = append(quoted, fmt.Sprintf("%q", fmt.Sprint(id)))
	}
	req := httptest.NewRequest(http.MethodPost, "/ui/river/api/jobs/cancel", strings.NewReader(`{"ids":[`+strings.Join(quoted, ",")+`]}`))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
}

func stageOf(d *flywheel.JobDetail, name flywheel.StageName) flywheel.Stage {
	for _, s := range d.Stages {
		if s.Name == name {
			return s
		}
	}
	return flywheel.Stage{}
}

// TestRiverUICancelOfRunningStageEndsRun cancels the running evaluations of
// a run in River's UI: the stages fail with a message naming their job, the
// candidate fails, and the run ends failed instead of running forever.
func TestRiverUICancelOfRunningStageEndsRun(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d store.Dialect) {
		started := make(chan flywheel.EvalRequest, 8)
		b := setup(t, d, setupOpts{candidates: oneCandidate(), mutate: func(b *testBundle) {
			b.evaluator.Block = true
			b.evaluator.Started = started
		}})
		run := b.create(t)
		for range 2 { // base and ICL evaluations
			select {
			case <-started:
			case <-time.After(20 * time.Second):
				t.Fatal("evaluations did not start")
			}
		}
		detail, err := b.engine.GetJob(context.Background(), run.ID)
		require.NoError(t, err)
		base, icl := stageOf(detail, flywheel.StageRunBaseEval), stageOf(detail, flywheel.StageRunICLEval)
		require.Equal(t, flywheel.StageRunning, base.Status)
		// A stage that has run for a minute in this process is held, not stranded.
		backdate := `UPDATE river_job SET attempted_at = attempted_at - interval '60 seconds' WHERE id = $1`
		if d == store.SQLite {
			backdate = `UPDATE river_job SET attempted_at = strftime('%Y-%m-%d %H:%M:%f', attempted_at, '-60 seconds') WHERE id = ?`
		}
		_, err = b.store.DB().Exec(backdate, base.JobID)
		require.NoError(t, err)
		findings, err := b.engine.Liveness(context.Background(), false)
		require.NoError(t, err)
		require.Empty(t, findings, "stages running in this process are held")
		cancelInRiverUI(t, b.engine, base.JobID, icl.JobID)

		d2 := b.wait(t, run.ID)
		require.Equal(t, flywheel.RunFailed, d2.Run.Status, "no evaluation finished, so no candidate did")
		for _, s := range []flywheel.Stage{stageOf(d2, flywheel.StageRunBaseEval), stageOf(d2, flywheel.StageRunICLEval)} {
			require.Equal(t, flywheel.StageFailed, s.Status, s.Name)
			require.Contains(t, s.Error, fmt.Sprintf("stage job %d was cancelled outside Flywheel", s.JobID))
		}
		require.Equal(t, flywheel.NIMFailed, d2.NIMs[0].Status)
		require.Empty(t, b.platform.Live(), "the deployment was shut down")
	})
}

// TestLivenessFinishesStageCancelledWhileQueued cancels a queued stage job
// in River's UI while no worker runs: doctor reports it while it happens,
// and the liveness repair (doctor --fix, the periodic check) fails the stage
// and, as it is a run-level stage, the run.
func TestLivenessFinishesStageCancelledWhileQueued(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		b := setup(t, d, setupOpts{mutate: func(b *testBundle) { b.opts.Workers = 0 }})
		run := b.create(t)
		st, err := b.store.GetStage(ctx, run.ID, "", flywheel.StageInitialize)
		require.NoError(t, err)
		require.Equal(t, flywheel.StageQueued, st.Status)
		cancelInRiverUI(t, b.engine, st.JobID)

		findings, err := b.engine.Doctor(ctx, false)
		require.NoError(t, err)
		require.Len(t, findings, 1, "%+v", findings)
		require.Equal(t, engine.FindingEndedJob, findings[0].Kind)
		require.Equal(t, run.ID, findings[0].RunID)
		require.Contains(t, findings[0].Detail, "was cancelled outside Flywheel")
		require.False(t, findings[0].Fixed)

		findings, err = b.engine.Doctor(ctx, true)
		require.NoError(t, err)
		require.Len(t, findings, 1, "%+v", findings)
		require.True(t, findings[0].Fixed, "%+v", findings[0])
		r, err := b.store.GetRun(ctx, run.ID)
		require.NoError(t, err)
		require.Equal(t, flywheel.RunFailed, r.Status)
		require.Contains(t, r.Error, fmt.Sprintf("stage job %d was cancelled outside Flywheel", st.JobID))
		st, err = b.store.GetStage(ctx, run.ID, "", flywheel.StageInitialize)
		require.NoError(t, err)
		require.Equal(t, flywheel.StageFailed, st.Status)

		findings, err = b.engine.Doctor(ctx, false)
		require.NoError(t, err)
		require.Empty(t, findings, "repaired for good")
	})
}

// fetchFor marks a stage job running for process owner, fetched ago, the
// way River's fetch does.
func fetchFor(t *testing.T, s *store.Store, jobID int64, owner string, ago time.Duration) {
	t.Helper()
	var err error
	if s.Dialect() == store.Postgres {
		_, err = s.DB().Exec(`UPDATE river_job SET state = 'running', attempt = attempt + 1,
			attempted_at = now() - make_interval(secs => $1), attempted_by = array_append(attempted_by, $2) WHERE id = $3`,
			ago.Seconds(), owner, jobID)
	} else {
		_, err = s.DB().Exec(`UPDATE river_job SET state = 'running', attempt = attempt + 1,
			attempted_at = strftime('%Y-%m-%d %H:%M:%f', 'now', ?), attempted_by = json_array(?) WHERE id = ?`,
			fmt.Sprintf("-%.3f seconds", ago.Seconds()), owner, jobID)
	}
	require.NoError(t, err)
}

// rebind turns a Postgres query's $N parameters into SQLite's ?N.
func rebind(d store.Dialect, q string) string {
	if d == store.SQLite {
		return strings.ReplaceAll(q, "$", "?")
	}
	return q
}

func riverJobState(t *testing.T, s *store.Store, id int64) (string, int) {
	t.Helper()
	var (
		state   string
		attempt int
	)
	require.NoError(t, s.DB().QueryRow(rebind(s.Dialect(), `SELECT state, attempt FROM river_job WHERE id = $1`), id).Scan(&state, &attempt))
	return state, attempt
}

// TestLivenessHandsBackStrandedAndDeadJobs plays River's fetch of a stage
// job for a process that never received it (a live process whose heartbeat
// does not list the job) and for a dead process, and checks what the
// liveness check finds, when, and that the run then completes.
func TestLivenessHandsBackStrandedAndDeadJobs(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		url := storetest.URL(t, d)
		api := setup(t, d, setupOpts{dbURL: url, mutate: func(b *testBundle) {
			b.opts.Workers = 0
			b.opts.Embedded = false
		}})
		run := api.create(t)
		st, err := api.store.GetStage(ctx, run.ID, "", flywheel.StageInitialize)
		require.NoError(t, err)
		job := st.JobID
		_, before := riverJobState(t, api.store, job)

		lost := store.Worker{ID: "host-1-lost", Hostname: "host", PID: 1, StartedAt: time.Now()}
		fetchFor(t, api.store, job, lost.ID, 25*time.Second)
		check := func(wantKind string) engine.Finding {
			t.Helper()
			findings, err := api.engine.Liveness(ctx, false)
			require.NoError(t, err)
			if wantKind == "" {
				require.Empty(t, findings)
				return engine.Finding{}
			}
			require.Len(t, findings, 1, "%+v", findings)
			require.Equal(t, wantKind, findings[0].Kind, "%+v", findings[0])
			require.Equal(t, run.ID, findings[0].RunID)
			return findings[0]
		}

		// A live process that holds the job: nothing to do.
		require.NoError(t, api.store.HeartbeatHolding(ctx, lost, []int64{job}, time.Now()))
		check("")
		// Its heartbeat does not list the job, but was taken too soon after
		// the fetch (the job may still have been on its way): nothing yet.
		require.NoError(t, api.store.HeartbeatHolding(ctx, lost, []int64{}, time.Now().Add(-10*time.Second)))
		check("")
		// Taken well after the fetch and without the job: stranded.
		require.NoError(t, api.store.HeartbeatHolding(ctx, lost, []int64{}, time.Now()))
		f := check(engine.FindingStrandedJob)
		require.Contains(t, f.Detail, fmt.Sprintf("job %d", job))
		require.InDelta(t, 25, f.JobAge.Seconds(), 3)
		findings, err := api.engine.Liveness(ctx, true)
		require.NoError(t, err)
		require.Len(t, findings, 1)
		require.True(t, findings[0].Fixed, "%+v", findings[0])
		state, attempt := riverJobState(t, api.store, job)
		require.Equal(t, "available", state)
		require.Equal(t, before, attempt, "a fetch that never arrived is no attempt")

		// A process that stopped sending heartbeats 40 s ago.
		dead := store.Worker{ID: "host-2-dead", Hostname: "host", PID: 2, StartedAt: time.Now()}
		require.NoError(t, api.store.HeartbeatHolding(ctx, dead, []int64{job}, time.Now()))
		fetchFor(t, api.store, job, dead.ID, 40*time.Second)
		old := time.Now().Add(-40 * time.Second).UTC()
		_, err = api.store.DB().Exec(rebind(d, `UPDATE workers SET heartbeat_at = $1, held_at = $1 WHERE id = $2`), old, dead.ID)
		require.NoError(t, err)
		f = check(engine.FindingDeadWorkerJob)
		require.Contains(t, f.Detail, "host-2-dead")
		findings, err = api.engine.Doctor(ctx, true)
		require.NoError(t, err)
		require.Len(t, findings, 1)
		require.True(t, findings[0].Fixed, "%+v", findings[0])
		state, attempt = riverJobState(t, api.store, job)
		require.Equal(t, "available", state)
		require.Equal(t, before+1, attempt, "the dead process's attempt counts")

		// A job fetched by a process with no heartbeat at all, recently (a
		// process that just started): left alone until dead_after.
		fetchFor(t, api.store, job, "host-3-new", 2*time.Second)
		check("")
		_, err = api.store.DB().Exec(rebind(d, `UPDATE river_job SET state = 'available' WHERE id = $1`), job)
		require.NoError(t, err)

		// A worker picks the stage up and the run completes.
		worker := setup(t, d, setupOpts{dbURL: url, mutate: func(b *testBundle) { b.platform = api.platform }})
		detail := worker.wait(t, run.ID)
		require.Equal(t, flywheel.RunCompleted, detail.Run.Status, detail.Run.Error)
	})
}

// injectCommitFailure makes every commit that marks the named stage
// succeeded fail in the database, until the returned function is called.
func injectCommitFailure(t *testing.T, s *store.Store, stageName flywheel.StageName) func() {
	t.Helper()
	stmts := []string{`CREATE TABLE inject_fail (stage TEXT PRIMARY KEY)`}
	if s.Dialect() == store.Postgres {
		stmts = append(stmts, `CREATE FUNCTION inject_fail() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN
				IF NEW.status = 'succeeded' AND EXISTS (SELECT 1 FROM inject_fail WHERE stage = NEW.name) THEN
					RAISE EXCEPTION 'injected commit failure';
				END IF;
				RETURN NEW;
			END $$`,
			`CREATE TRIGGER inject_fail BEFORE UPDATE ON stages FOR EACH ROW EXECUTE FUNCTION inject_fail()`,
			`INSERT INTO inject_fail VALUES ('`+string(stageName)+`')`)
	} else {
		stmts = append(stmts, `CREATE TRIGGER inject_fail BEFORE UPDATE OF status ON stages
			WHEN NEW.status = 'succeeded' AND EXISTS (SELECT 1 FROM inject_fail WHERE stage = NEW.name)
			BEGIN SELECT RAISE(ABORT, 'injected commit failure'); END`,
			`INSERT INTO inject_fail VALUES ('`+string(stageName)+`')`)
	}
	for _, q := range stmts {
		_, err := s.DB().Exec(q)
		require.NoError(t, err, q)
	}
	return func() {
		_, err := s.DB().Exec(`DELETE FROM inject_fail`)
		require.NoError(t, err)
	}
}

// TestCompletionFailureRetriesTheStage makes the transaction that commits
// create_datasets' outcome fail: the job is never marked done while the
// stage is not; the attempt errors and River runs it again, and once the
// database accepts the commit the run completes.
func TestCompletionFailureRetriesTheStage(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		url := storetest.URL(t, d)
		s := openMigrated(t, url)
		heal := injectCommitFailure(t, s, flywheel.StageCreateDatasets)

		b := setup(t, d, setupOpts{dbURL: url, candidates: oneCandidate()})
		run := b.create(t)
		// The first attempt tries its commit a few times, then errors.
		require.Eventually(t, func() bool {
			st, err := b.store.GetStage(ctx, run.ID, "", flywheel.StageCreateDatasets)
			require.NoError(t, err)
			require.NotEqual(t, flywheel.StageSucceeded, st.Status)
			if st.JobID != 0 {
				state, _ := riverJobState(t, b.store, st.JobID)
				require.NotEqual(t, "completed", state, "a job must never be done while its stage is not")
			}
			return st.Attempts >= 2
		}, 30*time.Second, 20*time.Millisecond, "create_datasets runs again after its commit failed")
		heal()
		detail := b.wait(t, run.ID)
		require.Equal(t, flywheel.RunCompleted, detail.Run.Status, detail.Run.Error)
		require.Equal(t, flywheel.StageSucceeded, stageOf(detail, flywheel.StageCreateDatasets).Status)
	})
}

// TestCompletionThatNeverCommitsFailsTheRunTruthfully: when the commit fails
// on every attempt, River discards the job and the liveness check fails the
// stage with River's last error, so the run ends failed, not running.
func TestCompletionThatNeverCommitsFailsTheRunTruthfully(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		url := storetest.URL(t, d)
		s := openMigrated(t, url)
		injectCommitFailure(t, s, flywheel.StageCreateDatasets)

		b := setup(t, d, setupOpts{dbURL: url, candidates: oneCandidate(), mutate: func(b *testBundle) {
			b.opts.Retry.MaxAttempts = 2
			b.opts.LivenessInterval = 200 * time.Millisecond
		}})
		run := b.create(t)
		ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		r, err := b.engine.WaitFinished(ctx, run.ID, 20*time.Millisecond)
		require.NoError(t, err)
		require.Equal(t, flywheel.RunFailed, r.Status)
		require.Contains(t, r.Error, "was discarded by River after 2 attempts")
		require.Contains(t, r.Error, "injected commit failure")
	})
}

// TestLivenessRequeuesStageWhoseJobIsGone: a queued stage whose River job
// was deleted (River's UI, or its cleaner) is enqueued again with a new job,
// and a worker then completes the run.
func TestLivenessRequeuesStageWhoseJobIsGone(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		url := storetest.URL(t, d)
		api := setup(t, d, setupOpts{dbURL: url, candidates: oneCandidate(), mutate: func(b *testBundle) {
			b.opts.Workers = 0
			b.opts.Embedded = false
		}})
		run := api.create(t)
		st, err := api.store.GetStage(ctx, run.ID, "", flywheel.StageInitialize)
		require.NoError(t, err)
		_, err = api.store.DB().Exec(rebind(d, `DELETE FROM river_job WHERE id = $1`), st.JobID)
		require.NoError(t, err)

		findings, err := api.engine.Doctor(ctx, false)
		require.NoError(t, err)
		require.Len(t, findings, 1, "%+v", findings)
		require.Equal(t, engine.FindingEndedJob, findings[0].Kind)
		require.Contains(t, findings[0].Detail, fmt.Sprintf("its job %d is gone", st.JobID))
		findings, err = api.engine.Liveness(ctx, true)
		require.NoError(t, err)
		require.Len(t, findings, 1)
		require.True(t, findings[0].Fixed, "%+v", findings[0])
		again, err := api.store.GetStage(ctx, run.ID, "", flywheel.StageInitialize)
		require.NoError(t, err)
		require.Equal(t, flywheel.StageQueued, again.Status)
		require.NotEqual(t, st.JobID, again.JobID, "a new job")

		worker := setup(t, d, setupOpts{dbURL: url, candidates: oneCandidate(), mutate: func(b *testBundle) { b.platform = api.platform }})
		detail := worker.wait(t, run.ID)
		require.Equal(t, flywheel.RunCompleted, detail.Run.Status, detail.Run.Error)
	})
}

// TestGracefulStopOnLastAttemptHandsBack: a stage on its last attempt when
// its process stops gracefully is handed back, not failed, and another
// process completes the run.
func TestGracefulStopOnLastAttemptHandsBack(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d store.Dialect) {
		url := storetest.URL(t, d)
		started := make(chan flywheel.EvalRequest, 16)
		first := setup(t, d, setupOpts{dbURL: url, candidates: oneCandidate(), mutate: func(b *testBundle) {
			b.evaluator.Block = true
			b.evaluator.Started = started
			b.opts.Retry.MaxAttempts = 1
		}})
		run := first.create(t)
		<-started
		stopCtx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_ = first.engine.Stop(stopCtx)
		d1, err := first.engine.GetJob(context.Background(), run.ID)
		require.NoError(t, err)
		for _, s := range d1.Stages {
			require.NotEqual(t, flywheel.StageFailed, s.Status, "stage %s failed by a graceful stop: %s", s.Name, s.Error)
		}

		second := setup(t, d, setupOpts{dbURL: url, candidates: oneCandidate(), mutate: func(b *testBundle) {
			b.platform = first.platform
			b.opts.Retry.MaxAttempts = 1
		}})
		detail := second.wait(t, run.ID)
		require.Equal(t, flywheel.RunCompleted, detail.Run.Status, detail.Run.Error)
	})
}
