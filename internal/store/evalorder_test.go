package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

// TestEvaluationsListedBaseICLCustomized creates a candidate's evaluations
// in the reverse order and lists them base, icl, customized: one order
// whatever finished or started first.
func TestEvaluationsListedBaseICLCustomized(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			t.Parallel()
			s := storetest.Open(t, d)
			ctx := context.Background()
			r := newRun(t, s.Queries, time.Now(), "wl-order")
			n := &flywheel.NIMRun{ID: store.NewID(time.Now()), RunID: r.ID, ModelName: "m/a", Status: flywheel.NIMPending, DeploymentStatus: flywheel.DeploymentPending}
			require.NoError(t, s.CreateNIM(ctx, n))
			for _, et := range []flywheel.EvalType{flywheel.EvalCustomized, flywheel.EvalICL, flywheel.EvalBase} {
				_, err := s.UpsertEvaluation(ctx, n.ID, et)
				require.NoError(t, err)
				time.Sleep(2 * time.Millisecond) // distinct start times, latest last
			}
			evals, err := s.ListEvaluations(ctx, n.ID)
			require.NoError(t, err)
			var got []flywheel.EvalType
			for _, e := range evals {
				got = append(got, e.EvalType)
			}
			require.Equal(t, []flywheel.EvalType{flywheel.EvalBase, flywheel.EvalICL, flywheel.EvalCustomized}, got)
		})
	}
}
