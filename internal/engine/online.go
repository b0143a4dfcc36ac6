package engine

import (
	"cmp"
	"context"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
)

// OnlineCheckIntervalDefault is how often the leader checks the active
// promotions' online agreement when Options.OnlineCheckInterval is 0.
const OnlineCheckIntervalDefault = 30 * time.Second

// OnlineChecker checks the active promotions' online agreement and rolls
// back those that disagree with production (online.Monitor).
type OnlineChecker interface {
	Check(ctx context.Context) error
}

// OnlineArgs are the arguments of the periodic online check.
type OnlineArgs struct{}

// Kind implements river.JobArgs.
func (OnlineArgs) Kind() string { return "flywheel_online_check" }

// InsertOpts puts the check on the cleanup queue, away from the liveness
// check.
func (OnlineArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueCleanup, MaxAttempts: 1}
}

type onlineWorker struct {
	river.WorkerDefaults[OnlineArgs]
	e *Engine
}

func (w *onlineWorker) Timeout(*river.Job[OnlineArgs]) time.Duration { return time.Minute }

// Work runs one online check; a failure is logged and the next period
// checks again.
func (w *onlineWorker) Work(ctx context.Context, _ *river.Job[OnlineArgs]) error {
	if w.e.opts.Online == nil {
		return nil
	}
	if err := w.e.opts.Online.Check(ctx); err != nil {
		w.e.logger.WarnContext(ctx, "Online check failed", slog.Any("error", err))
	}
	return nil
}

// onlinePeriodicJob is the leader's periodic online check.
func onlinePeriodicJob(interval time.Duration) *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(cmp.Or(interval, OnlineCheckIntervalDefault)),
		func() (river.JobArgs, *river.InsertOpts) { return OnlineArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true, ID: "online"})
}
