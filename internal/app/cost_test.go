package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/config"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/openai"
	"github.com/flywheel-go/flywheel/internal/openai/openaitest"
)

// A candidate served like llama-server (its replies report their compute
// time) that answers every logged tool call right is recommended, and the
// recommendation states its measured cost per request against
// production's, which comes from the usage the production model logged.
func TestRecommendationStatesMeasuredCost(t *testing.T) {
	t.Parallel()
	model := openaitest.New(openaitest.Options{Chat: func(c openaitest.ChatCall) openaitest.Reply {
		var n int
		_, _ = fmt.Sscanf(c.LastUserContent(), "What is the weather in city %d?", &n)
		return openaitest.Reply{
			Message: openai.Message{ToolCalls: []openai.ToolCall{{ID: "c", Type: "function",
				Function: openai.FunctionCall{Name: "get_weather", Arguments: fmt.Sprintf(`{"city":"city %d"}`, n)}}}},
			// 5 ms of compute, and as long a reply: the compute time
			// counted is at most the evaluation's wall time.
			Timings: &openai.Timings{PromptN: 40, PromptMS: 2, PredictedN: 8, PredictedMS: 3},
			Delay:   5 * time.Millisecond,
		}
	}})
	defer model.Close()

	cfg := testConfig(t)
	cfg.DataSplit.EvalSize = 60
	cfg.Eval.Concurrency = 1
	cfg.Engine.PollInterval = 10 * time.Millisecond
	cfg.NIMs = cfg.NIMs[:1]
	cfg.Cost = config.CostConfig{CPUHourUSD: 0.036, ProductionInputUSDPerMTok: 0.88, ProductionOutputUSDPerMTok: 0.88}
	base, stop := serveWithEndpoint(t, cfg, model.URL)
	defer stop()

	// The logged traffic reports its usage: 180 prompt and 24 completion
	// tokens a request.
	logs := strings.ReplaceAll(toolLogs(200), "]}}\n", `],"usage":{"prompt_tokens":180,"completion_tokens":24,"total_tokens":204}}}`+"\n")
	resp, err := http.Post(base+"/api/logs", "application/x-ndjson", strings.NewReader(logs))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	resp, err = http.Post(base+"/api/jobs", "application/json", bytes.NewBufferString(`{"workload_id":"truth","client_id":"acme"}`))
	require.NoError(t, err)
	var created api.JobResponse
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&created))
	resp.Body.Close()
	var d api.JobDetailResponse
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/api/jobs/" + created.ID)
		require.NoError(t, err)
		defer resp.Body.Close()
		d = api.JobDetailResponse{}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&d))
		return flywheel.RunStatus(d.Status).Terminal()
	}, 60*time.Second, 20*time.Millisecond)
	require.Equal(t, "completed", d.Status)

	for _, e := range d.NIMs[0].Evaluations {
		s := e.Summary
		require.NotNil(t, s, e.EvalType)
		require.Equal(t, flywheel.CostCPUTime, s.CostBasis, e.EvalType)
		require.Equal(t, 60, s.ComputeN)
		// 5 ms × 1 thread = 0.005 CPU-s; × $0.036/3600 s = $0.00000005.
		require.NotNil(t, s.CPUSecondsPerRequest)
		require.InDelta(t, 0.005, *s.CPUSecondsPerRequest, 1e-9)
		require.InDelta(t, 0.00005, s.CostPer1KReq, 1e-12)
		require.NotNil(t, s.Production, e.EvalType)
		require.Equal(t, 60, s.Production.TokensN)
		require.InDelta(t, 204*0.88/1e6*1000, s.Production.CostPer1KReq, 1e-12)
	}
	rec := d.Recommendation
	require.NotNil(t, rec)
	require.Equal(t, config.LocalTinySmall, rec.Candidate, rec.Reason)
	t.Logf("recommendation: %s", rec.Reason)
	require.Contains(t, rec.Reason, "function_name_and_args_accuracy 1.00 [1.00, 1.00] over 60 items, non-inferior to production (margin 0.05")
	require.Contains(t, rec.Reason, "cost $0.00000005/request vs production $0.00018/request (3590× cheaper)")
	require.Contains(t, rec.Reason, "p50 latency ")
	require.Contains(t, rec.Reason, "Cost from 5.0 ms server compute/request × 1 thread(s) = 0.005 CPU-s/request (n=60 replies' llama-server timings) × $0.036/CPU-hour; "+
		"production's from 180+24 logged tokens/request (n=60 logged responses) × $0.88/$0.88 per million input/output tokens.")
	require.NotNil(t, rec.CostPerRequest)
	require.InDelta(t, 0.00000005, *rec.CostPerRequest, 1e-15)
	require.NotNil(t, rec.ProductionCostPerRequest)
	require.InDelta(t, 0.00017952, *rec.ProductionCostPerRequest, 1e-15)
}
