package store_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

func newSchedule(t *testing.T, s *store.Store, next *time.Time) *flywheel.Schedule {
	t.Helper()
	n, below := 5, 0.8
	sc := &flywheel.Schedule{ID: store.NewID(time.Now()), WorkloadID: "w", ClientID: "c1", Cron: "*/5 * * * *",
		MinNewRecords: &n, AgreementBelow: &below, AgreementMetric: flywheel.DefaultAgreementMetric, Enabled: true,
		CreatedAt: time.Now().UTC().Truncate(time.Millisecond), CreatedBy: "local", NextFireAt: next}
	require.NoError(t, s.CreateSchedule(context.Background(), sc))
	return sc
}

// TestSchedulesRoundTrip stores, reads, lists, fires and deletes a
// schedule with its events on both databases.
func TestSchedulesRoundTrip(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			ctx := context.Background()
			s := storetest.Open(t, d)
			next := time.Now().UTC().Add(time.Minute).Truncate(time.Millisecond)
			sc := newSchedule(t, s, &next)

			got, err := s.GetSchedule(ctx, sc.ID)
			require.NoError(t, err)
			require.Equal(t, sc.CreatedAt, got.CreatedAt)
			require.Equal(t, next, *got.NextFireAt)
			require.Equal(t, 5, *got.MinNewRecords)
			require.InDelta(t, 0.8, *got.AgreementBelow, 1e-9)
			require.True(t, got.Enabled)
			require.Nil(t, got.LastFiredAt)

			list, err := s.ListSchedules(ctx, true)
			require.NoError(t, err)
			require.Len(t, list, 1)

			at := time.Now().UTC().Truncate(time.Millisecond)
			require.NoError(t, s.ScheduleFired(ctx, sc.ID, at, "run1"))
			for i, o := range []flywheel.ScheduleOutcome{flywheel.ScheduleFired, flywheel.ScheduleSkipped} {
				e := &flywheel.ScheduleEvent{ScheduleID: sc.ID, At: at.Add(time.Duration(i) * time.Second), Outcome: o, Reason: "cron due"}
				if o == flywheel.ScheduleFired {
					e.RunID = "run1"
				}
				require.NoError(t, s.AddScheduleEvent(ctx, e))
				require.NotZero(t, e.ID)
			}
			events, err := s.ListScheduleEvents(ctx, sc.ID, 10)
			require.NoError(t, err)
			require.Len(t, events, 2)
			require.Equal(t, flywheel.ScheduleSkipped, events[0].Outcome, "newest first")
			require.Equal(t, "run1", events[1].RunID)
			got, err = s.GetSchedule(ctx, sc.ID)
			require.NoError(t, err)
			require.Equal(t, at, *got.LastFiredAt)
			require.Equal(t, "run1", got.LastRunID)

			require.NoError(t, s.DeleteSchedule(ctx, sc.ID))
			_, err = s.GetSchedule(ctx, sc.ID)
			require.ErrorIs(t, err, flywheel.ErrNotFound)
			require.ErrorIs(t, s.DeleteSchedule(ctx, sc.ID), flywheel.ErrNotFound)
			events, err = s.ListScheduleEvents(ctx, sc.ID, 10)
			require.NoError(t, err)
			require.Empty(t, events)
		})
	}
}

// TestClaimScheduleRace has many goroutines claim the same due schedule at
// once, each with the generation it read: exactly one wins, and a claim of
// a disabled or deleted schedule wins nothing.
func TestClaimScheduleRace(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			ctx := context.Background()
			s := storetest.Open(t, d)
			due := time.Now().UTC().Add(-time.Second)
			sc := newSchedule(t, s, &due)
			for round := range 3 {
				read, err := s.GetSchedule(ctx, sc.ID)
				require.NoError(t, err)
				next := due.Add(time.Duration(round+1) * time.Minute)
				var (
					wins  atomic.Int32
					wg    sync.WaitGroup
					start = make(chan struct{})
				)
				for range 8 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						ok, err := s.ClaimSchedule(ctx, sc.ID, read.Generation, &next)
						if err != nil {
							t.Error(err)
						}
						if ok {
							wins.Add(1)
						}
					}()
				}
				close(start)
				wg.Wait()
				require.Equal(t, int32(1), wins.Load(), "round %d", round)
				after, err := s.GetSchedule(ctx, sc.ID)
				require.NoError(t, err)
				require.Equal(t, read.Generation+1, after.Generation)
				require.WithinDuration(t, next, *after.NextFireAt, time.Millisecond)
			}
			require.NoError(t, s.DeleteSchedule(ctx, sc.ID))
			ok, err := s.ClaimSchedule(ctx, sc.ID, 3, nil)
			require.NoError(t, err)
			require.False(t, ok)
		})
	}
}

// TestScheduleTriggerQueries checks the reads the data triggers use: the
// unfinished run, the newest run's creation and the records logged since.
func TestScheduleTriggerQueries(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			ctx := context.Background()
			s := storetest.Open(t, d)
			id, err := s.UnfinishedRun(ctx, "w", "c1")
			require.NoError(t, err)
			require.Empty(t, id)
			start, err := s.NewestRunStart(ctx, "w", "c1")
			require.NoError(t, err)
			require.Nil(t, start)

			t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
			var recs []flywheel.LogRecord
			for i := range 6 {
				recs = append(recs, flywheel.LogRecord{WorkloadID: "w", ClientID: "c1", Timestamp: t0.Add(time.Duration(i) * time.Minute),
					Request:  []byte(`{"messages":[{"role":"user","content":"q` + string(rune('a'+i)) + `"}]}`),
					Response: []byte(`{"choices":[{"message":{"role":"assistant","content":"a"}}]}`)})
			}
			n, _, err := s.InsertLogs(ctx, recs)
			require.NoError(t, err)
			require.Equal(t, 6, n)
			n, err = s.CountLogsSince(ctx, "w", "c1", nil, 100)
			require.NoError(t, err)
			require.Equal(t, 6, n)
			n, err = s.CountLogsSince(ctx, "w", "c1", nil, 4)
			require.NoError(t, err)
			require.Equal(t, 4, n, "counts no further than the limit")

			r := newRun(t, s.Queries, t0.Add(150*time.Second), "w")
			id, err = s.UnfinishedRun(ctx, "w", "c1")
			require.NoError(t, err)
			require.Equal(t, r.ID, id)
			start, err = s.NewestRunStart(ctx, "w", "c1")
			require.NoError(t, err)
			require.Equal(t, r.StartedAt, *start)
			n, err = s.CountLogsSince(ctx, "w", "c1", start, 100)
			require.NoError(t, err)
			require.Equal(t, 3, n, "records at +3, +4 and +5 minutes")
			n, err = s.CountLogsSince(ctx, "w", "other", start, 100)
			require.NoError(t, err)
			require.Zero(t, n)

			_, err = s.FinishRun(ctx, r.ID, flywheel.RunCompleted, "")
			require.NoError(t, err)
			id, err = s.UnfinishedRun(ctx, "w", "c1")
			require.NoError(t, err)
			require.Empty(t, id)
		})
	}
}
