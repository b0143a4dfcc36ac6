package flywheel

import "context"

// AuditPromotionRolledBack records the end of a promotion by a rollback
// (AuditJobPromoted records its start).
const AuditPromotionRolledBack = "promotion.rolled_back"

// Valid reports whether v is a known variant.
func (v PromotionVariant) Valid() bool {
	return v == VariantBase || v == VariantICL || v == VariantCustomized
}

// EvalType is the evaluation that scored the variant.
func (v PromotionVariant) EvalType() EvalType {
	switch v {
	case VariantICL:
		return EvalICL
	case VariantCustomized:
		return EvalCustomized
	}
	return EvalBase
}

// Valid reports whether m is a known mode.
func (m PromotionMode) Valid() bool {
	return m == ModeShadow || m == ModeCanary || m == ModeFull
}

// PromoteRequest is the body of POST /api/jobs/{job_id}/promote.
type PromoteRequest struct {
	JobID     string           `json:"-"`
	Candidate string           `json:"candidate"`
	Variant   PromotionVariant `json:"variant"`
	Mode      PromotionMode    `json:"mode"`
	// CanaryPercent is required in canary mode: (0, 100].
	CanaryPercent float64 `json:"canary_percent,omitempty"`
}

// PromotionRoute is what the capture proxy needs to route a workload's
// traffic to its active promotion: the promotion, and for the icl variant
// the few-shot block its evaluation put before each request's messages.
type PromotionRoute struct {
	Promotion
	// ICLPrompt is the system message text (the run's few-shot examples)
	// prepended to each request the candidate answers (variant icl only).
	ICLPrompt string `json:"-"`
	// DeploymentID is the platform's id of what serves the candidate
	// (Platform.Undeploy stops it); empty until it has been started.
	DeploymentID string `json:"-"`
}

// PromotionService promotes candidates of finished runs and ends
// promotions; the REST API, the CLI and the dashboard drive it.
//
// Errors are *Error values: ENOTFOUND for a missing job or promotion,
// ECONFLICT when the run or promotion state forbids the operation,
// EUNPROCESSABLE naming the field of a bad request.
type PromotionService interface {
	Promoter
	// Promote makes a candidate variant of a finished run serve its
	// workload's traffic, replacing the active promotion of the workload
	// and client.
	Promote(ctx context.Context, req PromoteRequest) (*Promotion, error)
	// GetPromotion returns one promotion.
	GetPromotion(ctx context.Context, id string) (*Promotion, error)
	// ListPromotions returns the promotions of a workload (and client when
	// not empty), newest first.
	ListPromotions(ctx context.Context, workloadID, clientID string) ([]Promotion, error)
}

// RollbackReasonManual is the reason of a rollback asked for through the
// API without one.
const RollbackReasonManual = "rolled back by hand"

// CandidateServer is implemented by platforms where serving a promoted
// candidate takes more than Deploy: NeMo serves a customized model through
// the NIM of its base model, which has to be deployed first. Platforms
// without it serve a promotion with Deploy (the request's Adapter set for
// the customized variant).
type CandidateServer interface {
	// ServeCandidate starts (or finds, for a Key it has seen) what serves
	// req's candidate and returns its state without waiting for it to be
	// ready; Undeploy of the returned ID stops it.
	ServeCandidate(ctx context.Context, req DeployRequest) (Deployment, error)
}
