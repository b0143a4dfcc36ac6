package ingest_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/ingest"
	"github.com/flywheel-go/flywheel/internal/testcorpus"
)

// hashingIngester stores nothing but computes the content hash of every
// record, as a store does.
type hashingIngester struct{ n int }

func (h *hashingIngester) InsertLogs(_ context.Context, recs []flywheel.LogRecord) (int, int, error) {
	for _, r := range recs {
		_ = ingest.Hash(r)
	}
	h.n += len(recs)
	return len(recs), 0, nil
}

// BenchmarkLoad measures parsing and hashing tool-calling records of the
// generated corpus's parallel_multiple file (no store).
func BenchmarkLoad(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(testcorpus.BFCLDir(b), "parallel_multiple.jsonl"))
	require.NoError(b, err)
	lines := bytes.Count(data, []byte("\n"))
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		ing := &hashingIngester{}
		_, err := ingest.Load(context.Background(), bytes.NewReader(data), opts(), ing, nil)
		require.NoError(b, err)
	}
	b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
