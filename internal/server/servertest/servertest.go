// Package servertest provides test doubles for the server's dependencies: a
// function-field JobService and LogIngester, and sample run details that
// exercise every field of the API.
package servertest

import (
	"context"
	"errors"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// ErrNotImplemented is returned by a mock method whose Func field is nil.
var ErrNotImplemented = errors.New("servertest: method not implemented")

// JobService is a flywheel.JobService whose methods call the matching Func
// field; a nil field makes the method return ErrNotImplemented.
type JobService struct {
	CreateJobFunc func(ctx context.Context, req flywheel.CreateJobRequest) (*flywheel.Run, error)
	ListJobsFunc  func(ctx context.Context, f flywheel.JobFilter) (flywheel.JobPage, error)
	GetJobFunc    func(ctx context.Context, id string) (*flywheel.JobDetail, error)
	CancelJobFunc func(ctx context.Context, id string) (string, error)
	DeleteJobFunc func(ctx context.Context, id string) (string, error)
	ListItemsFunc func(ctx context.Context, f flywheel.ItemFilter) (flywheel.ItemPage, error)
	ReadyFunc     func(ctx context.Context) error
}

var _ flywheel.JobService = (*JobService)(nil)

// CreateJob calls CreateJobFunc.
func (s *JobService) CreateJob(ctx context.Context, req flywheel.CreateJobRequest) (*flywheel.Run, error) {
	if s.CreateJobFunc == nil {
		return nil, ErrNotImplemented
	}
	return s.CreateJobFunc(ctx, req)
}

// ListJobs calls ListJobsFunc.
func (s *JobService) ListJobs(ctx context.Context, f flywheel.JobFilter) (flywheel.JobPage, error) {
	if s.ListJobsFunc == nil {
		return flywheel.JobPage{}, ErrNotImplemented
	}
	return s.ListJobsFunc(ctx, f)
}

// GetJob calls GetJobFunc.
func (s *JobService) GetJob(ctx context.Context, id string) (*flywheel.JobDetail, error) {
	if s.GetJobFunc == nil {
		return nil, ErrNotImplemented
	}
	return s.GetJobFunc(ctx, id)
}

// CancelJob calls CancelJobFunc.
func (s *JobService) CancelJob(ctx context.Context, id string) (string, error) {
	if s.CancelJobFunc == nil {
		return "", ErrNotImplemented
	}
	return s.CancelJobFunc(ctx, id)
}

// DeleteJob calls DeleteJobFunc.
func (s *JobService) DeleteJob(ctx context.Context, id string) (string, error) {
	if s.DeleteJobFunc == nil {
		return "", ErrNotImplemented
	}
	return s.DeleteJobFunc(ctx, id)
}

// ListItems calls ListItemsFunc.
func (s *JobService) ListItems(ctx context.Context, f flywheel.ItemFilter) (flywheel.ItemPage, error) {
	if s.ListItemsFunc == nil {
		return flywheel.ItemPage{}, ErrNotImplemented
	}
	return s.ListItemsFunc(ctx, f)
}

// Ready calls ReadyFunc; a nil ReadyFunc means ready.
func (s *JobService) Ready(ctx context.Context) error {
	if s.ReadyFunc == nil {
		return nil
	}
	return s.ReadyFunc(ctx)
}

// LogIngester is a flywheel.LogIngester whose InsertLogs calls InsertLogsFunc.
type LogIngester struct {
	InsertLogsFunc func(ctx context.Context, recs []flywheel.LogRecord) (inserted, duplicates int, err error)
}

var _ flywheel.LogIngester = (*LogIngester)(nil)

// InsertLogs calls InsertLogsFunc.
func (l *LogIngester) InsertLogs(ctx context.Context, recs []flywheel.LogRecord) (int, int, error) {
	if l.InsertLogsFunc == nil {
		return 0, 0, ErrNotImplemented
	}
	return l.InsertLogsFunc(ctx, recs)
}

func ptr[T any](v T) *T { return &v }

// Detail returns a run detail with two candidates that fills every field
// the API shows: the first candidate has finished all three evaluations and
// a customization, the second is still running and has a null everywhere a
// blueprint field may be null. status is the run's status.
func Detail(id string, status flywheel.RunStatus, start time.Time) *flywheel.JobDetail {
	at := func(sec int) *time.Time { t := start.Add(time.Duration(sec) * time.Second); return &t }
	run := &flywheel.Run{
		ID:           id,
		WorkloadID:   "bfcl-simple",
		ClientID:     "bfcl",
		Status:       status,
		StartedAt:    start,
		NumRecords:   400,
		WorkloadType: flywheel.WorkloadToolCalling,
		Datasets: []flywheel.Dataset{
			{Name: "flywheel-eval-bfcl-simple-1", NumRecords: 100, NMPURI: ptr("hf://datasets/dfwbp/flywheel-eval-bfcl-simple-1"), Type: flywheel.DatasetBase},
			{Name: "flywheel-icl-bfcl-simple-1", NumRecords: 100, Type: flywheel.DatasetICL},
			{Name: "flywheel-train-bfcl-simple-1", NumRecords: 300, Type: flywheel.DatasetTrain},
		},
		Stats: &flywheel.DataStats{Total: 420, InvalidFormat: 12, Deduplicated: 8, Selected: 400, Eval: 100, Train: 270, Val: 30,
			Reasons: map[string]int{"no tool calls": 12}},
	}
	if status.Terminal() {
		run.FinishedAt = at(600)
		run.Recommendation = &flywheel.Recommendation{Candidate: "meta/llama-3.2-1b-instruct", EvalType: flywheel.EvalCustomized,
			Metric: flywheel.ScoreFunctionNameAndArgs, Margin: -0.02, Reason: "within 2 points of production", Evidence: []string{"n=100"},
			Findings:       []string{"m: fine-tuning (customized-eval) helped"},
			CostPerRequest: ptr(0.0000021), ProductionCostPerRequest: ptr(0.00016)}
	}
	run.Spec.Judge = flywheel.JudgeConfig{DeploymentType: flywheel.DeploymentTypeRemote,
		URL: "http://judge.example/v1/chat/completions", ModelName: "meta/llama-3.3-70b-instruct"}
	if status == flywheel.RunFailed {
		run.Error = "every candidate failed"
	}
	detail := flywheel.ScoreDetail{N: 100, Mean: 0.91, StdErr: 0.028, CILow: 0.85, CIHigh: 0.95}
	evals := []flywheel.Evaluation{
		{ID: id + "-e1", EvalType: flywheel.EvalBase, StartedAt: start.Add(time.Minute), FinishedAt: at(120), RuntimeSeconds: 60, Progress: 100,
			Scores:  map[string]float64{flywheel.ScoreFunctionName: 0.95, flywheel.ScoreFunctionNameAndArgs: 0.91},
			Details: map[string]flywheel.ScoreDetail{flywheel.ScoreFunctionNameAndArgs: detail},
			Summary: &flywheel.EvalSummary{Items: 100, Answered: 99, Errors: 1, Failures: flywheel.FailureCounts{Timeout: 1},
				LatencyN: 99, Concurrency: 8, LatencyP50MS: ptr(120.0), LatencyP95MS: ptr(340.0), TokensN: 99, PromptTokens: ptr(210.0), CompletionTokens: ptr(31.0), CostPer1KReq: 0.4,
				CostBasis: flywheel.CostTokens, CostSource: "210+31 tokens/request (n=99 replies) × $0.00166 per 1k tokens",
				ComputeN: 99, CPUSecondsPerRequest: ptr(0.021), ServerP50MS: ptr(21.0), ServerP95MS: ptr(35.0),
				Production:   &flywheel.ProductionCost{TokensN: 100, PromptTokens: 180, CompletionTokens: 24, CostPer1KReq: 0.16, CostSource: "180+24 logged tokens/request"},
				ErrorClasses: map[string]int{"wrong_arguments": 9}, PerTool: map[string]flywheel.ScoreDetail{"calculate_triangle_area": detail}}},
		{ID: id + "-e2", EvalType: flywheel.EvalICL, StartedAt: start.Add(time.Minute), FinishedAt: at(130), RuntimeSeconds: 70, Progress: 100,
			Scores: map[string]float64{flywheel.ScoreFunctionName: 0.97, flywheel.ScoreFunctionNameAndArgs: 0.93}, NMPURI: ptr("http://nemo/v1/evaluation/jobs/eval-1"),
			MLflowURI: ptr("http://mlflow/#/experiments/1")},
		{ID: id + "-e3", EvalType: flywheel.EvalCustomized, StartedAt: start.Add(5 * time.Minute), FinishedAt: at(500), RuntimeSeconds: 200, Progress: 100,
			Scores: map[string]float64{flywheel.ScoreFunctionName: 0.99, flywheel.ScoreFunctionNameAndArgs: 0.96}},
	}
	nims := []flywheel.NIMDetail{
		{
			NIMRun: flywheel.NIMRun{ID: id + "-n1", RunID: id, ModelName: "meta/llama-3.2-1b-instruct", Status: flywheel.NIMCompleted,
				DeploymentStatus: flywheel.DeploymentCompleted, StartedAt: at(30), FinishedAt: at(550), RuntimeSeconds: 520},
			Evaluations: evals,
			Customizations: []flywheel.Customization{{ID: id + "-c1", NIMID: id + "-n1", WorkloadID: "bfcl-simple", BaseModel: "meta/llama-3.2-1b-instruct",
				CustomizedModel: ptr("dfwbp/customized-meta-llama-3.2-1b-instruct@cust-1"), StartedAt: start.Add(time.Minute), FinishedAt: at(300),
				RuntimeSeconds: 240, Progress: 100, EpochsCompleted: 2, StepsCompleted: 40, NMPURI: ptr("http://nemo/v1/customization/jobs/cust-1"),
				Losses: []float64{1.2, 0.8, 0.5}}},
		},
		{
			NIMRun: flywheel.NIMRun{ID: id + "-n2", RunID: id, ModelName: "meta/llama-3.2-3b-instruct", Status: flywheel.NIMRunningEvals,
				DeploymentStatus: flywheel.DeploymentReady, StartedAt: at(560)},
			Evaluations: []flywheel.Evaluation{{ID: id + "-e4", EvalType: flywheel.EvalBase, StartedAt: start.Add(570 * time.Second), Progress: 45,
				Scores: map[string]float64{}}},
			Customizations: []flywheel.Customization{{ID: id + "-c2", NIMID: id + "-n2", StartedAt: start.Add(570 * time.Second), Progress: 10}},
		},
	}
	if status == flywheel.RunFailed {
		nims[1].Status = flywheel.NIMFailed
		nims[1].Error = "deployment failed: out of memory"
	}
	stage := func(cand string, name flywheel.StageName, st flywheel.StageStatus, from, to int) flywheel.Stage {
		s := flywheel.Stage{RunID: id, Candidate: cand, Name: name, Status: st, Attempts: 1, StartedAt: at(from), TimeLimitSeconds: 3600}
		if st.Done() {
			s.FinishedAt = at(to)
			s.Progress = 100
		}
		return s
	}
	stages := []flywheel.Stage{
		stage("", flywheel.StageInitialize, flywheel.StageSucceeded, 0, 1),
		stage("", flywheel.StageCreateDatasets, flywheel.StageSucceeded, 1, 20),
		stage("", flywheel.StageWaitForJudge, flywheel.StageSucceeded, 20, 30),
		stage(id+"-n1", flywheel.StageSpinUpNIM, flywheel.StageSucceeded, 30, 60),
		stage(id+"-n1", flywheel.StageRunBaseEval, flywheel.StageSucceeded, 60, 120),
		stage(id+"-n1", flywheel.StageRunICLEval, flywheel.StageSucceeded, 60, 130),
		stage(id+"-n1", flywheel.StageStartCustomization, flywheel.StageSucceeded, 60, 300),
		stage(id+"-n1", flywheel.StageRunCustomizationEval, flywheel.StageSucceeded, 300, 500),
		stage(id+"-n1", flywheel.StageShutdownDeployment, flywheel.StageSucceeded, 500, 550),
		stage(id+"-n2", flywheel.StageSpinUpNIM, flywheel.StageSucceeded, 560, 570),
		stage(id+"-n2", flywheel.StageRunBaseEval, flywheel.StageRunning, 570, 0),
		{RunID: id, Candidate: id + "-n2", Name: flywheel.StageRunICLEval, Status: flywheel.StageQueued},
		{RunID: id, Candidate: id + "-n2", Name: flywheel.StageStartCustomization, Status: flywheel.StageRunning, Attempts: 2, Progress: 10,
			StartedAt: at(570), Error: "attempt 1: connection reset"},
		{RunID: id, Candidate: id + "-n2", Name: flywheel.StageRunCustomizationEval, Status: flywheel.StagePending},
		{RunID: id, Candidate: id + "-n2", Name: flywheel.StageShutdownDeployment, Status: flywheel.StagePending},
		{RunID: id, Name: flywheel.StageFinalize, Status: flywheel.StagePending},
	}
	return &flywheel.JobDetail{
		Run:    run,
		NIMs:   nims,
		Judge:  &flywheel.LLMJudgeRun{ID: id + "-j", RunID: id, ModelName: "meta/llama-3.3-70b-instruct", DeploymentType: flywheel.DeploymentTypeRemote, DeploymentStatus: flywheel.DeploymentReady},
		Stages: stages,
	}
}
