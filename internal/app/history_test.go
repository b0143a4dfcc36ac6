package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/openai"
	"github.com/flywheel-go/flywheel/internal/openai/openaitest"
)

// Two real runs of one workload on the same logs, the first against a
// model that never calls the tool and the second against one that always
// answers right: the history lists both, oldest first, and the comparison
// pairs every evaluation item (the same seed, so the same eval split) and
// finds run B better by exactly 1 on every item.
func TestHistoryAndCompareOfRealRuns(t *testing.T) {
	t.Parallel()
	var right atomic.Bool
	model := openaitest.New(openaitest.Options{Chat: func(c openaitest.ChatCall) openaitest.Reply {
		if !right.Load() {
			return openaitest.Reply{Message: openai.Message{Role: "assistant", Content: "I cannot help."}}
		}
		var n int
		_, _ = fmt.Sscanf(c.LastUserContent(), "What is the weather in city %d?", &n)
		return openaitest.Reply{Message: openai.Message{Role: "assistant", ToolCalls: []openai.ToolCall{{ID: "c", Type: "function",
			Function: openai.FunctionCall{Name: "get_weather", Arguments: fmt.Sprintf(`{"city":"city %d"}`, n)}}}}}
	}})
	defer model.Close()

	cfg := testConfig(t)
	cfg.DataSplit.EvalSize = 40
	cfg.Engine.PollInterval = 10 * time.Millisecond
	cfg.NIMs = cfg.NIMs[:1]
	cfg.NIMs[0].CustomizationEnabled = false
	base, stop := serveWithEndpoint(t, cfg, model.URL)
	defer stop()

	getJSON := func(path string, out any) {
		t.Helper()
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", path, body)
		require.NoError(t, json.Unmarshal(body, out), "%s", body)
	}
	resp, err := http.Post(base+"/api/logs", "application/x-ndjson", strings.NewReader(toolLogs(150)))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	runJob := func() string {
		t.Helper()
		resp, err := http.Post(base+"/api/jobs", "application/json", bytes.NewBufferString(`{"workload_id":"truth","client_id":"acme","data_split_config":{"random_seed":7}}`))
		require.NoError(t, err)
		var created api.JobResponse
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&created))
		resp.Body.Close()
		require.Eventually(t, func() bool {
			var d api.JobDetailResponse
			getJSON("/api/jobs/"+created.ID, &d)
			return flywheel.RunStatus(d.Status).Terminal()
		}, 60*time.Second, 20*time.Millisecond)
		return created.ID
	}
	a := runJob()
	right.Store(true)
	b := runJob()

	var ws api.WorkloadsResponse
	getJSON("/api/workloads", &ws)
	require.Len(t, ws.Workloads, 1)
	require.Equal(t, 2, ws.Workloads[0].FinishedRuns)
	require.Equal(t, b, ws.Workloads[0].LastRun.ID)

	var h api.WorkloadHistoryResponse
	getJSON("/api/workloads/truth/history", &h)
	require.Len(t, h.Runs, 2)
	require.Equal(t, []string{a, b}, []string{h.Runs[0].ID, h.Runs[1].ID})
	require.Equal(t, flywheel.ScoreFunctionNameAndArgs, h.Metrics[0])
	for i, want := range []float64{0, 1} {
		require.NotEmpty(t, h.Runs[i].Evaluations)
		for _, e := range h.Runs[i].Evaluations {
			d := e.Scores[flywheel.ScoreFunctionNameAndArgs]
			require.Equal(t, 40, d.N, "%s %s", h.Runs[i].ID, e.EvalType)
			require.Equal(t, want, d.Mean, "%s %s", h.Runs[i].ID, e.EvalType)
		}
	}

	var c api.JobCompareResponse
	getJSON("/api/jobs/compare?a="+a+"&b="+b, &c)
	require.Equal(t, "record", c.PairedBy, "both runs have manifests")
	require.Equal(t, 40, c.SharedItems, "the same logs and seed give the same evaluation split")
	require.Zero(t, c.AmbiguousItems)
	require.Equal(t, map[string]int{"get_weather": 40}, c.B.Tools)
	require.NotEmpty(t, c.Scores)
	for _, s := range c.Scores {
		require.NotNil(t, s.Paired, "%s %s", s.EvalType, s.Metric)
		require.Equal(t, 40, s.Paired.N)
		if s.Metric == flywheel.ScoreFunctionNameAndArgs {
			require.Equal(t, 1.0, s.Paired.Diff.Mean)
			require.Equal(t, flywheel.VerdictBetter, s.Paired.Verdict)
		}
	}
	t.Logf("recommendation: %s", c.RecommendationChange)
}
