package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// TestAuthFileTokens: tokens of server.auth.tokens_file authenticate as
// "Bearer <secret>" with their scope, and stop when removed from the file.
func TestAuthFileTokens(t *testing.T) {
	t.Parallel()
	b := authSetup(t, true)
	ctx := context.Background()
	const (
		readSecret   = "7d1e0f3a9b8c2d4e6f5a7b9c1d3e5f70a2b4c6d8e0f1a3b5c7d9e1f3a5b7c9d1"
		ingestSecret = "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG0="
	)
	sync := func(file string) {
		toks, err := flywheel.ParseTokensFile(strings.NewReader(file))
		require.NoError(t, err)
		_, err = b.store.SyncFileTokens(ctx, toks, time.Now())
		require.NoError(t, err)
	}
	sync("prometheus read " + readSecret + "\napp ingest " + ingestSecret + "\n")

	res := do(t, b.h, "GET", "/metrics", "", bearer(readSecret)...)
	require.Equal(t, http.StatusOK, res.status, "body: %s", res.body)
	res = do(t, b.h, "GET", "/api/jobs", "", bearer(readSecret)...)
	require.Equal(t, http.StatusOK, res.status, "body: %s", res.body)
	res = do(t, b.h, "POST", "/api/jobs", `{"workload_id":"w","client_id":"c"}`, bearer(readSecret)...)
	require.Equal(t, http.StatusForbidden, res.status)
	require.Contains(t, res.detail(t), `"prometheus" has scope read`)

	res = do(t, b.h, "POST", "/v1/chat/completions", `{"model":"m","messages":[]}`, bearer(ingestSecret)...)
	require.Equal(t, http.StatusOK, res.status, "body: %s", res.body)
	p := flywheel.PrincipalFrom(b.last().Context())
	require.Equal(t, "file-app", p.TokenID)
	require.Equal(t, flywheel.ScopeIngest, p.Scope)

	// Near misses of a file secret are refused alike.
	for _, bad := range []string{readSecret[:len(readSecret)-1] + "0", readSecret + "x", readSecret[:31], "file-prometheus"} {
		res = do(t, b.h, "GET", "/api/jobs", "", bearer(bad)...)
		require.Equal(t, http.StatusUnauthorized, res.status, bad)
		require.Contains(t, res.detail(t), "Invalid credentials")
	}

	// The dashboard login takes a file token too.
	cookie, _, err := b.auth.StartSession(ctx, readSecret)
	require.NoError(t, err)
	c := []string{"Cookie", flywheel.SessionCookie + "=" + cookie}
	require.Equal(t, http.StatusOK, do(t, b.h, "GET", "/ui/", "", c...).status)

	// Removed from the file: revoked, its session ends, the other stays.
	sync("app ingest " + ingestSecret + "\n")
	res = do(t, b.h, "GET", "/api/jobs", "", bearer(readSecret)...)
	require.Equal(t, http.StatusUnauthorized, res.status)
	require.Contains(t, res.detail(t), "file-prometheus was revoked")
	require.Equal(t, http.StatusUnauthorized, do(t, b.h, "GET", "/ui/", "", c...).status)
	res = do(t, b.h, "POST", "/v1/chat/completions", `{"model":"m","messages":[]}`, bearer(ingestSecret)...)
	require.Equal(t, http.StatusOK, res.status)

	// Tokens made by the CLI keep working beside the file's.
	res = do(t, b.h, "GET", "/api/jobs", "", bearer(b.secrets["read"])...)
	require.Equal(t, http.StatusOK, res.status)
}
