package flywheel

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Run is one flywheel run (a job): the blueprint's flywheel_runs document.
type Run struct {
	ID         string     `json:"id"`
	WorkloadID string     `json:"workload_id"`
	ClientID   string     `json:"client_id"`
	Status     RunStatus  `json:"status"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	NumRecords int        `json:"num_records"`
	Datasets   []Dataset  `json:"datasets"`
	Error      string     `json:"error,omitempty"`
	// Spec is the configuration the run was created with.
	Spec RunSpec `json:"-"`
	// WorkloadType is known once create_datasets has run.
	WorkloadType WorkloadType `json:"workload_type,omitempty"`
	// Stats are the data statistics of create_datasets.
	Stats *DataStats `json:"data_stats,omitempty"`
	// Recommendation is set by finalize.
	Recommendation *Recommendation `json:"recommendation,omitempty"`
	// IdempotencyKey is the Idempotency-Key header the run was created with.
	IdempotencyKey string    `json:"-"`
	UpdatedAt      time.Time `json:"-"`
}

// Dataset is a dataset built for a run.
type Dataset struct {
	Name       string      `json:"name"`
	NumRecords int         `json:"num_records"`
	NMPURI     *string     `json:"nmp_uri"`
	Type       DatasetType `json:"type,omitempty"`
	// Path is where the files are kept locally (stored; the API does not show it).
	Path string `json:"path,omitempty"`
}

// DataStats are the counts of every step of dataset creation.
type DataStats struct {
	Total         int `json:"total"`
	InvalidFormat int `json:"invalid_format"`
	Filtered      int `json:"filtered"`
	Deduplicated  int `json:"deduplicated"`
	Selected      int `json:"selected"`
	Eval          int `json:"eval"`
	Train         int `json:"train"`
	Val           int `json:"val"`
	// Reasons counts rejected records per reason.
	Reasons map[string]int `json:"reasons,omitempty"`
	// Leakage counts the training and validation records the leakage
	// guard removed because they repeat an evaluation record.
	Leakage *LeakageStats `json:"leakage,omitempty"`
}

// NIMRun is one candidate model inside a run: the blueprint's nims document.
type NIMRun struct {
	ID               string           `json:"id"`
	RunID            string           `json:"flywheel_run_id"`
	ModelName        string           `json:"model_name"`
	Position         int              `json:"-"`
	Status           NIMStatus        `json:"status"`
	DeploymentStatus DeploymentStatus `json:"deployment_status"`
	StartedAt        *time.Time       `json:"started_at"`
	FinishedAt       *time.Time       `json:"finished_at"`
	RuntimeSeconds   float64          `json:"runtime_seconds"`
	Error            string           `json:"error,omitempty"`
}

// Evaluation is one evaluation of a candidate.
type Evaluation struct {
	ID             string                 `json:"id"`
	NIMID          string                 `json:"nim_id"`
	EvalType       EvalType               `json:"eval_type"`
	Scores         map[string]float64     `json:"scores"`
	StartedAt      time.Time              `json:"started_at"`
	FinishedAt     *time.Time             `json:"finished_at"`
	RuntimeSeconds float64                `json:"runtime_seconds"`
	Progress       float64                `json:"progress"`
	NMPURI         *string                `json:"nmp_uri"`
	MLflowURI      *string                `json:"mlflow_uri"`
	JobID          string                 `json:"job_id,omitempty"`
	Error          string                 `json:"error,omitempty"`
	Details        map[string]ScoreDetail `json:"score_details,omitempty"`
	Summary        *EvalSummary           `json:"summary,omitempty"`
}

// ScoreDetail is the evidence behind one score.
type ScoreDetail struct {
	N      int     `json:"n"`
	Mean   float64 `json:"mean"`
	StdErr float64 `json:"stderr"`
	CILow  float64 `json:"ci_low"`
	CIHigh float64 `json:"ci_high"`
}

// EvalSummary holds the counts, latency, token and cost figures of an
// evaluation. Latency and token figures are computed over the answered
// items only and are nil when there is none (LatencyN, TokensN say over
// how many).
type EvalSummary struct {
	// Items is the number of evaluated items (the dataset's valid records).
	Items int `json:"items"`
	// Answered is the number of items whose request got a reply that could
	// be scored.
	Answered int `json:"answered"`
	// Errors is the number of items without such a reply, plus the records
	// that could not be evaluated.
	Errors int `json:"errors"`
	// Failures counts the items without a usable reply, by class.
	Failures FailureCounts `json:"failures"`
	// FirstError is the message of the first item that failed.
	FirstError string `json:"first_error,omitempty"`
	// JudgeCalls is the number of items the LLM judge was asked to score;
	// JudgeFailures of them got no score.
	JudgeCalls      int    `json:"judge_calls,omitempty"`
	JudgeFailures   int    `json:"judge_failures,omitempty"`
	FirstJudgeError string `json:"first_judge_error,omitempty"`
	// LatencyN is the number of replies the latency percentiles are over.
	LatencyN int `json:"latency_n"`
	// Concurrency is how many requests the evaluation kept in flight: a
	// reply's latency includes its wait behind the others at the
	// candidate's server (a one-slot llama-server answers one at a time).
	Concurrency  int      `json:"concurrency,omitempty"`
	LatencyP50MS *float64 `json:"latency_p50_ms"`
	LatencyP95MS *float64 `json:"latency_p95_ms"`
	// TTFTP50MS is the median time to the first token of streamed replies.
	TTFTP50MS float64 `json:"ttft_p50_ms,omitempty"`
	// TokensN is the number of replies that reported token usage, which
	// the per-request token means are over.
	TokensN          int      `json:"tokens_n"`
	PromptTokens     *float64 `json:"prompt_tokens_per_request"`
	CompletionTokens *float64 `json:"completion_tokens_per_request"`
	CostPer1KReq     float64  `json:"cost_per_1k_requests"`
	// CostBasis says what CostPer1KReq is computed from (CostTokens,
	// CostGPUHour or CostCPUTime); empty when no price applies, and then
	// CostPer1KReq is 0 because the cost is unknown.
	CostBasis string `json:"cost_basis,omitempty"`
	// CostSource states the measured figures and the prices behind
	// CostPer1KReq.
	CostSource string `json:"cost_source,omitempty"`
	// ComputeN is the number of replies that reported the server's own
	// compute time (llama-server's timings); CPUSecondsPerRequest, that
	// time × the server's threads per request, is over them.
	ComputeN             int      `json:"compute_n,omitempty"`
	CPUSecondsPerRequest *float64 `json:"cpu_seconds_per_request,omitempty"`
	// ServerP50MS and ServerP95MS are percentiles of that compute time
	// per reply, over the same ComputeN replies: the model's own time,
	// without the wait behind other requests or the network.
	ServerP50MS *float64 `json:"server_p50_ms,omitempty"`
	ServerP95MS *float64 `json:"server_p95_ms,omitempty"`
	// Production is what the production model's logged answers to the
	// same items cost, from the usage they logged.
	Production   *ProductionCost        `json:"production,omitempty"`
	ErrorClasses map[string]int         `json:"error_classes,omitempty"`
	PerTool      map[string]ScoreDetail `json:"per_tool,omitempty"`
}

// FailureCounts counts the evaluated items that got no usable reply.
type FailureCounts struct {
	// ServerError: the server answered with an HTTP error status (4xx or
	// 5xx), including a refusal of the model's own output.
	ServerError int `json:"server_error"`
	// Timeout: no reply within the request timeout.
	Timeout int `json:"timeout"`
	// Unparseable: a reply that is not a chat completion.
	Unparseable int `json:"unparseable"`
	// Connection: no reply at all (connection refused or reset).
	Connection int `json:"connection"`
}

// Total returns the number of failed items.
func (f FailureCounts) Total() int {
	return f.ServerError + f.Timeout + f.Unparseable + f.Connection
}

// Customization is one fine-tuning job of a candidate.
type Customization struct {
	ID              string     `json:"id"`
	NIMID           string     `json:"nim_id"`
	JobID           string     `json:"job_id,omitempty"`
	WorkloadID      string     `json:"workload_id"`
	BaseModel       string     `json:"base_model"`
	CustomizedModel *string    `json:"customized_model"`
	StartedAt       time.Time  `json:"started_at"`
	FinishedAt      *time.Time `json:"finished_at"`
	RuntimeSeconds  float64    `json:"runtime_seconds"`
	Progress        float64    `json:"progress"`
	EpochsCompleted int        `json:"epochs_completed"`
	StepsCompleted  int        `json:"steps_completed"`
	NMPURI          *string    `json:"nmp_uri"`
	Error           string     `json:"error,omitempty"`
	// Losses is the training loss per step as reported.
	Losses []float64 `json:"losses,omitempty"`
}

// LLMJudgeRun is the judge of a run.
type LLMJudgeRun struct {
	ID               string           `json:"id"`
	RunID            string           `json:"flywheel_run_id"`
	ModelName        string           `json:"model_name"`
	DeploymentType   string           `json:"type"`
	DeploymentStatus DeploymentStatus `json:"deployment_status"`
	Error            string           `json:"error,omitempty"`
}

// Recommendation says which candidate can replace the production model.
type Recommendation struct {
	Candidate string   `json:"candidate,omitempty"`
	EvalType  EvalType `json:"eval_type,omitempty"`
	Metric    string   `json:"metric,omitempty"`
	Margin    float64  `json:"margin"`
	Reason    string   `json:"reason"`
	Evidence  []string `json:"evidence,omitempty"`
	// Findings says, per candidate, whether few-shot examples and
	// fine-tuning helped it against its base evaluation, with intervals.
	Findings []string `json:"findings,omitempty"`
	// CostPerRequest is the recommended candidate's cost per request and
	// ProductionCostPerRequest production's, in US dollars, when known.
	CostPerRequest           *float64 `json:"cost_per_request,omitempty"`
	ProductionCostPerRequest *float64 `json:"production_cost_per_request,omitempty"`
}

// LogRecord is one logged production chat completion (the 5-field schema).
type LogRecord struct {
	ID         int64           `json:"-"`
	WorkloadID string          `json:"workload_id"`
	ClientID   string          `json:"client_id"`
	Timestamp  time.Time       `json:"timestamp"`
	Request    json.RawMessage `json:"request"`
	Response   json.RawMessage `json:"response"`
	// ContentHash, when set, is Hash() computed already (by a loader that
	// canonicalised the record); stores use it instead of hashing again.
	ContentHash string `json:"-"`
}

// ItemResult is the outcome of one evaluated record.
type ItemResult struct {
	EvaluationID     string             `json:"evaluation_id"`
	Index            int                `json:"index"`
	Tool             string             `json:"tool,omitempty"`
	Request          json.RawMessage    `json:"request,omitempty"`
	Reference        json.RawMessage    `json:"reference,omitempty"`
	Prediction       json.RawMessage    `json:"prediction,omitempty"`
	Scores           map[string]float64 `json:"scores"`
	ErrorClass       string             `json:"error_class,omitempty"`
	Error            string             `json:"error,omitempty"`
	LatencyMS        float64            `json:"latency_ms"`
	PromptTokens     int                `json:"prompt_tokens"`
	CompletionTokens int                `json:"completion_tokens"`
}

// Hash returns the record's content hash: SHA-256 over the workload id, the
// client id and the compacted request and response JSON. Loading the same
// record twice yields the same hash, so stores skip the copy.
func (r LogRecord) Hash() string {
	h := sha256.New()
	h.Write([]byte(r.WorkloadID))
	h.Write([]byte{0})
	h.Write([]byte(r.ClientID))
	h.Write([]byte{0})
	writeCompact(h, r.Request)
	h.Write([]byte{0})
	writeCompact(h, r.Response)
	return hex.EncodeToString(h.Sum(nil))
}

// HashCompact is Hash for a record whose request and response are already
// compact JSON (as a loader that canonicalised them holds): it skips the
// compaction and gives the same value.
func (r LogRecord) HashCompact() string {
	h := sha256.New()
	h.Write([]byte(r.WorkloadID))
	h.Write([]byte{0})
	h.Write([]byte(r.ClientID))
	h.Write([]byte{0})
	h.Write(r.Request)
	h.Write([]byte{0})
	h.Write(r.Response)
	return hex.EncodeToString(h.Sum(nil))
}

func writeCompact(w interface{ Write([]byte) (int, error) }, raw json.RawMessage) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		_, _ = w.Write(raw)
		return
	}
	_, _ = w.Write(buf.Bytes())
}

// LatencyBasis says what an evaluation's latency percentiles are over:
// "n=60", or "n=60, 8 in flight" when it kept several requests in flight,
// followed by the server's own time per reply where it reported one
// ("n=60, 8 in flight; server time p50 31 ms, n=60").
func LatencyBasis(s EvalSummary) string {
	b := fmt.Sprintf("n=%d", s.LatencyN)
	if s.Concurrency > 1 {
		b += fmt.Sprintf(", %d in flight", s.Concurrency)
	}
	if s.ServerP50MS != nil {
		b += fmt.Sprintf("; server time p50 %.0f ms, n=%d", *s.ServerP50MS, s.ComputeN)
	}
	return b
}
