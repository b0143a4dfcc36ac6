package api

import "github.com/flywheel-go/flywheel/internal/flywheel"

// RunRef names a run: its id, status and times.
type RunRef struct {
	ID         string `json:"id"`
	Status     string `json:"status"`
	StartedAt  Time   `json:"started_at"`
	FinishedAt *Time  `json:"finished_at"`
}

// WorkloadSummary is one workload and client of GET /api/workloads.
type WorkloadSummary struct {
	WorkloadID string `json:"workload_id"`
	ClientID   string `json:"client_id"`
	// Runs counts every run; FinishedRuns those that ended.
	Runs         int    `json:"runs"`
	FinishedRuns int    `json:"finished_runs"`
	LastRun      RunRef `json:"last_run"`
}

// WorkloadsResponse answers GET /api/workloads: the workload with the
// newest run first.
type WorkloadsResponse struct {
	Workloads []WorkloadSummary `json:"workloads"`
}

// HistoryEvaluation is one candidate's evaluation of one type in one run.
type HistoryEvaluation struct {
	Candidate    string `json:"candidate"`
	EvalType     string `json:"eval_type"`
	EvaluationID string `json:"evaluation_id"`
	// Items is the number of evaluated items (0 when unknown).
	Items int `json:"items"`
	// Scores holds the main metrics: mean, 95% interval and n.
	Scores map[string]flywheel.ScoreDetail `json:"scores"`
	Error  *string                         `json:"error"`
}

// HistoryRun is one finished run of a workload's history.
type HistoryRun struct {
	ID             string                   `json:"id"`
	ClientID       string                   `json:"client_id"`
	Status         string                   `json:"status"`
	StartedAt      Time                     `json:"started_at"`
	FinishedAt     *Time                    `json:"finished_at"`
	NumRecords     int                      `json:"num_records"`
	DataStats      *flywheel.DataStats      `json:"data_stats"`
	Recommendation *flywheel.Recommendation `json:"recommendation"`
	Evaluations    []HistoryEvaluation      `json:"evaluations"`
}

// WorkloadHistoryResponse answers GET /api/workloads/{workload_id}/history:
// the finished runs, oldest first.
type WorkloadHistoryResponse struct {
	WorkloadID string `json:"workload_id"`
	// ClientID is the client asked for; empty: every client.
	ClientID string `json:"client_id"`
	// Metrics are the main metrics present, the one that decided most
	// recommendations first.
	Metrics []string     `json:"metrics"`
	Runs    []HistoryRun `json:"runs"`
}

// CompareRun is one side of GET /api/jobs/compare.
type CompareRun struct {
	ID             string                   `json:"id"`
	WorkloadID     string                   `json:"workload_id"`
	ClientID       string                   `json:"client_id"`
	Status         string                   `json:"status"`
	StartedAt      Time                     `json:"started_at"`
	FinishedAt     *Time                    `json:"finished_at"`
	NumRecords     int                      `json:"num_records"`
	DataStats      *flywheel.DataStats      `json:"data_stats"`
	Recommendation *flywheel.Recommendation `json:"recommendation"`
	// Tools counts the evaluated items per expected tool ("(none)": no
	// tool call expected).
	Tools map[string]int `json:"tools"`
}

// CompareScore is one candidate, evaluation type and metric in both runs.
type CompareScore struct {
	Candidate string                `json:"candidate"`
	EvalType  string                `json:"eval_type"`
	Metric    string                `json:"metric"`
	A         *flywheel.ScoreDetail `json:"a"`
	B         *flywheel.ScoreDetail `json:"b"`
	// Difference is B's mean − A's mean.
	Difference *float64 `json:"difference"`
	// SharedItems is how many items the two evaluations share.
	SharedItems int `json:"shared_items"`
	// Paired is the paired test (B − A per item) on the shared items.
	Paired *flywheel.PairedTest `json:"paired"`
}

// JobCompareResponse answers GET /api/jobs/compare.
type JobCompareResponse struct {
	A CompareRun `json:"a"`
	B CompareRun `json:"b"`
	// PairedBy says how items were matched: "record" (the same logged
	// record, by both runs' manifests) or "answer" (the same production
	// answer, when a run has no manifest).
	PairedBy string `json:"paired_by"`
	// SharedItems is how many evaluation items both runs evaluated;
	// AmbiguousItems counts records or answers found more than once in a
	// run, left out.
	SharedItems    int            `json:"shared_items"`
	AmbiguousItems int            `json:"ambiguous_items"`
	Scores         []CompareScore `json:"scores"`
	// RecommendationChange says how the recommendation went from A to B.
	RecommendationChange string   `json:"recommendation_change"`
	Notes                []string `json:"notes"`
}
