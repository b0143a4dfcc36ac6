package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/ingest"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

// TestLogsCommands loads records with a card and an e-mail address (cards
// redacted by default, e-mail not), redacts the stored ones again with
// e-mail on, deletes one client's older records, and reads the audit log.
func TestLogsCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var b strings.Builder
	for i := range 10 {
		client := []string{"c", "d"}[i%2]
		fmt.Fprintf(&b, `{"workload_id":"w","client_id":"%s","timestamp":%d,"request":{"messages":[{"role":"user","content":"order %d: card 5555 5555 5555 4444, mail u%d@example.com"}]},"response":{"choices":[{"message":{"role":"assistant","content":"ok"}}]}}`+"\n",
			client, 1746000000+i*86400, i, i)
	}
	file := filepath.Join(dir, "logs.jsonl")
	require.NoError(t, os.WriteFile(file, []byte(b.String()), 0o600))
	withEmail := filepath.Join(dir, "email.yaml")
	require.NoError(t, os.WriteFile(withEmail, []byte("logs:\n  redaction:\n    detectors: [secrets, cards, email]\n"), 0o600))

	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			t.Parallel()
			url := storetest.URL(t, d)
			data := t.TempDir()
			out := run(t, "load", "--file", file, "--db", url, "--data-dir", data, "--json")
			var sum ingest.Summary
			require.NoError(t, json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &sum), out)
			require.Equal(t, 10, sum.Loaded)
			require.Equal(t, map[string]int{"cards": 10}, map[string]int(sum.Redacted))

			out = run(t, "logs", "redact", "--config", withEmail, "--db", url, "--data-dir", data)
			require.Contains(t, out, "Read 10 records: 10 redacted, 0 deleted")
			require.Contains(t, out, "Redacted email 10")

			out = run(t, "logs", "delete", "--workload-id", "w", "--client-id", "d", "--before", "2025-05-04T08:00:00Z", "--db", url, "--data-dir", data)
			require.Contains(t, out, "Deleted 2 records of workload w, client d, logged before 2025-05-04T08:00:00Z")

			ctx := context.Background()
			s, err := store.Open(ctx, url, store.Options{})
			require.NoError(t, err)
			defer s.Close()
			recs, err := s.NewestRecords(ctx, "w", "c", 0)
			require.NoError(t, err)
			require.Len(t, recs, 5)
			for _, r := range recs {
				require.Contains(t, string(r.Request), ": card <CARD_1>, mail <EMAIL_1>")
			}
			n, err := s.CountLogs(ctx, "w", "d")
			require.NoError(t, err)
			require.Equal(t, 3, n)
			entries, err := s.ListAudit(ctx, flywheel.AuditQuery{})
			require.NoError(t, err)
			var got []string
			for _, e := range entries {
				require.Equal(t, flywheel.ActorCLI, e.Actor)
				got = append(got, e.Action+" "+e.Target)
			}
			require.Equal(t, []string{"logs.deleted w/d", "logs.redacted *", "logs.ingested flywheel load"}, got)
		})
	}
}
