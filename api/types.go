// Package api holds the REST API's contract: the OpenAPI document served at
// /openapi.json and the Go types of every JSON body it describes. The server
// encodes these types and the client decodes them, so both sides share one
// definition of each shape.
//
// The blueprint's field names and types are kept unchanged; our additions
// are new fields only.
package api

import (
	"encoding/json"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// JobRequest is the body of POST /api/jobs (the blueprint's JobRequest).
type JobRequest struct {
	WorkloadID      string                      `json:"workload_id"`
	ClientID        string                      `json:"client_id"`
	DataSplitConfig *flywheel.DataSplitOverride `json:"data_split_config,omitempty"`
}

// JobResponse answers POST /api/jobs.
type JobResponse struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

// Status and message of a JobResponse, as the blueprint returns them.
const (
	JobResponseStatusQueued  = "queued"
	JobResponseMessageQueued = "NIM workflow started"
)

// JobsListResponse answers GET /api/jobs.
type JobsListResponse struct {
	Jobs []JobListItem `json:"jobs"`
	// NextCursor, when not nil, fetches the next page (?cursor=...).
	NextCursor *string `json:"next_cursor"`
}

// JobListItem is one run in a JobsListResponse.
type JobListItem struct {
	ID           string    `json:"id"`
	WorkloadID   string    `json:"workload_id"`
	ClientID     *string   `json:"client_id"`
	Status       string    `json:"status"`
	StartedAt    Time      `json:"started_at"`
	FinishedAt   *Time     `json:"finished_at"`
	Datasets     []Dataset `json:"datasets"`
	Error        *string   `json:"error"`
	NumRecords   int       `json:"num_records"`
	WorkloadType string    `json:"workload_type,omitempty"`
}

// Dataset is a dataset built for a run.
type Dataset struct {
	Name       string  `json:"name"`
	NumRecords int     `json:"num_records"`
	NMPURI     *string `json:"nmp_uri"`
	Type       string  `json:"type,omitempty"`
}

// JobDetailResponse answers GET /api/jobs/{id}.
type JobDetailResponse struct {
	ID         string            `json:"id"`
	WorkloadID string            `json:"workload_id"`
	ClientID   string            `json:"client_id"`
	Status     string            `json:"status"`
	StartedAt  Time              `json:"started_at"`
	FinishedAt *Time             `json:"finished_at"`
	NumRecords int               `json:"num_records"`
	LLMJudge   *LLMJudgeResponse `json:"llm_judge"`
	NIMs       []NIMResponse     `json:"nims"`
	Datasets   []Dataset         `json:"datasets"`
	Error      *string           `json:"error"`

	// Our additions.
	WorkloadType   string                   `json:"workload_type,omitempty"`
	DataStats      *flywheel.DataStats      `json:"data_stats"`
	Recommendation *flywheel.Recommendation `json:"recommendation"`
	// Stages are the run-level stages (initialize, create_datasets,
	// wait_for_judge, finalize, cleanup); each candidate's stages are in
	// its NIMResponse.
	Stages []Stage `json:"stages"`
	// Warnings name evaluations whose evidence is weak: at least half of
	// their items got no usable reply, or their judge failed on at least
	// half of the items. Empty when there is none.
	Warnings []flywheel.Warning `json:"warnings"`
}

// LLMJudgeResponse is the judge of a run.
type LLMJudgeResponse struct {
	ModelName        string  `json:"model_name"`
	Type             string  `json:"type"`
	DeploymentStatus string  `json:"deployment_status"`
	Error            *string `json:"error"`
}

// NIMResponse is one candidate model of a run.
type NIMResponse struct {
	ModelName        string          `json:"model_name"`
	Status           string          `json:"status"`
	DeploymentStatus string          `json:"deployment_status"`
	RuntimeSeconds   float64         `json:"runtime_seconds"`
	Evaluations      []Evaluation    `json:"evaluations"`
	Customizations   []Customization `json:"customizations"`
	Error            *string         `json:"error"`

	// Our additions.
	ID         string  `json:"id"`
	StartedAt  *Time   `json:"started_at"`
	FinishedAt *Time   `json:"finished_at"`
	Stages     []Stage `json:"stages"`
}

// Evaluation is one evaluation of a candidate.
type Evaluation struct {
	EvalType       string             `json:"eval_type"`
	Scores         map[string]float64 `json:"scores"`
	StartedAt      Time               `json:"started_at"`
	FinishedAt     *Time              `json:"finished_at"`
	RuntimeSeconds float64            `json:"runtime_seconds"`
	Progress       float64            `json:"progress"`
	NMPURI         *string            `json:"nmp_uri"`
	MLflowURI      *string            `json:"mlflow_uri"`
	Error          *string            `json:"error"`

	// Our additions. ID is the key of GET /api/evaluations/{id}/items.
	ID           string                          `json:"id"`
	ScoreDetails map[string]flywheel.ScoreDetail `json:"score_details"`
	Summary      *flywheel.EvalSummary           `json:"summary"`
}

// Customization is one fine-tuning job of a candidate.
type Customization struct {
	StartedAt       Time    `json:"started_at"`
	FinishedAt      *Time   `json:"finished_at"`
	RuntimeSeconds  float64 `json:"runtime_seconds"`
	Progress        float64 `json:"progress"`
	EpochsCompleted int     `json:"epochs_completed"`
	StepsCompleted  int     `json:"steps_completed"`
	NMPURI          *string `json:"nmp_uri"`
	CustomizedModel *string `json:"customized_model"`
	Error           *string `json:"error"`

	// Our additions.
	ID        string    `json:"id"`
	BaseModel string    `json:"base_model,omitempty"`
	Losses    []float64 `json:"losses,omitempty"`
}

// Stage is one node of a run's DAG as the API shows it.
type Stage struct {
	Name             string  `json:"name"`
	Status           string  `json:"status"`
	Attempts         int     `json:"attempts"`
	Progress         float64 `json:"progress"`
	StartedAt        *Time   `json:"started_at"`
	FinishedAt       *Time   `json:"finished_at"`
	TimeLimitSeconds float64 `json:"time_limit_seconds"`
	Error            *string `json:"error"`
}

// JobCancelResponse answers POST /api/jobs/{id}/cancel.
type JobCancelResponse struct {
	ID      string `json:"id"`
	Message string `json:"message"`
}

// JobDeleteResponse answers DELETE /api/jobs/{id}.
type JobDeleteResponse struct {
	ID      string `json:"id"`
	Message string `json:"message"`
}

// ItemsResponse answers GET /api/evaluations/{id}/items.
type ItemsResponse struct {
	Items  []flywheel.ItemResult `json:"items"`
	Total  int                   `json:"total"`
	Limit  int                   `json:"limit"`
	Offset int                   `json:"offset"`
	// NextOffset, when not nil, fetches the next page (?offset=...).
	NextOffset *int `json:"next_offset"`
}

// LogsResponse answers POST /api/logs.
type LogsResponse struct {
	// Lines is the number of non-blank lines read.
	Lines      int `json:"lines"`
	Inserted   int `json:"inserted"`
	Duplicates int `json:"duplicates"`
	Rejected   int `json:"rejected"`
	// Errors lists rejected lines (at most MaxLogErrors of them).
	Errors []LogLineError `json:"errors"`
	// ErrorsTruncated is true when more lines were rejected than listed.
	ErrorsTruncated bool `json:"errors_truncated"`
	// Redacted is how many values each redaction detector replaced in the
	// stored records (absent when none).
	Redacted map[string]int `json:"redacted,omitempty"`
}

// LogLineError says why one line of a POST /api/logs body was rejected.
type LogLineError struct {
	// Line is the 1-based line number in the body.
	Line int `json:"line"`
	// Field is the JSON field at fault, "" when the whole line is.
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

// ErrorResponse is the body of every error but 422: {"detail": "..."}.
type ErrorResponse struct {
	Detail string `json:"detail"`
}

// ValidationErrorResponse is the body of a 422 answer, as FastAPI writes it.
type ValidationErrorResponse struct {
	Detail []ValidationError `json:"detail"`
}

// ValidationError names one invalid part of a request. Loc holds strings
// and, for positions, integers (["body", "workload_id"], ["body", 12]).
// Input and Ctx are pydantic 2's: the value found there (the enclosing
// object for a missing field; absent when the service found the problem
// after decoding) and the rule's parameters ({"max_length": 255}).
type ValidationError struct {
	Loc   []any           `json:"loc"`
	Msg   string          `json:"msg"`
	Type  string          `json:"type"`
	Input json.RawMessage `json:"input,omitempty"`
	Ctx   map[string]any  `json:"ctx,omitempty"`
}

// HealthResponse answers /healthz and /readyz.
type HealthResponse struct {
	Status  string `json:"status"`
	Version string `json:"version,omitempty"`
}
