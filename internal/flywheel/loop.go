package flywheel

import (
	"context"
	"encoding/json"
	"time"
)

// This file holds the types that close the loop: schedules that start
// runs, promotions that route a workload's traffic to a candidate through
// the capture proxy, and the online evaluation that scores a promoted
// candidate against production's answers while it serves.

// PromotionVariant is which form of a candidate a promotion serves.
type PromotionVariant string

// The promotion variants: the candidate as deployed, with the run's
// few-shot examples prepended to each request, or its customized model.
const (
	VariantBase       PromotionVariant = "base"
	VariantICL        PromotionVariant = "icl"
	VariantCustomized PromotionVariant = "customized"
)

// PromotionMode is how much of a workload's traffic a promotion answers.
type PromotionMode string

// The promotion modes.
const (
	// ModeShadow keeps production answering; the candidate answers a copy
	// of each request asynchronously and is scored against production.
	ModeShadow PromotionMode = "shadow"
	// ModeCanary answers a share of conversations (chosen by a stable hash)
	// with the candidate.
	ModeCanary PromotionMode = "canary"
	// ModeFull answers every request with the candidate.
	ModeFull PromotionMode = "full"
)

// PromotionStatus is the state of a promotion.
type PromotionStatus string

// The promotion states. Only one promotion per workload and client is
// active at a time; promoting again replaces the active one.
const (
	PromotionActive     PromotionStatus = "active"
	PromotionRolledBack PromotionStatus = "rolled_back"
	PromotionReplaced   PromotionStatus = "replaced"
)

// Promotion makes a candidate of a finished run serve a workload's traffic
// through the capture proxy.
type Promotion struct {
	ID         string           `json:"id"`
	WorkloadID string           `json:"workload_id"`
	ClientID   string           `json:"client_id"`
	JobID      string           `json:"job_id"`
	Candidate  string           `json:"candidate"` // the candidate's model name in the run
	Variant    PromotionVariant `json:"variant"`
	Mode       PromotionMode    `json:"mode"`
	// CanaryPercent is the share of conversations the candidate answers in
	// canary mode (0–100).
	CanaryPercent float64 `json:"canary_percent"`
	// Endpoint is the OpenAI-compatible base URL that serves the candidate
	// and ServedModel the model name to send it.
	Endpoint    string          `json:"endpoint"`
	ServedModel string          `json:"served_model"`
	Status      PromotionStatus `json:"status"`
	// Reason says why the promotion ended (rollback reason, replaced by).
	Reason    string     `json:"reason,omitempty"`
	CreatedBy string     `json:"created_by,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
	// Evidence is the online evaluation that caused an automatic rollback.
	Evidence json.RawMessage `json:"evidence,omitempty"`
}

// OnlineSample is one request answered by both production and a promoted
// candidate (one of them asynchronously), to be scored online.
type OnlineSample struct {
	PromotionID string
	WorkloadID  string
	ClientID    string
	// Model is the candidate's model name (Promotion.Candidate).
	Model string
	// Request is the request body the app sent; Production and Candidate
	// are the two chat-completion response bodies.
	Request    json.RawMessage
	Production json.RawMessage
	Candidate  json.RawMessage
	// CandidateError is set when the candidate failed to answer.
	CandidateError    string
	ProductionLatency time.Duration
	CandidateLatency  time.Duration
	At                time.Time
}

// OnlineRecorder receives the samples the capture proxy collects. Record
// must not block the proxy: it queues and returns.
type OnlineRecorder interface {
	Record(ctx context.Context, s OnlineSample)
}

// OnlineStats is a workload's rolling online agreement with production for
// one candidate, over the samples of a window.
type OnlineStats struct {
	WorkloadID  string `json:"workload_id"`
	ClientID    string `json:"client_id"`
	Model       string `json:"model"`
	PromotionID string `json:"promotion_id,omitempty"`
	// Active says whether PromotionID is the workload's active promotion.
	Active bool `json:"active"`
	// N is the number of scored samples in the window; Errors counts the
	// candidate's failed answers among them.
	N      int `json:"n"`
	Errors int `json:"errors"`
	// Scores maps each metric (the offline evaluation's names, e.g.
	// function_name_and_args_accuracy) to its mean and interval.
	Scores              map[string]ScoreDetail `json:"scores"`
	CandidateLatencyMS  Percentiles            `json:"candidate_latency_ms"`
	ProductionLatencyMS Percentiles            `json:"production_latency_ms"`
	WindowStart         time.Time              `json:"window_start"`
	WindowEnd           time.Time              `json:"window_end"`
}

// Percentiles are p50/p90/p99 of a measure over N values.
type Percentiles struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
}

// AgreementReader gives the current online agreement of a workload's
// active promotion; ok is false when no promotion is active or the window
// holds no sample.
type AgreementReader interface {
	CurrentAgreement(ctx context.Context, workloadID, clientID string) (stats OnlineStats, ok bool, err error)
}

// Promoter ends promotions; the online monitor calls Rollback when the
// agreement drops.
type Promoter interface {
	Rollback(ctx context.Context, promotionID, reason string, evidence json.RawMessage) (*Promotion, error)
}
