package e2e_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/config"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/platform/nemo/nemotest"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

// TestRestartResumes stops the flywheel process while a customization job
// runs and starts a new one on the same database: the new process, whose
// NeMo clients remember nothing, finds the deployment and the job by what
// the ledger holds, and the run completes without creating anything twice.
func TestRestartResumes(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := setup(t, d, setupOpts{
				// Two epochs of 400 ms: the job is still running when the
				// first process stops.
				fake:   nemotest.Options{EpochDuration: 400 * time.Millisecond},
				config: func(c *config.Config) { c.Engine.RescueAfter = 2 * time.Second },
			})
			const workload = "bfcl-simple"
			b.load(t, "simple.jsonl", workload)
			id := b.create(t, workload)
			inside := waitFor(20*time.Second, 20*time.Millisecond, func() bool {
				return b.live(t, id, flywheel.ResourceCustomization) == 1 && len(b.fake.Live().Customizations) == 1
			})
			require.True(t, inside, "the first candidate's customization never started")

			b.stop() // a graceful stop hands the run back; it never cancels it
			require.Len(t, b.fake.Live().Customizations, 1, "the remote job runs on")

			b.start(t)
			first, err := b.api.GetJob(ctx, id)
			require.NoError(t, err)
			require.Equal(t, string(flywheel.RunRunning), first.Status, "the run survived the stop")
			job := b.wait(t, id, 30*time.Second)
			require.Equal(t, string(flywheel.RunCompleted), job.Status, describe(job))
			for k, s := range stages(job) {
				require.Equal(t, string(flywheel.StageSucceeded), s.Status, "stage %s: %v", k, s.Error)
			}
			for _, n := range job.NIMs {
				require.Equal(t, string(flywheel.NIMCompleted), n.Status, n.ModelName)
				require.Len(t, n.Evaluations, 3)
				require.NotNil(t, n.Customizations[0].CustomizedModel)
				require.Contains(t, *n.Customizations[0].CustomizedModel, "@cust-")
			}
			counts := b.fake.Counts()
			require.Equal(t, 2, counts.Created[nemotest.KindDeployment])
			require.Equal(t, 2, counts.Created[nemotest.KindCustomization])
			require.Equal(t, 3, counts.Created[nemotest.KindRepo])
			require.Zero(t, counts.TotalDuplicates(), "%+v", counts.Duplicates)
			require.True(t, b.fake.Live().Empty(), "%+v", b.fake.Live())
		})
	}
}
