package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

func govRecord(workload, client string, ts time.Time, content string) flywheel.LogRecord {
	return flywheel.LogRecord{WorkloadID: workload, ClientID: client, Timestamp: ts,
		Request:  json.RawMessage(fmt.Sprintf(`{"messages":[{"role":"user","content":%q}]}`, content)),
		Response: json.RawMessage(`{"choices":[{"message":{"role":"assistant","content":"ok"}}]}`)}
}

func TestAuditLog(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			ctx := context.Background()
			s := storetest.Open(t, d)
			for i := range 5 {
				e := &flywheel.AuditEntry{Actor: "ops (tok1)", Action: flywheel.AuditJobCreated, Target: fmt.Sprintf("job-%d", i),
					Detail: map[string]any{"workload_id": "w"}}
				if i%2 == 1 {
					e.Action = flywheel.AuditLogsIngested
					e.Detail = map[string]any{"inserted": i}
				}
				require.NoError(t, s.AddAudit(ctx, e))
				require.Positive(t, e.ID)
				require.False(t, e.At.IsZero())
			}
			page, err := s.ListAudit(ctx, flywheel.AuditQuery{Limit: 2})
			require.NoError(t, err)
			require.Len(t, page, 2)
			require.Equal(t, "job-4", page[0].Target)
			require.Equal(t, "job-3", page[1].Target)
			require.Equal(t, float64(3), page[1].Detail["inserted"])

			next, err := s.ListAudit(ctx, flywheel.AuditQuery{Limit: 10, Before: page[1].ID})
			require.NoError(t, err)
			require.Len(t, next, 3)
			require.Equal(t, "job-0", next[2].Target)

			ingested, err := s.ListAudit(ctx, flywheel.AuditQuery{Action: flywheel.AuditLogsIngested})
			require.NoError(t, err)
			require.Len(t, ingested, 2)
		})
	}
}

func TestDeleteAndExpireLogs(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			ctx := context.Background()
			s := storetest.Open(t, d)
			var recs []flywheel.LogRecord
			// Per workload and client: records 1, 10, 40 and 100 days old.
			for _, w := range []string{"a", "b", "c"} {
				for _, c := range []string{"x", "y"} {
					for _, age := range []int{1, 10, 40, 100} {
						recs = append(recs, govRecord(w, c, now.AddDate(0, 0, -age), fmt.Sprintf("%s %s %d", w, c, age)))
					}
				}
			}
			ins, _, err := s.InsertLogs(ctx, recs)
			require.NoError(t, err)
			require.Equal(t, 24, ins)

			_, err = s.DeleteLogs(ctx, flywheel.LogFilter{})
			require.ErrorContains(t, err, "workload_id is required")

			n, err := s.DeleteLogs(ctx, flywheel.LogFilter{WorkloadID: "a", ClientID: "x", Before: now.AddDate(0, 0, -30)})
			require.NoError(t, err)
			require.Equal(t, int64(2), n, "a/x: the 40- and 100-day-old records")
			n, err = s.DeleteLogs(ctx, flywheel.LogFilter{WorkloadID: "a", ClientID: "y"})
			require.NoError(t, err)
			require.Equal(t, int64(4), n)
			left, err := s.CountLogs(ctx, "a", "x")
			require.NoError(t, err)
			require.Equal(t, 2, left)

			// Default 30 days; b keeps 5 days; c keeps everything.
			got, err := s.ExpireLogs(ctx, store.Retention{Days: 30, Workloads: map[string]int{"b": 5, "c": 0}}, now)
			require.NoError(t, err)
			require.Equal(t, map[string]int64{"b": 6}, got, "a has no record older than 30 days left; c is kept")
			for w, want := range map[string]int{"a": 2, "b": 2, "c": 8} {
				total := 0
				for _, c := range []string{"x", "y"} {
					n, err := s.CountLogs(ctx, w, c)
					require.NoError(t, err)
					total += n
				}
				require.Equal(t, want, total, "workload %s", w)
			}
			got, err = s.ExpireLogs(ctx, store.Retention{Days: 5}, now)
			require.NoError(t, err)
			require.Equal(t, map[string]int64{"a": 1, "c": 6}, got)
		})
	}
}

func TestRedactStored(t *testing.T) {
	ts := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			ctx := context.Background()
			s := storetest.Open(t, d)
			recs := []flywheel.LogRecord{
				govRecord("w", "c", ts, "my card SECRET-1"),
				govRecord("w", "c", ts, "my card SECRET-2"),
				govRecord("w", "c", ts, "my card <X>"), // what both become: they are then duplicates
				govRecord("w", "c", ts, "nothing here"),
				govRecord("other", "c", ts, "my card SECRET-3"),
			}
			_, _, err := s.InsertLogs(ctx, recs)
			require.NoError(t, err)
			fn := func(r *flywheel.LogRecord) bool {
				before := string(r.Request)
				for _, v := range []string{"SECRET-1", "SECRET-2", "SECRET-3"} {
					r.Request = json.RawMessage(strings.ReplaceAll(string(r.Request), v, "<X>"))
				}
				return string(r.Request) != before
			}
			scanned, changed, merged, err := s.RedactStored(ctx, "w", fn)
			require.NoError(t, err)
			require.Equal(t, [3]int{4, 0, 2}, [3]int{scanned, changed, merged})
			n, err := s.CountLogs(ctx, "w", "c")
			require.NoError(t, err)
			require.Equal(t, 2, n)

			scanned, changed, merged, err = s.RedactStored(ctx, "", fn)
			require.NoError(t, err)
			require.Equal(t, [3]int{3, 1, 0}, [3]int{scanned, changed, merged})
			other, err := s.NewestRecords(ctx, "other", "c", 0)
			require.NoError(t, err)
			require.Contains(t, string(other[0].Request), "my card <X>")
			// Loading the unredacted record's redacted form again is a duplicate.
			ins, dup, err := s.InsertLogs(ctx, []flywheel.LogRecord{govRecord("other", "c", ts, "my card <X>")})
			require.NoError(t, err)
			require.Equal(t, [2]int{0, 1}, [2]int{ins, dup})
		})
	}
}
