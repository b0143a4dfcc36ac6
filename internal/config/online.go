package config

import (
	"slices"
	"strings"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// OnlineConfig configures the online evaluation of promoted candidates and
// the automatic rollback (online).
type OnlineConfig struct {
	// QueueSize bounds the samples waiting to be scored; when it is full
	// new samples are dropped (and counted), never waited for.
	QueueSize int `yaml:"queue_size"`
	// Retention is how long scored samples are kept.
	Retention time.Duration `yaml:"retention"`
	// Window and WindowSamples bound the rolling window the agreement is
	// computed over: the samples of the last Window, at most the newest
	// WindowSamples of them.
	Window        time.Duration `yaml:"window"`
	WindowSamples int           `yaml:"window_samples"`
	// CheckInterval is how often the leader checks the active promotions.
	CheckInterval time.Duration `yaml:"check_interval"`
	// AutoRollback rolls a promotion back when its agreement is below
	// RollbackBelow with confidence: at least MinSamples samples in the
	// window, and the upper bound of the 95% interval of Metric below
	// RollbackBelow.
	AutoRollback  bool    `yaml:"auto_rollback"`
	MinSamples    int     `yaml:"min_samples"`
	Metric        string  `yaml:"metric"`
	RollbackBelow float64 `yaml:"rollback_below"`
}

// Defaults of the online section.
const (
	OnlineQueueSizeDefault     = 1000
	OnlineRetentionDefault     = 14 * 24 * time.Hour
	OnlineWindowDefault        = time.Hour
	OnlineWindowSamplesDefault = 500
	OnlineCheckIntervalDefault = 30 * time.Second
	OnlineMinSamplesDefault    = 50
	OnlineRollbackBelowDefault = 0.8
)

// OnlineMetrics are the metrics online.metric may name: the per-sample
// scores of the online evaluation (the offline evaluation's deterministic
// metrics, all in [0, 1]).
func OnlineMetrics() []string {
	return []string{flywheel.ScoreFunctionName, flywheel.ScoreFunctionNameAndArgs, "tool_call_f1", "tool_arg_f1",
		"ast_accuracy", "exact_match", "token_f1", "rouge_l"}
}

// OnlineDefault returns the default online section.
func OnlineDefault() OnlineConfig {
	return OnlineConfig{
		QueueSize:     OnlineQueueSizeDefault,
		Retention:     OnlineRetentionDefault,
		Window:        OnlineWindowDefault,
		WindowSamples: OnlineWindowSamplesDefault,
		CheckInterval: OnlineCheckIntervalDefault,
		AutoRollback:  true,
		MinSamples:    OnlineMinSamplesDefault,
		Metric:        flywheel.ScoreFunctionNameAndArgs,
		RollbackBelow: OnlineRollbackBelowDefault,
	}
}

func (c *Config) validateOnline(p *problems) {
	o := c.Online
	p.positive("online.queue_size", o.QueueSize)
	if o.Window < time.Second {
		p.add("online.window", "must be at least 1s, got %s", o.Window)
	}
	if o.Retention < o.Window || o.Retention < time.Hour {
		p.add("online.retention", "must be at least 1h and at least online.window, got %s", o.Retention)
	}
	p.positive("online.window_samples", o.WindowSamples)
	if o.CheckInterval < time.Second {
		p.add("online.check_interval", "must be at least 1s, got %s", o.CheckInterval)
	}
	p.positive("online.min_samples", o.MinSamples)
	if o.MinSamples > o.WindowSamples {
		p.add("online.min_samples", "must be at most online.window_samples (%d), got %d: the window would never hold enough samples", o.WindowSamples, o.MinSamples)
	}
	if !slices.Contains(OnlineMetrics(), o.Metric) {
		p.add("online.metric", "must be one of %s (got %q)", strings.Join(OnlineMetrics(), ", "), o.Metric)
	}
	if o.RollbackBelow < 0 || o.RollbackBelow > 1 {
		p.add("online.rollback_below", "must be between 0 and 1, got %g", o.RollbackBelow)
	}
}
