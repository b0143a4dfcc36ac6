package e2e_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

// BenchmarkRun measures the wall time of one whole two-candidate run on
// BFCL traffic against the NeMo fake on its fast setting, from POST
// /api/jobs until the run and its cleanup are done; it also reports the
// requests the run sent to the fake. The fake's own timers (deployments
// ready after 30 ms, epochs of 20 ms, ...) are part of it: the figure is
// the flywheel's overhead plus those.
func BenchmarkRun(b *testing.B) {
	for _, d := range storetest.Dialects() {
		b.Run(storetest.Name(d), func(b *testing.B) {
			h := setup(b, d, setupOpts{})
			const workload = "bfcl-simple"
			h.load(b, "simple.jsonl", workload)
			before := h.fake.Counts()
			runs := 0
			for b.Loop() {
				id := h.create(b, workload)
				job := h.wait(b, id, time.Minute)
				require.Equal(b, string(flywheel.RunCompleted), job.Status, describe(job))
				runs++
			}
			after := h.fake.Counts()
			var requests int
			for k, n := range after.Requests {
				requests += n - before.Requests[k]
			}
			b.ReportMetric(float64(requests)/float64(runs), "fake-requests/run")
		})
	}
}
