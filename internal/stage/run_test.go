package stage

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

func TestICLBudgetFitsTheSmallestCandidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		icl           flywheel.ICLConfig
		contexts      []int
		wantMax, want int
	}{
		{name: "Blueprint", icl: flywheel.ICLConfig{MaxContextLength: 32768, ReservedTokens: 4096}, contexts: []int{8192, 32768}, wantMax: 8192, want: 4096},
		{name: "UnknownContexts", icl: flywheel.ICLConfig{MaxContextLength: 32768, ReservedTokens: 4096}, contexts: []int{0}, wantMax: 32768, want: 4096},
		{name: "TinyModel", icl: flywheel.ICLConfig{MaxContextLength: 32768, ReservedTokens: 4096}, contexts: []int{2048}, wantMax: 2048, want: 512},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			spec := flywheel.RunSpec{ICL: tc.icl}
			for _, c := range tc.contexts {
				spec.Candidates = append(spec.Candidates, flywheel.NIMConfig{ContextLength: c})
			}
			got := iclBudget(spec)
			require.Equal(t, tc.wantMax, got.MaxContextLength)
			require.Equal(t, tc.want, got.ReservedTokens)
		})
	}
}
