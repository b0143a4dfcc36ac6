package nemo_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/platform/nemo"
	"github.com/flywheel-go/flywheel/internal/platform/nemo/nemotest"
)

const judgeModel = "meta/llama-3.3-70b-instruct"

// lifecycle drives one candidate through the whole flow and returns the
// base and customized scores.
func lifecycle(ctx context.Context, t testing.TB, fake *nemotest.Server, p *nemo.Platform, key string) (base, custom flywheel.EvalResult) {
	t.Helper()
	ds := buildDatasets(t, "flywheel-"+key)
	var err error
	for _, d := range []*flywheel.Dataset{&ds.eval, &ds.icl, &ds.train} {
		*d, err = p.PublishDataset(ctx, "", *d)
		require.NoError(t, err)
		require.Equal(t, "hf://datasets/dfwbp/"+d.Name, *d.NMPURI)
	}
	files := fake.Repo("dfwbp", ds.train.Name)
	require.Contains(t, files, "training/train_data.jsonl")
	require.Contains(t, files, "validation/val_data.jsonl")

	dep, err := p.Deploy(ctx, flywheel.DeployRequest{Key: key + "/nim", RunID: key, NIMID: "nim", Model: candidate()})
	require.NoError(t, err)
	dep = waitDeployment(ctx, t, p, dep.ID)
	require.Equal(t, flywheel.DeploymentReady, dep.Status, dep.Message)
	require.Equal(t, "meta/llama-3.2-1b-instruct", dep.Endpoint.Model)
	require.Equal(t, fake.NIMURL, dep.Endpoint.BaseURL)

	judge := &flywheel.Endpoint{BaseURL: fake.NIMURL, Model: judgeModel}
	evalReq := func(id string, target flywheel.Endpoint, d flywheel.Dataset) flywheel.EvalRequest {
		return flywheel.EvalRequest{EvaluationID: id, RunID: key, EvalType: flywheel.EvalBase,
			WorkloadType: flywheel.WorkloadToolCalling, Target: target, Dataset: d, Judge: judge}
	}
	var progress []float64
	base, err = p.Evaluate(ctx, evalReq(key+"-base", dep.Endpoint, ds.eval), func(pct float64) { progress = append(progress, pct) })
	require.NoError(t, err)
	require.NotEmpty(t, progress)
	require.InDelta(t, 100, progress[len(progress)-1], 0.001)
	require.Equal(t, 20, base.Details[flywheel.ScoreFunctionName].N)

	job, err := p.StartCustomization(ctx, customizationRequest(key+"/cust", ds.train))
	require.NoError(t, err)
	job = waitCustomization(ctx, t, p, job.ID)
	require.Equal(t, flywheel.JobCompleted, job.Status, job.Message)
	require.Equal(t, 2, job.EpochsCompleted)
	require.Equal(t, 100.0, job.Progress)
	require.Regexp(t, `^dfwbp/customized-meta-llama-3\.2-1b-instruct@cust-`, job.OutputModel)
	require.NotEmpty(t, job.Losses)
	require.Less(t, job.Losses[len(job.Losses)-1], job.Losses[0])

	cdep, err := p.Deploy(ctx, flywheel.DeployRequest{Key: key + "/nim/customized", Model: candidate(), Adapter: &job})
	require.NoError(t, err)
	cdep = waitDeployment(ctx, t, p, cdep.ID)
	require.Equal(t, flywheel.DeploymentReady, cdep.Status)
	require.Equal(t, job.OutputModel, cdep.Endpoint.Model)
	custom, err = p.Evaluate(ctx, evalReq(key+"-customized", cdep.Endpoint, ds.eval), nil)
	require.NoError(t, err)

	require.NoError(t, p.Undeploy(ctx, cdep.ID))
	require.NoError(t, p.Undeploy(ctx, dep.ID))
	require.NoError(t, p.Undeploy(ctx, dep.ID), "undeploying twice is not an error")
	return base, custom
}

