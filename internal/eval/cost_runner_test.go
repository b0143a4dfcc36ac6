package eval_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/eval"
	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// A candidate served by llama-server, with no price of its own, is priced
// by the compute time its replies report; production by the usage its
// logged responses report.
func TestRunnerPricesMeasuredCPUTime(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	for i := range 5 {
		b, err := json.Marshal(map[string]any{
			"request": map[string]any{"model": "prod", "messages": []map[string]string{{"role": "user", "content": fmt.Sprint("q", i)}}},
			"response": map[string]any{"id": fmt.Sprint(i), "choices": []map[string]any{{"message": map[string]any{"role": "assistant", "content": "hi"}}},
				"usage": map[string]int{"prompt_tokens": 180, "completion_tokens": 20, "total_tokens": 200}},
		})
		require.NoError(t, err)
		buf.Write(b)
		buf.WriteByte('\n')
	}
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, eval.EvalFileName), buf.Bytes(), 0o600))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(10 * time.Millisecond) // the wall time bounds the compute time counted
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],` +
			`"usage":{"prompt_tokens":30,"completion_tokens":2,"total_tokens":32},"timings":{"prompt_n":30,"prompt_ms":1.5,"predicted_n":2,"predicted_ms":2.5}}`))
	}))
	defer srv.Close()
	r := eval.NewRunner(eval.Options{Concurrency: 1, Prices: eval.Prices{CPUHourUSD: 0.036, CPUThreads: 2,
		ProductionInputUSDPerMTok: 1, ProductionOutputUSDPerMTok: 2}})
	res, err := r.Evaluate(context.Background(), flywheel.EvalRequest{EvaluationID: "e", EvalType: flywheel.EvalBase,
		WorkloadType: flywheel.WorkloadGeneric, Target: flywheel.Endpoint{BaseURL: srv.URL, Model: "cand"},
		Dataset: flywheel.Dataset{Path: dir}}, nil)
	require.NoError(t, err)
	s := res.Summary
	require.Equal(t, flywheel.CostCPUTime, s.CostBasis)
	require.Equal(t, 5, s.ComputeN)
	// 4 ms × 2 threads = 0.008 CPU-s per request; × $0.036/3600 s = $8e-8.
	require.NotNil(t, s.CPUSecondsPerRequest)
	require.InDelta(t, 0.008, *s.CPUSecondsPerRequest, 1e-9)
	require.InDelta(t, 8e-5, s.CostPer1KReq, 1e-12)
	require.Contains(t, s.CostSource, "n=5 replies' llama-server timings")
	// The server's own time per reply, 1.5 + 2.5 ms, apart from the 10 ms
	// each request took.
	require.NotNil(t, s.ServerP50MS)
	require.InDelta(t, 4.0, *s.ServerP50MS, 1e-9)
	require.Greater(t, *s.LatencyP50MS, 10.0)
	require.Equal(t, 1, s.Concurrency)
	// (180×1 + 20×2)/1e6 = $0.00022 per request.
	require.NotNil(t, s.Production)
	require.Equal(t, 5, s.Production.TokensN)
	require.InDelta(t, 0.22, s.Production.CostPer1KReq, 1e-12)
}

// costly builds a candidate that scores 1 on all n items with the given
// cost figures.
func costly(name string, n int, cost float64, basis string) eval.Candidate {
	c := candidate(name, n, 0, cost)
	c.EvalType = flywheel.EvalCustomized
	s := &c.Result.Summary
	s.CostBasis, s.CostSource = basis, "measured "+name
	if basis == "" {
		s.CostSource = ""
	}
	p50 := 21.0
	s.LatencyP50MS, s.LatencyN = &p50, n
	s.Production = &flywheel.ProductionCost{TokensN: n, PromptTokens: 180, CompletionTokens: 24, CostPer1KReq: 0.16, CostSource: "logged usage"}
	c.Result.Details = map[string]flywheel.ScoreDetail{flywheel.ScoreFunctionNameAndArgs: {N: n, Mean: 1, CILow: 0.93, CIHigh: 1}}
	return c
}

func TestRecommendStatesCost(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name        string
		cands       []eval.Candidate
		want        string
		reasonHas   []string
		wantCost    float64 // 0: none
		evidenceHas string
	}{
		{
			name:  "CheaperThanProduction",
			cands: []eval.Candidate{costly("local/tiny-m", 60, 0.0021, flywheel.CostCPUTime)},
			want:  "local/tiny-m",
			reasonHas: []string{"local/tiny-m (customized-eval): function_name_and_args_accuracy 1.00 [0.93, 1.00] over 60 items, non-inferior to production (margin 0.05",
				"cost $0.0000021/request vs production $0.00016/request (76× cheaper)", "p50 latency 21 ms (n=60)",
				"Cost from measured local/tiny-m; production's from logged usage."},
			wantCost: 0.0000021, evidenceHas: "cost $0.0000021/request",
		},
		{
			name:      "DearerThanProduction",
			cands:     []eval.Candidate{costly("hosted", 60, 0.4, flywheel.CostTokens)},
			want:      "hosted",
			reasonHas: []string{"cost $0.0004/request vs production $0.00016/request (2.5× dearer)"},
			wantCost:  0.0004,
		},
		{
			// A candidate whose cost is unknown is not the cheapest.
			name:      "UnknownCostComesLast",
			cands:     []eval.Candidate{costly("unpriced", 60, 0, ""), costly("priced", 60, 0.5, flywheel.CostTokens)},
			want:      "priced",
			reasonHas: []string{"(3.1× dearer)"}, wantCost: 0.0005, evidenceHas: "cost unknown",
		},
		{
			name:      "OnlyUnknownCost",
			cands:     []eval.Candidate{costly("unpriced", 60, 0, "")},
			want:      "unpriced",
			reasonHas: []string{"; cost unknown;", "Cost from unknown;"},
		},
		{
			name: "NoneQualifiesStillStatesCosts",
			cands: []eval.Candidate{candidate("x", 400, 80, 0.002), func() eval.Candidate {
				c := costly("y", 400, 0.001, flywheel.CostCPUTime)
				c.Result.Items = candidate("y", 400, 100, 0).Result.Items
				return c
			}()},
			reasonHas: []string{"no candidate is non-inferior", "cost per request: x (base-eval) $0.000002/request, y (customized-eval) $0.000001/request, production $0.00016/request"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := eval.Recommend(tt.cands, eval.RecommendConfig{Bootstrap: eval.Bootstrap{Seed: 1}})
			require.Equal(t, tt.want, rec.Candidate, rec.Reason)
			for _, s := range tt.reasonHas {
				require.Contains(t, rec.Reason, s)
			}
			if tt.wantCost == 0 {
				require.Nil(t, rec.CostPerRequest)
			} else {
				require.NotNil(t, rec.CostPerRequest)
				require.InDelta(t, tt.wantCost, *rec.CostPerRequest, 1e-15)
			}
			require.NotNil(t, rec.ProductionCostPerRequest)
			require.InDelta(t, 0.00016, *rec.ProductionCostPerRequest, 1e-15)
			if tt.evidenceHas != "" {
				require.Contains(t, fmt.Sprint(rec.Evidence), tt.evidenceHas)
			}
		})
	}
}
