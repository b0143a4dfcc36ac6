package dataset

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// genSource behaves like the store holding n records of one workload and
// client: NewestRecords returns the newest limit of them, newest first. The
// records are generated on demand (tool-calling records shaped like BFCL's,
// 200 tools, unique queries) so the benchmark measures Build, not the
// fixture.
type genSource struct{ n int }

func (g genSource) NewestRecords(_ context.Context, _, _ string, limit int) ([]flywheel.LogRecord, error) {
	if limit <= 0 || limit > g.n {
		limit = g.n
	}
	out := make([]flywheel.LogRecord, limit)
	for k := range out {
		i := g.n - 1 - k
		tool := fmt.Sprintf("tool_%d", i%200)
		out[k] = toolRec(i, fmt.Sprintf("Please run %s for customer %d with the usual options and report back", tool, i), tool,
			fmt.Sprintf(`{"customer": %d, "verbose": true}`, i), 4)
	}
	return out, nil
}

// BenchmarkBuild builds datasets from 1,000,000 stored records with limit
// 10,000 (the store hands over the newest 20,000) and reports the peak heap.
func BenchmarkBuild(b *testing.B) {
	for _, sel := range []string{flywheel.SelectionUniform, flywheel.SelectionSemantic} {
		b.Run(sel, func(b *testing.B) {
			builder := &Builder{Source: genSource{n: 1_000_000}}
			split := flywheel.DataSplitConfig{EvalSize: 100, ValRatio: 0.1, MinTotalRecords: 50, RandomSeed: ptr(int64(1)), Limit: ptr(10_000), ParseFunctionArguments: true}
			icl := flywheel.ICLConfig{MaxContextLength: 32768, ReservedTokens: 4096, MaxExamples: 3, MinExamples: 1, ExampleSelection: sel}
			var peak uint64
			for b.Loop() {
				runtime.GC()
				var base runtime.MemStats
				runtime.ReadMemStats(&base)
				stop := make(chan struct{})
				var wg sync.WaitGroup
				var top uint64
				wg.Go(func() {
					t := time.NewTicker(5 * time.Millisecond)
					defer t.Stop()
					var m runtime.MemStats
					for {
						select {
						case <-stop:
							return
						case <-t.C:
							runtime.ReadMemStats(&m)
							if m.HeapAlloc > top {
								top = m.HeapAlloc
							}
						}
					}
				})
				res, err := builder.Build(context.Background(), flywheel.BuildRequest{WorkloadID: "w", ClientID: "c", Split: split, ICL: icl, Dir: b.TempDir(), Timestamp: 1})
				close(stop)
				wg.Wait()
				require.NoError(b, err)
				require.Equal(b, 10_000, res.Stats.Selected)
				peak = max(peak, top-min(top, base.HeapAlloc))
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		})
	}
}
