package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// TestOnline: the online section's defaults, a file's values, and each
// bad value reported with its key.
func TestOnline(t *testing.T) {
	t.Parallel()

	t.Run("Defaults", func(t *testing.T) {
		t.Parallel()
		cfg, err := Load("", testEnv())
		require.NoError(t, err)
		require.Equal(t, OnlineConfig{QueueSize: 1000, Retention: 14 * 24 * time.Hour, Window: time.Hour, WindowSamples: 500,
			CheckInterval: 30 * time.Second, AutoRollback: true, MinSamples: 50, Metric: flywheel.ScoreFunctionNameAndArgs,
			RollbackBelow: 0.8}, cfg.Online)
	})

	t.Run("File", func(t *testing.T) {
		t.Parallel()
		cfg, err := Parse([]byte("online:\n  window: 30m\n  min_samples: 100\n  metric: function_name\n  rollback_below: 0.9\n  auto_rollback: false\n"), testEnv())
		require.NoError(t, err)
		require.Equal(t, 30*time.Minute, cfg.Online.Window)
		require.Equal(t, 100, cfg.Online.MinSamples)
		require.Equal(t, flywheel.ScoreFunctionName, cfg.Online.Metric)
		require.InDelta(t, 0.9, cfg.Online.RollbackBelow, 1e-9)
		require.False(t, cfg.Online.AutoRollback)
		require.Equal(t, 500, cfg.Online.WindowSamples, "unset keys keep their defaults")
	})

	tests := []struct {
		name   string
		modify func(o *OnlineConfig)
		want   []string
	}{
		{"QueueSize", func(o *OnlineConfig) { o.QueueSize = 0 }, []string{"online.queue_size: must be greater than 0 (got 0)"}},
		{"Window", func(o *OnlineConfig) { o.Window = 0 }, []string{"online.window: must be at least 1s, got 0s"}},
		{"RetentionShorterThanWindow", func(o *OnlineConfig) { o.Window = 48 * time.Hour; o.Retention = 24 * time.Hour },
			[]string{"online.retention: must be at least 1h and at least online.window, got 24h0m0s"}},
		{"CheckInterval", func(o *OnlineConfig) { o.CheckInterval = time.Millisecond },
			[]string{"online.check_interval: must be at least 1s, got 1ms"}},
		{"MinSamplesAboveWindow", func(o *OnlineConfig) { o.MinSamples = 600 },
			[]string{"online.min_samples: must be at most online.window_samples (500), got 600: the window would never hold enough samples"}},
		{"Metric", func(o *OnlineConfig) { o.Metric = "similarity" },
			[]string{`online.metric: must be one of function_name, function_name_and_args_accuracy, tool_call_f1, tool_arg_f1, ast_accuracy, exact_match, token_f1, rouge_l (got "similarity")`}},
		{"RollbackBelow", func(o *OnlineConfig) { o.RollbackBelow = 80 },
			[]string{"online.rollback_below: must be between 0 and 1, got 80"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Load("", testEnv())
			require.NoError(t, err)
			tt.modify(&cfg.Online)
			var got []string
			for _, fe := range FieldErrors(cfg.Validate()) {
				got = append(got, fe.Error())
			}
			require.Equal(t, tt.want, got)
		})
	}
}
