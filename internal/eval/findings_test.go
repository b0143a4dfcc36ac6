package eval

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// scored returns a candidate whose items score vals on the deciding metric.
func scored(name string, t flywheel.EvalType, vals ...float64) Candidate {
	c := Candidate{Name: name, EvalType: t}
	for i, v := range vals {
		c.Result.Items = append(c.Result.Items, flywheel.ItemResult{Index: i, Scores: map[string]float64{flywheel.ScoreFunctionNameAndArgs: v}})
	}
	return c
}

// named adds per-item function_name scores to c.
func named(c Candidate, vals []float64) Candidate {
	for i := range c.Result.Items {
		c.Result.Items[i].Scores[flywheel.ScoreFunctionName] = vals[i]
	}
	return c
}

// failing marks the items at idx as failed at the server.
func failing(c Candidate, idx ...int) Candidate {
	for _, i := range idx {
		c.Result.Items[i].ErrorClass = "server_error"
	}
	return c
}

// classed gives every item of c the error class.
func classed(c Candidate, class string) Candidate {
	for i := range c.Result.Items {
		c.Result.Items[i].ErrorClass = class
	}
	return c
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func repeat(v float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func TestFindings(t *testing.T) {
	t.Parallel()
	half := append(repeat(1, 20), repeat(0, 20)...)
	tests := []struct {
		name  string
		cands []Candidate
		want  []string // substrings, one per finding, in order
	}{
		{"icl hurt, fine-tuning helped", []Candidate{
			scored("m", flywheel.EvalBase, half...),
			scored("m", flywheel.EvalICL, repeat(0, 40)...),
			scored("m", flywheel.EvalCustomized, repeat(1, 40)...),
		}, []string{
			"m: few-shot examples (icl-eval) did not help (it hurt): function_name_and_args_accuracy 0.0000 vs 0.5000 as-is, difference -0.5000 [95% CI -0.6",
			"m: fine-tuning (customized-eval) helped: function_name_and_args_accuracy 1.0000 vs 0.5000 as-is, difference +0.5000 [95% CI +0.3",
		}},
		{"no difference at all", []Candidate{
			scored("a", flywheel.EvalBase, repeat(1, 30)...),
			scored("a", flywheel.EvalICL, repeat(1, 30)...),
		}, []string{"a: few-shot examples (icl-eval) made no difference: function_name_and_args_accuracy 1.0000 vs 1.0000 as-is, difference +0.0000 [95% CI +0.0000, +0.0000], n=30"}},
		{"the tool name comes with exact calls", []Candidate{
			named(scored("n", flywheel.EvalBase, repeat(0, 40)...), repeat(1, 40)),
			named(scored("n", flywheel.EvalICL, repeat(0, 40)...), repeat(0, 40)),
		}, []string{"n: few-shot examples (icl-eval) made no difference: function_name_and_args_accuracy 0.0000 vs 0.0000 as-is, " +
			"difference +0.0000 [95% CI +0.0000, +0.0000], n=40; function_name did not help (it hurt): 0.0000 vs 1.0000, difference -1.0000 [95% CI -1.0000, -1.0000]"}},
		{"unclear", []Candidate{
			scored("a", flywheel.EvalBase, half...),
			scored("a", flywheel.EvalICL, append(repeat(0, 1), half[1:]...)...),
		}, []string{"a: few-shot examples (icl-eval) made no clear difference"}},
		{"failed items are left out", []Candidate{
			failing(scored("f", flywheel.EvalBase, repeat(0, 30)...), 0, 1),
			failing(scored("f", flywheel.EvalICL, repeat(0, 30)...), 1, 2),
		}, []string{"f: few-shot examples (icl-eval) made no difference: function_name_and_args_accuracy 0.0000 vs 0.0000 as-is, " +
			"difference +0.0000 [95% CI +0.0000, +0.0000], n=27 (3 items without an answer in one of the two left out)"}},
		{"a wrong answer is an answer", []Candidate{
			failing(scored("w", flywheel.EvalBase, repeat(0, 30)...)),
			classed(scored("w", flywheel.EvalICL, repeat(0, 30)...), ClassWrongName),
		}, []string{"w: few-shot examples (icl-eval) made no difference: function_name_and_args_accuracy 0.0000 vs 0.0000 as-is, " +
			"difference +0.0000 [95% CI +0.0000, +0.0000], n=30"}},
		{"every item failed, no finding", []Candidate{
			failing(scored("x", flywheel.EvalBase, repeat(0, 30)...), seq(30)...),
			scored("x", flywheel.EvalICL, repeat(0, 30)...),
		}, nil},
		{"no base, no finding", []Candidate{
			scored("a", flywheel.EvalICL, half...),
			scored("a", flywheel.EvalCustomized, half...),
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := Findings(tc.cands, flywheel.ScoreFunctionNameAndArgs, Bootstrap{Seed: 1})
			require.Len(t, got, len(tc.want), "%q", got)
			for i, w := range tc.want {
				require.Contains(t, got[i], w)
			}
			rec := Recommend(tc.cands, RecommendConfig{})
			require.Equal(t, got, rec.Findings, "the recommendation carries the findings")
		})
	}
}
