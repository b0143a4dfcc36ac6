package store_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/dataset"
	"github.com/flywheel-go/flywheel/internal/demo"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

// BenchmarkCreateDatasets1M stores 1,000,000 tool-calling records of one
// workload and reports the wall time and peak heap of building a run's
// datasets from them with limit 10,000 (the builder reads the newest
// 2×limit through the store's index). Filling the database is not timed.
//
//	go test ./internal/store -run '^$' -bench CreateDatasets1M -benchtime 1x -timeout 60m
func BenchmarkCreateDatasets1M(b *testing.B) {
	const total, limit = 1_000_000, 10_000
	for _, d := range storetest.Dialects() {
		b.Run(string(d), func(b *testing.B) {
			ctx := context.Background()
			s := storetest.Open(b, d)
			end := time.Now()
			const chunk = 10_000
			for start := 0; start < total; start += chunk {
				recs, err := demo.Records(chunk, uint64(start), "wl-1m", "c", end.Add(-time.Duration(total-start)*time.Minute))
				require.NoError(b, err)
				for i := range recs {
					// Make every user message distinct so that deduplication
					// (by user messages) keeps every record.
					recs[i].Request = bytes.Replace(recs[i].Request, []byte(`","role":"user"`),
						[]byte(fmt.Sprintf(` (request %d)","role":"user"`, start+i)), 1)
				}
				_, _, err = s.InsertLogs(ctx, recs)
				require.NoError(b, err)
			}
			n, err := s.CountLogs(ctx, "wl-1m", "c")
			require.NoError(b, err)
			require.Equal(b, total, n)
			builder := &dataset.Builder{Source: s}
			lim := limit
			var wall time.Duration
			var peak uint64
			for b.Loop() {
				runtime.GC()
				var base runtime.MemStats
				runtime.ReadMemStats(&base)
				var max atomic.Uint64
				stop := make(chan struct{})
				done := make(chan struct{})
				go func() {
					defer close(done)
					var ms runtime.MemStats
					for {
						runtime.ReadMemStats(&ms)
						if ms.HeapAlloc > max.Load() {
							max.Store(ms.HeapAlloc)
						}
						select {
						case <-stop:
							return
						case <-time.After(20 * time.Millisecond):
						}
					}
				}()
				t0 := time.Now()
				res, err := builder.Build(ctx, flywheel.BuildRequest{RunID: "r", WorkloadID: "wl-1m", ClientID: "c", Dir: b.TempDir(),
					Split: flywheel.DataSplitConfig{EvalSize: 100, ValRatio: 0.1, MinTotalRecords: 50, Limit: &lim, ParseFunctionArguments: true},
					ICL:   flywheel.ICLConfig{MaxContextLength: 8192, ReservedTokens: 2048, MaxExamples: 3, MinExamples: 1, ExampleSelection: flywheel.SelectionUniform}})
				wall = time.Since(t0)
				close(stop)
				<-done
				require.NoError(b, err)
				require.Equal(b, limit, res.NumRecords)
				peak = max.Load()
			}
			b.ReportMetric(wall.Seconds(), "build_s")
			b.ReportMetric(float64(peak)/(1<<20), "peak_heap_MiB")
		})
	}
}
