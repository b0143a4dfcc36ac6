package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/dataset"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/platform/nemo/nemotest"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

func lines(b []byte) int {
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			n++
		}
	}
	return n
}

// TestWholeDAG runs a two-candidate flywheel run on BFCL tool-calling
// traffic against the NeMo fake, through the REST API and the real NeMo
// clients, on SQLite and on Postgres.
func TestWholeDAG(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			t.Parallel()
			testWholeDAG(t, d)
		})
	}
}

func testWholeDAG(t *testing.T, d store.Dialect) {
	// Base models answer 30% of requests as production did, customized
	// ones all of them: fine-tuning must show.
	b := setup(t, d, setupOpts{fake: nemotest.Options{BaseAccuracy: 0.3, CustomizedAccuracy: 1}})
	const workload = "bfcl-simple"
	b.load(t, "simple.jsonl", workload)
	id := b.create(t, workload)
	job := b.wait(t, id, 60*time.Second)

	require.Equal(t, string(flywheel.RunCompleted), job.Status, describe(job))
	require.Nil(t, job.Error)
	require.Equal(t, string(flywheel.WorkloadToolCalling), job.WorkloadType)
	require.Equal(t, 200, job.NumRecords, "data_split_config.limit caps the records used")
	for k, s := range stages(job) {
		require.Equal(t, string(flywheel.StageSucceeded), s.Status, "stage %s: %v", k, s.Error)
	}

	// Datasets: uploaded to the fake's Data Store at the blueprint's
	// paths and registered in its Entity Store.
	ns := b.cfg.NMP.Namespace
	require.Len(t, job.Datasets, 3)
	var evalRecords int
	for _, ds := range job.Datasets {
		require.NotNil(t, ds.NMPURI, ds.Name)
		require.Equal(t, "hf://datasets/"+ns+"/"+ds.Name, *ds.NMPURI)
		require.True(t, b.datasetRegistered(t, ns, ds.Name), ds.Name)
		files := b.fake.Repo(ns, ds.Name)
		require.NotNil(t, files, "repo %s/%s uploaded", ns, ds.Name)
		switch flywheel.DatasetType(ds.Type) {
		case flywheel.DatasetBase, flywheel.DatasetICL:
			require.Equal(t, ds.NumRecords, lines(files[dataset.EvalFile]), ds.Name)
			evalRecords = ds.NumRecords
		case flywheel.DatasetTrain:
			require.Equal(t, ds.NumRecords, lines(files[dataset.TrainFile]), ds.Name)
			require.Positive(t, lines(files[dataset.ValFile]), ds.Name)
		default:
			t.Fatalf("unexpected dataset type %q", ds.Type)
		}
	}
	require.Equal(t, evalSize, evalRecords)

	// Candidates: deployed, evaluated three ways, customized, shut down.
	require.Len(t, job.NIMs, 2)
	for _, n := range job.NIMs {
		require.Equal(t, string(flywheel.NIMCompleted), n.Status, n.ModelName)
		require.Equal(t, string(flywheel.DeploymentCompleted), n.DeploymentStatus, n.ModelName)
		require.Nil(t, n.Error, n.ModelName)

		require.Len(t, n.Customizations, 1, n.ModelName)
		c := n.Customizations[0]
		require.NotNil(t, c.CustomizedModel, n.ModelName)
		require.Contains(t, *c.CustomizedModel, "@cust-")
		require.True(t, strings.HasPrefix(*c.CustomizedModel, ns+"/"), *c.CustomizedModel)
		require.Equal(t, 100.0, c.Progress)
		require.Equal(t, b.cfg.Training.Epochs, c.EpochsCompleted)
		require.NotNil(t, c.FinishedAt)
		require.Nil(t, c.Error)

		var types []string
		scores := map[string]float64{}
		for _, e := range n.Evaluations {
			types = append(types, e.EvalType)
			require.Nil(t, e.Error, "%s %s", n.ModelName, e.EvalType)
			require.NotNil(t, e.FinishedAt)
			require.Equal(t, 100.0, e.Progress)
			for _, k := range []string{flywheel.ScoreFunctionName, flywheel.ScoreFunctionNameAndArgs} {
				require.Contains(t, e.Scores, k, "%s %s", n.ModelName, e.EvalType)
				detail, ok := e.ScoreDetails[k]
				require.True(t, ok, "%s %s: details of %s", n.ModelName, e.EvalType, k)
				require.Equal(t, evalRecords, detail.N)
				require.InDelta(t, e.Scores[k], detail.Mean, 1e-9)
				require.LessOrEqual(t, detail.CILow, detail.Mean)
				require.GreaterOrEqual(t, detail.CIHigh, detail.Mean)
			}
			require.NotContains(t, e.Scores, flywheel.ScoreSimilarity, "no judge is configured")
			require.NotNil(t, e.Summary)
			require.Equal(t, evalRecords, e.Summary.Items)
			scores[e.EvalType] = e.Scores[flywheel.ScoreFunctionNameAndArgs]
		}
		slices.Sort(types)
		require.Equal(t, []string{string(flywheel.EvalBase), string(flywheel.EvalCustomized), string(flywheel.EvalICL)}, types, n.ModelName)
		// The customized evaluation asked the @cust- model, which the fake
		// makes answer every request as production did.
		require.Equal(t, 1.0, scores[string(flywheel.EvalCustomized)], n.ModelName)
		require.Less(t, scores[string(flywheel.EvalBase)], 1.0, n.ModelName)
	}

	// A recommendation: the customized candidates match production.
	require.NotNil(t, job.Recommendation)
	require.NotEmpty(t, job.Recommendation.Reason)
	require.Contains(t, []string{modelSmall, modelLarge}, job.Recommendation.Candidate, job.Recommendation.Reason)
	require.Equal(t, flywheel.EvalCustomized, job.Recommendation.EvalType)

	// The fake: both NIMs deployed once, both customized once, nothing
	// left running, no duplicate creation.
	counts := b.fake.Counts()
	require.Equal(t, 2, counts.Created[nemotest.KindDeployment])
	require.Equal(t, 2, counts.Created[nemotest.KindCustomization])
	require.Equal(t, 3, counts.Created[nemotest.KindRepo])
	require.Equal(t, 3, counts.Created[nemotest.KindDataset])
	require.Zero(t, counts.TotalDuplicates(), "%+v", counts.Duplicates)
	require.Positive(t, counts.Requests[nemotest.EndpointChatCompletions])
	require.Empty(t, b.fake.Live().Deployments)
	require.True(t, b.fake.Live().Empty(), "%+v", b.fake.Live())
	models := b.models(t)
	for _, n := range job.NIMs {
		require.Contains(t, models, *n.Customizations[0].CustomizedModel, "customized models stay until the job is deleted")
	}

	// The ledger agrees: only artifacts (datasets, customized models) stay live.
	live, err := b.app.Store.ListResources(context.Background(), id, flywheel.ResourceLive, flywheel.ResourceReleaseFailed)
	require.NoError(t, err)
	kinds := map[flywheel.ResourceKind]int{}
	for _, r := range live {
		kinds[r.Kind]++
	}
	require.Equal(t, map[flywheel.ResourceKind]int{flywheel.ResourceDataset: 3, flywheel.ResourceModel: 2}, kinds)
}
