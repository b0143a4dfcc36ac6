package promote_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/flywheeltest"
	"github.com/flywheel-go/flywheel/internal/promote"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

// jobs is a fake of promote.Jobs: one completed run with one candidate
// whose three evaluations succeeded.
type jobs struct{ detail *flywheel.JobDetail }

func (j jobs) GetJob(_ context.Context, id string) (*flywheel.JobDetail, error) {
	if id != j.detail.Run.ID {
		return nil, flywheel.Errorf(flywheel.ENOTFOUND, "Job not found")
	}
	return j.detail, nil
}

func completedRun(t *testing.T, custJobID string) *flywheel.JobDetail {
	t.Helper()
	dir := t.TempDir()
	write := func(name, line string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(p, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(p, "eval_data.jsonl"), []byte(line+"\n"), 0o644))
		return p
	}
	base := write("eval", `{"request":{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hi"}]},"response":{}}`)
	icl := write("icl", `{"request":{"messages":[{"role":"system","content":"EXAMPLES\n\nBe brief."},{"role":"user","content":"hi"}]},"response":{}}`)
	done := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	evals := []flywheel.Evaluation{}
	for _, et := range []flywheel.EvalType{flywheel.EvalBase, flywheel.EvalICL, flywheel.EvalCustomized} {
		evals = append(evals, flywheel.Evaluation{EvalType: et, FinishedAt: &done, Scores: map[string]float64{"function_name": 0.9}})
	}
	run := &flywheel.Run{ID: "run-1", WorkloadID: "w", ClientID: "c", Status: flywheel.RunCompleted,
		Datasets: []flywheel.Dataset{{Type: flywheel.DatasetBase, Path: base}, {Type: flywheel.DatasetICL, Path: icl}}}
	run.Spec.Candidates = []flywheel.NIMConfig{{ModelName: "small"}}
	return &flywheel.JobDetail{Run: run, NIMs: []flywheel.NIMDetail{{
		NIMRun: flywheel.NIMRun{ID: "n1", RunID: "run-1", ModelName: "small"}, Evaluations: evals,
		Customizations: []flywheel.Customization{{JobID: custJobID}},
	}}}
}

type bundle struct {
	store    *store.Store
	platform *flywheeltest.Platform
	svc      *promote.Service
	changes  *atomic.Int64
	detail   *flywheel.JobDetail
}

func setup(t *testing.T, platform *flywheeltest.Platform, s *store.Store, detail *flywheel.JobDetail) *bundle {
	t.Helper()
	if s == nil {
		s = storetest.Open(t, store.SQLite)
	}
	if detail == nil {
		job, err := platform.StartCustomization(context.Background(), flywheel.CustomizationRequest{Key: "run-1/n1/customization",
			Model: flywheel.NIMConfig{ModelName: "small"}})
		require.NoError(t, err)
		detail = completedRun(t, job.ID)
	}
	b := &bundle{store: s, platform: platform, changes: &atomic.Int64{}, detail: detail}
	b.svc = promote.New(promote.Options{Store: s, Jobs: jobs{detail}, Platform: platform, Audit: s,
		PollInterval: 5 * time.Millisecond, OnChange: func() { b.changes.Add(1) }})
	t.Cleanup(b.svc.Close)
	return b
}

func (b *bundle) route(t *testing.T, id string) *flywheel.PromotionRoute {
	t.Helper()
	p, err := b.store.GetPromotion(context.Background(), id)
	require.NoError(t, err)
	return p
}

func TestPromoteWaitsForTheDeployment(t *testing.T) {
	t.Parallel()
	b := setup(t, &flywheeltest.Platform{DeployPolls: 3}, nil, nil)
	p, err := b.svc.Promote(context.Background(), flywheel.PromoteRequest{JobID: "run-1", Candidate: "small",
		Variant: flywheel.VariantBase, Mode: flywheel.ModeShadow})
	require.NoError(t, err)
	require.Equal(t, flywheel.PromotionActive, p.Status)
	require.Empty(t, p.Endpoint, "not ready yet: production answers")
	require.Eventually(t, func() bool { return b.route(t, p.ID).Endpoint != "" }, 5*time.Second, 5*time.Millisecond)
	r := b.route(t, p.ID)
	require.Equal(t, "small", r.ServedModel)
	require.NotEmpty(t, r.DeploymentID)
	require.GreaterOrEqual(t, b.changes.Load(), int64(2), "routes reloaded when it started and when it became ready")
}

