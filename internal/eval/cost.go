package eval

import (
	"fmt"
	"strings"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// Prices are what the cost figures of an evaluation are priced at, besides
// a candidate's own price (EvalRequest.PricePer1KTokens, PricePerHour).
type Prices struct {
	// CPUHourUSD is the price of one CPU thread for an hour. A candidate
	// with no price of its own whose server reports its compute time
	// (llama-server's timings) costs that time × CPUThreads × this price.
	CPUHourUSD float64
	// CPUThreads is the number of threads such a server computes with
	// (0: 1).
	CPUThreads int
	// ProductionInputUSDPerMTok and ProductionOutputUSDPerMTok price the
	// production model's logged usage, per million prompt and completion
	// tokens.
	ProductionInputUSDPerMTok  float64
	ProductionOutputUSDPerMTok float64
}

// costFigures collects the measurements the cost figures are computed
// from: the server's compute time of the answered items and the usage the
// production model logged for every valid item.
type costFigures struct {
	computeMS              []float64 // each answered reply's compute time
	refN                   int
	refPrompt, refComplete int64
}

// add records one valid item's figures.
func (c *costFigures) add(o outcome) {
	if o.computed && o.failure == noFailure {
		c.computeMS = append(c.computeMS, float64(o.computeMS))
	}
	if o.refUsage {
		c.refN++
		c.refPrompt += int64(o.refPrompt)
		c.refComplete += int64(o.refComplete)
	}
}

// price sets the summary's cost figures. The candidate's cost comes from
// the first that applies: its per-token price × its tokens per request,
// its hourly price × the evaluation's wall time per item, or its server's
// measured compute time × Prices.CPUThreads × Prices.CPUHourUSD. The
// compute time counted is at most the wall time, since a server that
// serves several requests at once reports each one's full duration.
// Production's cost is its logged tokens × the production prices.
func (c *costFigures) price(s *flywheel.EvalSummary, per1KTokens, perHour float64, wall time.Duration, p Prices) {
	threads := max(p.CPUThreads, 1)
	if n := len(c.computeMS); n > 0 {
		var busyMS float64
		for _, ms := range c.computeMS {
			busyMS += ms
		}
		if wallMS := float64(wall) / float64(time.Millisecond); wallMS > 0 && busyMS > wallMS {
			busyMS = wallMS
		}
		cpu := busyMS / 1000 * float64(threads) / float64(n)
		s.ComputeN, s.CPUSecondsPerRequest = n, &cpu
		p := Percentiles(c.computeMS, 0.5, 0.95)
		s.ServerP50MS, s.ServerP95MS = &p[0], &p[1]
	}
	switch {
	case per1KTokens > 0:
		if s.TokensN == 0 {
			s.CostSource = fmt.Sprintf("unknown: priced at $%g per 1k tokens but no reply reported its usage", per1KTokens)
			break
		}
		pt, ct := *s.PromptTokens, *s.CompletionTokens
		s.CostBasis = flywheel.CostTokens
		s.CostPer1KReq = per1KTokens * (pt + ct)
		s.CostSource = fmt.Sprintf("%.0f+%.0f tokens/request (n=%d replies) × $%g per 1k tokens", pt, ct, s.TokensN, per1KTokens)
	case perHour > 0 && s.Items > 0:
		s.CostBasis = flywheel.CostGPUHour
		s.CostPer1KReq = perHour * wall.Hours() / float64(s.Items) * 1000
		s.CostSource = fmt.Sprintf("$%g/hour × %s of evaluation / %d items", perHour, wall.Round(time.Millisecond), s.Items)
	case s.CPUSecondsPerRequest != nil && p.CPUHourUSD > 0:
		cpu := *s.CPUSecondsPerRequest
		s.CostBasis = flywheel.CostCPUTime
		s.CostPer1KReq = cpu / 3600 * p.CPUHourUSD * 1000
		s.CostSource = fmt.Sprintf("%.1f ms server compute/request × %d thread(s) = %.3g CPU-s/request (n=%d replies' llama-server timings) × $%g/CPU-hour",
			cpu*1000/float64(threads), threads, cpu, s.ComputeN, p.CPUHourUSD)
	default:
		s.CostSource = "unknown: no price configured for this candidate and its server reported no compute time"
	}
	if c.refN > 0 {
		pt, ct := float64(c.refPrompt)/float64(c.refN), float64(c.refComplete)/float64(c.refN)
		s.Production = &flywheel.ProductionCost{TokensN: c.refN, PromptTokens: pt, CompletionTokens: ct,
			CostPer1KReq: (pt*p.ProductionInputUSDPerMTok + ct*p.ProductionOutputUSDPerMTok) / 1e6 * 1000,
			CostSource: fmt.Sprintf("%.0f+%.0f logged tokens/request (n=%d logged responses) × $%g/$%g per million input/output tokens",
				pt, ct, c.refN, p.ProductionInputUSDPerMTok, p.ProductionOutputUSDPerMTok)}
	}
}

// recommendReason states why c is recommended: its score with the 95%
// interval, non-inferiority, its cost per request against production's,
// its median latency, and the sources of the cost figures.
func recommendReason(c Candidate, cp Comparison, metric string, margin float64, prod *flywheel.ProductionCost) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s %.2f", c.label(), metric, cp.MeanA)
	if d, ok := c.Result.Details[metric]; ok && d.N > 0 {
		fmt.Fprintf(&b, " [%.2f, %.2f]", d.CILow, d.CIHigh)
	}
	fmt.Fprintf(&b, " over %d items, non-inferior to production (margin %g; difference %+.4f [95%% CI %+.4f, %+.4f]); the cheapest such candidate",
		cp.N, margin, cp.Diff.Mean, cp.Diff.CILow, cp.Diff.CIHigh)
	s := c.Result.Summary
	cost, known := s.CostPerRequest()
	switch {
	case !known:
		b.WriteString("; cost unknown")
	case prod != nil && prod.CostPer1KReq > 0:
		p := prod.CostPer1KReq / 1000
		fmt.Fprintf(&b, "; cost %s/request vs production %s/request (%s)", flywheel.FormatUSD(cost), flywheel.FormatUSD(p), flywheel.CostRatio(cost, p))
	default:
		fmt.Fprintf(&b, "; cost %s/request (production's unknown)", flywheel.FormatUSD(cost))
	}
	if s.LatencyP50MS != nil {
		fmt.Fprintf(&b, "; p50 latency %.0f ms (%s)", *s.LatencyP50MS, flywheel.LatencyBasis(s))
	}
	b.WriteString(". ")
	b.WriteString(sources(s, prod))
	return b.String()
}

