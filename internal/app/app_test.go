package app_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/app"
	"github.com/flywheel-go/flywheel/internal/capture"
	"github.com/flywheel-go/flywheel/internal/config"
	"github.com/flywheel-go/flywheel/internal/flywheeltest"
	"github.com/flywheel-go/flywheel/internal/openai/openaitest"
)

func testConfig(t *testing.T) *config.Config {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Load("", func(k string) string {
		if k == config.EnvDataDir {
			return dir
		}
		return ""
	})
	require.NoError(t, err)
	require.Equal(t, "sqlite:"+filepath.Join(dir, config.DatabaseFileName), cfg.DatabaseURL)
	return cfg
}

// The capture proxy, mounted by the app, forwards an app's call unchanged
// and records the pair in the log store under the ids of its headers.
func TestCaptureProxyRecordsThroughTheApp(t *testing.T) {
	t.Parallel()
	upstream := openaitest.New(openaitest.Options{})
	defer upstream.Close()
	cfg := testConfig(t)
	cfg.Capture.UpstreamURL = upstream.URL
	ctx := context.Background()
	a, err := app.Open(ctx, cfg, slog.New(slog.DiscardHandler), app.Options{API: true, Platform: &flywheeltest.Platform{}})
	require.NoError(t, err)
	defer a.Close()
	srv := httptest.NewServer(a.Handler)
	defer srv.Close()

	body := `{"model":"gpt-x","messages":[{"role":"user","content":"hello there"}]}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+capture.Path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(capture.HeaderWorkloadID, "support-bot")
	req.Header.Set(capture.HeaderClientID, "acme")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(answer))
	require.Contains(t, string(answer), "hello there", "the upstream answer comes back unchanged")

	require.Eventually(t, func() bool {
		n, err := a.Store.CountLogs(ctx, "support-bot", "acme")
		require.NoError(t, err)
		return n == 1
	}, 10*time.Second, 10*time.Millisecond)
	recs, err := a.Store.NewestRecords(ctx, "support-bot", "acme", 1)
	require.NoError(t, err)
	require.Contains(t, string(recs[0].Request), "hello there")
	require.Contains(t, string(recs[0].Response), "choices")
}

// POST /api/logs stores good lines and names the bad ones, through the app.
func TestBulkIngestThroughTheApp(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	ctx := context.Background()
	a, err := app.Open(ctx, cfg, slog.New(slog.DiscardHandler), app.Options{API: true, Platform: &flywheeltest.Platform{}})
	require.NoError(t, err)
	defer a.Close()
	srv := httptest.NewServer(a.Handler)
	defer srv.Close()
	lines := strings.Join([]string{
		`{"workload_id":"w","client_id":"c","timestamp":1700000000,"request":{"messages":[{"role":"user","content":"a"}]},"response":{"choices":[{"message":{"role":"assistant","content":"b"}}]}}`,
		`{not json`,
		`{"workload_id":"w","client_id":"c","timestamp":1700000001,"request":{"messages":[{"role":"user","content":"c"}]},"response":{"choices":[{"message":{"role":"assistant","content":"d"}}]}}`,
	}, "\n")
	resp, err := http.Post(srv.URL+"/api/logs", "application/x-ndjson", bytes.NewBufferString(lines))
	require.NoError(t, err)
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
	require.Contains(t, string(out), `"line":2`)
	n, err := a.Store.CountLogs(ctx, "w", "c")
	require.NoError(t, err)
	require.Equal(t, 2, n)
}
