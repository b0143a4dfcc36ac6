package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// serve syncs FLYWHEEL_TOKENS_FILE at start; "tokens list" shows the
// file's tokens and "tokens revoke" refuses them.
func TestServeTokensFile(t *testing.T) {
	t.Parallel()
	const secret = "5e2b8d1f4a7c0e3b6d9f2a5c8e1b4d7f0a3c6e9b2d5f8a1c4e7b0d3f6a9c2e5b"
	env := authEnv(t)
	addr := freePort(t)
	cfg := endpointConfig(t, fmt.Sprintf("server: {addr: '%s', auth: {enabled: true}}\n", addr))
	env["FLYWHEEL_CONFIG"] = cfg
	env["FLYWHEEL_TOKENS_FILE"] = filepath.Join(t.TempDir(), "tokens")
	require.NoError(t, os.WriteFile(env["FLYWHEEL_TOKENS_FILE"], []byte("monitoring read "+secret+"\n"), 0o600))
	startServe(t, env, cfg, "http://"+addr, http.DefaultClient)
	ctx := context.Background()

	require.Equal(t, http.StatusOK, get(t, http.DefaultClient, "http://"+addr+"/api/jobs", secret))
	require.Equal(t, http.StatusOK, get(t, http.DefaultClient, "http://"+addr+"/metrics", secret))
	require.Equal(t, http.StatusUnauthorized, get(t, http.DefaultClient, "http://"+addr+"/api/jobs", ""))

	out, _, err := flywheelCmd(ctx, env, "tokens", "list")
	require.NoError(t, err)
	require.Contains(t, out, "SOURCE")
	require.Regexp(t, `file-monitoring\s+monitoring\s+read\s+file\s`, out)
	require.NotContains(t, out, secret)
	out, _, err = flywheelCmd(ctx, env, "tokens", "list", "--json")
	require.NoError(t, err)
	var listed []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &listed))
	require.Len(t, listed, 1)
	require.Equal(t, "file", listed[0]["source"])

	_, _, err = flywheelCmd(ctx, env, "tokens", "revoke", "file-monitoring")
	require.ErrorContains(t, err, "managed by the tokens file")
	require.Equal(t, http.StatusOK, get(t, http.DefaultClient, "http://"+addr+"/api/jobs", secret))

	// A bad file stops serve at start with the line number.
	require.NoError(t, os.WriteFile(env["FLYWHEEL_TOKENS_FILE"], []byte("# tokens\nmonitoring reader "+secret+"\n"), 0o600))
	fresh := map[string]string{}
	for k, v := range env {
		fresh[k] = v
	}
	fresh["FLYWHEEL_DATA_DIR"] = t.TempDir() // not the running serve's database
	_, _, err = flywheelCmd(ctx, fresh, "--config", cfg, "serve")
	require.ErrorContains(t, err, "line 2: the scope is not read, write, admin or ingest")
	require.NotContains(t, err.Error(), secret)
}
