package store_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/ingest"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
	"github.com/flywheel-go/flywheel/internal/testcorpus"
)

// bfclLines returns n JSONL lines in the blueprint's log format made from the
// generated tool-calling corpus, each distinct (the workload id varies per
// copy).
func bfclLines(tb testing.TB, n int) []byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(testcorpus.BFCLDir(tb), "*.jsonl"))
	require.NoError(tb, err)
	var base [][]byte
	for _, f := range files {
		if strings.HasSuffix(f, ".answers.jsonl") {
			continue
		}
		data, err := os.ReadFile(f)
		require.NoError(tb, err)
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			base = append(base, append([]byte(nil), sc.Bytes()...))
		}
	}
	require.NotEmpty(tb, base, "no records in the generated corpus")
	var out bytes.Buffer
	for i := range n {
		var rec map[string]json.RawMessage
		require.NoError(tb, json.Unmarshal(base[i%len(base)], &rec))
		rec["workload_id"] = json.RawMessage(fmt.Sprintf("%q", fmt.Sprintf("bench-%d", i/len(base))))
		line, err := json.Marshal(rec)
		require.NoError(tb, err)
		out.Write(line)
		out.WriteByte('\n')
	}
	return out.Bytes()
}

// BenchmarkLoad reports `flywheel load`'s rate (parse, validate, hash,
// dedup-insert in batches) on BFCL-like records, and the raw bulk-insert rate
// of the same rows into a bare table of the same database (multi-row INSERT
// in one transaction, no parsing, no hashing, no conflict check), and their
// ratio.
func BenchmarkLoad(b *testing.B) {
	const n = 20000
	lines := bfclLines(b, n)
	for _, d := range storetest.Dialects() {
		b.Run(string(d), func(b *testing.B) {
			ctx := context.Background()
			var loadRate, rawRate float64
			for b.Loop() {
				s := storetest.Open(b, d)
				start := time.Now()
				sum, err := ingest.Load(ctx, bytes.NewReader(lines), ingest.Options{ClientID: "c"}, s, nil)
				require.NoError(b, err)
				require.Equal(b, n, sum.Loaded)
				loadRate = float64(n) / time.Since(start).Seconds()

				var recs []flywheel.LogRecord
				r := ingest.NewReader(bytes.NewReader(lines), ingest.Options{ClientID: "c"})
				for {
					res, err := r.Next()
					if err != nil {
						break
					}
					recs = append(recs, res.Record)
				}
				require.Len(b, recs, n)
				rawRate = rawInsertRate(b, s, recs)
			}
			b.ReportMetric(loadRate, "load_records/s")
			b.ReportMetric(rawRate, "raw_insert_records/s")
			b.ReportMetric(loadRate/rawRate, "ratio")
		})
	}
}

func rawInsertRate(b *testing.B, s *store.Store, recs []flywheel.LogRecord) float64 {
	b.Helper()
	ctx := context.Background()
	db := s.DB()
	_, err := db.ExecContext(ctx, `CREATE TABLE raw_logs (workload_id TEXT, client_id TEXT, ts TEXT, request TEXT, response TEXT, hash TEXT)`)
	require.NoError(b, err)
	ph := func(i int) string {
		if s.Dialect() == store.Postgres {
			return fmt.Sprintf("$%d", i)
		}
		return "?"
	}
	const batch = 500
	start := time.Now()
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(b, err)
	for i := 0; i < len(recs); i += batch {
		end := min(i+batch, len(recs))
		var sb strings.Builder
		var args []any
		for j, r := range recs[i:end] {
			if j > 0 {
				sb.WriteString(", ")
			}
			k := j * 6
			fmt.Fprintf(&sb, "(%s, %s, %s, %s, %s, %s)", ph(k+1), ph(k+2), ph(k+3), ph(k+4), ph(k+5), ph(k+6))
			args = append(args, r.WorkloadID, r.ClientID, r.Timestamp.Format(time.RFC3339Nano), string(r.Request), string(r.Response), "x")
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO raw_logs VALUES `+sb.String(), args...)
		require.NoError(b, err)
	}
	require.NoError(b, tx.Commit())
	return float64(len(recs)) / time.Since(start).Seconds()
}
