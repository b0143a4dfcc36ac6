package server_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/server/servertest"
)

// failingDetail is a completed run whose first candidate's base evaluation
// got HTTP 500 for every item and whose ICL evaluation's judge failed on
// most items; the run was created without a judge (a remote one with no
// url), though it has a judge row.
func failingDetail(b *testBundle) {
	b.jobs.GetJobFunc = func(_ context.Context, id string) (*flywheel.JobDetail, error) {
		d := servertest.Detail(id, flywheel.RunCompleted, start)
		d.Run.Spec.Judge = flywheel.JudgeConfig{DeploymentType: flywheel.DeploymentTypeRemote, ModelName: "judge"} // no url: no judge
		d.Judge = &flywheel.LLMJudgeRun{ID: id, RunID: id, ModelName: "judge", DeploymentType: flywheel.DeploymentTypeRemote, DeploymentStatus: flywheel.DeploymentReady}
		d.NIMs[0].Evaluations[0].Summary = &flywheel.EvalSummary{Items: 60, Errors: 60, Failures: flywheel.FailureCounts{ServerError: 60},
			FirstError: "line 1: status 500: injected failure"}
		d.NIMs[0].Evaluations[1].Summary = &flywheel.EvalSummary{Items: 10, Answered: 10, JudgeCalls: 10, JudgeFailures: 7,
			FirstJudgeError: "line 2: judge: status 401: invalid api key", LatencyN: 10, LatencyP50MS: new(12.0), LatencyP95MS: new(20.0)}
		return d, nil
	}
}

func TestJobDetailTellsTheTruth(t *testing.T) {
	t.Parallel()
	b := setup(t)
	failingDetail(b)
	resp := do(t, b.server(), "GET", "/api/jobs/run-1", "")
	require.Equal(t, 200, resp.status, "body: %s", resp.body)
	var d api.JobDetailResponse
	require.NoError(t, json.Unmarshal(resp.body, &d))
	require.Nil(t, d.LLMJudge, "no judge configured: null, not an empty ready judge")
	require.Len(t, d.Warnings, 2)
	w := d.Warnings[0]
	require.Equal(t, flywheel.WarningEvalFailures, w.Kind)
	require.Equal(t, "meta/llama-3.2-1b-instruct", w.Candidate)
	require.Equal(t, flywheel.EvalBase, w.EvalType)
	require.Equal(t, 60, w.Failed)
	require.Equal(t, 60, w.Items)
	require.Equal(t, 60, w.Counts["server_error"])
	require.Equal(t, "meta/llama-3.2-1b-instruct base-eval: 60 of 60 items got no usable reply (server_error 60, timeout 0, unparseable 0, connection 0); "+
		"its scores say little about the model; first error: line 1: status 500: injected failure", w.Message)
	w = d.Warnings[1]
	require.Equal(t, flywheel.WarningJudgeFailures, w.Kind)
	require.Equal(t, flywheel.EvalICL, w.EvalType)
	require.Equal(t, 7, w.Failed)
	require.Equal(t, 10, w.Items)
	require.Contains(t, w.Message, "the LLM judge failed on 7 of 10 items")
	require.Contains(t, w.Message, "first error: line 2: judge: status 401: invalid api key")

	var raw map[string]any
	require.NoError(t, json.Unmarshal(resp.body, &raw))
	s := raw["nims"].([]any)[0].(map[string]any)["evaluations"].([]any)[0].(map[string]any)["summary"].(map[string]any)
	require.Nil(t, s["latency_p50_ms"], "no percentile over 0 answered requests: null")
	require.Nil(t, s["prompt_tokens_per_request"])
	require.EqualValues(t, 0, s["latency_n"])
	require.Equal(t, map[string]any{"server_error": 60.0, "timeout": 0.0, "unparseable": 0.0, "connection": 0.0}, s["failures"])
}

func TestJobDetailWithoutWarnings(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.jobs.GetJobFunc = func(_ context.Context, id string) (*flywheel.JobDetail, error) {
		return servertest.Detail(id, flywheel.RunCompleted, start), nil
	}
	resp := do(t, b.server(), "GET", "/api/jobs/run-1", "")
	require.Equal(t, 200, resp.status)
	require.Contains(t, string(resp.body), `"warnings":[]`, "an empty list, not null")
	var d api.JobDetailResponse
	require.NoError(t, json.Unmarshal(resp.body, &d))
	require.NotNil(t, d.LLMJudge, "a configured judge is shown")
	require.Equal(t, "meta/llama-3.3-70b-instruct", d.LLMJudge.ModelName)
}
