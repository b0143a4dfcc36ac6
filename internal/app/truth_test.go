package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/app"
	"github.com/flywheel-go/flywheel/internal/config"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/flywheeltest"
	"github.com/flywheel-go/flywheel/internal/openai/openaitest"
)

// endpointPlatform is the scripted platform whose every deployment is
// served by one OpenAI-compatible server.
type endpointPlatform struct {
	*flywheeltest.Platform
	url string
}

func (p *endpointPlatform) Deploy(ctx context.Context, req flywheel.DeployRequest) (flywheel.Deployment, error) {
	d, err := p.Platform.Deploy(ctx, req)
	d.Endpoint.BaseURL = p.url
	return d, err
}

func (p *endpointPlatform) Deployment(ctx context.Context, id string) (flywheel.Deployment, error) {
	d, err := p.Platform.Deployment(ctx, id)
	d.Endpoint.BaseURL = p.url
	return d, err
}

// toolLogs is n logged tool calls in the blueprint's log format.
func toolLogs(n int) string {
	var b strings.Builder
	tools := `[{"type":"function","function":{"name":"get_weather","description":"Weather of a city","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]`
	for i := range n {
		fmt.Fprintf(&b, `{"workload_id":"truth","client_id":"acme","timestamp":%d,"request":{"model":"prod","messages":[{"role":"user","content":"What is the weather in city %d?"}],"tools":%s},`+
			`"response":{"choices":[{"message":{"role":"assistant","tool_calls":[{"id":"c%d","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"city %d\"}"}}]}}]}}`+"\n",
			1700000000+i, i, tools, i, i)
	}
	return b.String()
}

// serveWithEndpoint opens and starts the app on cfg with a fake platform
// whose deployments answer at modelURL, and serves its API at base; stop
// closes the server, then the app.
func serveWithEndpoint(t *testing.T, cfg *config.Config, modelURL string) (base string, stop func()) {
	t.Helper()
	ctx := context.Background()
	a, err := app.Open(ctx, cfg, slog.New(slog.DiscardHandler), app.Options{API: true, Workers: true,
		Platform: &endpointPlatform{Platform: &flywheeltest.Platform{}, url: modelURL}})
	require.NoError(t, err)
	if err := a.Start(ctx); err != nil {
		a.Close()
		require.NoError(t, err)
	}
	srv := httptest.NewServer(a.Handler)
	return srv.URL, func() {
		srv.Close()
		a.Close()
	}
}

// runAgainst runs one job of 200 logged records (60 held out for
// evaluation) whose candidates are all served by model, with the judge at
// judgeURL ("": none), and returns the API's job detail.
func runAgainst(t *testing.T, model *openaitest.Server, judgeURL string) api.JobDetailResponse {
	t.Helper()
	cfg := testConfig(t)
	cfg.DataSplit.EvalSize = 60
	cfg.Eval.MaxRetries = -1 // every request fails the same way: retrying only slows the test
	cfg.Eval.RequestTimeout = 5 * time.Second
	cfg.Engine.PollInterval = 10 * time.Millisecond
	cfg.NIMs = cfg.NIMs[:1]
	if judgeURL != "" {
		cfg.Judge = flywheel.JudgeConfig{DeploymentType: flywheel.DeploymentTypeRemote, URL: judgeURL, ModelName: "judge"}
	}
	require.False(t, judgeURL == "" && cfg.HasJudge(), "the default config has no judge")
	base, stop := serveWithEndpoint(t, cfg, model.URL)
	defer stop()

	resp, err := http.Post(base+"/api/logs", "application/x-ndjson", strings.NewReader(toolLogs(200)))
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
	return d
}

