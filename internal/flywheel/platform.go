package flywheel

import (
	"context"
	"encoding/json"
	"strings"
)

// Endpoint is an OpenAI-compatible chat completions server serving a model.
type Endpoint struct {
	// BaseURL is the server's base, ending before "/v1" (for example
	// "http://127.0.0.1:8080"); clients append "/v1/chat/completions".
	BaseURL string `json:"base_url"`
	Model   string `json:"model"`
	APIKey  string `json:"-"`
}

// BaseURL turns a configured OpenAI-compatible URL, which users write with
// or without "/v1" or the full operation path, into an Endpoint.BaseURL.
func BaseURL(u string) string {
	u = strings.TrimSuffix(u, "/")
	for _, suffix := range []string{"/embeddings", "/chat/completions", "/v1"} {
		u = strings.TrimSuffix(u, suffix)
	}
	return u
}

// DeployRequest asks a platform to deploy a candidate model.
type DeployRequest struct {
	// Key identifies the deployment durably (run id + candidate); a platform
	// given a Key it has seen returns the existing deployment.
	Key   string
	RunID string
	NIMID string
	Model NIMConfig
	// Adapter, when set, deploys the base model with this customization's
	// output (a LoRA adapter or a fine-tuned model).
	Adapter *CustomizationJob
}

// Deployment is a platform's view of one deployment.
type Deployment struct {
	// ID is the platform's id of the deployment; it goes in the ledger.
	ID       string           `json:"id"`
	Status   DeploymentStatus `json:"status"`
	Endpoint Endpoint         `json:"endpoint"`
	Message  string           `json:"message,omitempty"`
	// Data is platform-specific state kept in the ledger (a pid, a port).
	Data json.RawMessage `json:"data,omitempty"`
}

// CustomizationRequest asks a platform to fine-tune a candidate.
type CustomizationRequest struct {
	// Key identifies the job durably; a platform given a Key it has seen
	// returns the existing job instead of starting another.
	Key          string
	RunID        string
	NIMID        string
	WorkloadID   string
	Namespace    string
	Model        NIMConfig
	Training     TrainingConfig
	LoRA         LoRAConfig
	TrainDataset Dataset
	// OutputName is the blueprint's "customized-{org}-{model}".
	OutputName string
}

// Customization job states.
const (
	JobCreated   = "created"
	JobPending   = "pending"
	JobRunning   = "running"
	JobCompleted = "completed"
	JobFailed    = "failed"
	JobCancelled = "cancelled"
)

// CustomizationJob is a platform's view of one fine-tuning job.
type CustomizationJob struct {
	ID              string          `json:"id"`
	Status          string          `json:"status"`
	Progress        float64         `json:"progress"`
	EpochsCompleted int             `json:"epochs_completed"`
	StepsCompleted  int             `json:"steps_completed"`
	Losses          []float64       `json:"losses,omitempty"`
	OutputModel     string          `json:"output_model"`
	Message         string          `json:"message,omitempty"`
	URI             string          `json:"uri,omitempty"`
	Data            json.RawMessage `json:"data,omitempty"`
}

// Platform deploys, fine-tunes and serves candidate models. Implementations:
// NeMo microservices, the local platform (llama-server + PyTorch), and
// pre-deployed endpoints. Every method honours ctx and is safe for
// concurrent use. Methods return errors wrapping ErrPermanent when a retry
// cannot help, and ErrNotFound when the thing asked about is gone.
type Platform interface {
	// Name is the platform's name as written in the ledger.
	Name() string
	// Deploy starts a deployment, or returns the existing one for req.Key.
	// It returns without waiting for readiness.
	Deploy(ctx context.Context, req DeployRequest) (Deployment, error)
	// Deployment returns the current state of a deployment. It is Ready
	// only once the model answers on its endpoint.
	Deployment(ctx context.Context, id string) (Deployment, error)
	// Undeploy stops a deployment; stopping one that is gone is not an error.
	Undeploy(ctx context.Context, id string) error
	// StartCustomization starts a fine-tuning job, or returns the existing
	// one for req.Key.
	StartCustomization(ctx context.Context, req CustomizationRequest) (CustomizationJob, error)
	// Customization returns the current state of a fine-tuning job.
	Customization(ctx context.Context, id string) (CustomizationJob, error)
	// CancelCustomization stops a fine-tuning job; cancelling a finished or
	// missing job is not an error.
	CancelCustomization(ctx context.Context, id string) error
}

