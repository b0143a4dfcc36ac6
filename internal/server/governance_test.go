package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/redact"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

// governanceBody is n lines for workload w, clients c and d alternating;
// every line's user message holds a card number.
func governanceBody(n int) string {
	var b strings.Builder
	for i := range n {
		client := "c"
		if i%2 == 1 {
			client = "d"
		}
		fmt.Fprintf(&b, `{"workload_id":"w","client_id":"%s","timestamp":%d,"request":{"messages":[{"role":"user","content":"pay with 4111 1111 1111 1111, order %d"}]},"response":{"choices":[{"message":{"role":"assistant","content":"ok"}}]}}`+"\n",
			client, 1746000000+i*86400, i)
	}
	return b.String()
}

func TestLogsRedactDeleteAndAudit(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := storetest.Open(t, d)
			b := setup(t)
			b.opts.Logs, b.opts.Audit, b.opts.LogDeleter = s, s, s
			b.opts.Redactor = redact.MustNew(redact.Config{})
			h := b.server()

			res := do(t, h, "POST", "/api/logs", governanceBody(10))
			require.Equal(t, http.StatusOK, res.status, "%s", res.body)
			var ing api.LogsResponse
			decodeInto(t, res, &ing)
			require.Equal(t, 10, ing.Inserted)
			require.Equal(t, map[string]int{redact.Cards: 10}, ing.Redacted)
			recs, err := s.NewestRecords(ctx, "w", "c", 0)
			require.NoError(t, err)
			require.Len(t, recs, 5)
			for _, r := range recs {
				require.Contains(t, string(r.Request), "pay with <CARD_1>, order")
			}

			// Client d's records before the 5th day: days 1 and 3.
			res = do(t, h, "DELETE", "/api/logs?workload_id=w&client_id=d&before=2025-05-04T08:00:00Z", "")
			require.Equal(t, http.StatusOK, res.status, "%s", res.body)
			var del api.LogsDeleteResponse
			decodeInto(t, res, &del)
			require.Equal(t, int64(2), del.Deleted)
			require.Equal(t, "d", del.ClientID)
			require.NotNil(t, del.Before)
			n, err := s.CountLogs(ctx, "w", "d")
			require.NoError(t, err)
			require.Equal(t, 3, n)

			res = do(t, h, "DELETE", "/api/logs?workload_id=w", "")
			require.Equal(t, http.StatusOK, res.status, "%s", res.body)
			decodeInto(t, res, &del)
			require.Equal(t, int64(8), del.Deleted)

			res = do(t, h, "GET", "/api/audit", "")
			require.Equal(t, http.StatusOK, res.status, "%s", res.body)
			var page api.AuditPage
			decodeInto(t, res, &page)
			require.Len(t, page.Entries, 3)
			require.Nil(t, page.NextCursor)
			got := []string{}
			for _, e := range page.Entries {
				require.Equal(t, flywheel.ActorLocal, e.Actor)
				got = append(got, e.Action+" "+e.Target)
			}
			require.Equal(t, []string{"logs.deleted w", "logs.deleted w/d", "logs.ingested POST /api/logs"}, got)
			require.Equal(t, float64(8), page.Entries[0].Detail["deleted"])
			require.Equal(t, map[string]any{"cards": float64(10)}, page.Entries[2].Detail["redacted"])

			// Paging.
			res = do(t, h, "GET", "/api/audit?limit=2", "")
			decodeInto(t, res, &page)
			require.Len(t, page.Entries, 2)
			require.NotNil(t, page.NextCursor)
			res = do(t, h, "GET", "/api/audit?limit=2&cursor="+*page.NextCursor, "")
			decodeInto(t, res, &page)
			require.Len(t, page.Entries, 1)
			require.Equal(t, flywheel.AuditLogsIngested, page.Entries[0].Action)
			require.Nil(t, page.NextCursor)

			res = do(t, h, "GET", "/api/audit?action=logs.ingested", "")
			decodeInto(t, res, &page)
			require.Len(t, page.Entries, 1)
		})
	}
}

func TestLogsDeleteValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := storetest.Open(t, "sqlite")
	b.opts.Audit, b.opts.LogDeleter = s, s
	h := b.server()
	for _, tc := range []struct{ target, field string }{
		{"/api/logs", "workload_id"},
		{"/api/logs?workload_id=w&before=yesterday", "before"},
		{"/api/logs?workload_id=" + strings.Repeat("w", 300), "workload_id"},
	} {
		res := do(t, h, "DELETE", tc.target, "")
		require.Equal(t, http.StatusUnprocessableEntity, res.status, "%s: %s", tc.target, res.body)
		require.Contains(t, string(res.body), tc.field)
	}
	res := do(t, h, "GET", "/api/audit?cursor=abc", "")
	require.Equal(t, http.StatusUnprocessableEntity, res.status, "%s", res.body)

	bare := setup(t).server()
	require.Equal(t, http.StatusServiceUnavailable, do(t, bare, "DELETE", "/api/logs?workload_id=w", "").status)
	require.Equal(t, http.StatusServiceUnavailable, do(t, bare, "GET", "/api/audit", "").status)
}

// TestGovernanceNeedsAdmin: with authentication on only an admin token may
// delete logs or read the audit log, and the audit log names the token.
func TestGovernanceNeedsAdmin(t *testing.T) {
	t.Parallel()
	var b *authBundle
	b = authSetup(t, true)
	b.opts.Audit, b.opts.LogDeleter = b.store, b.store
	h := b.server()
	for _, sc := range flywheel.Scopes() {
		for _, target := range []string{"DELETE /api/logs?workload_id=w", "GET /api/audit", "GET /ui/audit"} {
			method, path, _ := strings.Cut(target, " ")
			res := do(t, h, method, path, "", bearer(b.secrets[string(sc)])...)
			if sc == flywheel.ScopeAdmin {
				require.Equal(t, http.StatusOK, res.status, "%s %s: %s", sc, target, res.body)
			} else {
				require.Equal(t, http.StatusForbidden, res.status, "%s %s: %s", sc, target, res.body)
			}
		}
	}
	res := do(t, h, "GET", "/api/audit", "", bearer(b.secrets["admin"])...)
	var page api.AuditPage
	decodeInto(t, res, &page)
	require.Len(t, page.Entries, 1)
	require.Equal(t, flywheel.AuditLogsDeleted, page.Entries[0].Action)
	require.True(t, strings.HasPrefix(page.Entries[0].Actor, "admin ("), page.Entries[0].Actor)
}

// decodeInto decodes res's body into *v, zeroed first.
func decodeInto(t *testing.T, res response, v any) {
	t.Helper()
	reflect.ValueOf(v).Elem().SetZero()
	require.NoError(t, json.Unmarshal(res.body, v), "body: %s", res.body)
}
