package eval

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// Score keys we add to the blueprint's (flywheel.Score*).
const (
	ScoreToolCallPrecision = "tool_call_precision"
	ScoreToolCallRecall    = "tool_call_recall"
	ScoreToolCallF1        = "tool_call_f1"
	ScoreToolArgPrecision  = "tool_arg_precision"
	ScoreToolArgRecall     = "tool_arg_recall"
	ScoreToolArgF1         = "tool_arg_f1"
	// ScoreASTAccuracy is the fraction of items the BFCL-style checker
	// accepts.
	ScoreASTAccuracy = "ast_accuracy"
	ScoreExactMatch  = "exact_match"
	ScoreTokenF1     = "token_f1"
	ScoreRougeL      = "rouge_l"
)

// ProductionName names the production model (the logged answers) in
// comparisons.
const ProductionName = "production"

// MarginDefault is the non-inferiority margin, as a fraction of the
// metric's maximum, used when RecommendConfig.Margin is zero.
const MarginDefault = 0.05

// MinPairedItemsDefault is the fewest paired items a verdict needs.
const MinPairedItemsDefault = 20

// MetricMax returns the best value of a score: 10 for the judge's
// similarity and 1 for every other score.
func MetricMax(metric string) float64 {
	if metric == flywheel.ScoreSimilarity {
		return 10
	}
	return 1
}

// Candidate is one evaluated candidate: a model under one evaluation type,
// with its result. Result.Items must hold the per-item scores (by Index)
// for paired comparisons.
type Candidate struct {
	Name     string
	EvalType flywheel.EvalType
	Result   flywheel.EvalResult
}

func (c Candidate) label() string {
	if c.EvalType == "" {
		return c.Name
	}
	return fmt.Sprintf("%s (%s)", c.Name, c.EvalType)
}

// Comparison is a paired comparison of A and B on one metric over the
// items both have a score for. Diff describes the per-item differences
// A − B.
type Comparison struct {
	Metric string               `json:"metric"`
	A      string               `json:"a"`
	B      string               `json:"b"`
	N      int                  `json:"n"`
	MeanA  float64              `json:"mean_a"`
	MeanB  float64              `json:"mean_b"`
	Diff   flywheel.ScoreDetail `json:"diff"`
}

// String renders the comparison for evidence lists.
func (c Comparison) String() string {
	return fmt.Sprintf("%s vs %s on %s: %.4f vs %.4f, difference %+.4f [95%% CI %+.4f, %+.4f], n=%d",
		c.A, c.B, c.Metric, c.MeanA, c.MeanB, c.Diff.Mean, c.Diff.CILow, c.Diff.CIHigh, c.N)
}

// itemScores returns the metric's per-item scores by item index.
func itemScores(items []flywheel.ItemResult, metric string) map[int]float64 {
	out := make(map[int]float64, len(items))
	for _, it := range items {
		if v, ok := it.Scores[metric]; ok && !math.IsNaN(v) {
			out[it.Index] = v
		}
	}
	return out
}

// Compare pairs the items of a and b by index and describes a − b on
// metric. It fails when the candidates share no scored item.
func Compare(a, b Candidate, metric string, boot Bootstrap) (Comparison, error) {
	sa, sb := itemScores(a.Result.Items, metric), itemScores(b.Result.Items, metric)
	idx := make([]int, 0, len(sa))
	for i := range sa {
		if _, ok := sb[i]; ok {
			idx = append(idx, i)
		}
	}
	slices.Sort(idx)
	c := Comparison{Metric: metric, A: a.label(), B: b.label(), N: len(idx)}
	if len(idx) == 0 {
		return c, fmt.Errorf("compare %s and %s on %s: no item scored for both", c.A, c.B, metric)
	}
	diffs := make([]float64, len(idx))
	for k, i := range idx {
		c.MeanA += sa[i]
		c.MeanB += sb[i]
		diffs[k] = sa[i] - sb[i]
	}
	c.MeanA /= float64(len(idx))
	c.MeanB /= float64(len(idx))
	c.Diff = Describe(diffs, boot)
	return c, nil
}

// CompareToProduction describes the candidate against the production
// model's logged answers. Those answers are the references, so each of
// their per-item scores is the metric's maximum (a reference replayed as
// a prediction scores 1.0 on every deterministic metric).
func CompareToProduction(c Candidate, metric string, boot Bootstrap) (Comparison, error) {
	s := itemScores(c.Result.Items, metric)
	prod := Candidate{Name: ProductionName}
	prod.Result.Items = make([]flywheel.ItemResult, 0, len(s))
	for i := range s {
		prod.Result.Items = append(prod.Result.Items, flywheel.ItemResult{Index: i, Scores: map[string]float64{metric: MetricMax(metric)}})
	}
	return Compare(c, prod, metric, boot)
}

