package ui_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
	"github.com/flywheel-go/flywheel/internal/ui"
)

// TestAuditPage shows the audit log newest first, links created runs,
// filters by action and pages by 100.
func TestAuditPage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.Open(t, store.SQLite)
	for i := range 120 {
		e := &flywheel.AuditEntry{Actor: "ops (tok1)", Action: flywheel.AuditLogsIngested, Target: "POST /api/logs",
			Detail: map[string]any{"inserted": i}}
		if i%40 == 0 {
			e.Action, e.Target, e.Detail = flywheel.AuditJobCreated, fmt.Sprintf("run-%d", i), map[string]any{"workload_id": "w"}
		}
		require.NoError(t, s.AddAudit(ctx, e))
	}
	h := ui.New(ui.Options{Audit: s, Prefix: "/ui"})
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequestWithContext(ctx, http.MethodGet, path, nil)
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	code, body := get("/ui/audit")
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, 100, strings.Count(body, "<tr>\n    <td><time>"), "one page")
	require.Contains(t, body, `{&#34;inserted&#34;:119}`)
	require.Less(t, strings.Index(body, "119"), strings.Index(body, "run-80"), "newest first")
	require.Contains(t, body, `href="/ui/runs/run-80"`)
	require.Contains(t, body, `aria-current="page">Audit log`)
	i := strings.Index(body, `rel="next"`)
	require.Positive(t, i, "a next page")
	next := body[strings.LastIndex(body[:i], `href="`)+6 : i-2]
	code, body = get(strings.ReplaceAll(next, "&amp;", "&"))
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, 20, strings.Count(body, "<tr>\n    <td><time>"))
	require.Contains(t, body, `href="/ui/runs/run-0"`)

	code, body = get("/ui/audit?action=job.created")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, 3, strings.Count(body, "<tr>\n    <td><time>"))

	code, _ = get("/ui/audit?cursor=x")
	require.Equal(t, http.StatusBadRequest, code)
	rec := httptest.NewRecorder()
	ui.New(ui.Options{Prefix: "/ui"}).ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, "/ui/audit", nil))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
}
