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

func logRecord(i int, workload string) flywheel.LogRecord {
	return flywheel.LogRecord{
		WorkloadID: workload, ClientID: "c",
		Timestamp: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second),
		Request:   json.RawMessage(fmt.Sprintf(`{"messages":[{"content":"question %d","role":"user"}],"model":"m"}`, i)),
		Response:  json.RawMessage(`{"choices":[{"message":{"content":"answer","role":"assistant"}}]}`),
	}
}

// TestErrorClassification checks that a database that cannot serve a
// request (disk full, closed, unreachable) gives EUNAVAILABLE with a reason,
// so the API answers 503 and never 500.
func TestErrorClassification(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("SQLiteDiskFull", func(t *testing.T) {
		t.Parallel()
		s := storetest.Open(t, store.SQLite)
		var pages int
		require.NoError(t, s.DB().QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages))
		// max_page_count caps the file at its current size: the next write
		// that needs a page fails with SQLITE_FULL, as on a full disk.
		_, err := s.DB().ExecContext(ctx, fmt.Sprintf(`PRAGMA max_page_count = %d`, pages))
		require.NoError(t, err)
		recs := make([]flywheel.LogRecord, 200)
		for i := range recs {
			recs[i] = logRecord(i, "full-"+strings.Repeat("x", 200))
		}
		_, _, err = s.InsertLogs(ctx, recs)
		require.Error(t, err)
		require.Equal(t, flywheel.EUNAVAILABLE, flywheel.ErrorCode(err), "%v", err)
		require.Contains(t, flywheel.ErrorMessage(err), "disk full")
	})

	for _, d := range storetest.Dialects() {
		t.Run("Closed"+storetest.Name(d), func(t *testing.T) {
			t.Parallel()
			s := storetest.Open(t, d)
			require.NoError(t, s.Close())
			_, err := s.CountLogs(ctx, "", "")
			require.Error(t, err)
			require.Equal(t, flywheel.EUNAVAILABLE, flywheel.ErrorCode(err), "%v", err)
			_, err = s.GetRun(ctx, "0123456789abcdef01234567")
			require.Equal(t, flywheel.EUNAVAILABLE, flywheel.ErrorCode(err), "%v", err)
			err = s.InTx(ctx, func(*store.Queries) error { return nil })
			require.Equal(t, flywheel.EUNAVAILABLE, flywheel.ErrorCode(err), "%v", err)
			require.Equal(t, flywheel.EUNAVAILABLE, flywheel.ErrorCode(s.Ping(ctx)))
		})
	}

	t.Run("PostgresRefused", func(t *testing.T) {
		t.Parallel()
		// Port 1 on loopback: nothing listens, the connection is refused.
		_, err := store.Open(ctx, "postgres://flywheel@127.0.0.1:1/flywheel?sslmode=disable&connect_timeout=2", store.Options{})
		require.Error(t, err)
		require.Equal(t, flywheel.EUNAVAILABLE, flywheel.ErrorCode(err), "%v", err)
		require.Equal(t, "Database unavailable: cannot reach the database", flywheel.ErrorMessage(err))
	})

	t.Run("NotFoundStaysNotFound", func(t *testing.T) {
		t.Parallel()
		s := storetest.Open(t, store.SQLite)
		_, err := s.GetRun(ctx, "0123456789abcdef01234567")
		require.ErrorIs(t, err, flywheel.ErrNotFound)
		require.Equal(t, flywheel.EINTERNAL, flywheel.ErrorCode(err))
	})
}
