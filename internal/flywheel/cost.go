package flywheel

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Cost bases of EvalSummary.CostBasis.
const (
	// CostTokens: the candidate's tokens per request × its per-token price.
	CostTokens = "tokens"
	// CostGPUHour: the candidate's hourly price × the evaluation's wall
	// time, per item.
	CostGPUHour = "gpu_hour"
	// CostCPUTime: the server's measured compute time × its threads × the
	// CPU-hour price.
	CostCPUTime = "cpu_time"
)

// ProductionCost is what the production model's logged answers cost: the
// usage logged with them × the production price.
type ProductionCost struct {
	// TokensN is the number of logged responses that reported usage, which
	// the per-request token means are over.
	TokensN          int     `json:"tokens_n"`
	PromptTokens     float64 `json:"prompt_tokens_per_request"`
	CompletionTokens float64 `json:"completion_tokens_per_request"`
	CostPer1KReq     float64 `json:"cost_per_1k_requests"`
	// CostSource states the figures and prices behind CostPer1KReq.
	CostSource string `json:"cost_source"`
}

// CostPerRequest returns the candidate's cost of one request in US
// dollars, and false when no price applies (the cost is unknown). A
// summary stored before CostBasis existed counts as priced when its cost
// is not 0.
func (s EvalSummary) CostPerRequest() (float64, bool) {
	if s.CostBasis == "" && s.CostPer1KReq == 0 {
		return 0, false
	}
	return s.CostPer1KReq / 1000, true
}

// FormatUSD renders an amount in US dollars with two significant digits,
// however small and without trailing zeros: $0.0000021, $0.00016, $1.5,
// $0.0004.
func FormatUSD(v float64) string {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return "$0"
	}
	decimals := max(0, 1-int(math.Floor(math.Log10(math.Abs(v)))))
	out := strconv.FormatFloat(v, 'f', decimals, 64)
	if strings.Contains(out, ".") {
		out = strings.TrimSuffix(strings.TrimRight(out, "0"), ".")
	}
	return "$" + out
}

// CostRatio says how a candidate's cost per request compares with
// production's: "76× cheaper", "2.5× dearer" or "the same cost".
func CostRatio(candidate, production float64) string {
	switch {
	case candidate <= 0 && production <= 0, candidate == production:
		return "the same cost"
	case candidate <= 0:
		return "no measurable cost"
	case candidate < production:
		return ratio(production/candidate) + " cheaper"
	default:
		return ratio(candidate/production) + " dearer"
	}
}

// ratio renders a factor with two significant digits at most: 76×, 2.5×,
// 1300×.
func ratio(f float64) string {
	if f >= 10 {
		return fmt.Sprintf("%.0f×", f)
	}
	return fmt.Sprintf("%.1f×", f)
}
