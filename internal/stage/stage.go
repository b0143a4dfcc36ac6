// Package stage holds one function per stage of a flywheel run. Stage
// functions do the work of a stage (deploy a candidate, evaluate it, fine-tune
// it, shut it down) through small interfaces: the store, the model platform,
// the dataset builder and the evaluator. The engine decides when they run,
// retries them, and commits their results together with the DAG's progress.
//
// A stage function is idempotent: a re-run after a crash finds the remote
// resources the earlier attempt created (through the resource ledger and the
// platforms' idempotency keys) instead of creating them again. Long remote
// work is launched once and then polled: a function returns Result.Snooze to
// be called again later.
package stage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// Store is the persistence the stages use; *store.Queries implements it.
type Store interface {
	GetRun(ctx context.Context, id string) (*flywheel.Run, error)
	TryStartRun(ctx context.Context, id string, maxRunning int) (bool, error)
	SetRunDatasets(ctx context.Context, id string, res flywheel.BuildResult) error
	SetRunStats(ctx context.Context, id string, stats flywheel.DataStats) error
	SetRunRecommendation(ctx context.Context, id string, rec *flywheel.Recommendation) error
	SetRunManifest(ctx context.Context, m *flywheel.Manifest) error
	SetManifestModel(ctx context.Context, runID string, position int, m flywheel.ManifestModel) error
	FinishRun(ctx context.Context, id string, status flywheel.RunStatus, errMsg string) (bool, error)

	GetNIM(ctx context.Context, id string) (*flywheel.NIMRun, error)
	ListNIMs(ctx context.Context, runID string) ([]*flywheel.NIMRun, error)
	SetNIMStatus(ctx context.Context, id string, status flywheel.NIMStatus, dep flywheel.DeploymentStatus) error
	SetNIMDeploymentStatus(ctx context.Context, id string, dep flywheel.DeploymentStatus) error
	FinishNIM(ctx context.Context, id string, status flywheel.NIMStatus, dep flywheel.DeploymentStatus, errMsg string) error

	UpsertEvaluation(ctx context.Context, nimID string, t flywheel.EvalType) (*flywheel.Evaluation, error)
	ListEvaluations(ctx context.Context, nimID string) ([]flywheel.Evaluation, error)
	SetEvaluationProgress(ctx context.Context, id string, progress float64, jobID, nmpURI string) error
	GetEvaluation(ctx context.Context, id string) (*flywheel.Evaluation, error)
	SetEvaluationMLflowURI(ctx context.Context, id, uri string) error
	FinishEvaluation(ctx context.Context, id string, res *flywheel.EvalResult, errMsg string) error
	ReplaceItems(ctx context.Context, evaluationID string, items []flywheel.ItemResult) error

	UpsertCustomization(ctx context.Context, nimID, workloadID, baseModel string) (*flywheel.Customization, error)
	GetCustomization(ctx context.Context, nimID string) (*flywheel.Customization, *time.Time, error)
	UpdateCustomization(ctx context.Context, id string, job flywheel.CustomizationJob, uri string) error
	FinishCustomization(ctx context.Context, id string, progress float64, errMsg string) error

	GetJudge(ctx context.Context, runID string) (*flywheel.LLMJudgeRun, error)
	CreateJudge(ctx context.Context, j *flywheel.LLMJudgeRun) error
	SetJudgeStatus(ctx context.Context, runID string, status flywheel.DeploymentStatus, errMsg string) error

	ListStages(ctx context.Context, runID string) ([]flywheel.Stage, error)
	GetStage(ctx context.Context, runID, candidate string, name flywheel.StageName) (*flywheel.Stage, error)
	SetStageProgress(ctx context.Context, runID, candidate string, name flywheel.StageName, progress float64) error

	RecordResource(ctx context.Context, r *flywheel.Resource) error
	GetResource(ctx context.Context, kind flywheel.ResourceKind, key string) (*flywheel.Resource, error)
	ListResources(ctx context.Context, runID string, states ...flywheel.ResourceState) ([]flywheel.Resource, error)
	ListNIMResources(ctx context.Context, nimID string, kind flywheel.ResourceKind, states ...flywheel.ResourceState) ([]flywheel.Resource, error)
	MarkResourceReleased(ctx context.Context, id int64) error
	MarkResourceReleaseFailed(ctx context.Context, id int64, errMsg string) error
}

