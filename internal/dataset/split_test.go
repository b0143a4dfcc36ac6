package dataset

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSplit(t *testing.T) {
	t.Parallel()

	labelsOf := func(counts ...int) []string {
		var out []string
		for c, n := range counts {
			for range n {
				out = append(out, fmt.Sprintf("tool%d", c))
			}
		}
		return out
	}
	distinct := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("t%d", i)
		}
		return out
	}
	tests := []struct {
		name                         string
		labels                       []string
		evalSize                     int
		valRatio                     float64
		wantEval, wantTrain, wantVal int
	}{
		{name: "Plain", labels: labelsOf(60, 40), evalSize: 20, valRatio: 0.1, wantEval: 20, wantTrain: 72, wantVal: 8},
		{name: "AllSingletons", labels: distinct(50), evalSize: 10, valRatio: 0.2, wantEval: 10, wantTrain: 32, wantVal: 8},
		{name: "OneSingletonClass", labels: append(labelsOf(30), "rare"), evalSize: 5, valRatio: 0.1, wantEval: 5, wantTrain: 23, wantVal: 3},
		{name: "OneClass", labels: labelsOf(25), evalSize: 5, valRatio: 0.2, wantEval: 5, wantTrain: 16, wantVal: 4},
		{name: "EvalSizeEqualsCount", labels: labelsOf(5, 5), evalSize: 10, valRatio: 0.1, wantEval: 8, wantTrain: 1, wantVal: 1},
		{name: "EvalSizeAboveCountNoVal", labels: labelsOf(3), evalSize: 10, valRatio: 0, wantEval: 2, wantTrain: 1, wantVal: 0},
		{name: "ValRatioZero", labels: labelsOf(10, 10), evalSize: 5, valRatio: 0, wantEval: 5, wantTrain: 15, wantVal: 0},
		{name: "TinyRestGetsOneVal", labels: labelsOf(4), evalSize: 2, valRatio: 0.01, wantEval: 2, wantTrain: 1, wantVal: 1},
		{name: "TwoRecords", labels: labelsOf(2), evalSize: 5, valRatio: 0.1, wantEval: 1, wantTrain: 1, wantVal: 0},
		{name: "OneRecord", labels: labelsOf(1), evalSize: 5, valRatio: 0.1, wantEval: 1, wantTrain: 0, wantVal: 0},
		{name: "NoRecords", labels: nil, evalSize: 5, valRatio: 0.1},
		{name: "MoreClassesThanEvalSlots", labels: labelsOf(2, 2, 2, 2, 2, 2, 2, 2, 2, 2), evalSize: 3, valRatio: 0.1, wantEval: 3, wantTrain: 15, wantVal: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			eval, train, val := Split(tt.labels, tt.evalSize, tt.valRatio, rand.New(rand.NewPCG(1, 2)))
			require.Len(t, eval, tt.wantEval)
			require.Len(t, train, tt.wantTrain)
			require.Len(t, val, tt.wantVal)
			all := slices.Concat(eval, train, val)
			slices.Sort(all)
			require.Len(t, slices.Compact(slices.Clone(all)), len(all), "an index in two sets")
			for i, v := range all {
				require.Equal(t, i, v, "every index in exactly one set")
			}
		})
	}
}

func TestSplitIsStratified(t *testing.T) {
	t.Parallel()
	var labels []string
	for c, n := range map[string]int{"a": 60, "b": 30, "c": 10} {
		for range n {
			labels = append(labels, c)
		}
	}
	for seed := range uint64(20) {
		eval, train, _ := Split(labels, 20, 0.1, rand.New(rand.NewPCG(seed, seed)))
		count := map[string]int{}
		for _, i := range eval {
			count[labels[i]]++
		}
		require.Equal(t, map[string]int{"a": 12, "b": 6, "c": 2}, count, "seed %d", seed)
		trainCount := map[string]int{}
		for _, i := range train {
			trainCount[labels[i]]++
		}
		// 80 left, 8 to validation: 48/24/8 → 43 or 44 / 21 or 22 / 7.
		require.InDelta(t, 43.2, trainCount["a"], 1)
		require.InDelta(t, 21.6, trainCount["b"], 1)
		require.InDelta(t, 7.2, trainCount["c"], 1)
	}
}

func TestSplitIsSeeded(t *testing.T) {
	t.Parallel()
	labels := make([]string, 100)
	for i := range labels {
		labels[i] = fmt.Sprintf("t%d", i%7)
	}
	e1, t1, v1 := Split(labels, 10, 0.2, rand.New(rand.NewPCG(7, 7)))
	e2, t2, v2 := Split(labels, 10, 0.2, rand.New(rand.NewPCG(7, 7)))
	require.Equal(t, e1, e2)
	require.Equal(t, t1, t2)
	require.Equal(t, v1, v2)
	e3, _, _ := Split(labels, 10, 0.2, rand.New(rand.NewPCG(8, 8)))
	require.NotEqual(t, e1, e3)
}

func FuzzSplit(f *testing.F) {
	f.Add(uint8(10), uint8(3), uint8(5), uint8(10), uint64(1))
	f.Fuzz(func(t *testing.T, n, classes, evalSize, valPct uint8, seed uint64) {
		labels := make([]string, n)
		for i := range labels {
			labels[i] = fmt.Sprint(i % (int(classes) + 1))
		}
		eval, train, val := Split(labels, int(evalSize), float64(valPct%100)/100, rand.New(rand.NewPCG(seed, seed)))
		all := slices.Concat(eval, train, val)
		slices.Sort(all)
		require.Len(t, all, int(n))
		for i, v := range all {
			require.Equal(t, i, v)
		}
		if n >= 2 {
			require.NotEmpty(t, train)
			if evalSize > 0 {
				require.NotEmpty(t, eval)
			}
		}
		if n >= 3 && valPct%100 > 0 {
			require.NotEmpty(t, val, "val_ratio > 0 leaves a validation record")
		}
	})
}
