package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

// TestInsertLogsIsolatesBadRecords stores 3,000 records, three of which no
// database should keep (a NUL, invalid UTF-8, a 100,000-byte workload id),
// given straight to the store, past any parser: the other 2,997 are stored
// and the three come back by index with their field.
func TestInsertLogsIsolatesBadRecords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			t.Parallel()
			s := storetest.Open(t, d)
			recs := make([]flywheel.LogRecord, 3000)
			for i := range recs {
				recs[i] = logRecord(i, "iso")
			}
			recs[10].Request = json.RawMessage(`{"messages":[{"content":"a\u0000b","role":"user"}],"model":"m"}`)
			recs[1500].Response = json.RawMessage("{\"choices\":[{\"message\":{\"content\":\"\xff\xfe\"}}]}")
			recs[2999].WorkloadID = strings.Repeat("w", 100_000)

			ins, dup, err := s.InsertLogs(ctx, recs)
			var recErrs *flywheel.RecordErrors
			require.True(t, errors.As(err, &recErrs), "%v", err)
			require.Equal(t, 2997, ins)
			require.Equal(t, 0, dup)
			require.Len(t, recErrs.Items, 3)
			require.Equal(t, flywheel.RecordError{Index: 10, Field: "request.messages[0].content", Reason: recErrs.Items[0].Reason}, recErrs.Items[0])
			require.Contains(t, recErrs.Items[0].Reason, "NUL")
			require.Equal(t, 1500, recErrs.Items[1].Index)
			require.Equal(t, "response.choices[0].message.content", recErrs.Items[1].Field)
			require.Contains(t, recErrs.Items[1].Reason, "UTF-8")
			require.Equal(t, 2999, recErrs.Items[2].Index)
			require.Equal(t, "workload_id", recErrs.Items[2].Field)

			n, err := s.CountLogs(ctx, "", "")
			require.NoError(t, err)
			require.Equal(t, 2997, n)

			// Again: the good ones are duplicates, the bad ones refused again.
			ins, dup, err = s.InsertLogs(ctx, recs)
			require.True(t, errors.As(err, &recErrs))
			require.Equal(t, 0, ins)
			require.Equal(t, 2997, dup)
			require.Len(t, recErrs.Items, 3)
		})
	}
}

// TestInsertLogsTransientErrorIsNotARecordError checks that a database
// that is down is reported as unavailable (retry later), never as records
// that cannot be stored.
func TestInsertLogsTransientErrorIsNotARecordError(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			t.Parallel()
			s := storetest.Open(t, d)
			require.NoError(t, s.Close())
			_, _, err := s.InsertLogs(context.Background(), []flywheel.LogRecord{logRecord(1, "down")})
			var recErrs *flywheel.RecordErrors
			require.False(t, errors.As(err, &recErrs))
			require.Equal(t, flywheel.EUNAVAILABLE, flywheel.ErrorCode(err))
		})
	}
	_ = store.SQLite
}
