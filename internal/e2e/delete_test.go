package e2e_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/client"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/platform/nemo/nemotest"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

// endpointRepoDelete is the Data Store's repo deletion (the HF Hub API).
const endpointRepoDelete = "DELETE /v1/hf/api/repos/delete"

// TestDeleteJob deletes finished runs through DELETE /api/jobs/{id}: their
// datasets (repos and registrations) and customized models go from the
// fake. When the fake refuses to delete the repos, the run's rows still go
// but the ledger keeps the repos as release_failed, and a later reaper pass
// releases them once the fake works again.
func TestDeleteJob(t *testing.T) {
	t.Parallel()
	for _, refuse := range []bool{false, true} {
		for _, d := range storetest.Dialects() {
			name := "Deletes"
			if refuse {
				name = "RefusedThenReaped"
			}
			t.Run(name+"/"+storetest.Name(d), func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				b := setup(t, d, setupOpts{})
				const workload = "bfcl-parallel"
				b.load(t, "parallel.jsonl", workload)
				id := b.create(t, workload)
				job := b.wait(t, id, 60*time.Second)
				require.Equal(t, "completed", job.Status, describe(job))

				// What the run left on the platform: its three datasets
				// and two customized models.
				ns := b.cfg.NMP.Namespace
				var datasets, models []string
				for _, ds := range job.Datasets {
					datasets = append(datasets, ds.Name)
					require.NotNil(t, b.fake.Repo(ns, ds.Name))
				}
				for _, n := range job.NIMs {
					models = append(models, *n.Customizations[0].CustomizedModel)
				}
				require.Len(t, datasets, 3)
				require.Len(t, models, 2)
				onFake := b.models(t)
				for _, m := range models {
					require.Contains(t, onFake, m)
				}

				if refuse {
					b.fake.Update(func(o *nemotest.Options) { o.ErrorRates = map[string]float64{endpointRepoDelete: 1} })
				}
				res, err := b.api.DeleteJob(ctx, id)
				require.NoError(t, err)
				require.Equal(t, id, res.ID)
				require.Contains(t, res.Message, "Job deletion started")
				require.Eventually(t, func() bool {
					_, err := b.api.GetJob(ctx, id)
					if err != nil {
						require.True(t, client.IsNotFound(err), "%v", err)
						return true
					}
					return false
				}, 30*time.Second, 50*time.Millisecond, "the run's rows are deleted")

				// Models are deleted either way; they are no longer served.
				onFake = b.models(t)
				for _, m := range models {
					require.NotContains(t, onFake, m)
				}
				for _, ds := range datasets {
					require.False(t, b.datasetRegistered(t, ns, ds), "dataset %s unregistered", ds)
				}
				ledger, err := b.app.Store.ListResources(ctx, id)
				require.NoError(t, err)
				if !refuse {
					for _, ds := range datasets {
						require.Nil(t, b.fake.Repo(ns, ds), "repo %s deleted", ds)
					}
					require.Empty(t, ledger, "released entries go with the run")
					return
				}

				// The refused repos stay, and so do their ledger entries.
				require.Len(t, ledger, 3, "%+v", ledger)
				for _, r := range ledger {
					require.Equal(t, flywheel.ResourceDataset, r.Kind)
					require.Equal(t, flywheel.ResourceReleaseFailed, r.State)
					require.Contains(t, r.Error, "503")
					_, name, _ := strings.Cut(r.RemoteID, "/")
					require.Contains(t, datasets, name)
					require.NotNil(t, b.fake.Repo(ns, name), "repo %s still there", name)
				}
				orphans, err := b.app.Store.OrphanedResources(ctx)
				require.NoError(t, err)
				require.Len(t, orphans, 3, "the reaper will retry them")

				// The platform works again; the reaper's next pass releases them.
				b.fake.Update(func(o *nemotest.Options) { o.ErrorRates = nil })
				n, err := b.app.Engine.Reap(ctx)
				require.NoError(t, err)
				require.Equal(t, 3, n)
				for _, ds := range datasets {
					require.Nil(t, b.fake.Repo(ns, ds), "repo %s deleted by the reaper", ds)
				}
				ledger, err = b.app.Store.ListResources(ctx, id)
				require.NoError(t, err)
				require.Len(t, ledger, 3)
				for _, r := range ledger {
					require.Equal(t, flywheel.ResourceReleased, r.State, "%+v", r)
				}
				orphans, err = b.app.Store.OrphanedResources(ctx)
				require.NoError(t, err)
				require.Empty(t, orphans)
			})
		}
	}
}
