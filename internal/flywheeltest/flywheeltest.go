// Package flywheeltest provides scriptable in-process stand-ins for the
// flywheel's collaborators — a model platform, a dataset builder and an
// evaluator — so that the engine's whole DAG, its failure paths and its
// lifecycle rules can be exercised end to end in tests and benchmarks. They
// count every side effect (creations per key, releases, cancellations) so
// tests can prove that nothing happened twice and nothing was left behind.
package flywheeltest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// Platform is a scriptable flywheel.Platform.
type Platform struct {
	// DeployPolls is how many Deployment calls answer "pending" before "ready".
	DeployPolls int
	// CustomizationPolls is how many Customization calls pass before the job completes.
	CustomizationPolls int
	// FailDeploy makes the deployment of a model end "failed" with this message.
	FailDeploy map[string]string
	// FailCustomization makes the customization of a model end "failed".
	FailCustomization map[string]string
	// DeployErr, when set, is returned by Deploy (for retry tests).
	DeployErr func(model string, attempt int) error
	// Prepare, when set, is PrepareModel (flywheel.ModelPreparer).
	Prepare func(ctx context.Context, m flywheel.NIMConfig, progress func(float64)) error

	mu             sync.Mutex
	deployments    map[string]*deployment // by id
	byKey          map[string]string      // deploy key -> id
	jobs           map[string]*custJob
	jobByKey       map[string]string
	creates        map[string]int // key -> creations
	deployAttempts map[string]int
	undeploys      int
	cancels        int
	seq            int
}

type deployment struct {
	id, model string
	polls     int
	live      bool
	adapter   bool
}

type custJob struct {
	id, model string
	polls     int
	status    string
}

var (
	_ flywheel.Platform         = (*Platform)(nil)
	_ flywheel.ResourceReleaser = (*Platform)(nil)
	_ flywheel.ModelPreparer    = (*Platform)(nil)
)

func (p *Platform) init() {
	if p.deployments == nil {
		p.deployments = map[string]*deployment{}
		p.byKey = map[string]string{}
		p.jobs = map[string]*custJob{}
		p.jobByKey = map[string]string{}
		p.creates = map[string]int{}
		p.deployAttempts = map[string]int{}
	}
}

// Name implements flywheel.Platform.
func (p *Platform) Name() string { return "test" }

// Deploy implements flywheel.Platform; a known key returns the existing deployment.
func (p *Platform) Deploy(ctx context.Context, req flywheel.DeployRequest) (flywheel.Deployment, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.init()
	p.deployAttempts[req.Key]++
	if p.DeployErr != nil {
		if err := p.DeployErr(req.Model.ModelName, p.deployAttempts[req.Key]); err != nil {
			return flywheel.Deployment{}, err
		}
	}
	if id, ok := p.byKey[req.Key]; ok && p.deployments[id].live {
		return p.view(p.deployments[id]), nil
	}
	p.seq++
	d := &deployment{id: fmt.Sprintf("dep-%d", p.seq), model: req.Model.ModelName, live: true, adapter: req.Adapter != nil}
	if req.Adapter != nil {
		d.model = req.Adapter.OutputModel
	}
	p.deployments[d.id] = d
	p.byKey[req.Key] = d.id
	p.creates[req.Key]++
	return p.view(d), nil
}

func (p *Platform) view(d *deployment) flywheel.Deployment {
	out := flywheel.Deployment{ID: d.id, Status: flywheel.DeploymentPending,
		Endpoint: flywheel.Endpoint{BaseURL: "http://test.invalid/" + d.id, Model: d.model}}
	switch {
	case !d.live:
		out.Status = flywheel.DeploymentCancelled
	case p.FailDeploy[d.model] != "":
		out.Status, out.Message = flywheel.DeploymentFailed, p.FailDeploy[d.model]
	case d.polls >= p.DeployPolls:
		out.Status = flywheel.DeploymentReady
	}
	return out
}

// Deployment implements flywheel.Platform.
func (p *Platform) Deployment(ctx context.Context, id string) (flywheel.Deployment, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.init()
	d, ok := p.deployments[id]
	if !ok || !d.live {
		return flywheel.Deployment{}, fmt.Errorf("deployment %s: %w", id, flywheel.ErrNotFound)
	}
	d.polls++
	return p.view(d), nil
}

