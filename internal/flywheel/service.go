package flywheel

import (
	"context"
	"time"
)

// CreateJobRequest is the body of POST /api/jobs (the blueprint's JobRequest)
// plus the Idempotency-Key header.
type CreateJobRequest struct {
	WorkloadID      string             `json:"workload_id"`
	ClientID        string             `json:"client_id"`
	DataSplitConfig *DataSplitOverride `json:"data_split_config,omitempty"`
	// Manifest, when set, makes a run that builds exactly the manifest's
	// datasets with its settings (workload_id and client_id may be left
	// out; when given they must be the manifest's).
	Manifest       *Manifest `json:"manifest,omitempty"`
	IdempotencyKey string    `json:"-"`
}

// JobFilter selects and pages runs for GET /api/jobs.
type JobFilter struct {
	WorkloadID string
	ClientID   string
	Status     RunStatus
	// Limit caps the page size; 0 means the server default.
	Limit int
	// Cursor is the opaque cursor of the previous page's NextCursor.
	Cursor string
	// OldestFirst lists the runs oldest first (the blueprint's order)
	// instead of newest first.
	OldestFirst bool
}

// JobPage is one page of runs, newest first (oldest first when the
// filter asks).
type JobPage struct {
	Runs       []*Run
	NextCursor string
}

// NIMDetail is a candidate with its evaluations and customizations.
type NIMDetail struct {
	NIMRun
	Evaluations    []Evaluation    `json:"evaluations"`
	Customizations []Customization `json:"customizations"`
}

// JobDetail is everything GET /api/jobs/{id} shows.
type JobDetail struct {
	Run    *Run         `json:"run"`
	NIMs   []NIMDetail  `json:"nims"`
	Judge  *LLMJudgeRun `json:"llm_judge"`
	Stages []Stage      `json:"stages"`
}

// ItemFilter selects and pages the per-item results of one evaluation.
type ItemFilter struct {
	EvaluationID string
	Tool         string
	ErrorClass   string
	// OnlyDivergent keeps items whose prediction differed from the reference.
	OnlyDivergent bool
	Limit         int
	Offset        int
}

// ItemPage is one page of per-item results.
type ItemPage struct {
	Items []ItemResult
	Total int
}

// JobService is what the REST API, the CLI and the dashboard drive.
//
// Errors are *Error values: ENOTFOUND for a missing job, EINVALID for a
// malformed id, EPRECONDITION when the job's state forbids the operation.
type JobService interface {
	// CreateJob records a pending run and enqueues its first stage in one
	// transaction. A repeated IdempotencyKey returns the first run.
	CreateJob(ctx context.Context, req CreateJobRequest) (*Run, error)
	// ListJobs returns runs, newest first.
	ListJobs(ctx context.Context, f JobFilter) (JobPage, error)
	// GetJob returns a run with its candidates, evaluations, customizations,
	// judge and stages.
	GetJob(ctx context.Context, id string) (*JobDetail, error)
	// CancelJob cancels a run; it returns the message to show.
	CancelJob(ctx context.Context, id string) (string, error)
	// DeleteJob deletes a finished run and its remote resources; it returns
	// the message to show.
	DeleteJob(ctx context.Context, id string) (string, error)
	// ListItems returns per-item evaluation results.
	ListItems(ctx context.Context, f ItemFilter) (ItemPage, error)
	// Ready returns nil when the database answers and workers are running.
	Ready(ctx context.Context) error
}

// LogIngester stores production records (the bulk ingest endpoint, the
// capture proxy and `flywheel load` share it).
type LogIngester interface {
	// InsertLogs stores records, skipping ones already stored (same content
	// hash). It returns how many were inserted and how many were duplicates.
	InsertLogs(ctx context.Context, recs []LogRecord) (inserted, duplicates int, err error)
}

// Clock returns the current time; components take one so tests can fix it.
type Clock func() time.Time
