package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// TestScoresHeadlineFirst checks that the metric a candidate is judged by
// leads its evaluation's line in watch, so a 120-column terminal shows it.
func TestScoresHeadlineFirst(t *testing.T) {
	t.Parallel()
	scores := map[string]float64{}
	details := map[string]flywheel.ScoreDetail{}
	for _, k := range []string{"ast_accuracy", "function_name", "function_name_and_args_accuracy", "tool_arg_f1", "tool_arg_precision",
		"tool_arg_recall", "tool_call_f1", "tool_call_precision", "tool_call_recall", "tool_calling_correctness"} {
		scores[k] = 0.5
		details[k] = flywheel.ScoreDetail{N: 60, CILow: 0.375, CIHigh: 0.625}
	}
	e := api.Evaluation{EvalType: "base-eval", Scores: scores, ScoreDetails: details}
	got := formatScores(e)
	require.True(t, strings.HasPrefix(got, "function_name_and_args_accuracy=0.500 [0.375, 0.625] n=60, tool_calling_correctness=0.500"), got)
	require.Less(t, strings.Index(got, "function_name=0.500"), strings.Index(got, "ast_accuracy="), "headline scores, then the rest in key order")
	require.Less(t, strings.Index(got, "ast_accuracy="), strings.Index(got, "tool_arg_f1="))

	require.Equal(t, []string{"similarity", "bleu", "rouge_l"}, scoreKeys(map[string]float64{"rouge_l": 1, "similarity": 1, "bleu": 1}))

	var out strings.Builder
	v := &lineView{out: &out, now: func() time.Time { return time.Date(2026, 1, 1, 14, 40, 0, 0, time.UTC) }, seen: map[string]string{}}
	done := api.NewTime(time.Now())
	e.FinishedAt = &done
	require.NoError(t, v.draw(api.JobDetailResponse{ID: "run-1", Status: "completed",
		NIMs: []api.NIMResponse{{ID: "n1", ModelName: "meta/llama-3.2-1b-instruct", Evaluations: []api.Evaluation{e}}}}))
	var line string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, "base-eval") {
			line = l
		}
	}
	require.NotEmpty(t, line, out.String())
	require.Contains(t, string([]rune(line)[:min(120, len([]rune(line)))]), "function_name_and_args_accuracy=0.500")
}