func TestPlatformLifecycle(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	fake := nemotest.New(nemotest.Options{Models: []string{judgeModel}})
	defer fake.Close()
	p := newPlatform(t, fake, nil)

	base, custom := lifecycle(ctx, t, fake, p, "run1")
	for _, k := range []string{flywheel.ScoreFunctionName, flywheel.ScoreFunctionNameAndArgs, flywheel.ScoreToolCallingCorrectness} {
		require.Contains(t, base.Scores, k)
	}
	require.Greater(t, custom.Scores[flywheel.ScoreFunctionName], base.Scores[flywheel.ScoreFunctionName],
		"the customized model must beat the base model on the fake")
	require.LessOrEqual(t, base.Scores[flywheel.ScoreFunctionNameAndArgs], base.Scores[flywheel.ScoreFunctionName])

	require.True(t, fake.Live().Empty(), "left running: %+v", fake.Live())
	c := fake.Counts()
	require.Equal(t, 1, c.Created[nemotest.KindDeployment])
	require.Equal(t, 1, c.Created[nemotest.KindCustomization])
	require.Equal(t, 2, c.Created[nemotest.KindEvaluation])
	require.Equal(t, 3, c.Created[nemotest.KindRepo])
	require.Equal(t, 0, c.TotalDuplicates())
}

func TestPlatformIdempotency(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	fake := nemotest.New(nemotest.Options{EpochDuration: time.Hour})
	defer fake.Close()
	p := newPlatform(t, fake, nil)
	ds := buildDatasets(t, "idem")
	train, err := p.PublishDataset(ctx, "", ds.train)
	require.NoError(t, err)
	_, err = p.PublishDataset(ctx, "", ds.train)
	require.NoError(t, err, "publishing again updates the registration")

	req := flywheel.DeployRequest{Key: "run/nim", Model: candidate()}
	d1, err := p.Deploy(ctx, req)
	require.NoError(t, err)
	d2, err := p.Deploy(ctx, req)
	require.NoError(t, err)
	// A platform that restarted knows nothing in memory.
	restarted := newPlatform(t, fake, nil)
	d3, err := restarted.Deploy(ctx, req)
	require.NoError(t, err)
	require.Equal(t, d1.ID, d2.ID)
	require.Equal(t, d1.ID, d3.ID)
	other, err := p.Deploy(ctx, flywheel.DeployRequest{Key: "run2/nim", Model: candidate()})
	require.NoError(t, err)
	require.NotEqual(t, d1.ID, other.ID, "another key deploys separately")

	var wg sync.WaitGroup
	ids := make([]string, 4)
	for i := range ids {
		wg.Go(func() {
			j, err := p.StartCustomization(ctx, customizationRequest("run/cust", train))
			require.NoError(t, err)
			ids[i] = j.ID
		})
	}
	wg.Wait()
	j, err := restarted.StartCustomization(ctx, customizationRequest("run/cust", train))
	require.NoError(t, err)
	for _, id := range ids {
		require.Equal(t, j.ID, id)
	}
	require.Equal(t, flywheel.JobRunning, waitStatus(ctx, t, restarted, j.ID, flywheel.JobRunning).Status)

	c := fake.Counts()
	require.Equal(t, 2, c.Created[nemotest.KindDeployment])
	require.Equal(t, 1, c.Created[nemotest.KindCustomization])
	require.Equal(t, 1, c.Created[nemotest.KindConfig])
	require.Equal(t, 0, c.TotalDuplicates())
}

