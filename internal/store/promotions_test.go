package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

func TestPromotions(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			t.Parallel()
			s := storetest.Open(t, d)
			ctx := context.Background()
			at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)

			_, err := s.ActivePromotion(ctx, "w", "c")
			require.True(t, errors.Is(err, flywheel.ErrNotFound))

			first := &flywheel.PromotionRoute{Promotion: flywheel.Promotion{WorkloadID: "w", ClientID: "c", JobID: "j1",
				Candidate: "m1", Variant: flywheel.VariantICL, Mode: flywheel.ModeCanary, CanaryPercent: 20,
				CreatedBy: "admin (t1)", CreatedAt: at}, ICLPrompt: "examples"}
			replaced, err := s.CreatePromotion(ctx, first)
			require.NoError(t, err)
			require.Nil(t, replaced)
			require.NotEmpty(t, first.ID)
			require.NoError(t, s.SetPromotionServing(ctx, first.ID, "http://127.0.0.1:9", "m1-served", "dep-1"))

			got, err := s.ActivePromotion(ctx, "w", "c")
			require.NoError(t, err)
			require.Equal(t, first.ID, got.ID)
			require.Equal(t, "examples", got.ICLPrompt)
			require.Equal(t, "dep-1", got.DeploymentID)
			require.Equal(t, "http://127.0.0.1:9", got.Endpoint)
			require.Equal(t, "m1-served", got.ServedModel)
			require.Equal(t, 20.0, got.CanaryPercent)
			require.Equal(t, at, got.CreatedAt)
			require.Equal(t, flywheel.PromotionActive, got.Status)
			require.Nil(t, got.EndedAt)

			// Another client's promotion is independent.
			other := &flywheel.PromotionRoute{Promotion: flywheel.Promotion{WorkloadID: "w", ClientID: "c2", JobID: "j1",
				Candidate: "m1", Variant: flywheel.VariantBase, Mode: flywheel.ModeShadow, CreatedAt: at}}
			_, err = s.CreatePromotion(ctx, other)
			require.NoError(t, err)

			second := &flywheel.PromotionRoute{Promotion: flywheel.Promotion{WorkloadID: "w", ClientID: "c", JobID: "j2",
				Candidate: "m2", Variant: flywheel.VariantBase, Mode: flywheel.ModeFull, CreatedAt: at.Add(time.Minute)}}
			replaced, err = s.CreatePromotion(ctx, second)
			require.NoError(t, err)
			require.NotNil(t, replaced)
			require.Equal(t, first.ID, replaced.ID)
			require.Equal(t, "dep-1", replaced.DeploymentID, "the service stops what served the replaced one")

			old, err := s.GetPromotion(ctx, first.ID)
			require.NoError(t, err)
			require.Equal(t, flywheel.PromotionReplaced, old.Status)
			require.Equal(t, "replaced by promotion "+second.ID, old.Reason)
			require.Equal(t, at.Add(time.Minute), *old.EndedAt)

			active, err := s.ActivePromotions(ctx)
			require.NoError(t, err)
			require.Len(t, active, 2)

			evidence := json.RawMessage(`{"n":50,"function_name_and_args_accuracy":0.41}`)
			ended, err := s.EndPromotion(ctx, second.ID, flywheel.PromotionRolledBack, "agreement dropped", evidence, at.Add(time.Hour))
			require.NoError(t, err)
			require.True(t, ended)
			ended, err = s.EndPromotion(ctx, second.ID, flywheel.PromotionRolledBack, "again", nil, at.Add(2*time.Hour))
			require.NoError(t, err)
			require.False(t, ended, "an ended promotion stays as it ended")
			got, err = s.GetPromotion(ctx, second.ID)
			require.NoError(t, err)
			require.Equal(t, flywheel.PromotionRolledBack, got.Status)
			require.Equal(t, "agreement dropped", got.Reason)
			require.JSONEq(t, string(evidence), string(got.Evidence))
			_, err = s.ActivePromotion(ctx, "w", "c")
			require.True(t, errors.Is(err, flywheel.ErrNotFound))

			list, err := s.ListPromotions(ctx, "w", "c")
			require.NoError(t, err)
			require.Len(t, list, 2)
			require.Equal(t, second.ID, list[0].ID, "newest first")
			list, err = s.ListPromotions(ctx, "w", "")
			require.NoError(t, err)
			require.Len(t, list, 3)

			_, err = s.GetPromotion(ctx, "000000000000000000000000")
			require.True(t, errors.Is(err, flywheel.ErrNotFound))
		})
	}
}
