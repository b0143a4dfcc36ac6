package app_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/app"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/flywheeltest"
)

// A tokens file (a mounted Secret) is synced at start, its tokens answer as
// bearer tokens, and a rewrite of the file (a rotated Secret) takes effect
// without a restart: the removed token stops working.
func TestTokensFileThroughTheApp(t *testing.T) {
	t.Parallel()
	const (
		promSecret = "0c4f8e2a6b1d9f3e7a5c0b8d2f6e4a1c9b7d3f5e8a2c6b0d4f1e9a7c3b5d8f2e"
		ciSecret   = "b3D9kQ2mX7pL4vN8wR1tY6uZ0aC5eF3gH9jK2lM7nP4="
	)
	cfg := testConfig(t)
	on := true
	cfg.Server.Auth.Enabled = &on
	cfg.Server.Auth.TokensFile = filepath.Join(t.TempDir(), "tokens")
	require.NoError(t, os.WriteFile(cfg.Server.Auth.TokensFile,
		[]byte("# name scope secret\nprometheus read "+promSecret+"\nci write "+ciSecret+"\n"), 0o600))
	ctx := context.Background()
	a, err := app.Open(ctx, cfg, slog.New(slog.DiscardHandler),
		app.Options{API: true, Platform: &flywheeltest.Platform{}, TokensFileInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	defer a.Close()
	srv := httptest.NewServer(a.Handler)
	defer srv.Close()

	get := func(secret string) int {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/jobs", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusOK, get(promSecret))
	require.Equal(t, http.StatusOK, get(ciSecret))
	require.Equal(t, http.StatusUnauthorized, get(promSecret[1:]+"0"))

	toks, err := a.Store.ListTokens(ctx)
	require.NoError(t, err)
	require.Len(t, toks, 2)
	for _, tok := range toks {
		require.Equal(t, flywheel.TokenSourceFile, tok.Source)
	}

	// Rotation: the file now lists only ci.
	require.NoError(t, os.WriteFile(cfg.Server.Auth.TokensFile, []byte("ci write "+ciSecret+"\n"), 0o600))
	require.Eventually(t, func() bool { return get(promSecret) == http.StatusUnauthorized }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, http.StatusOK, get(ciSecret))

	// A bad rewrite is not applied: the tokens synced before stay.
	require.NoError(t, os.WriteFile(cfg.Server.Auth.TokensFile, []byte("ci write short\n"), 0o600))
	time.Sleep(100 * time.Millisecond)
	require.Equal(t, http.StatusOK, get(ciSecret))
}

// A bad tokens file stops the process at start, naming the line and
// never the secret.
func TestTokensFileRefusedAtStart(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	on := true
	cfg.Server.Auth.Enabled = &on
	cfg.Server.Auth.TokensFile = filepath.Join(t.TempDir(), "tokens")
	require.NoError(t, os.WriteFile(cfg.Server.Auth.TokensFile, []byte("\n\nweak read hunter2hunter2\n"), 0o600))
	_, err := app.Open(context.Background(), cfg, slog.New(slog.DiscardHandler), app.Options{Workers: true, Platform: &flywheeltest.Platform{}})
	require.Error(t, err)
	require.Contains(t, err.Error(), "server.auth.tokens_file")
	require.Contains(t, err.Error(), "line 3: the secret has 14 characters; it needs at least 32")
	require.NotContains(t, err.Error(), "hunter2")

	cfg.Server.Auth.TokensFile = filepath.Join(t.TempDir(), "missing")
	_, err = app.Open(context.Background(), cfg, slog.New(slog.DiscardHandler), app.Options{Workers: true, Platform: &flywheeltest.Platform{}})
	require.ErrorContains(t, err, "server.auth.tokens_file")
}