// sources names where a candidate's and production's cost figures come
// from.
func sources(s flywheel.EvalSummary, prod *flywheel.ProductionCost) string {
	cand := s.CostSource
	if cand == "" {
		cand = "unknown"
	}
	p := "unknown: the logged responses carry no usage"
	if prod != nil {
		p = prod.CostSource
	}
	return fmt.Sprintf("Cost from %s; production's from %s.", cand, p)
}

// shortCost renders a candidate's cost per request: "$0.0000021/request"
// or "unknown".
func shortCost(s flywheel.EvalSummary) string {
	if c, ok := s.CostPerRequest(); ok {
		return flywheel.FormatUSD(c) + "/request"
	}
	return "unknown"
}

// allCosts states every candidate's cost per request and production's,
// for a recommendation that names no candidate.
func allCosts(cands []Candidate, prod *flywheel.ProductionCost) string {
	parts := make([]string, 0, len(cands)+1)
	for _, c := range cands {
		parts = append(parts, c.label()+" "+shortCost(c.Result.Summary))
	}
	p := "unknown"
	if prod != nil && prod.CostPer1KReq > 0 {
		p = flywheel.FormatUSD(prod.CostPer1KReq/1000) + "/request"
	}
	parts = append(parts, "production "+p)
	return "cost per request: " + strings.Join(parts, ", ")
}

// productionCost returns production's cost figures from the candidate that
// has them over the most items (every evaluation of a run replays the same
// logged responses).
func productionCost(cands []Candidate) *flywheel.ProductionCost {
	var best *flywheel.ProductionCost
	for _, c := range cands {
		if p := c.Result.Summary.Production; p != nil && (best == nil || p.TokensN > best.TokensN) {
			best = p
		}
	}
	return best
}