func waitStatus(ctx context.Context, t *testing.T, p *nemo.Platform, id, status string) flywheel.CustomizationJob {
	t.Helper()
	for {
		j, err := p.Customization(ctx, id)
		require.NoError(t, err)
		if j.Status == status {
			return j
		}
		select {
		case <-ctx.Done():
			t.Fatalf("customization %s never %s: last %s", id, status, j.Status)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func TestPlatformCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	fake := nemotest.New(nemotest.Options{EpochDuration: time.Hour, EvalDuration: time.Hour, Models: []string{judgeModel}})
	defer fake.Close()
	p := newPlatform(t, fake, nil)
	ds := buildDatasets(t, "cancel")
	train, err := p.PublishDataset(ctx, "", ds.train)
	require.NoError(t, err)
	eval, err := p.PublishDataset(ctx, "", ds.eval)
	require.NoError(t, err)

	t.Run("CustomizationMidway", func(t *testing.T) {
		job, err := p.StartCustomization(ctx, customizationRequest("cancel/cust", train))
		require.NoError(t, err)
		waitStatus(ctx, t, p, job.ID, flywheel.JobRunning)
		require.NoError(t, p.CancelCustomization(ctx, job.ID))
		require.Equal(t, "cancelled", fake.CustomizationStatus(job.ID))
		got, err := p.Customization(ctx, job.ID)
		require.NoError(t, err)
		require.Equal(t, flywheel.JobCancelled, got.Status)
		require.NoError(t, p.CancelCustomization(ctx, job.ID), "cancelling twice is not an error")
		require.NoError(t, p.CancelCustomization(ctx, "cust-missing"), "cancelling a missing job is not an error")
	})

	t.Run("EvaluationOnContextCancel", func(t *testing.T) {
		dep, err := p.Deploy(ctx, flywheel.DeployRequest{Key: "cancel/nim", Model: candidate()})
		require.NoError(t, err)
		dep = waitDeployment(ctx, t, p, dep.ID)
		ectx, ecancel := context.WithCancel(ctx)
		started := make(chan struct{}, 1)
		var res error
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, res = p.Evaluate(ectx, flywheel.EvalRequest{EvaluationID: "cancel-eval", WorkloadType: flywheel.WorkloadToolCalling,
				Target: dep.Endpoint, Dataset: eval, Judge: &flywheel.Endpoint{Model: judgeModel}},
				func(float64) {
					select {
					case started <- struct{}{}:
					default:
					}
				})
		}()
		<-started
		t0 := time.Now()
		ecancel()
		<-done
		require.ErrorIs(t, res, context.Canceled)
		require.Less(t, time.Since(t0), time.Second)
		require.Empty(t, fake.Live().Evaluations, "the remote evaluation is cancelled")
		require.NoError(t, p.Release(ctx, flywheel.Resource{Kind: flywheel.ResourceEvaluation, Key: "cancel-eval"}))
		require.NoError(t, p.Release(ctx, flywheel.Resource{Kind: flywheel.ResourceDeployment, RemoteID: dep.ID}))
	})
	require.True(t, fake.Live().Empty(), "left running: %+v", fake.Live())
}

func TestPlatformFailures(t *testing.T) {
	t.Parallel()

	t.Run("DeploymentFailedIsReportedAtOnce", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		fake := nemotest.New(nemotest.Options{FailDeployments: true})
		defer fake.Close()
		p := newPlatform(t, fake, nil)
		dep, err := p.Deploy(ctx, flywheel.DeployRequest{Key: "k", Model: candidate()})
		require.NoError(t, err)
		dep = waitDeployment(ctx, t, p, dep.ID)
		require.Equal(t, flywheel.DeploymentFailed, dep.Status)
		require.Contains(t, dep.Message, "CUDA out of memory")
	})

	t.Run("NotEnoughResources", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		fake := nemotest.New(nemotest.Options{NotEnoughResources: true})
		defer fake.Close()
		p := newPlatform(t, fake, nil)
		train, err := p.PublishDataset(ctx, "", buildDatasets(t, "ner").train)
		require.NoError(t, err)
		job, err := p.StartCustomization(ctx, customizationRequest("k", train))
		require.NoError(t, err)
		job = waitStatus(ctx, t, p, job.ID, flywheel.JobPending)
		for job.Message == "" {
			job, err = p.Customization(ctx, job.ID)
			require.NoError(t, err)
		}
		require.Regexp(t, `^NotEnoughResources: `, job.Message)
	})

	t.Run("CustomizationFailedCarriesDetail", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		fake := nemotest.New(nemotest.Options{FailCustomizations: true})
		defer fake.Close()
		p := newPlatform(t, fake, nil)
		train, err := p.PublishDataset(ctx, "", buildDatasets(t, "fail").train)
		require.NoError(t, err)
		job, err := p.StartCustomization(ctx, customizationRequest("k", train))
		require.NoError(t, err)
		job = waitCustomization(ctx, t, p, job.ID)
		require.Equal(t, flywheel.JobFailed, job.Status)
		require.Contains(t, job.Message, "loss became NaN")
	})

	t.Run("BadInputIsPermanent", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		fake := nemotest.New(nemotest.Options{})
		defer fake.Close()
		p := newPlatform(t, fake, nil)
		m := candidate()
		m.Tag = ""
		_, err := p.Deploy(ctx, flywheel.DeployRequest{Key: "k", Model: m})
		require.ErrorIs(t, err, flywheel.ErrPermanent)
		require.Equal(t, flywheel.EINVALID, flywheel.ErrorCode(err))

		// The dataset is not registered: the Customizer answers 404.
		_, err = p.StartCustomization(ctx, customizationRequest("k", flywheel.Dataset{Name: "missing"}))
		require.ErrorIs(t, err, flywheel.ErrPermanent)
		var he *nemo.HTTPError
		require.ErrorAs(t, err, &he)
		require.Equal(t, 404, he.StatusCode)
		require.Contains(t, he.URL, "/v1/customization/jobs")

		_, err = p.Deployment(ctx, "dfwbp/never-created")
		require.ErrorIs(t, err, flywheel.ErrNotFound)
	})

	t.Run("EvaluationStalls", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		fake := nemotest.New(nemotest.Options{StuckEvaluations: true, Models: []string{judgeModel, "m"}})
		defer fake.Close()
		p := newPlatform(t, fake, func(c *nemo.Config) { c.EvalStallTimeout = 100 * time.Millisecond })
		eval, err := p.PublishDataset(ctx, "", buildDatasets(t, "stall").eval)
		require.NoError(t, err)
		_, err = p.Evaluate(ctx, flywheel.EvalRequest{EvaluationID: "e", WorkloadType: flywheel.WorkloadToolCalling,
			Target: flywheel.Endpoint{Model: "m"}, Dataset: eval, Judge: &flywheel.Endpoint{Model: judgeModel}}, nil)
		require.ErrorContains(t, err, "without progress")
		require.Empty(t, fake.Live().Evaluations, "a stalled evaluation is cancelled remotely")
	})

	t.Run("CancelDuringCreateCancelsTheJob", func(t *testing.T) {
		t.Parallel()
		fake := nemotest.New(nemotest.Options{StuckEvaluations: true, Models: []string{judgeModel, "m"}})
		defer fake.Close()
		// The create call reaches the Evaluator, which makes the job, but
		// its answer does not come back before the caller is cancelled.
		target, err := url.Parse(fake.URL)
		require.NoError(t, err)
		rp := httputil.NewSingleHostReverseProxy(target)
		proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method+" "+r.URL.Path == nemotest.EndpointEvaluationCreate {
				rp.ServeHTTP(httptest.NewRecorder(), r.WithContext(context.WithoutCancel(r.Context())))
				<-r.Context().Done()
				return
			}
			rp.ServeHTTP(w, r)
		}))
		defer proxy.Close()
		p := newPlatform(t, fake, func(c *nemo.Config) { c.NeMo.BaseURL = proxy.URL })
		eval, err := p.PublishDataset(t.Context(), "", buildDatasets(t, "cancel-create").eval)
		require.NoError(t, err)

		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			_, err := p.Evaluate(ctx, flywheel.EvalRequest{EvaluationID: "e", WorkloadType: flywheel.WorkloadToolCalling,
				Target: flywheel.Endpoint{Model: "m"}, Dataset: eval, Judge: &flywheel.Endpoint{Model: judgeModel}}, nil)
			done <- err
		}()
		require.Eventually(t, func() bool { return len(fake.Live().Evaluations) == 1 }, 10*time.Second, time.Millisecond)
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
		require.Empty(t, fake.Live().Evaluations, "the job the cancelled create made is cancelled")
	})
}

