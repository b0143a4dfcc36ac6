package flywheel

import "context"

// WorkloadSummary is one workload and client that has runs: how many, how
// many have ended, and the newest.
type WorkloadSummary struct {
	WorkloadID string
	ClientID   string
	// Runs counts every run; Finished those that ended (completed, failed
	// or cancelled).
	Runs     int
	Finished int
	// LastRun is the newest run (by start time).
	LastRun *Run
}

// HistoryFilter selects the runs of a workload's history.
type HistoryFilter struct {
	WorkloadID string
	// ClientID, when set, keeps the runs of one client.
	ClientID string
	// Limit keeps the newest Limit finished runs (0: the service's default).
	Limit int
}

// CandidateEvaluation is one evaluation of one candidate of a run.
type CandidateEvaluation struct {
	RunID     string
	Candidate string
	Evaluation
}

// EvalScores are the main scores of one candidate under one evaluation
// type in one run.
type EvalScores struct {
	Candidate    string
	EvalType     EvalType
	EvaluationID string
	// Scores holds the main metrics' evidence: mean, interval and n.
	Scores map[string]ScoreDetail
	// Items is the number of evaluated items (0 when unknown).
	Items int
	Error string
}

// HistoryRun is one finished run in a workload's history.
type HistoryRun struct {
	Run    *Run
	Scores []EvalScores
}

// WorkloadHistory is every finished run of a workload, oldest first.
type WorkloadHistory struct {
	WorkloadID string
	ClientID   string
	// Metrics are the main metrics the runs have, the one that decided
	// most recommendations first.
	Metrics []string
	Runs    []HistoryRun
}

// PairedTest is a paired comparison of two runs' evaluations on the items
// both evaluated: Diff describes the per-item differences B − A.
type PairedTest struct {
	N     int         `json:"n"`
	MeanA float64     `json:"mean_a"`
	MeanB float64     `json:"mean_b"`
	Diff  ScoreDetail `json:"diff"`
	// Verdict is "b better", "b worse" or "no significant difference"
	// (whether the 95% interval of Diff excludes 0).
	Verdict string `json:"verdict"`
}

// Verdicts of a PairedTest.
const (
	VerdictBetter = "b better"
	VerdictWorse  = "b worse"
	VerdictNone   = "no significant difference"
)

// ScoreComparison is one candidate, evaluation type and metric in two runs.
type ScoreComparison struct {
	Candidate string
	EvalType  EvalType
	Metric    string
	// A and B are the runs' scores (nil where the run has none).
	A, B *ScoreDetail
	// Difference is B's mean − A's mean (nil unless both have a score).
	Difference *float64
	// SharedItems is how many evaluation items the two evaluations share
	// (see JobComparison.PairedBy).
	SharedItems int
	// Paired is the paired test on the shared items (nil when none is
	// scored in both).
	Paired *PairedTest
}

// How a JobComparison matched the items of two runs.
const (
	// PairedByRecord: the same logged record (the record hashes of both
	// runs' manifests, by position in the evaluation set).
	PairedByRecord = "record"
	// PairedByAnswer: the same production answer (expected tool and
	// reference message), when a run has no manifest.
	PairedByAnswer = "answer"
)

// JobComparison sets two runs side by side.
type JobComparison struct {
	A, B *Run
	// ToolsA and ToolsB count the evaluated items per expected tool.
	ToolsA, ToolsB map[string]int
	// PairedBy says how items were matched: PairedByRecord or
	// PairedByAnswer.
	PairedBy string
	// SharedItems is how many evaluation items both runs evaluated (the
	// same record, or answer, found once in each run).
	SharedItems int
	// AmbiguousItems counts records or answers found more than once in a
	// run, left out of the pairing.
	AmbiguousItems int
	Scores         []ScoreComparison
	// RecommendationChange says in words how the recommendation changed
	// from A to B.
	RecommendationChange string
	// Notes explain what could not be compared.
	Notes []string
}

// HistoryService answers questions about runs over time: the workloads,
// a workload's history, and two runs side by side.
//
// Errors are *Error values: ENOTFOUND for an unknown workload or run,
// EUNPROCESSABLE (naming the field) for a malformed id.
type HistoryService interface {
	// ListWorkloads returns every workload and client with runs, the one
	// with the newest run first.
	ListWorkloads(ctx context.Context) ([]WorkloadSummary, error)
	// WorkloadHistory returns a workload's finished runs, oldest first,
	// with each candidate's main scores per evaluation type.
	WorkloadHistory(ctx context.Context, f HistoryFilter) (*WorkloadHistory, error)
	// CompareJobs sets two runs side by side, with a paired test wherever
	// their evaluations share items.
	CompareJobs(ctx context.Context, a, b string) (*JobComparison, error)
}