// Undeploy implements flywheel.Platform.
func (p *Platform) Undeploy(ctx context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.init()
	if d, ok := p.deployments[id]; ok && d.live {
		d.live = false
		p.undeploys++
	}
	return nil
}

// StartCustomization implements flywheel.Platform; a known key returns the existing job.
func (p *Platform) StartCustomization(ctx context.Context, req flywheel.CustomizationRequest) (flywheel.CustomizationJob, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.init()
	if id, ok := p.jobByKey[req.Key]; ok {
		return p.jobView(p.jobs[id]), nil
	}
	p.seq++
	j := &custJob{id: fmt.Sprintf("cust-%d", p.seq), model: req.Model.ModelName, status: flywheel.JobRunning}
	p.jobs[j.id] = j
	p.jobByKey[req.Key] = j.id
	p.creates[req.Key]++
	return p.jobView(j), nil
}

func (p *Platform) jobView(j *custJob) flywheel.CustomizationJob {
	out := flywheel.CustomizationJob{ID: j.id, Status: j.status,
		OutputModel: "customized-" + strings.ReplaceAll(j.model, "/", "-") + "@" + j.id}
	if j.status == flywheel.JobRunning {
		switch {
		case p.FailCustomization[j.model] != "":
			j.status = flywheel.JobFailed
			out.Status, out.Message = j.status, p.FailCustomization[j.model]
		case j.polls >= p.CustomizationPolls:
			j.status = flywheel.JobCompleted
			out.Status = j.status
		}
	}
	if p.CustomizationPolls > 0 {
		out.Progress = min(100, float64(j.polls)*100/float64(p.CustomizationPolls))
		out.StepsCompleted = j.polls
	}
	if out.Status == flywheel.JobCompleted {
		out.Progress = 100
		out.EpochsCompleted = 2
	}
	out.Losses = []float64{2.0, 1.0}
	return out
}

// Customization implements flywheel.Platform.
func (p *Platform) Customization(ctx context.Context, id string) (flywheel.CustomizationJob, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.init()
	j, ok := p.jobs[id]
	if !ok {
		return flywheel.CustomizationJob{}, fmt.Errorf("job %s: %w", id, flywheel.ErrNotFound)
	}
	j.polls++
	return p.jobView(j), nil
}

// CancelCustomization implements flywheel.Platform.
func (p *Platform) CancelCustomization(ctx context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.init()
	if j, ok := p.jobs[id]; ok && j.status == flywheel.JobRunning {
		j.status = flywheel.JobCancelled
		p.cancels++
	}
	return nil
}

// PrepareModel implements flywheel.ModelPreparer with Prepare (nothing to
// do when it is nil).
func (p *Platform) PrepareModel(ctx context.Context, m flywheel.NIMConfig, progress func(float64)) error {
	if p.Prepare == nil {
		return nil
	}
	return p.Prepare(ctx, m, progress)
}

// Release implements flywheel.ResourceReleaser.
func (p *Platform) Release(ctx context.Context, r flywheel.Resource) error { return nil }

// Creations returns how many times each key created a remote resource.
func (p *Platform) Creations() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for k, v := range p.creates {
		out[k] = v
	}
	return out
}

// Live returns the ids of deployments still running.
func (p *Platform) Live() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for id, d := range p.deployments {
		if d.live {
			out = append(out, id)
		}
	}
	return out
}

// RunningJobs returns the ids of customization jobs still running.
func (p *Platform) RunningJobs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for id, j := range p.jobs {
		if j.status == flywheel.JobRunning {
			out = append(out, id)
		}
	}
	return out
}

// Counts returns how many deployments were stopped and jobs cancelled.
func (p *Platform) Counts() (undeploys, cancels int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.undeploys, p.cancels
}

// Builder is a scriptable flywheel.DatasetBuilder.
type Builder struct {
	// Records is how many records the built datasets hold (default 100).
	Records int
	// Err, when set, is returned by Build.
	Err   error
	mu    sync.Mutex
	calls int
}