// RecommendConfig configures Recommend.
type RecommendConfig struct {
	// Metric is the deciding score; empty picks function_name_and_args_accuracy
	// when the candidates have it, else similarity, else token_f1.
	Metric string
	// Margin is the largest acceptable loss against production, in the
	// metric's units (0: MarginDefault × MetricMax).
	Margin float64
	// MinItems is the fewest paired items a verdict needs (0:
	// MinPairedItemsDefault).
	MinItems  int
	Bootstrap Bootstrap
}

// Recommend picks the cheapest candidate that is non-inferior to
// production: the lower end of the 95% interval of its paired difference
// from production is above −Margin. Cost is the summary's cost per request
// (see flywheel.EvalSummary.CostPerRequest); a candidate whose cost is
// unknown comes after every priced one, ties go to the higher mean, then
// to the earlier candidate. The reason states the pick's score with its
// interval, its cost per request against production's with where both
// figures come from, and its median latency. With no such candidate, the
// recommendation names none, says why and still states every candidate's
// cost. Evidence lists every candidate against production and the pick
// against each other candidate.
func Recommend(cands []Candidate, cfg RecommendConfig) flywheel.Recommendation {
	metric := cfg.Metric
	if metric == "" {
		metric = pickMetric(cands)
	}
	margin := cfg.Margin
	if margin <= 0 {
		margin = MarginDefault * MetricMax(metric)
	}
	minItems := cmp.Or(cfg.MinItems, MinPairedItemsDefault)
	rec := flywheel.Recommendation{Metric: metric, Margin: margin, Findings: Findings(cands, metric, cfg.Bootstrap)}
	if len(cands) == 0 {
		rec.Reason = "no candidate was evaluated"
		return rec
	}
	type verdict struct {
		c     Candidate
		cmp   Comparison
		cost  float64
		known bool
	}
	var good []verdict
	for _, c := range cands {
		cp, err := CompareToProduction(c, metric, cfg.Bootstrap)
		if err != nil {
			rec.Evidence = append(rec.Evidence, fmt.Sprintf("%s: no per-item %s scores; not compared", c.label(), metric))
			continue
		}
		cost, known := c.Result.Summary.CostPerRequest()
		v := verdict{c: c, cmp: cp, cost: cost, known: known}
		costs := "cost " + shortCost(c.Result.Summary)
		switch {
		case cp.N < minItems:
			rec.Evidence = append(rec.Evidence, fmt.Sprintf("%s; %s; too few items (%d < %d) for a verdict", cp, costs, cp.N, minItems))
		case cp.Diff.CILow > -margin:
			good = append(good, v)
			rec.Evidence = append(rec.Evidence, fmt.Sprintf("%s; %s; non-inferior (CI low %+.4f > %+.4f)", cp, costs, cp.Diff.CILow, -margin))
		default:
			rec.Evidence = append(rec.Evidence, fmt.Sprintf("%s; %s; inferior or inconclusive (CI low %+.4f <= %+.4f)", cp, costs, cp.Diff.CILow, -margin))
		}
	}
	prod := productionCost(cands)
	if prod != nil && prod.CostPer1KReq > 0 {
		p := prod.CostPer1KReq / 1000
		rec.ProductionCostPerRequest = &p
	}
	if len(good) == 0 {
		rec.Reason = fmt.Sprintf("no candidate is non-inferior to production on %s within a margin of %.4f; %s", metric, margin, allCosts(cands, prod))
		return rec
	}
	best := good[0]
	for _, v := range good[1:] {
		cheaper := v.known && (!best.known || v.cost < best.cost)
		tie := v.known == best.known && v.cost == best.cost
		if cheaper || (tie && v.cmp.MeanA > best.cmp.MeanA) {
			best = v
		}
	}
	rec.Candidate = best.c.Name
	rec.EvalType = best.c.EvalType
	if best.known {
		c := best.cost
		rec.CostPerRequest = &c
	}
	rec.Reason = recommendReason(best.c, best.cmp, metric, margin, prod)
	for _, c := range cands {
		if c.Name == best.c.Name && c.EvalType == best.c.EvalType {
			continue
		}
		if cp, err := Compare(best.c, c, metric, cfg.Bootstrap); err == nil {
			rec.Evidence = append(rec.Evidence, cp.String())
		}
	}
	return rec
}

// pickMetric chooses the deciding metric from what the candidates have.
func pickMetric(cands []Candidate) string {
	for _, m := range []string{flywheel.ScoreFunctionNameAndArgs, flywheel.ScoreSimilarity, ScoreTokenF1} {
		for _, c := range cands {
			if _, ok := c.Result.Scores[m]; ok {
				return m
			}
		}
	}
	return flywheel.ScoreFunctionNameAndArgs
}