// ModelPreparer is implemented by platforms that must prepare a candidate's
// model, once, before they can deploy it: the local platform pre-trains a
// base on first use (many minutes). The spin-up stage calls PrepareModel
// before Deploy, where a cancel can still stop it, and shows progress
// (0..100) on the stage; when the model is ready it returns at once.
type ModelPreparer interface {
	PrepareModel(ctx context.Context, m NIMConfig, progress func(percent float64)) error
}

// DatasetPublisher is implemented by platforms with a data store of their
// own: the dataset files are uploaded there and registered.
type DatasetPublisher interface {
	// PublishDataset uploads one dataset and returns it with NMPURI set.
	PublishDataset(ctx context.Context, namespace string, ds Dataset) (Dataset, error)
	// DeleteDataset removes a published dataset; a missing one is not an error.
	DeleteDataset(ctx context.Context, namespace, name string) error
}

// RecordSource yields logged production records.
type RecordSource interface {
	// NewestRecords returns up to limit records of a workload and client,
	// newest first. limit <= 0 means no limit.
	NewestRecords(ctx context.Context, workloadID, clientID string, limit int) ([]LogRecord, error)
}

// BuildRequest asks the dataset builder for a run's datasets.
type BuildRequest struct {
	RunID      string
	WorkloadID string
	ClientID   string
	Split      DataSplitConfig
	ICL        ICLConfig
	// Dir is where the dataset files go.
	Dir string
	// Timestamp is used in dataset names (flywheel-eval-{workload}-{ts}).
	Timestamp int64
	// Replay, when set, pins the datasets to a manifest's records.
	Replay *Replay
}

// BuildResult is what create_datasets produced.
type BuildResult struct {
	WorkloadType WorkloadType
	Stats        DataStats
	// Datasets has one entry per DatasetType (base, icl, train).
	Datasets []Dataset
	// NumRecords is the number of records after validation and sampling.
	NumRecords int
	// Seed is the seed the records were sampled and split with.
	Seed int64
	// Manifest lists the records of every dataset (eval, train, val, icl).
	Manifest []ManifestDataset
}

// DatasetBuilder turns logged records into evaluation and training datasets.
type DatasetBuilder interface {
	// Build creates the run's datasets. Too little data is an error wrapping
	// ErrPermanent whose message names the counts.
	Build(ctx context.Context, req BuildRequest) (BuildResult, error)
}

// EvalRequest asks the evaluator to score one candidate on one dataset.
type EvalRequest struct {
	EvaluationID string
	RunID        string
	EvalType     EvalType
	WorkloadType WorkloadType
	Target       Endpoint
	Dataset      Dataset
	// Limit caps the number of records evaluated (<= 0: all).
	Limit int
	// Judge is the LLM judge endpoint, or nil when none is configured.
	Judge *Endpoint
	// PricePer1KTokens is the candidate's price, for the cost figure.
	PricePer1KTokens float64
	// PricePerHour, used when PricePer1KTokens is 0, prices the candidate
	// by the hour (a GPU-hour of its deployment).
	PricePerHour float64
	// Sampling, when set, overrides the evaluator's sampling parameters
	// for this candidate (nil fields keep the evaluator's values).
	Sampling *SamplingConfig
}

// EvalResult is the outcome of one evaluation.
type EvalResult struct {
	Scores  map[string]float64
	Details map[string]ScoreDetail
	Summary EvalSummary
	Items   []ItemResult
}

// ProgressFunc reports progress in percent (0..100).
type ProgressFunc func(percent float64)

// Evaluator scores a candidate endpoint on an evaluation dataset.
type Evaluator interface {
	// Evaluate runs the evaluation. It stops within a second of ctx being
	// cancelled and returns ctx's error.
	Evaluate(ctx context.Context, req EvalRequest, progress ProgressFunc) (EvalResult, error)
}

// ResourceReleaser is implemented by platforms that can release any ledger
// resource they created (an evaluation job, a customized model, a dataset),
// used by cleanup, job deletion and the reaper. Releasing a resource that
// is already gone is not an error.
type ResourceReleaser interface {
	Release(ctx context.Context, r Resource) error
}
