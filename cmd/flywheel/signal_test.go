package main_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestServeLogsStopOnSIGTERM sends SIGTERM to a running serve: it logs why
// it stops and exits cleanly.
func TestServeLogsStopOnSIGTERM(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	addr := freeAddr(t)
	serve := start(t, dir, "serve", "serve", "--addr", addr, "--data-dir", filepath.Join(dir, "data"), "--log-format", "text")
	c := newAPIClient(t, addr)
	c.waitReady(t, serve, 30*time.Second)
	require.NoError(t, syscall.Kill(serve.pid(), syscall.SIGTERM))
	select {
	case <-serve.done:
	case <-time.After(30 * time.Second):
		t.Fatal("serve still running 30 s after SIGTERM")
	}
	require.NoError(t, serve.err, "a stop on SIGTERM is a clean exit")
	log, err := os.ReadFile(serve.log)
	require.NoError(t, err)
	require.Contains(t, string(log), `msg="Flywheel stopping: finishing requests, handing back unfinished stages" reason="terminated signal received"`)
}