func TestPromoteAgainReplacesAndStopsTheOldDeployment(t *testing.T) {
	t.Parallel()
	b := setup(t, &flywheeltest.Platform{}, nil, nil)
	ctx := context.Background()
	first, err := b.svc.Promote(ctx, flywheel.PromoteRequest{JobID: "run-1", Candidate: "small", Variant: flywheel.VariantICL,
		Mode: flywheel.ModeCanary, CanaryPercent: 20})
	require.NoError(t, err)
	require.NotEmpty(t, first.Endpoint)
	r := b.route(t, first.ID)
	require.Equal(t, "EXAMPLES", r.ICLPrompt, "the few-shot block of the ICL dataset, less the app's system message")

	second, err := b.svc.Promote(ctx, flywheel.PromoteRequest{JobID: "run-1", Candidate: "small", Variant: flywheel.VariantCustomized,
		Mode: flywheel.ModeFull})
	require.NoError(t, err)
	require.Equal(t, "customized-small@cust-1", second.ServedModel, "the customization's output is served")
	old := b.route(t, first.ID)
	require.Equal(t, flywheel.PromotionReplaced, old.Status)
	_, err = b.platform.Deployment(ctx, old.DeploymentID)
	require.True(t, errors.Is(err, flywheel.ErrNotFound), "the replaced promotion's deployment is stopped")

	rolled, err := b.svc.Rollback(ctx, second.ID, "", []byte(`{"n":40}`))
	require.NoError(t, err)
	require.Equal(t, flywheel.PromotionRolledBack, rolled.Status)
	require.Equal(t, flywheel.RollbackReasonManual, rolled.Reason)
	require.JSONEq(t, `{"n":40}`, string(rolled.Evidence))
	_, err = b.platform.Deployment(ctx, b.route(t, second.ID).DeploymentID)
	require.True(t, errors.Is(err, flywheel.ErrNotFound))
	_, err = b.svc.Rollback(ctx, second.ID, "again", nil)
	require.Equal(t, flywheel.ECONFLICT, flywheel.ErrorCode(err))

	entries, err := b.store.ListAudit(ctx, flywheel.AuditQuery{})
	require.NoError(t, err)
	require.Len(t, entries, 3)
	require.Equal(t, map[string]any{"n": 40.0}, entries[0].Detail["evidence"])
	require.Equal(t, first.ID, entries[1].Detail["replaced"])
}

func TestPromoteRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t, &flywheeltest.Platform{}, nil, nil)
	ctx := context.Background()
	_, err := b.svc.Promote(ctx, flywheel.PromoteRequest{JobID: "nope", Candidate: "small", Variant: flywheel.VariantBase, Mode: flywheel.ModeFull})
	require.Equal(t, flywheel.ENOTFOUND, flywheel.ErrorCode(err))

	b.detail.NIMs[0].Evaluations[1].Error = "timed out"
	_, err = b.svc.Promote(ctx, flywheel.PromoteRequest{JobID: "run-1", Candidate: "small", Variant: flywheel.VariantICL, Mode: flywheel.ModeFull})
	require.Equal(t, flywheel.ECONFLICT, flywheel.ErrorCode(err))
	require.Contains(t, err.Error(), "no successful icl-eval")

	b.detail.Run.Status = flywheel.RunFailed
	_, err = b.svc.Promote(ctx, flywheel.PromoteRequest{JobID: "run-1", Candidate: "small", Variant: flywheel.VariantBase, Mode: flywheel.ModeFull})
	require.Equal(t, flywheel.ECONFLICT, flywheel.ErrorCode(err))
}

// A process that starts again serves its active promotions again: the
// platform's deployment of the last process is gone (a local model server
// stops with its process), a new one is started and its endpoint recorded.
func TestStartResumesActivePromotions(t *testing.T) {
	t.Parallel()
	first := setup(t, &flywheeltest.Platform{}, nil, nil)
	ctx := context.Background()
	p, err := first.svc.Promote(ctx, flywheel.PromoteRequest{JobID: "run-1", Candidate: "small", Variant: flywheel.VariantBase,
		Mode: flywheel.ModeFull})
	require.NoError(t, err)
	before := first.route(t, p.ID)
	first.svc.Close()

	second := setup(t, &flywheeltest.Platform{}, first.store, first.detail)
	require.NoError(t, second.svc.Start(ctx))
	require.Eventually(t, func() bool { return second.changes.Load() > 0 }, 5*time.Second, 5*time.Millisecond)
	after := second.route(t, p.ID)
	require.Equal(t, flywheel.PromotionActive, after.Status)
	require.NotEmpty(t, after.Endpoint)
	dep, err := second.platform.Deployment(ctx, after.DeploymentID)
	require.NoError(t, err, "served by the new process's platform (was %s)", before.DeploymentID)
	require.Equal(t, flywheel.DeploymentReady, dep.Status)
}
