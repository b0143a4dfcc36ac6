package flywheel_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

func TestFormatUSD(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		v    float64
		want string
	}{
		{0, "$0"}, {0.0000021, "$0.0000021"}, {0.00016, "$0.00016"}, {0.0004, "$0.0004"}, {0.00039999, "$0.0004"},
		{1.5, "$1.5"}, {12, "$12"}, {1234.6, "$1235"}, {-0.002, "$-0.002"},
	} {
		require.Equal(t, tt.want, flywheel.FormatUSD(tt.v), "%g", tt.v)
	}
}

func TestCostRatio(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		cand, prod float64
		want       string
	}{
		{0.0000021, 0.00016, "76× cheaper"},
		{0.0004, 0.00016, "2.5× dearer"},
		{0.0001, 0.00016, "1.6× cheaper"},
		{0.00016, 0.00016, "the same cost"},
		{0, 0.00016, "no measurable cost"},
		{0, 0, "the same cost"},
	} {
		require.Equal(t, tt.want, flywheel.CostRatio(tt.cand, tt.prod))
	}
}

func TestCostPerRequest(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		s     flywheel.EvalSummary
		want  float64
		known bool
	}{
		{"Priced", flywheel.EvalSummary{CostBasis: flywheel.CostCPUTime, CostPer1KReq: 0.002}, 0.000002, true},
		{"PricedAtZero", flywheel.EvalSummary{CostBasis: flywheel.CostTokens}, 0, true},
		{"Unknown", flywheel.EvalSummary{}, 0, false},
		{"StoredBeforeCostBasis", flywheel.EvalSummary{CostPer1KReq: 0.4}, 0.0004, true},
	} {
		got, known := tt.s.CostPerRequest()
		require.Equal(t, tt.known, known, tt.name)
		require.InDelta(t, tt.want, got, 1e-15, tt.name)
	}
}

func TestLatencyBasis(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s    flywheel.EvalSummary
		want string
	}{
		{flywheel.EvalSummary{LatencyN: 60}, "n=60"},
		{flywheel.EvalSummary{LatencyN: 60, Concurrency: 1}, "n=60"},
		{flywheel.EvalSummary{LatencyN: 100, Concurrency: 8}, "n=100, 8 in flight"},
		{flywheel.EvalSummary{LatencyN: 100, Concurrency: 8, ComputeN: 99, ServerP50MS: new(30.6)}, "n=100, 8 in flight; server time p50 31 ms, n=99"},
	} {
		require.Equal(t, tc.want, flywheel.LatencyBasis(tc.s))
	}
}
