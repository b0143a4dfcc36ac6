package eval_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/eval"
	"github.com/flywheel-go/flywheel/internal/openai"
	"github.com/flywheel-go/flywheel/internal/openai/openaitest"
)

// TestRunnerBFCLChecker: with ToolCallChecker bfcl, failed items carry
// BFCL's error types, and replayed reference calls pass whether the answer
// comes from an answer file or from the reference itself.
func TestRunnerBFCLChecker(t *testing.T) {
	t.Parallel()
	dir := bfclDir(t)

	t.Run("ErrorTypes", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(dir, "simple.jsonl")
		l := loadLogged(t, path)
		change := func(n int64, m openai.Message) openai.Message {
			tc := m.ToolCalls[0]
			switch (n - 1) % 4 {
			case 0:
				tc.Function.Name += "_x"
			case 1:
				tc.Function.Arguments = strings.Replace(tc.Function.Arguments, "{", `{"zz_extra": true, `, 1)
			case 2:
				return openai.Message{Content: ""}
			}
			m.ToolCalls = []openai.ToolCall{tc}
			return m
		}
		b := setupRun(t, openaitest.Options{Chat: l.policy(t, change)},
			eval.Options{Concurrency: 1, Answers: loadAnswers(t, dir, "simple"), ToolCallChecker: eval.CheckerBFCL}, path)
		res, err := b.runner.Evaluate(context.Background(), b.req, nil)
		require.NoError(t, err)
		q := l.n / 4
		counts := res.Summary.ErrorClasses
		require.Equal(t, q, counts["simple_function_checker:wrong_func_name"], counts)
		require.Equal(t, q, counts["simple_function_checker:unexpected_param"], counts)
		require.Equal(t, q, counts["simple_function_checker:wrong_count"], counts)
		require.InDelta(t, 0.25, res.Scores[eval.ScoreASTAccuracy], 1e-9)
	})

	for _, name := range []string{"simple", "multiple", "parallel", "parallel_multiple"} {
		t.Run("ReferenceReplay/"+name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(dir, name+".jsonl")
			l := loadLogged(t, path)
			b := setupRun(t, openaitest.Options{Chat: l.policy(t, nil)}, eval.Options{Concurrency: 4, ToolCallChecker: eval.CheckerBFCL}, path)
			res, err := b.runner.Evaluate(context.Background(), b.req, nil)
			require.NoError(t, err)
			require.InDelta(t, 1.0, res.Scores[eval.ScoreASTAccuracy], 1e-9, res.Summary.ErrorClasses)
		})
	}
}
