package api

import "encoding/json"

// PromoteRequest is the body of POST /api/jobs/{job_id}/promote.
type PromoteRequest struct {
	// Candidate is the model name of a candidate of the run.
	Candidate string `json:"candidate"`
	// Variant is base, icl or customized.
	Variant string `json:"variant"`
	// Mode is shadow, canary or full.
	Mode string `json:"mode"`
	// CanaryPercent is the share of conversations the candidate answers in
	// canary mode: more than 0, at most 100.
	CanaryPercent float64 `json:"canary_percent,omitempty"`
}

// RollbackRequest is the optional body of POST /api/promotions/{id}/rollback.
type RollbackRequest struct {
	Reason string `json:"reason,omitempty"`
}

// Promotion is a candidate serving a workload's traffic through the
// gateway, or one that did.
type Promotion struct {
	ID            string  `json:"id"`
	WorkloadID    string  `json:"workload_id"`
	ClientID      string  `json:"client_id"`
	JobID         string  `json:"job_id"`
	Candidate     string  `json:"candidate"`
	Variant       string  `json:"variant"`
	Mode          string  `json:"mode"`
	CanaryPercent float64 `json:"canary_percent"`
	// Endpoint is the base URL serving the candidate; empty while it
	// starts (production answers until then).
	Endpoint    string          `json:"endpoint"`
	ServedModel string          `json:"served_model"`
	Status      string          `json:"status"`
	Reason      string          `json:"reason,omitempty"`
	CreatedBy   string          `json:"created_by,omitempty"`
	CreatedAt   Time            `json:"created_at"`
	EndedAt     *Time           `json:"ended_at"`
	Evidence    json.RawMessage `json:"evidence,omitempty"`
}

// PromotionsResponse answers GET /api/promotions, newest first.
type PromotionsResponse struct {
	Promotions []Promotion `json:"promotions"`
}
