package online

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// Monitor defaults.
const (
	MinSamplesDefault    = 50
	RollbackBelowDefault = 0.8
	// PruneInterval is the least time between two deletions of the samples
	// older than the retention.
	PruneInterval = time.Hour
)

// MonitorOptions configures a Monitor.
type MonitorOptions struct {
	// Reader computes the rolling windows; its Promotions lists the
	// promotions watched.
	Reader *Reader
	// Promoter rolls promotions back; nil only logs and counts the
	// decisions.
	Promoter flywheel.Promoter
	// Store, when set, has the samples older than Retention deleted at
	// most every PruneInterval.
	Store     Store
	Retention time.Duration
	Metrics   *Metrics
	// AutoRollback enables the rollback; without it a decision to roll
	// back is only logged and counted.
	AutoRollback bool
	// MinSamples is the fewest samples (of Metric) a window needs before a
	// rollback (MinSamplesDefault).
	MinSamples int
	// Metric is the score watched (function_name_and_args_accuracy when
	// empty); RollbackBelow the threshold its interval's upper bound must
	// be under.
	Metric        string
	RollbackBelow float64
	Logger        *slog.Logger
	Now           func() time.Time
}

// Monitor checks the active promotions' online agreement and rolls back
// those whose agreement is below the threshold with confidence.
type Monitor struct {
	opts    MonitorOptions
	metrics *Metrics
	logger  *slog.Logger

	mu        sync.Mutex
	lastPrune time.Time
	// held are the promotions a decision to roll back was only logged for
	// (auto_rollback off, or no Promoter): logged and counted once each.
	held map[string]bool
}

// NewMonitor returns a Monitor.
func NewMonitor(opts MonitorOptions) *Monitor {
	opts.MinSamples = cmp.Or(opts.MinSamples, MinSamplesDefault)
	opts.Metric = cmp.Or(opts.Metric, flywheel.ScoreFunctionNameAndArgs)
	opts.Retention = cmp.Or(opts.Retention, RetentionDefault)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m := &Monitor{opts: opts, metrics: opts.Metrics, logger: opts.Logger, held: map[string]bool{}}
	if m.metrics == nil {
		m.metrics, _ = NewMetrics(nil) // registers nothing: cannot fail
	}
	if m.logger == nil {
		m.logger = slog.New(slog.DiscardHandler)
	}
	m.logger = m.logger.With("component", "online")
	return m
}

// ShouldRollBack reports whether stats are evidence enough that the
// candidate disagrees with production: at least minSamples scores of
// metric in the window, and the upper bound of their 95% interval below
// the threshold. A single bad sample, or a low mean over few samples,
// never is.
func ShouldRollBack(stats flywheel.OnlineStats, metric string, minSamples int, below float64) bool {
	d, ok := stats.Scores[metric]
	return ok && stats.N >= minSamples && d.N >= minSamples && d.CIHigh < below
}

// Check computes the rolling window of every active promotion, sets the
// agreement gauges, rolls back the promotions ShouldRollBack condemns,
// and deletes expired samples. It goes on past one promotion's failure
// and returns every failure joined.
func (m *Monitor) Check(ctx context.Context) error {
	now := m.opts.Now()
	errs := []error{m.prune(ctx, now)}
	active, err := m.opts.Reader.active(ctx, "", "")
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	m.forgetEnded(active)
	stats := make([]flywheel.OnlineStats, 0, len(active))
	for _, p := range active {
		st, err := m.opts.Reader.Stats(ctx, p, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("online stats of promotion %s: %w", p.ID, err))
			continue
		}
		stats = append(stats, st)
		if ShouldRollBack(st, m.opts.Metric, m.opts.MinSamples, m.opts.RollbackBelow) {
			errs = append(errs, m.rollBack(ctx, p, st))
		}
	}
	m.metrics.show(stats)
	return errors.Join(errs...)
}

// forgetEnded drops the held promotions that are no longer active.
func (m *Monitor) forgetEnded(active []flywheel.Promotion) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id := range m.held {
		if !slices.ContainsFunc(active, func(p flywheel.Promotion) bool { return p.ID == id }) {
			delete(m.held, id)
		}
	}
}

// rollBack rolls p back with st as the evidence, when it may.
func (m *Monitor) rollBack(ctx context.Context, p flywheel.Promotion, st flywheel.OnlineStats) error {
	d := st.Scores[m.opts.Metric]
	reason := fmt.Sprintf("online %s %.3f (95%% interval %.3f–%.3f, n=%d) is below %g", m.opts.Metric, d.Mean, d.CILow, d.CIHigh, d.N,
		m.opts.RollbackBelow)
	attrs := []any{slog.String("promotion_id", p.ID), slog.String("workload_id", p.WorkloadID), slog.String("client_id", p.ClientID),
		slog.String("model", p.Candidate), slog.String("reason", reason)}
	if !m.opts.AutoRollback || m.opts.Promoter == nil {
		m.mu.Lock()
		first := !m.held[p.ID]
		m.held[p.ID] = true
		m.mu.Unlock()
		switch {
		case !first:
		case !m.opts.AutoRollback:
			m.metrics.rollbacks.WithLabelValues(RollbackDisabled).Inc()
			m.logger.WarnContext(ctx, "Online agreement below the rollback threshold; online.auto_rollback is off", attrs...)
		default:
			m.metrics.rollbacks.WithLabelValues(RollbackNoPromoter).Inc()
			m.logger.WarnContext(ctx, "Online agreement below the rollback threshold; this process cannot roll back", attrs...)
		}
		return nil
	}
	evidence, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("rollback evidence of promotion %s: %w", p.ID, err)
	}
	if _, err := m.opts.Promoter.Rollback(flywheel.WithActor(ctx, flywheel.ActorOnline), p.ID, reason, evidence); err != nil {
		m.metrics.rollbacks.WithLabelValues(RollbackFailed).Inc()
		m.logger.ErrorContext(ctx, "Automatic rollback failed", append(attrs, slog.String("error", err.Error()))...)
		return fmt.Errorf("roll back promotion %s: %w", p.ID, err)
	}
	m.metrics.rollbacks.WithLabelValues(RollbackDone).Inc()
	m.logger.WarnContext(ctx, "Promotion rolled back: online agreement below the threshold", attrs...)
	return nil
}

// prune deletes the samples older than the retention, at most every
// PruneInterval.
func (m *Monitor) prune(ctx context.Context, now time.Time) error {
	if m.opts.Store == nil {
		return nil
	}
	m.mu.Lock()
	due := now.Sub(m.lastPrune) >= PruneInterval
	if due {
		m.lastPrune = now
	}
	m.mu.Unlock()
	if !due {
		return nil
	}
	n, err := m.opts.Store.ExpireOnlineScores(ctx, now.Add(-m.opts.Retention))
	if err != nil {
		return err
	}
	if n > 0 {
		m.logger.InfoContext(ctx, "Expired online samples deleted", slog.Int64("deleted", n), slog.Duration("retention", m.opts.Retention))
	}
	return nil
}
