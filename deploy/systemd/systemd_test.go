// Package systemd_test checks the single-host units: the config file they
// name passes flywheel's own validation, and the service stops gracefully.
package systemd_test

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/config"
)

func TestConfigValidates(t *testing.T) {
	env := map[string]string{"FLYWHEEL_DATA_DIR": "/var/lib/flywheel", "HOME": t.TempDir()}
	cfg, err := config.Load("config.yaml", func(k string) string { return env[k] })
	require.NoError(t, err)
	require.NoError(t, cfg.Validate())
	require.True(t, cfg.Server.AuthEnabled(), "listening beyond loopback: auth is on")
	require.Equal(t, "sqlite:/var/lib/flywheel/flywheel.db", cfg.DatabaseURL)
}

func TestUnits(t *testing.T) {
	b, err := os.ReadFile("flywheel.service")
	require.NoError(t, err)
	unit := string(b)
	require.Contains(t, unit, "\nExecStartPre=/usr/local/bin/flywheel migrate\n")
	require.Contains(t, unit, "\nExecStart=/usr/local/bin/flywheel serve\n")
	require.Contains(t, unit, "\nEnvironment=FLYWHEEL_DATA_DIR=/var/lib/flywheel\n")
	m := regexp.MustCompile(`\nTimeoutStopSec=(\d+)\n`).FindStringSubmatch(unit)
	require.NotNil(t, m)
	stop, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	require.Greater(t, stop, 40, "longer than a graceful stop: 10 s of requests, then up to 30 s to hand stages back")

	b, err = os.ReadFile("flywheel-backup.service")
	require.NoError(t, err)
	require.Contains(t, string(b), "flywheel backup --force --to /var/lib/flywheel/backups/")
	b, err = os.ReadFile("flywheel-backup.timer")
	require.NoError(t, err)
	require.True(t, strings.Contains(string(b), "OnCalendar=daily"))
}
