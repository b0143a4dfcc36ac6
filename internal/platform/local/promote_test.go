package local

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/promote"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

// promoteJobs is a completed run whose candidate's evaluations succeeded
// and whose customization is the job of custID.
type promoteJobs struct{ custID string }

func (j promoteJobs) GetJob(context.Context, string) (*flywheel.JobDetail, error) {
	done := time.Now()
	run := &flywheel.Run{ID: "run-1", WorkloadID: "w", ClientID: "c", Status: flywheel.RunCompleted}
	run.Spec.Candidates = []flywheel.NIMConfig{{ModelName: "local/tiny-xs"}}
	return &flywheel.JobDetail{Run: run, NIMs: []flywheel.NIMDetail{{
		NIMRun:         flywheel.NIMRun{ID: "n1", RunID: "run-1", ModelName: "local/tiny-xs"},
		Evaluations:    []flywheel.Evaluation{{EvalType: flywheel.EvalCustomized, FinishedAt: &done, Scores: map[string]float64{"f": 1}}},
		Customizations: []flywheel.Customization{{JobID: j.custID}},
	}}}, nil
}

// A promoted customized candidate is served by a llama-server of the
// customization's model file; when the process ends (the platform stops
// the servers it started) and starts again, the promotion is served again
// on a new port; a rollback stops it.
func TestPromotionServedAndResumed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	j, err := b.platform.StartCustomization(ctx, flywheel.CustomizationRequest{
		Key: "run-1/n1/customization", Model: flywheel.NIMConfig{ModelName: "local/tiny-xs"},
		Training:     flywheel.TrainingConfig{FinetuningType: "all_weights", Epochs: 1, BatchSize: 4},
		TrainDataset: writeTrainDir(t, filepath.Join(b.dir, "ds"), toyWorkload(8, 1)),
	})
	require.NoError(t, err)
	done := b.waitJob(t, j.ID, flywheel.JobCompleted)
	out, err := b.platform.jobOutput(done)
	require.NoError(t, err)

	s := storetest.Open(t, store.SQLite)
	newService := func(p *Platform) *promote.Service {
		svc := promote.New(promote.Options{Store: s, Jobs: promoteJobs{j.ID}, Platform: p, PollInterval: 20 * time.Millisecond})
		t.Cleanup(svc.Close)
		return svc
	}
	served := func(id, not string) *flywheel.PromotionRoute {
		var r *flywheel.PromotionRoute
		require.Eventually(t, func() bool {
			r, err = s.GetPromotion(ctx, id)
			require.NoError(t, err)
			return r.Endpoint != "" && r.Endpoint != not
		}, 10*time.Second, 20*time.Millisecond)
		return r
	}

	p, err := newService(b.platform).Promote(ctx, flywheel.PromoteRequest{JobID: "run-1", Candidate: "local/tiny-xs",
		Variant: flywheel.VariantCustomized, Mode: flywheel.ModeFull})
	require.NoError(t, err)
	first := served(p.ID, "")
	dep, err := b.platform.Deployment(ctx, first.DeploymentID)
	require.NoError(t, err)
	require.Equal(t, flywheel.DeploymentReady, dep.Status)
	st := deployData(t, dep)
	require.Equal(t, out.Path, st.ModelPath, "the customization's model file is served")
	require.Equal(t, first.Endpoint, st.BaseURL)

	// The process ends: its servers stop. The next one serves the
	// promotion again.
	require.NoError(t, b.platform.Close())
	require.False(t, st.alive())
	fresh, err := New(b.opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = fresh.Close() })
	svc := newService(fresh)
	require.NoError(t, svc.Start(ctx))
	second := served(p.ID, first.Endpoint)
	dep, err = fresh.Deployment(ctx, second.DeploymentID)
	require.NoError(t, err)
	require.Equal(t, flywheel.DeploymentReady, dep.Status)
	st = deployData(t, dep)
	require.True(t, st.alive())

	_, err = svc.Rollback(ctx, p.ID, "test", nil)
	require.NoError(t, err)
	require.False(t, st.alive(), "a rollback stops the server")
}