// A model server that answers HTTP 500 to every request: the run
// completes, every evaluation counts 60 server errors, states no latency
// or tokens (n=0), and the job detail carries a warning for each.
func TestRunAgainstAServerThatAlwaysFails(t *testing.T) {
	t.Parallel()
	model := openaitest.New(openaitest.Options{ErrorRate: 1, ErrorStatus: http.StatusInternalServerError})
	defer model.Close()
	d := runAgainst(t, model, "")
	require.Equal(t, "completed", d.Status, "a measured failure is a result, not a crash")
	require.Nil(t, d.LLMJudge, "no judge configured: null")
	require.Len(t, d.NIMs, 1)
	evals := d.NIMs[0].Evaluations
	require.Len(t, evals, 3, "base, icl and customized")
	for _, e := range evals {
		s := e.Summary
		require.NotNil(t, s, e.EvalType)
		require.Equal(t, 60, s.Items, e.EvalType)
		require.Zero(t, s.Answered)
		require.Equal(t, 60, s.Errors)
		require.Equal(t, flywheel.FailureCounts{ServerError: 60}, s.Failures)
		require.Zero(t, s.LatencyN)
		require.Nil(t, s.LatencyP50MS)
		require.Nil(t, s.LatencyP95MS)
		require.Zero(t, s.TokensN)
		require.Nil(t, s.PromptTokens)
		require.Contains(t, s.FirstError, "status 500: injected failure")
		require.Equal(t, 0.0, e.Scores[flywheel.ScoreFunctionNameAndArgs])
		b, err := json.Marshal(s)
		require.NoError(t, err)
		t.Logf("%s summary: %s", e.EvalType, b)
	}
	require.Len(t, d.Warnings, 3)
	for i, w := range d.Warnings {
		require.Equal(t, flywheel.WarningEvalFailures, w.Kind)
		require.Equal(t, config.LocalTinySmall, w.Candidate)
		require.Equal(t, evals[i].EvalType, string(w.EvalType))
		require.Equal(t, 60, w.Failed)
		require.Equal(t, 60, w.Items)
		require.Contains(t, w.Message, config.LocalTinySmall+" "+evals[i].EvalType+": 60 of 60 items got no usable reply (server_error 60, timeout 0, unparseable 0, connection 0)")
		require.Contains(t, w.Message, "first error: line ")
		t.Logf("warning: %s", w.Message)
	}
	require.GreaterOrEqual(t, model.Count("/v1/chat/completions"), 180, "every item was asked")
	require.NotNil(t, d.Recommendation)
	require.Empty(t, d.Recommendation.Findings, "no finding compares evaluations whose items all failed")
}

// A judge that answers HTTP 500 to every request while the candidate
// answers well: the scores stand, the judge's failures are counted and the
// job detail warns of them.
func TestRunWithAJudgeThatAlwaysFails(t *testing.T) {
	t.Parallel()
	model := openaitest.New(openaitest.Options{})
	defer model.Close()
	judge := openaitest.New(openaitest.Options{ErrorRate: 1, ErrorStatus: http.StatusInternalServerError})
	defer judge.Close()
	d := runAgainst(t, model, judge.URL+"/v1/chat/completions")
	require.Equal(t, "completed", d.Status)
	require.NotNil(t, d.LLMJudge)
	require.Equal(t, "judge", d.LLMJudge.ModelName)
	base := d.NIMs[0].Evaluations[0]
	require.Equal(t, 60, base.Summary.Answered, "the candidate answered every item")
	require.Equal(t, 60, base.Summary.JudgeCalls)
	require.Equal(t, 60, base.Summary.JudgeFailures)
	require.Contains(t, base.Summary.FirstJudgeError, "judge:")
	require.NotContains(t, base.Scores, flywheel.ScoreToolCallingCorrectness, "no judge score, not a zero")
	var judgeWarnings int
	for _, w := range d.Warnings {
		require.Equal(t, flywheel.WarningJudgeFailures, w.Kind, w.Message)
		require.Contains(t, w.Message, "the LLM judge failed on 60 of 60 items")
		judgeWarnings++
	}
	require.Equal(t, 3, judgeWarnings)
	require.Positive(t, judge.Count("/v1/chat/completions"))
}
