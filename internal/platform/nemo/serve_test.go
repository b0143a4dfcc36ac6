package nemo_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/platform/nemo/nemotest"
)

// A promoted customized candidate is served by a NIM of its own base
// model, deployed under the promotion's key; the endpoint names the
// customized model, and undeploying the returned id stops that NIM.
func TestServeCandidateCustomized(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	fake := nemotest.New(nemotest.Options{Models: []string{judgeModel}})
	defer fake.Close()
	p := newPlatform(t, fake, nil)
	ds := buildDatasets(t, "flywheel-serve")
	var err error
	ds.train, err = p.PublishDataset(ctx, "", ds.train)
	require.NoError(t, err)
	job, err := p.StartCustomization(ctx, customizationRequest("run/cust", ds.train))
	require.NoError(t, err)
	job = waitCustomization(ctx, t, p, job.ID)
	require.Equal(t, flywheel.JobCompleted, job.Status, job.Message)

	req := flywheel.DeployRequest{Key: "promotion/p1", RunID: "run", NIMID: "nim", Model: candidate(), Adapter: &job}
	var dep flywheel.Deployment
	require.Eventually(t, func() bool {
		dep, err = p.ServeCandidate(ctx, req)
		require.NoError(t, err)
		return dep.Status == flywheel.DeploymentReady
	}, 20*time.Second, 10*time.Millisecond)
	require.Equal(t, job.OutputModel, dep.Endpoint.Model)
	require.Equal(t, fake.NIMURL, dep.Endpoint.BaseURL)
	require.False(t, fake.Live().Empty())

	again, err := p.ServeCandidate(ctx, req)
	require.NoError(t, err)
	require.Equal(t, dep.ID, again.ID, "the same key finds the same deployment")
	require.Equal(t, 1, fake.Counts().Created[nemotest.KindDeployment])

	require.NoError(t, p.Undeploy(ctx, dep.ID))
	require.Eventually(t, func() bool { return fake.Live().Empty() }, 5*time.Second, 10*time.Millisecond, "left running: %+v", fake.Live())
}
