package history_test

import (
	"context"
	"testing"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/history"
	"github.com/flywheel-go/flywheel/internal/history/historytest"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

// BenchmarkCompareJobs compares two runs of three evaluations (base, icl,
// customized) of 1,000 items each, 900 of them shared, on SQLite: reading
// the items, pairing them and the paired tests.
func BenchmarkCompareJobs(b *testing.B) {
	s := storetest.Open(b, store.SQLite)
	evals := func(from int) []historytest.Eval {
		var out []historytest.Eval
		for _, t := range []flywheel.EvalType{flywheel.EvalBase, flywheel.EvalICL, flywheel.EvalCustomized} {
			out = append(out, historytest.Eval{Type: t, Items: historytest.Items(from, 1000, func(i int) float64 { return float64(i % 2) })})
		}
		return out
	}
	a := historytest.AddRun(b, s, historytest.RunSpec{Start: start, Evals: evals(0)})
	c := historytest.AddRun(b, s, historytest.RunSpec{Start: start.Add(1), Evals: evals(100)})
	svc := &history.Service{Store: s}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		cmp, err := svc.CompareJobs(ctx, a, c)
		if err != nil || cmp.SharedItems != 900 || cmp.Scores[0].Paired.N != 900 {
			b.Fatalf("compare: %v %+v", err, cmp)
		}
	}
}
