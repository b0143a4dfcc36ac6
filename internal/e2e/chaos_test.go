package e2e_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/config"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/platform/nemo/nemotest"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

// TestChaos runs ten runs at once against a fake that fails 20% of all
// requests with a 5xx, loses 5% of POST answers after acting on them, and
// delays some requests: every run completes, and nothing is created twice.
func TestChaos(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			t.Parallel()
			testChaos(t, d)
		})
	}
}

func testChaos(t *testing.T, d store.Dialect) {
	const runs = 10
	b := setup(t, d, setupOpts{
		fake: nemotest.Options{ErrorRate: 0.2, LostResponseRate: 0.05, SpikeRate: 0.05, Spike: 150 * time.Millisecond, Seed: 7},
		config: func(c *config.Config) {
			c.Engine.MaxConcurrentRuns = runs
		},
	})
	files := []string{"simple.jsonl", "multiple.jsonl", "parallel.jsonl", "parallel_multiple.jsonl"}
	ids := make([]string, runs)
	for i := range runs {
		// One workload per run: runs of one workload started in the same
		// second would share their datasets' names.
		workload := fmt.Sprintf("chaos-%d", i)
		b.load(t, files[i%len(files)], workload)
		ids[i] = b.create(t, workload)
	}
	for _, id := range ids {
		job := b.wait(t, id, 60*time.Second)
		require.Equal(t, string(flywheel.RunCompleted), job.Status, describe(job))
		require.Len(t, job.NIMs, 2)
		for _, n := range job.NIMs {
			require.Equal(t, string(flywheel.NIMCompleted), n.Status, "%s %s: %v", id, n.ModelName, n.Error)
			require.Len(t, n.Evaluations, 3, "%s %s", id, n.ModelName)
			require.Len(t, n.Customizations, 1, "%s %s", id, n.ModelName)
			require.NotNil(t, n.Customizations[0].CustomizedModel)
		}
		require.NotNil(t, job.Recommendation)
	}
	counts := b.fake.Counts()
	t.Logf("injected failures: %d, lost responses: %d", counts.Injected, counts.Lost)
	require.Positive(t, counts.Injected)
	require.Positive(t, counts.Lost)
	require.Zero(t, counts.TotalDuplicates(), "%+v", counts.Duplicates)
	require.Equal(t, 2*runs, counts.Created[nemotest.KindDeployment])
	require.Equal(t, 2*runs, counts.Created[nemotest.KindCustomization])
	require.Equal(t, 3*runs, counts.Created[nemotest.KindRepo])
	require.Equal(t, 3*runs, counts.Created[nemotest.KindDataset])
	require.True(t, b.fake.Live().Empty(), "%+v", b.fake.Live())
}
