package dag_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/dag"
	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// simulate runs the DAG to the end: every ready stage gets the outcome the
// table gives it (success by default), in frontier order, and returns the
// order in which stages started and their final statuses.
func simulate(t *testing.T, stages []flywheel.Stage, outcome map[dag.Key]flywheel.StageStatus) ([]dag.Key, map[dag.Key]flywheel.StageStatus) {
	t.Helper()
	idx := map[dag.Key]int{}
	for i, s := range stages {
		idx[dag.KeyOf(s)] = i
	}
	var order []dag.Key
	for round := 0; round < 100; round++ {
		ds := dag.Frontier(stages)
		if len(ds) == 0 {
			break
		}
		for _, d := range ds {
			i := idx[d.Key]
			if d.Skip {
				stages[i].Status = flywheel.StageSkipped
				continue
			}
			order = append(order, d.Key)
			st, ok := outcome[d.Key]
			if !ok {
				st = flywheel.StageSucceeded
			}
			stages[i].Status = st
		}
	}
	final := map[dag.Key]flywheel.StageStatus{}
	for _, s := range stages {
		final[dag.KeyOf(s)] = s.Status
		require.True(t, s.Status.Done(), "stage %v left %s", dag.KeyOf(s), s.Status)
	}
	return order, final
}

func TestBuildAndRun(t *testing.T) {
	t.Parallel()
	cands := []dag.Candidate{{ID: "a", CustomizationEnabled: true}, {ID: "b"}, {ID: "c"}}
	k := func(c string, n flywheel.StageName) dag.Key { return dag.Key{Candidate: c, Name: n} }

	for _, tc := range []struct {
		name    string
		budget  int
		outcome map[dag.Key]flywheel.StageStatus
		check   func(t *testing.T, order []dag.Key, final map[dag.Key]flywheel.StageStatus)
	}{
		{
			name:   "SequentialByDefault",
			budget: 1,
			check: func(t *testing.T, order []dag.Key, final map[dag.Key]flywheel.StageStatus) {
				pos := map[dag.Key]int{}
				for i, key := range order {
					pos[key] = i
				}
				require.Less(t, pos[k("a", flywheel.StageShutdownDeployment)], pos[k("b", flywheel.StageSpinUpNIM)])
				require.Less(t, pos[k("b", flywheel.StageShutdownDeployment)], pos[k("c", flywheel.StageSpinUpNIM)])
				require.Less(t, pos[k("a", flywheel.StageRunCustomizationEval)], pos[k("a", flywheel.StageShutdownDeployment)])
				require.Equal(t, k("", flywheel.StageFinalize), order[len(order)-1])
				require.Len(t, order, 3+6*3+1)
			},
		},
		{
			name:   "BudgetLetsCandidatesOverlap",
			budget: 2,
			check: func(t *testing.T, order []dag.Key, final map[dag.Key]flywheel.StageStatus) {
				pos := map[dag.Key]int{}
				for i, key := range order {
					pos[key] = i
				}
				require.Less(t, pos[k("b", flywheel.StageSpinUpNIM)], pos[k("a", flywheel.StageShutdownDeployment)])
				require.Less(t, pos[k("a", flywheel.StageShutdownDeployment)], pos[k("c", flywheel.StageSpinUpNIM)])
			},
		},
		{
			name:    "FailedBranchSkipsOnlyItsSuccessor",
			budget:  1,
			outcome: map[dag.Key]flywheel.StageStatus{k("a", flywheel.StageStartCustomization): flywheel.StageFailed},
			check: func(t *testing.T, order []dag.Key, final map[dag.Key]flywheel.StageStatus) {
				require.Equal(t, flywheel.StageSkipped, final[k("a", flywheel.StageRunCustomizationEval)])
				require.Equal(t, flywheel.StageSucceeded, final[k("a", flywheel.StageRunBaseEval)])
				require.Equal(t, flywheel.StageSucceeded, final[k("a", flywheel.StageShutdownDeployment)])
				require.Equal(t, flywheel.StageSucceeded, final[k("b", flywheel.StageRunBaseEval)])
				require.Equal(t, flywheel.StageSucceeded, final[k("", flywheel.StageFinalize)])
			},
		},
		{
			name:    "FailedDeploySkipsCandidateButStillShutsDown",
			budget:  1,
			outcome: map[dag.Key]flywheel.StageStatus{k("b", flywheel.StageSpinUpNIM): flywheel.StageFailed},
			check: func(t *testing.T, order []dag.Key, final map[dag.Key]flywheel.StageStatus) {
				for _, n := range []flywheel.StageName{flywheel.StageRunBaseEval, flywheel.StageRunICLEval, flywheel.StageStartCustomization, flywheel.StageRunCustomizationEval} {
					require.Equal(t, flywheel.StageSkipped, final[k("b", n)])
				}
				require.Equal(t, flywheel.StageSucceeded, final[k("b", flywheel.StageShutdownDeployment)])
				require.Equal(t, flywheel.StageSucceeded, final[k("c", flywheel.StageRunBaseEval)])
			},
		},
		{
			name:    "RunLevelFailureSkipsEveryCandidate",
			budget:  1,
			outcome: map[dag.Key]flywheel.StageStatus{k("", flywheel.StageCreateDatasets): flywheel.StageFailed},
			check: func(t *testing.T, order []dag.Key, final map[dag.Key]flywheel.StageStatus) {
				require.Equal(t, flywheel.StageSkipped, final[k("", flywheel.StageWaitForJudge)])
				require.Equal(t, flywheel.StageSkipped, final[k("a", flywheel.StageSpinUpNIM)])
				require.Equal(t, flywheel.StageSucceeded, final[k("a", flywheel.StageShutdownDeployment)])
				require.Equal(t, flywheel.StageSucceeded, final[k("", flywheel.StageFinalize)])
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			order, final := simulate(t, dag.Build("r", cands, tc.budget), tc.outcome)
			tc.check(t, order, final)
		})
	}
}
