package flywheel

import (
	"context"
	"time"
)

// OnlineScore is one online sample after scoring, as stored: the
// candidate's answer scored against production's with the offline
// evaluation's metrics, and both latencies.
type OnlineScore struct {
	ID          int64
	PromotionID string
	WorkloadID  string
	ClientID    string
	Model       string
	At          time.Time
	// Scores maps each metric to the sample's score (an evaluation item's
	// scores); a failed candidate answer scores 0 on each.
	Scores              map[string]float64
	ProductionLatencyMS float64
	CandidateLatencyMS  float64
	// Error says why the candidate gave no usable answer; empty when it did.
	Error string
}

// OnlineQuery selects the newest online samples of one series (a workload,
// client, candidate model and promotion): those at or after Since, at most
// Limit of them (0: no limit).
type OnlineQuery struct {
	WorkloadID  string
	ClientID    string
	Model       string
	PromotionID string
	Since       time.Time
	Limit       int
}

// OnlineSeries is one workload, client, model and promotion with online
// samples, and the time of its newest.
type OnlineSeries struct {
	WorkloadID  string
	ClientID    string
	Model       string
	PromotionID string
	Last        time.Time
}

// OnlineReporter reports a workload's online agreement: the rolling
// window of its active promotion first, then of its recent ones.
type OnlineReporter interface {
	// OnlineReport returns the stats of the workload's series (of one
	// client when clientID is not empty): active promotions first, then the
	// others newest first. It is empty, not an error, when there is none.
	OnlineReport(ctx context.Context, workloadID, clientID string) ([]OnlineStats, error)
}