// TestPlatformChaos runs ten whole lifecycles at once while the fake fails 20% of
// requests, loses 10% of POST answers after acting on them, and adds
// latency spikes: every run completes and nothing is created twice.
func TestPlatformChaos(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	fake := nemotest.New(nemotest.Options{
		Models: []string{judgeModel}, ErrorRate: 0.2, LostResponseRate: 0.1,
		Latency: time.Millisecond, SpikeRate: 0.05, Spike: 50 * time.Millisecond, Seed: 7,
	})
	defer fake.Close()
	p := newPlatform(t, fake, func(c *nemo.Config) { c.Retry.MaxAttempts = 12 })

	const runs = 10
	var wg sync.WaitGroup
	for i := range runs {
		wg.Go(func() {
			base, custom := lifecycle(ctx, t, fake, p, fmt.Sprintf("chaos%d", i))
			require.NotEmpty(t, base.Scores)
			require.NotEmpty(t, custom.Scores)
		})
	}
	wg.Wait()
	c := fake.Counts()
	require.Positive(t, c.Injected)
	require.Positive(t, c.Lost)
	require.Equal(t, 0, c.TotalDuplicates(), "duplicates: %v", c.Duplicates)
	require.Equal(t, runs, c.Created[nemotest.KindDeployment])
	require.Equal(t, runs, c.Created[nemotest.KindCustomization])
	require.Equal(t, 2*runs, c.Created[nemotest.KindEvaluation])
	require.True(t, fake.Live().Empty(), "left running: %+v", fake.Live())
}

