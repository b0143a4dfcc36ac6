package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// TestInsertLogBatchFallsBackOnDataErrors gives Postgres, past the
// storability rules, records it refuses (SQLSTATE 22021 for NUL and
// invalid UTF-8, 54000 for an index row too big): the batch is split until
// they are alone, every other record is stored, inside a transaction (under
// savepoints) and outside one.
func TestInsertLogBatchFallsBackOnDataErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, inTx := range []bool{true, false} {
		t.Run(fmt.Sprintf("InTx=%v", inTx), func(t *testing.T) {
			t.Parallel()
			s := openPostgres(t)
			recs := make([]flywheel.LogRecord, 1000)
			batch := make([]int, len(recs))
			for i := range recs {
				recs[i] = flywheel.LogRecord{WorkloadID: "w", ClientID: "c", Timestamp: time.Unix(int64(i), 0).UTC(),
					Request:  json.RawMessage(fmt.Sprintf(`{"q":%d}`, i)),
					Response: json.RawMessage(`{"a":1}`)}
				batch[i] = i
			}
			recs[3].WorkloadID = "nul\x00"
			recs[537].Request = json.RawMessage("{\"q\":\"\xff\"}")
			recs[998].ClientID = incompressible(100_000) // too big for the index
			var (
				rejected flywheel.RecordErrors
				n        int
				err      error
			)
			if inTx {
				err = s.InTx(ctx, func(q *Queries) error {
					n, err = q.insertLogBatch(ctx, recs, batch, &rejected)
					return err
				})
			} else {
				n, err = s.Queries.insertLogBatch(ctx, recs, batch, &rejected)
			}
			require.NoError(t, err)
			require.Equal(t, 997, n)
			require.Len(t, rejected.Items, 3)
			var idx []int
			for _, it := range rejected.Items {
				idx = append(idx, it.Index)
				require.Contains(t, it.Reason, "the database refused it")
			}
			require.ElementsMatch(t, []int{3, 537, 998}, idx)
			require.Contains(t, rejected.Items[0].Reason, "SQLSTATE 22021")
			count, err := s.CountLogs(ctx, "", "")
			require.NoError(t, err)
			require.Equal(t, 997, count)
		})
	}
}

// openPostgres returns a migrated store on a new database of the test
// server (storetest cannot be used here: it imports this package).
func openPostgres(t *testing.T) *Store {
	t.Helper()
	ctx := context.Background()
	admin := os.Getenv("FLYWHEEL_TEST_POSTGRES")
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	db, err := sql.Open("pgx", admin)
	require.NoError(t, err)
	defer db.Close()
	name := "flywheel_test_" + NewID(time.Now())
	_, err = db.ExecContext(ctx, "CREATE DATABASE "+name)
	require.NoError(t, err, "create a test database (is PostgreSQL running? set FLYWHEEL_TEST_POSTGRES)")
	t.Cleanup(func() {
		db, err := sql.Open("pgx", admin)
		if err != nil {
			return
		}
		defer db.Close()
		_, _ = db.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, err := url.Parse(admin)
	require.NoError(t, err)
	u.Path = "/" + name
	s, err := Open(ctx, u.String(), Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	_, err = s.Migrate(ctx)
	require.NoError(t, err)
	return s
}

// incompressible returns n random letters (a long id that compression
// cannot shrink under Postgres's index row limit).
func incompressible(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + rand.IntN(26))
	}
	return string(b)
}
