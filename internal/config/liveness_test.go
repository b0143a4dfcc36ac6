package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestEngineLivenessKeys(t *testing.T) {
	t.Parallel()
	cfg, err := Load("", testEnv())
	require.NoError(t, err)
	require.Equal(t, 5*time.Second, cfg.Engine.HeartbeatInterval)
	require.Equal(t, 30*time.Second, cfg.Engine.DeadAfter)
	require.Equal(t, 20*time.Second, cfg.Engine.StrandedAfter)
	require.Equal(t, 5*time.Second, cfg.Engine.LivenessInterval)
	require.NoError(t, cfg.Validate())

	tests := []struct {
		name   string
		modify func(e *EngineConfig)
		want   []string
	}{
		{"DeadAfterUnderThreeHeartbeats", func(e *EngineConfig) { e.DeadAfter = 10 * time.Second },
			[]string{"engine.dead_after: must be at least 3 heartbeat intervals (15s), got 10s"}},
		{"StrandedAfterUnderRiversFetchTimeout", func(e *EngineConfig) { e.StrandedAfter = 5 * time.Second },
			[]string{"engine.stranded_after: must be at least 12s (River gives up a fetch after 10s), got 5s"}},
		{"ZeroInterval", func(e *EngineConfig) { e.LivenessInterval = 0 },
			[]string{"engine.liveness_interval: must be greater than 0 (got 0s)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Load("", testEnv())
			require.NoError(t, err)
			tt.modify(&cfg.Engine)
			var got []string
			for _, fe := range FieldErrors(cfg.Validate()) {
				got = append(got, fe.Error())
			}
			require.Equal(t, tt.want, got)
		})
	}
}

func TestEngineLivenessKeysFromFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte("engine:\n  heartbeat_interval: 2s\n  dead_after: 45s\n  stranded_after: 15s\n  liveness_interval: 1s\n"), 0o600))
	cfg, err := Load(path, testEnv())
	require.NoError(t, err)
	require.Equal(t, 2*time.Second, cfg.Engine.HeartbeatInterval)
	require.Equal(t, 45*time.Second, cfg.Engine.DeadAfter)
	require.Equal(t, 15*time.Second, cfg.Engine.StrandedAfter)
	require.Equal(t, time.Second, cfg.Engine.LivenessInterval)
}
