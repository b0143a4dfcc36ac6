package eval

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

func TestCostFiguresPrice(t *testing.T) {
	t.Parallel()

	prices := Prices{CPUHourUSD: 0.036, CPUThreads: 2, ProductionInputUSDPerMTok: 1, ProductionOutputUSDPerMTok: 3}
	tokens := func(s *flywheel.EvalSummary) {
		pt, ct := 100.0, 20.0
		s.TokensN, s.PromptTokens, s.CompletionTokens = 10, &pt, &ct
	}
	tests := []struct {
		name        string
		figures     costFigures
		summary     func(*flywheel.EvalSummary)
		per1KTokens float64
		perHour     float64
		wall        time.Duration
		prices      Prices
		wantBasis   string
		want1K      float64
		wantCPU     float64 // CPU-seconds per request; 0: none measured
		wantSource  string
		wantProd1K  float64 // 0: no production figure
	}{
		{
			// 10 replies of 50 ms compute on 2 threads: 0.1 CPU-s each;
			// 0.1/3600 h × $0.036 = $0.000001 per request.
			name: "CPUTime", figures: costFigures{computeMS: tenOf(50)}, wall: time.Second, prices: prices,
			wantBasis: flywheel.CostCPUTime, want1K: 0.001, wantCPU: 0.1,
			wantSource: "50.0 ms server compute/request × 2 thread(s) = 0.1 CPU-s/request (n=10 replies' llama-server timings) × $0.036/CPU-hour",
		},
		{
			// Parallel slots report overlapping durations: the compute
			// counted is at most the evaluation's wall time (250 ms).
			name: "CPUTimeBoundedByWallTime", figures: costFigures{computeMS: tenOf(50)}, wall: 250 * time.Millisecond, prices: prices,
			wantBasis: flywheel.CostCPUTime, want1K: 0.0005, wantCPU: 0.05, wantSource: "25.0 ms server compute/request",
		},
		{
			name: "NoThreadsMeansOne", figures: costFigures{computeMS: []float64{100, 100, 100, 100}}, wall: time.Second, prices: Prices{CPUHourUSD: 0.036},
			wantBasis: flywheel.CostCPUTime, want1K: 0.001, wantCPU: 0.1, wantSource: "× 1 thread(s)",
		},
		{
			name: "PerTokenPriceWins", figures: costFigures{computeMS: tenOf(50)}, summary: tokens, per1KTokens: 0.002, perHour: 3.6,
			wall: time.Second, prices: prices, wantBasis: flywheel.CostTokens, want1K: 0.24, wantCPU: 0.1,
			wantSource: "100+20 tokens/request (n=10 replies) × $0.002 per 1k tokens",
		},
		{
			name: "PerTokenPriceWithoutUsage", per1KTokens: 0.002, wall: time.Second, prices: prices,
			wantSource: "unknown: priced at $0.002 per 1k tokens but no reply reported its usage",
		},
		{
			// $3.6/hour × 1 s / 10 items = $0.0001 per request.
			name: "HourlyPriceBeforeCPUTime", figures: costFigures{computeMS: tenOf(50)}, perHour: 3.6, wall: time.Second, prices: prices,
			wantBasis: flywheel.CostGPUHour, want1K: 0.1, wantCPU: 0.1, wantSource: "$3.6/hour × 1s of evaluation / 10 items",
		},
		{
			name: "NoCPUPrice", figures: costFigures{computeMS: tenOf(50)}, wall: time.Second,
			wantCPU: 0.05, wantSource: "unknown: no price configured",
		},
		{
			name: "NoTimingsNoPrice", wall: time.Second, prices: prices, wantSource: "unknown: no price configured",
		},
		{
			// 200 prompt + 30 completion tokens: (200×1 + 30×3)/1e6 = $0.00029 per request.
			name: "Production", figures: costFigures{refN: 2, refPrompt: 400, refComplete: 60}, wall: time.Second, prices: prices,
			wantSource: "unknown", wantProd1K: 0.29,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := flywheel.EvalSummary{Items: 10}
			if tt.summary != nil {
				tt.summary(&s)
			}
			tt.figures.price(&s, tt.per1KTokens, tt.perHour, tt.wall, tt.prices)
			require.Equal(t, tt.wantBasis, s.CostBasis)
			require.InDelta(t, tt.want1K, s.CostPer1KReq, 1e-12)
			require.Contains(t, s.CostSource, tt.wantSource)
			if tt.wantCPU == 0 {
				require.Nil(t, s.CPUSecondsPerRequest)
				require.Zero(t, s.ComputeN)
			} else {
				require.NotNil(t, s.CPUSecondsPerRequest)
				require.InDelta(t, tt.wantCPU, *s.CPUSecondsPerRequest, 1e-12)
				require.Equal(t, len(tt.figures.computeMS), s.ComputeN)
				// The server's own time per reply, over the same replies
				// (not bounded by the wall time, unlike the cost).
				require.NotNil(t, s.ServerP50MS)
				require.Equal(t, Percentiles(tt.figures.computeMS, 0.5)[0], *s.ServerP50MS)
			}
			if tt.wantProd1K == 0 {
				require.Nil(t, s.Production)
			} else {
				require.NotNil(t, s.Production)
				require.InDelta(t, tt.wantProd1K, s.Production.CostPer1KReq, 1e-12)
				require.Equal(t, tt.figures.refN, s.Production.TokensN)
				require.Equal(t, "200+30 logged tokens/request (n=2 logged responses) × $1/$3 per million input/output tokens", s.Production.CostSource)
			}
		})
	}
}

func TestCostFiguresAdd(t *testing.T) {
	t.Parallel()

	var c costFigures
	c.add(outcome{computed: true, computeMS: 30, refUsage: true, refPrompt: 100, refComplete: 10})
	c.add(outcome{computed: true, computeMS: 70})
	// A failed request has no compute time to count, but production
	// answered it all the same.
	c.add(outcome{computed: true, computeMS: 999, failure: failTimeout, refUsage: true, refPrompt: 50, refComplete: 6})
	require.Equal(t, costFigures{computeMS: []float64{30, 70}, refN: 2, refPrompt: 150, refComplete: 16}, c)
}

// tenOf is ten replies of ms each.
func tenOf(ms float64) []float64 {
	out := make([]float64, 10)
	for i := range out {
		out[i] = ms
	}
	return out
}