// Recommender picks the candidate that can replace the production model.
type Recommender interface {
	Recommend(ctx context.Context, run *flywheel.Run, nims []flywheel.NIMDetail) (*flywheel.Recommendation, error)
}

// Exporter sends a finished evaluation to an experiment tracker (MLflow)
// and returns the link to it. Failures never fail the stage.
type Exporter interface {
	ExportEvaluation(ctx context.Context, run *flywheel.Run, nim *flywheel.NIMRun, e *flywheel.Evaluation, items []flywheel.ItemResult) (string, error)
}

// Settings are the stage functions' knobs.
type Settings struct {
	// PollInterval is how long a polling stage waits between looks.
	PollInterval time.Duration
	// StallTimeout fails a customization whose progress did not move for this long.
	StallTimeout time.Duration
	// MaxConcurrentRuns caps the runs in status running (0: no cap).
	MaxConcurrentRuns int
	// DataDir is where run files (datasets, logs) are kept.
	DataDir string
	// LeaseOwner is this process's id, written on the resources it records.
	LeaseOwner string
	// LeaseTTL is how long a lease lasts without renewal.
	LeaseTTL time.Duration
	// JudgeAPIKey is the judge's key: run specs are stored without secrets.
	JudgeAPIKey string
	// Version is Flywheel's version, written into run manifests.
	Version string
}

// Runner runs stage functions. Its fields are set once at start.
type Runner struct {
	Store       Store
	Platform    flywheel.Platform
	Datasets    flywheel.DatasetBuilder
	Evaluator   flywheel.Evaluator
	Recommender Recommender
	// Exporter, when set, receives every finished evaluation.
	Exporter Exporter
	Settings Settings
	Logger   *slog.Logger
	Now      func() time.Time
}

// Call is one invocation of a stage function.
type Call struct {
	Run   *flywheel.Run
	NIM   *flywheel.NIMRun // nil for run-level stages
	Stage *flywheel.Stage
}

// Result is what a stage function decided.
type Result struct {
	// Status is StageSucceeded, StageFailed or StageSkipped when the stage
	// is done; it is ignored when Snooze is set.
	Status flywheel.StageStatus
	// Error explains a failure or a skip.
	Error string
	// Output is kept on the stage row (for example a deployment's endpoint).
	Output json.RawMessage
	// Snooze, when positive, asks to be called again after this long.
	Snooze time.Duration
}

func succeeded(output any) Result {
	r := Result{Status: flywheel.StageSucceeded}
	if output != nil {
		if b, err := json.Marshal(output); err == nil {
			r.Output = b
		}
	}
	return r
}

func failed(format string, args ...any) Result {
	return Result{Status: flywheel.StageFailed, Error: fmt.Sprintf(format, args...)}
}

func skipped(reason string) Result { return Result{Status: flywheel.StageSkipped, Error: reason} }

