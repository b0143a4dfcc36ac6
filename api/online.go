package api

import "github.com/flywheel-go/flywheel/internal/flywheel"

// OnlineStats is one promotion's rolling online agreement with production
// (GET /api/workloads/{workload_id}/online).
type OnlineStats struct {
	WorkloadID  string `json:"workload_id"`
	ClientID    string `json:"client_id"`
	Model       string `json:"model"`
	PromotionID string `json:"promotion_id"`
	// Active says whether the promotion is the workload's active one; the
	// window of an active promotion ends now, that of an ended one at its
	// newest sample.
	Active bool `json:"active"`
	// N is the number of samples in the window; Errors counts the
	// candidate's failed answers among them.
	N                   int                             `json:"n"`
	Errors              int                             `json:"errors"`
	Scores              map[string]flywheel.ScoreDetail `json:"scores"`
	CandidateLatencyMS  flywheel.Percentiles            `json:"candidate_latency_ms"`
	ProductionLatencyMS flywheel.Percentiles            `json:"production_latency_ms"`
	WindowStart         Time                            `json:"window_start"`
	WindowEnd           Time                            `json:"window_end"`
}

// NewOnlineStats is st as the API writes it.
func NewOnlineStats(st flywheel.OnlineStats) OnlineStats {
	scores := st.Scores
	if scores == nil {
		scores = map[string]flywheel.ScoreDetail{}
	}
	return OnlineStats{WorkloadID: st.WorkloadID, ClientID: st.ClientID, Model: st.Model, PromotionID: st.PromotionID,
		Active: st.Active, N: st.N, Errors: st.Errors, Scores: scores, CandidateLatencyMS: st.CandidateLatencyMS,
		ProductionLatencyMS: st.ProductionLatencyMS, WindowStart: NewTime(st.WindowStart), WindowEnd: NewTime(st.WindowEnd)}
}