func TestRelease(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	fake := nemotest.New(nemotest.Options{Models: []string{judgeModel}})
	defer fake.Close()
	p := newPlatform(t, fake, nil)
	ds := buildDatasets(t, "rel")
	train, err := p.PublishDataset(ctx, "", ds.train)
	require.NoError(t, err)
	job, err := p.StartCustomization(ctx, customizationRequest("rel/cust", train))
	require.NoError(t, err)
	job = waitCustomization(ctx, t, p, job.ID)
	_, err = p.Entities.Model(ctx, job.OutputModel)
	require.NoError(t, err, "the customized model is in the entity store")

	for _, r := range []flywheel.Resource{
		{Kind: flywheel.ResourceModel, RemoteID: job.OutputModel},
		{Kind: flywheel.ResourceDataset, RemoteID: "dfwbp/" + train.Name},
		{Kind: flywheel.ResourceCustomization, RemoteID: job.ID},
	} {
		require.NoError(t, p.Release(ctx, r), "release %s", r.Kind)
		require.NoError(t, p.Release(ctx, r), "release %s twice", r.Kind)
	}
	_, err = p.Entities.Model(ctx, job.OutputModel)
	require.ErrorIs(t, err, flywheel.ErrNotFound)
	require.Nil(t, fake.Repo("dfwbp", train.Name))
	_, err = p.Entities.Dataset(ctx, "dfwbp", train.Name)
	require.ErrorIs(t, err, flywheel.ErrNotFound)

	err = p.Release(ctx, flywheel.Resource{Kind: "bogus", RemoteID: "x"})
	require.ErrorIs(t, err, flywheel.ErrPermanent)
	require.False(t, errors.Is(err, flywheel.ErrNotFound))
}

// BenchmarkLifecycle measures one whole candidate lifecycle (publish three
// datasets, deploy, evaluate, customize, serve the customized model,
// evaluate it, undeploy) through the real clients against the fake with its
// fast timings.
func BenchmarkLifecycle(b *testing.B) {
	fake := nemotest.New(nemotest.Options{Models: []string{judgeModel}})
	defer fake.Close()
	p := newPlatform(b, fake, nil)
	for i := 0; b.Loop(); i++ {
		lifecycle(b.Context(), b, fake, p, fmt.Sprintf("bench%d", i))
	}
}