func (r *Runner) snooze() Result {
	d := r.Settings.PollInterval
	if d <= 0 {
		d = 5 * time.Second
	}
	return Result{Snooze: d}
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Run runs the stage function of c.Stage. An error return is transient
// (the engine retries it with backoff) unless it wraps flywheel.ErrPermanent,
// in which case the engine fails the stage with the error's message.
func (r *Runner) Run(ctx context.Context, c Call) (Result, error) {
	switch c.Stage.Name {
	case flywheel.StageInitialize:
		return r.initialize(ctx, c)
	case flywheel.StageCreateDatasets:
		return r.createDatasets(ctx, c)
	case flywheel.StageWaitForJudge:
		return r.waitForJudge(ctx, c)
	case flywheel.StageSpinUpNIM:
		return r.spinUpNIM(ctx, c)
	case flywheel.StageRunBaseEval:
		return r.runEval(ctx, c, flywheel.EvalBase)
	case flywheel.StageRunICLEval:
		return r.runEval(ctx, c, flywheel.EvalICL)
	case flywheel.StageStartCustomization:
		return r.startCustomization(ctx, c)
	case flywheel.StageRunCustomizationEval:
		return r.runEval(ctx, c, flywheel.EvalCustomized)
	case flywheel.StageShutdownDeployment:
		return r.shutdownDeployment(ctx, c)
	case flywheel.StageFinalize:
		return r.finalize(ctx, c)
	case flywheel.StageCleanup:
		return r.cleanup(ctx, c)
	}
	return Result{}, flywheel.Permanent(fmt.Errorf("unknown stage %q", c.Stage.Name))
}

// OnFailure records a stage's final failure where it happened (the run, the
// candidate, the evaluation, the customization). The engine calls it when a
// stage fails for good, also after retries ran out.
func (r *Runner) OnFailure(ctx context.Context, c Call, msg string) error {
	switch c.Stage.Name {
	case flywheel.StageWaitForJudge:
		return r.Store.SetJudgeStatus(ctx, c.Run.ID, flywheel.DeploymentFailed, msg)
	case flywheel.StageSpinUpNIM:
		return r.Store.FinishNIM(ctx, c.NIM.ID, flywheel.NIMFailed, flywheel.DeploymentFailed, "Error spinning up NIM: "+msg)
	case flywheel.StageRunBaseEval, flywheel.StageRunICLEval, flywheel.StageRunCustomizationEval:
		e, err := r.Store.UpsertEvaluation(ctx, c.NIM.ID, evalTypeOf(c.Stage.Name))
		if err != nil {
			return err
		}
		if e.FinishedAt == nil {
			return r.Store.FinishEvaluation(ctx, e.ID, nil, msg)
		}
	case flywheel.StageStartCustomization:
		cust, _, err := r.Store.GetCustomization(ctx, c.NIM.ID)
		if errors.Is(err, flywheel.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return r.Store.FinishCustomization(ctx, cust.ID, cust.Progress, "Error starting customization: "+msg)
	case flywheel.StageShutdownDeployment:
		return r.Store.FinishNIM(ctx, c.NIM.ID, flywheel.NIMFailed, "", "Error shutting down NIM deployment: "+msg)
	}
	return nil
}

// RunErrorMessage is the run's error when a run-level stage fails, worded
// as the blueprint words it.
func RunErrorMessage(name flywheel.StageName, msg string) string {
	switch name {
	case flywheel.StageCreateDatasets:
		return "Error creating datasets: " + msg
	case flywheel.StageWaitForJudge:
		return "Error waiting for LLM as judge: " + msg
	case flywheel.StageInitialize:
		return "Error initializing workflow: " + msg
	}
	return fmt.Sprintf("Error in %s: %s", name, msg)
}

func evalTypeOf(name flywheel.StageName) flywheel.EvalType {
	switch name {
	case flywheel.StageRunICLEval:
		return flywheel.EvalICL
	case flywheel.StageRunCustomizationEval:
		return flywheel.EvalCustomized
	}
	return flywheel.EvalBase
}

// stageOutput decodes another stage's output.
func (r *Runner) stageOutput(ctx context.Context, runID, candidate string, name flywheel.StageName, v any) error {
	s, err := r.Store.GetStage(ctx, runID, candidate, name)
	if err != nil {
		return err
	}
	if len(s.Output) == 0 {
		return fmt.Errorf("stage %s has no output", name)
	}
	if err := json.Unmarshal(s.Output, v); err != nil {
		return fmt.Errorf("decode %s output: %w", name, err)
	}
	return nil
}

func (r *Runner) lease() *time.Time {
	if r.Settings.LeaseTTL <= 0 {
		return nil
	}
	t := r.now().Add(r.Settings.LeaseTTL)
	return &t
}
