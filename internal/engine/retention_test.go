package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/engine"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

// seedAges stores, for each workload, one record per age in days.
func seedAges(t *testing.T, url string, now time.Time, workloads []string, ages []int) {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, url, store.Options{})
	require.NoError(t, err)
	defer s.Close()
	_, err = engine.Migrate(ctx, s)
	require.NoError(t, err)
	var recs []flywheel.LogRecord
	for _, w := range workloads {
		for _, age := range ages {
			recs = append(recs, flywheel.LogRecord{WorkloadID: w, ClientID: "c", Timestamp: now.AddDate(0, 0, -age),
				Request:  json.RawMessage(fmt.Sprintf(`{"messages":[{"role":"user","content":"%s %d"}]}`, w, age)),
				Response: json.RawMessage(`{"choices":[]}`)})
		}
	}
	n, _, err := s.InsertLogs(ctx, recs)
	require.NoError(t, err)
	require.Equal(t, len(recs), n)
}

// TestRetentionJob: the periodic retention job runs when the workers start
// and deletes what the policy no longer keeps (30 days by default, 2 days
// for "short", forever for "keep"), with one audit entry per workload.
func TestRetentionJob(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			t.Parallel()
			now := time.Now().UTC()
			url := storetest.URL(t, d)
			seedAges(t, url, now, []string{"default", "short", "keep"}, []int{1, 5, 45, 400})
			b := setup(t, d, setupOpts{dbURL: url, mutate: func(b *testBundle) {
				b.opts.Retention = store.Retention{Days: 30, Workloads: map[string]int{"short": 2, "keep": 0}}
			}})
			ctx := context.Background()
			count := func(w string) int {
				n, err := b.store.CountLogs(ctx, w, "c")
				require.NoError(t, err)
				return n
			}
			require.Eventually(t, func() bool { return count("default") == 2 && count("short") == 1 },
				20*time.Second, 50*time.Millisecond, "default %d, short %d", count("default"), count("short"))
			require.Equal(t, 4, count("keep"))

			entries, err := b.store.ListAudit(ctx, flywheel.AuditQuery{Action: flywheel.AuditLogsExpired})
			require.NoError(t, err)
			got := map[string]any{}
			for _, e := range entries {
				require.Equal(t, flywheel.ActorRetention, e.Actor)
				got[e.Target] = e.Detail["deleted"]
			}
			require.Equal(t, map[string]any{"default": float64(2), "short": float64(3)}, got)

			// Nothing more to delete: another pass deletes nothing.
			deleted, err := b.engine.EnforceRetention(ctx)
			require.NoError(t, err)
			require.Empty(t, deleted)
		})
	}
}

// TestDeleteReportsWhatItRemoved deletes a finished run whose folder holds
// a dataset file: every row of the run and the folder are gone, its remote
// resources are released, and the audit log says what was removed.
func TestDeleteReportsWhatItRemoved(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := setup(t, d, setupOpts{})
			run := b.create(t)
			b.wait(t, run.ID)
			runDir := writeRunFiles(t, b.opts.Runner.Settings.DataDir, run.ID)
			before, err := b.store.RunFootprint(ctx, run.ID)
			require.NoError(t, err)
			require.Positive(t, before["eval_items"])
			require.Positive(t, before["stages"])
			require.Positive(t, before["remote_resources"])
			t.Logf("before: %v, files 1", before)

			_, err = b.engine.DeleteJob(ctx, run.ID)
			require.NoError(t, err)
			var purged []flywheel.AuditEntry
			require.Eventually(t, func() bool {
				purged, err = b.store.ListAudit(ctx, flywheel.AuditQuery{Action: flywheel.AuditJobPurged})
				require.NoError(t, err)
				return len(purged) == 1
			}, 10*time.Second, 10*time.Millisecond)
			after, err := b.store.RunFootprint(ctx, run.ID)
			require.NoError(t, err)
			t.Logf("after: %v; audit: %v", after, purged[0].Detail)
			for k, n := range after {
				require.Zero(t, n, "%s left", k)
			}
			require.NoDirExists(t, runDir)
			got := purged[0].Detail
			require.Equal(t, run.ID, purged[0].Target)
			require.Equal(t, flywheel.ActorCleanup, purged[0].Actor)
			require.Equal(t, float64(before["eval_items"]), got["eval_items"])
			require.Equal(t, float64(before["datasets"]), got["datasets"])
			require.Equal(t, float64(1), got["files"])
			require.Equal(t, float64(1), got["runs"])
			require.Equal(t, float64(before["live_remote_resources"]), got["remote_resources_released"])
		})
	}
}
