package eval_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/eval"
	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// candidate builds a candidate whose first `wrong` of n items score 0 on
// function_name_and_args_accuracy and the rest 1.
func candidate(name string, n, wrong int, cost float64) eval.Candidate {
	c := eval.Candidate{Name: name, EvalType: flywheel.EvalBase}
	c.Result.Scores = map[string]float64{flywheel.ScoreFunctionNameAndArgs: float64(n-wrong) / float64(n)}
	c.Result.Summary.CostPer1KReq = cost
	for i := range n {
		v := 1.0
		if i < wrong {
			v = 0
		}
		c.Result.Items = append(c.Result.Items, flywheel.ItemResult{Index: i, Scores: map[string]float64{flywheel.ScoreFunctionNameAndArgs: v}})
	}
	return c
}

func TestCompare(t *testing.T) {
	t.Parallel()

	a, b := candidate("a", 100, 10, 1), candidate("b", 100, 30, 1)
	cp, err := eval.Compare(a, b, flywheel.ScoreFunctionNameAndArgs, eval.Bootstrap{Seed: 3})
	require.NoError(t, err)
	require.Equal(t, 100, cp.N)
	require.InDelta(t, 0.9, cp.MeanA, 1e-12)
	require.InDelta(t, 0.7, cp.MeanB, 1e-12)
	require.InDelta(t, 0.2, cp.Diff.Mean, 1e-12)
	require.Positive(t, cp.Diff.CILow, "a is better on paired items")

	prod, err := eval.CompareToProduction(a, flywheel.ScoreFunctionNameAndArgs, eval.Bootstrap{})
	require.NoError(t, err)
	require.InDelta(t, -0.1, prod.Diff.Mean, 1e-12)
	require.Equal(t, 1.0, prod.MeanB)

	_, err = eval.Compare(a, eval.Candidate{Name: "empty"}, flywheel.ScoreFunctionNameAndArgs, eval.Bootstrap{})
	require.Error(t, err)
}

func TestRecommend(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name      string
		cands     []eval.Candidate
		margin    float64
		want      string
		reasonHas string
	}{
		{
			name:  "CheapestNonInferior",
			cands: []eval.Candidate{candidate("big", 400, 0, 10), candidate("small", 400, 2, 1), candidate("tiny", 400, 120, 0.1)},
			want:  "small", reasonHas: "cheapest",
		},
		{
			name:  "NoneWithinMargin",
			cands: []eval.Candidate{candidate("x", 400, 80, 1), candidate("y", 400, 100, 1)},
			want:  "", reasonHas: "no candidate is non-inferior",
		},
		{
			name:   "WiderMarginAdmitsCheaper",
			cands:  []eval.Candidate{candidate("big", 400, 0, 10), candidate("tiny", 400, 40, 0.1)},
			margin: 0.2, want: "tiny",
		},
		{
			name:  "TooFewItems",
			cands: []eval.Candidate{candidate("a", 5, 0, 1)},
			want:  "", reasonHas: "no candidate",
		},
		{
			name: "NoCandidates", want: "", reasonHas: "no candidate was evaluated",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := eval.Recommend(tt.cands, eval.RecommendConfig{Margin: tt.margin, Bootstrap: eval.Bootstrap{Seed: 1}})
			require.Equal(t, tt.want, rec.Candidate, rec.Reason)
			require.Equal(t, flywheel.ScoreFunctionNameAndArgs, rec.Metric)
			require.Contains(t, rec.Reason, tt.reasonHas)
			if len(tt.cands) > 0 {
				require.GreaterOrEqual(t, len(rec.Evidence), len(tt.cands))
			}
			if tt.want != "" {
				require.Equal(t, flywheel.EvalBase, rec.EvalType)
			}
		})
	}
}
