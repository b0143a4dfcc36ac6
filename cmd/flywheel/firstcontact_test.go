package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/testcorpus"
)

// TestServeHelpShowsDefaultWorkers checks that --help names the worker
// count serve and worker use without a flag.
func TestServeHelpShowsDefaultWorkers(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"serve", "worker"} {
		out, _, err := flywheelCmd(context.Background(), authEnv(t), cmd, "--help")
		require.NoError(t, err)
		require.Contains(t, out, "default engine.workers from the config, else 8", cmd)
	}
}

// TestLoadThroughServer loads a file with --server: the records go through
// POST /api/logs with the token of --token or FLYWHEEL_TOKEN, duplicates
// and bad lines are counted as a direct load counts them, and no database
// flag is needed.
func TestLoadThroughServer(t *testing.T) {
	t.Parallel()
	env := authEnv(t)
	addr := freePort(t)
	cfg := endpointConfig(t, fmt.Sprintf("server: {addr: '%s', auth: {enabled: true}}\n", addr))
	env["FLYWHEEL_CONFIG"] = cfg
	ingest := createToken(t, env, "app", "ingest")
	reader := createToken(t, env, "viewer", "read")
	startServe(t, env, cfg, "http://"+addr, http.DefaultClient)
	ctx := context.Background()
	server := "http://" + addr

	// The client has its own (empty) data directory: only the server's
	// database can receive the records.
	client := map[string]string{"HOME": t.TempDir(), "FLYWHEEL_DATA_DIR": t.TempDir()}
	file := filepath.Join(testcorpus.BFCLDir(t), "simple.jsonl")

	_, _, err := flywheelCmd(ctx, client, "--server", server, "load", "--file", file)
	require.ErrorContains(t, err, "401")
	_, _, err = flywheelCmd(ctx, client, "--server", server, "--token", reader.Secret, "load", "--file", file)
	require.ErrorContains(t, err, "403")

	out, _, err := flywheelCmd(ctx, client, "--server", server, "--token", ingest.Secret, "load", "--file", file)
	require.NoError(t, err)
	require.Contains(t, out, "Loaded 400 records, 0 duplicates skipped, 0 rejected (400 lines")

	client["FLYWHEEL_TOKEN"] = ingest.Secret
	out, _, err = flywheelCmd(ctx, client, "--server", server, "load", "--file", file)
	require.NoError(t, err)
	require.Contains(t, out, "Loaded 0 records, 400 duplicates skipped, 0 rejected (400 lines", "the server's store has them")

	data, err := os.ReadFile(file)
	require.NoError(t, err)
	lines := strings.SplitN(string(data), "\n", 3)
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	require.NoError(t, os.WriteFile(bad, []byte("{not json\n"+strings.Replace(lines[0], `"bfcl"`, `"other"`, 1)+"\n"), 0o644))
	out, _, err = flywheelCmd(ctx, client, "--server", server, "load", "--file", bad)
	require.NoError(t, err)
	require.Contains(t, out, "Loaded 1 records, 0 duplicates skipped, 1 rejected (2 lines")
	require.Contains(t, out, "rejected line 1")

	// The records are in the server's database, under its data directory.
	out, _, err = flywheelCmd(ctx, env, "load", "--file", file)
	require.NoError(t, err)
	require.Contains(t, out, "Loaded 0 records, 400 duplicates skipped")
}

// TestSelfName checks the name the demo's closing hint gives the binary:
// its bare name when PATH finds this very binary, else a path that runs it.
func TestSelfName(t *testing.T) {
	exe, err := os.Executable()
	require.NoError(t, err)
	t.Setenv("PATH", filepath.Dir(exe))
	require.Equal(t, filepath.Base(exe), selfName())
	t.Setenv("PATH", t.TempDir())
	got := selfName()
	require.NotEqual(t, filepath.Base(exe), got, "not on PATH: a path")
	wd, err := os.Getwd()
	require.NoError(t, err)
	if !filepath.IsAbs(got) {
		got = filepath.Join(wd, got)
	}
	require.Equal(t, exe, got)
}
