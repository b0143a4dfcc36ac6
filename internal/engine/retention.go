package engine

import (
	"context"
	"io/fs"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/riverqueue/river"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/stage"
	"github.com/flywheel-go/flywheel/internal/store"
)

// RetentionArgs are the arguments of the periodic retention job.
type RetentionArgs struct{}

// Kind implements river.JobArgs.
func (RetentionArgs) Kind() string { return "flywheel_retention" }

// InsertOpts puts the retention job on the cleanup queue, once a minute at
// most.
func (RetentionArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueCleanup, MaxAttempts: 1, UniqueOpts: river.UniqueOpts{ByPeriod: time.Minute}}
}

type retentionWorker struct {
	river.WorkerDefaults[RetentionArgs]
	e *Engine
}

func (w *retentionWorker) Timeout(*river.Job[RetentionArgs]) time.Duration { return 30 * time.Minute }

// Work deletes the stored records the retention policy no longer keeps.
func (w *retentionWorker) Work(ctx context.Context, _ *river.Job[RetentionArgs]) error {
	_, err := w.e.EnforceRetention(ctx)
	return err
}

// retains reports whether the policy deletes anything at all.
func retains(p store.Retention) bool {
	if p.Days > 0 {
		return true
	}
	for _, d := range p.Workloads {
		if d > 0 {
			return true
		}
	}
	return false
}

// EnforceRetention deletes the stored records older than the retention
// policy (Options.Retention) keeps, records one audit entry per workload
// whose records it deleted, and returns how many per workload.
func (e *Engine) EnforceRetention(ctx context.Context) (map[string]int64, error) {
	p := e.opts.Retention
	if !retains(p) {
		return map[string]int64{}, nil
	}
	now := e.now()
	var deleted map[string]int64
	err := e.store.InTx(ctx, func(q *store.Queries) error {
		var err error
		if deleted, err = q.ExpireLogs(ctx, p, now); err != nil {
			return err
		}
		for w, n := range deleted {
			days := p.Days
			if d, ok := p.Workloads[w]; ok {
				days = d
			}
			if err := q.AddAudit(ctx, &flywheel.AuditEntry{At: now, Actor: flywheel.ActorRetention, Action: flywheel.AuditLogsExpired,
				Target: w, Detail: map[string]any{"deleted": n, "retention_days": days,
					"before": now.AddDate(0, 0, -days).UTC().Format(time.RFC3339)}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		e.logger.WarnContext(ctx, "Retention: deleting expired log records failed", slog.Any("error", err))
		return nil, err
	}
	for w, n := range deleted {
		e.logger.InfoContext(ctx, "Retention: expired log records deleted", slog.String("workload_id", w), slog.Int64("deleted", n))
	}
	return deleted, nil
}

// deletionReport is what a run held before its deletion: rows by kind and
// files on local disk.
type deletionReport struct {
	rows  map[string]int64
	files int
	bytes int64
}

// footprint counts what the run holds now (zero counts when unreadable).
func (e *Engine) footprint(ctx context.Context, runID string) deletionReport {
	var r deletionReport
	rows, err := e.store.RunFootprint(ctx, runID)
	if err != nil {
		e.logger.WarnContext(ctx, "Could not count the run's rows", slog.String("run_id", runID), slog.Any("error", err))
	}
	r.rows = rows
	if e.runner.Settings.DataDir == "" {
		return r
	}
	dir, err := stage.RunDir(e.runner.Settings.DataDir, runID)
	if err != nil {
		return r
	}
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		r.files++
		if info, err := d.Info(); err == nil {
			r.bytes += info.Size()
		}
		return nil
	})
	return r
}

// reportDeletion logs what the deletion of a run removed (before minus
// after) and records it in the audit log.
func (e *Engine) reportDeletion(ctx context.Context, runID string, before, after deletionReport) {
	removed := map[string]any{}
	attrs := []any{slog.String("run_id", runID)}
	for k, n := range before.rows {
		if d := n - after.rows[k]; d != 0 && k != "live_remote_resources" {
			removed[k] = d
			attrs = append(attrs, slog.Int64(k, d))
		}
	}
	released := before.rows["live_remote_resources"] - after.rows["live_remote_resources"]
	removed["remote_resources_released"] = released
	removed["files"] = before.files - after.files
	removed["file_bytes"] = before.bytes - after.bytes
	attrs = append(attrs, slog.Int64("remote_resources_released", released), slog.Int("files", before.files-after.files),
		slog.Int64("file_bytes", before.bytes-after.bytes))
	if left := after.rows["live_remote_resources"]; left > 0 {
		removed["remote_resources_left_for_retry"] = left
		attrs = append(attrs, slog.Int64("remote_resources_left_for_retry", left))
	}
	e.logger.InfoContext(ctx, "Job deleted: removed", attrs...)
	if err := e.store.AddAudit(context.WithoutCancel(ctx), &flywheel.AuditEntry{Actor: flywheel.ActorCleanup,
		Action: flywheel.AuditJobPurged, Target: runID, Detail: removed}); err != nil {
		e.logger.WarnContext(ctx, "Audit entry not recorded", slog.String("run_id", runID), slog.Any("error", err))
	}
}