// Build implements flywheel.DatasetBuilder.
func (b *Builder) Build(ctx context.Context, req flywheel.BuildRequest) (flywheel.BuildResult, error) {
	b.mu.Lock()
	b.calls++
	b.mu.Unlock()
	n := b.Records
	if n == 0 {
		n = 100
	}
	stats := flywheel.DataStats{Total: n, Selected: n, Eval: n / 5, Train: n * 7 / 10, Val: n / 10}
	if b.Err != nil {
		return flywheel.BuildResult{Stats: stats}, b.Err
	}
	name := func(kind string) string { return fmt.Sprintf("flywheel-%s-%s-%d", kind, req.WorkloadID, req.Timestamp) }
	return flywheel.BuildResult{
		WorkloadType: flywheel.WorkloadToolCalling, Stats: stats, NumRecords: n,
		Datasets: []flywheel.Dataset{
			{Name: name("eval"), NumRecords: n / 5, Type: flywheel.DatasetBase, Path: req.Dir + "/eval"},
			{Name: name("icl"), NumRecords: n / 5, Type: flywheel.DatasetICL, Path: req.Dir + "/icl"},
			{Name: name("train"), NumRecords: n * 8 / 10, Type: flywheel.DatasetTrain, Path: req.Dir + "/train"},
		},
	}, nil
}

// Evaluator is a scriptable flywheel.Evaluator.
type Evaluator struct {
	// Scores gives a model's function_name score (default 0.5); a
	// customized model scores 0.2 higher.
	Scores map[string]float64
	// Fail makes evaluations of a model and type fail permanently ("model|eval-type").
	Fail map[string]string
	// TransientFailures fails the first N calls per model and type with a retryable error.
	TransientFailures int
	// Block makes Evaluate wait until its context ends, recording when that happened.
	Block bool
	// Started receives the request of each Evaluate call when not nil.
	Started chan flywheel.EvalRequest

	mu        sync.Mutex
	calls     map[string]int
	cancelled []time.Time
}

// ErrTransient is the error of scripted transient failures.
var ErrTransient = errors.New("scripted transient failure")

// Evaluate implements flywheel.Evaluator.
func (e *Evaluator) Evaluate(ctx context.Context, req flywheel.EvalRequest, progress flywheel.ProgressFunc) (flywheel.EvalResult, error) {
	key := req.Target.Model + "|" + string(req.EvalType)
	e.mu.Lock()
	if e.calls == nil {
		e.calls = map[string]int{}
	}
	e.calls[key]++
	n := e.calls[key]
	e.mu.Unlock()
	if e.Started != nil {
		select {
		case e.Started <- req:
		case <-ctx.Done():
		}
	}
	if e.Block {
		<-ctx.Done()
		e.mu.Lock()
		e.cancelled = append(e.cancelled, time.Now())
		e.mu.Unlock()
		return flywheel.EvalResult{}, ctx.Err()
	}
	if n <= e.TransientFailures {
		return flywheel.EvalResult{}, fmt.Errorf("call %d: %w", n, ErrTransient)
	}
	for k, msg := range e.Fail {
		if strings.HasPrefix(req.Target.Model, strings.Split(k, "|")[0]) && strings.HasSuffix(k, "|"+string(req.EvalType)) {
			return flywheel.EvalResult{}, flywheel.Permanent(errors.New(msg))
		}
	}
	score, ok := 0.5, false
	for model, s := range e.Scores {
		if strings.Contains(req.Target.Model, strings.ReplaceAll(model, "/", "-")) || req.Target.Model == model {
			score, ok = s, true
		}
	}
	_ = ok
	if req.EvalType == flywheel.EvalCustomized {
		score = min(1, score+0.2)
	}
	if progress != nil {
		progress(50)
		progress(100)
	}
	items := []flywheel.ItemResult{{Index: 0, Tool: "t", Scores: map[string]float64{flywheel.ScoreFunctionName: score},
		Prediction: json.RawMessage(`{"name":"t"}`)}}
	return flywheel.EvalResult{
		Scores:  map[string]float64{flywheel.ScoreFunctionName: score, flywheel.ScoreFunctionNameAndArgs: score},
		Details: map[string]flywheel.ScoreDetail{flywheel.ScoreFunctionName: {N: 1, Mean: score, CILow: score, CIHigh: score}},
		Summary: flywheel.EvalSummary{Items: 1, Answered: 1, LatencyN: 1, LatencyP50MS: new(1.0)},
		Items:   items,
	}, nil
}

// Calls returns how many times a model and type was evaluated.
func (e *Evaluator) Calls(model string, t flywheel.EvalType) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls[model+"|"+string(t)]
}

// CancelledAt returns when blocked evaluations saw their context end.
func (e *Evaluator) CancelledAt() []time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]time.Time(nil), e.cancelled...)
}
