package app

import (
	"context"

	"github.com/flywheel-go/flywheel/internal/config"
	"github.com/flywheel-go/flywheel/internal/eval"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/store"
)

// recommender feeds finalize's recommendation with the stored per-item
// results, so candidates are compared item by item against production.
type recommender struct {
	store *store.Store
	cfg   *config.Config
}

func (r *recommender) Recommend(ctx context.Context, run *flywheel.Run, nims []flywheel.NIMDetail) (*flywheel.Recommendation, error) {
	var cands []eval.Candidate
	for _, n := range nims {
		for _, e := range n.Evaluations {
			if e.FinishedAt == nil || e.Error != "" {
				continue
			}
			res := flywheel.EvalResult{Scores: e.Scores, Details: e.Details}
			if e.Summary != nil {
				res.Summary = *e.Summary
			}
			for offset := 0; ; {
				page, err := r.store.ListItems(ctx, flywheel.ItemFilter{EvaluationID: e.ID, Limit: 1000, Offset: offset})
				if err != nil {
					return nil, err
				}
				res.Items = append(res.Items, page.Items...)
				offset += len(page.Items)
				if len(page.Items) == 0 || offset >= page.Total {
					break
				}
			}
			cands = append(cands, eval.Candidate{Name: n.ModelName, EvalType: e.EvalType, Result: res})
		}
	}
	rec := eval.Recommend(cands, eval.RecommendConfig{Metric: r.cfg.Eval.RecommendationMetric.For(run.WorkloadType), Margin: r.cfg.Eval.RecommendationMargin})
	return &rec, nil
}
