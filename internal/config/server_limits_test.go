package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestValidateServerLimits(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name   string
		modify func(c *Config)
		want   []string
	}{
		{"DefaultsAreValid", func(*Config) {}, nil},
		{"GoodHosts", func(c *Config) { c.Server.AllowedHosts = []string{"flywheel.example.com", "*.corp.example", "*"} }, nil},
		{"ZeroTimeouts", func(c *Config) {
			c.Server.ReadHeaderTimeout, c.Server.ReadTimeout, c.Server.IdleTimeout = 0, -1, 0
		}, []string{
			"server.read_header_timeout: must be greater than 0 (got 0s)",
			"server.read_timeout: must be greater than 0 (got -1ns)",
			"server.idle_timeout: must be greater than 0 (got 0s)",
		}},
		{"BadHosts", func(c *Config) {
			c.Server.AllowedHosts = []string{"ok.example", "https://flywheel.example", "flywheel.example:8000", "", "*."}
		}, []string{
			`server.allowed_hosts[1]: must be a host name, *.domain or *, without scheme or port (got "https://flywheel.example")`,
			`server.allowed_hosts[2]: must be a host name, *.domain or *, without scheme or port (got "flywheel.example:8000")`,
			`server.allowed_hosts[3]: must be a host name, *.domain or *, without scheme or port (got "")`,
			`server.allowed_hosts[4]: must be a host name, *.domain or *, without scheme or port (got "*.")`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Load("", testEnv())
			require.NoError(t, err)
			tt.modify(cfg)
			var got []string
			for _, fe := range FieldErrors(cfg.Validate()) {
				if strings.HasPrefix(fe.Field, "server.") {
					got = append(got, fe.Error())
				}
			}
			require.Equal(t, tt.want, got)
		})
	}

	t.Run("FromYAML", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "config.yaml")
		require.NoError(t, os.WriteFile(path, []byte("server:\n  allowed_hosts: [flywheel.example.com]\n  read_timeout: 90s\n"), 0o600))
		cfg, err := Load(path, testEnv())
		require.NoError(t, err)
		require.Equal(t, []string{"flywheel.example.com"}, cfg.Server.AllowedHosts)
		require.Equal(t, 90*time.Second, cfg.Server.ReadTimeout)
		require.Equal(t, ReadHeaderTimeoutDefault, cfg.Server.ReadHeaderTimeout)
		require.Equal(t, IdleTimeoutDefault, cfg.Server.IdleTimeout)
	})

	t.Run("ForwardAuthorizationNeedsAuthOff", func(t *testing.T) {
		t.Parallel()
		on, off := true, false
		for _, tt := range []struct {
			auth *bool
			want []string
		}{
			{&off, nil},
			{&on, []string{"capture.forward_authorization: cannot be used with authentication on: callers send their Flywheel token " +
				"in Authorization, which must not reach the upstream; set the upstream key (CAPTURE_UPSTREAM_API_KEY) instead"}},
		} {
			cfg, err := Load("", testEnv())
			require.NoError(t, err)
			cfg.Capture.ForwardAuthorization = true
			cfg.Server.Auth.Enabled = tt.auth
			var got []string
			for _, fe := range FieldErrors(cfg.Validate()) {
				if strings.HasPrefix(fe.Field, "capture.") {
					got = append(got, fe.Error())
				}
			}
			require.Equal(t, tt.want, got)
		}
	})
}
