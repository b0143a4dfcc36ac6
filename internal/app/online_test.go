package app_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/capture"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/openai"
	"github.com/flywheel-go/flywheel/internal/openai/openaitest"
)

// weatherCall is an answer calling get_weather for city.
func weatherCall(city string) openaitest.Reply {
	return openaitest.Reply{FinishReason: "tool_calls", Message: openai.Message{Role: "assistant", ToolCalls: []openai.ToolCall{{
		ID: "call_1", Type: "function", Function: openai.FunctionCall{Name: "get_weather", Arguments: `{"city":"` + city + `"}`}}}}}
}

// A candidate promoted in shadow mode that calls the right tool with the
// wrong arguments is scored against production on every request through
// /v1, its agreement is reported with its interval, and the leader's
// check rolls it back once the interval is below the threshold, with the
// window's stats as evidence and an audit entry.
func TestOnlineRollbackThroughGateway(t *testing.T) {
	t.Parallel()
	model := openaitest.New(openaitest.Options{})
	defer model.Close()
	prod := openaitest.New(openaitest.Options{})
	defer prod.Close()
	cfg := testConfig(t)
	cfg.DataSplit.EvalSize = 60
	cfg.Eval.MaxRetries = -1
	cfg.Eval.RequestTimeout = 5 * time.Second
	cfg.Engine.PollInterval = 10 * time.Millisecond
	cfg.NIMs = cfg.NIMs[:1]
	cfg.Capture.UpstreamURL = prod.URL
	cfg.Online.CheckInterval = time.Second
	cfg.Online.MinSamples = 20
	candidate := cfg.NIMs[0].ModelName
	base, stop := serveWithEndpoint(t, cfg, model.URL)
	defer stop()

	post := func(path, body string) (int, []byte) {
		resp, err := http.Post(base+path, "application/json", bytes.NewBufferString(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, out
	}
	get := func(path string, v any) {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
	}
	resp, err := http.Post(base+"/api/logs", "application/x-ndjson", strings.NewReader(toolLogs(200)))
	require.NoError(t, err)
	resp.Body.Close()
	status, out := post("/api/jobs", `{"workload_id":"truth","client_id":"acme"}`)
	require.Equal(t, http.StatusOK, status, string(out))
	var created api.JobResponse
	require.NoError(t, json.Unmarshal(out, &created))
	require.Eventually(t, func() bool {
		var d api.JobDetailResponse
		get("/api/jobs/"+created.ID, &d)
		return flywheel.RunStatus(d.Status).Terminal()
	}, 60*time.Second, 20*time.Millisecond)

	prod.SetChat(func(openaitest.ChatCall) openaitest.Reply { return weatherCall("Oslo") })
	model.SetChat(func(openaitest.ChatCall) openaitest.Reply { return weatherCall("Paris") })
	status, out = post("/api/jobs/"+created.ID+"/promote", `{"candidate":"`+candidate+`","variant":"base","mode":"shadow"}`)
	require.Equal(t, http.StatusOK, status, string(out))
	var p api.Promotion
	require.NoError(t, json.Unmarshal(out, &p))

	const body = `{"model":"prod","messages":[{"role":"user","content":"Weather in Oslo?"}],"tools":[{"type":"function",
"function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]}`
	for range 30 {
		req, err := http.NewRequest(http.MethodPost, base+capture.Path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(capture.HeaderWorkloadID, "truth")
		req.Header.Set(capture.HeaderClientID, "acme")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}

	sent := time.Now()
	var promo api.Promotion
	require.Eventually(t, func() bool {
		get("/api/promotions/"+p.ID, &promo)
		return promo.Status == string(flywheel.PromotionRolledBack)
	}, 30*time.Second, 100*time.Millisecond, "the monitor rolls the promotion back")
	t.Logf("rolled back %s after the last request (online.check_interval %s)", time.Since(sent).Round(time.Millisecond), cfg.Online.CheckInterval)
	require.Contains(t, promo.Reason, "function_name_and_args_accuracy")
	var evidence flywheel.OnlineStats
	require.NoError(t, json.Unmarshal(promo.Evidence, &evidence))
	require.GreaterOrEqual(t, evidence.N, 20)
	d := evidence.Scores[flywheel.ScoreFunctionNameAndArgs]
	require.Zero(t, d.Mean)
	require.Less(t, d.CIHigh, 0.8)
	require.Equal(t, 1.0, evidence.Scores[flywheel.ScoreFunctionName].Mean, "the right tool, the wrong arguments")

	var report []api.OnlineStats
	get("/api/workloads/truth/online?client_id=acme", &report)
	require.Len(t, report, 1)
	require.Equal(t, p.ID, report[0].PromotionID)
	require.False(t, report[0].Active)
	require.GreaterOrEqual(t, report[0].N, 20)
	require.Equal(t, report[0].N, report[0].ProductionLatencyMS.N)

	var page api.AuditPage
	get("/api/audit?action="+flywheel.AuditPromotionRolledBack, &page)
	require.Len(t, page.Entries, 1)
	require.Equal(t, p.ID, page.Entries[0].Target)
}
