// Package history answers questions about runs over time: which workloads
// have runs, how each candidate's scores moved from run to run, and what
// changed between two runs, with a paired test on the evaluation items
// the two runs share. It reads the store and compares with the eval
// package's machinery; it writes nothing.
package history

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/flywheel-go/flywheel/internal/eval"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/store"
)

// Limits of a history.
const (
	// LimitDefault is how many finished runs a history shows unless asked.
	LimitDefault = 50
	// LimitMax is the most finished runs one history shows.
	LimitMax = 500
)

// mainMetrics are the scores a history and a comparison show, in this
// order: the blueprint's four, then the generic text ones for workloads
// without tool calls.
var mainMetrics = []string{ //nolint:gochecknoglobals // a constant list
	flywheel.ScoreFunctionNameAndArgs, flywheel.ScoreFunctionName, flywheel.ScoreToolCallingCorrectness,
	flywheel.ScoreSimilarity, eval.ScoreTokenF1, eval.ScoreExactMatch, eval.ScoreRougeL,
}

// Service implements flywheel.HistoryService on the store.
type Service struct {
	Store *store.Store
	// Bootstrap configures the paired tests' intervals.
	Bootstrap eval.Bootstrap
}

var _ flywheel.HistoryService = (*Service)(nil)

// ListWorkloads returns every workload and client with runs, newest run first.
func (s *Service) ListWorkloads(ctx context.Context) ([]flywheel.WorkloadSummary, error) {
	return s.Store.ListWorkloads(ctx)
}

// WorkloadHistory returns a workload's finished runs, oldest first, with
// every candidate's main scores per evaluation type.
func (s *Service) WorkloadHistory(ctx context.Context, f flywheel.HistoryFilter) (*flywheel.WorkloadHistory, error) {
	if f.WorkloadID == "" {
		return nil, fieldError("path", "workload_id", "Field required", "missing")
	}
	limit := cmp.Or(f.Limit, LimitDefault)
	if limit < 1 || limit > LimitMax {
		return nil, fieldError("query", "limit", fmt.Sprintf("Input should be between 1 and %d", LimitMax), "value_error")
	}
	n, err := s.Store.CountWorkloadRuns(ctx, f.WorkloadID, f.ClientID)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		if f.ClientID != "" {
			return nil, flywheel.Errorf(flywheel.ENOTFOUND, "Workload %s has no runs of client %s", f.WorkloadID, f.ClientID)
		}
		return nil, flywheel.Errorf(flywheel.ENOTFOUND, "Workload %s has no runs", f.WorkloadID)
	}
	runs, err := s.Store.FinishedRuns(ctx, f.WorkloadID, f.ClientID, limit)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(runs))
	for i, r := range runs {
		ids[i] = r.ID
	}
	evals, err := s.Store.RunEvaluations(ctx, ids...)
	if err != nil {
		return nil, err
	}
	byRun := map[string][]flywheel.EvalScores{}
	seen := map[string]bool{}
	for _, ce := range evals {
		es := evalScores(ce)
		for m := range es.Scores {
			seen[m] = true
		}
		byRun[ce.RunID] = append(byRun[ce.RunID], es)
	}
	h := &flywheel.WorkloadHistory{WorkloadID: f.WorkloadID, ClientID: f.ClientID, Runs: []flywheel.HistoryRun{}}
	decided := map[string]int{}
	for _, r := range runs {
		if rec := r.Recommendation; rec != nil && rec.Metric != "" {
			decided[rec.Metric]++
		}
		scores := byRun[r.ID]
		if scores == nil {
			scores = []flywheel.EvalScores{}
		}
		h.Runs = append(h.Runs, flywheel.HistoryRun{Run: r, Scores: scores})
	}
	for _, m := range mainMetrics {
		if seen[m] {
			h.Metrics = append(h.Metrics, m)
		}
	}
	// The metric that decided most recommendations leads (the earlier
	// main metric on a tie).
	slices.SortStableFunc(h.Metrics, func(a, b string) int { return decided[b] - decided[a] })
	if h.Metrics == nil {
		h.Metrics = []string{}
	}
	return h, nil
}

// evalScores keeps an evaluation's main scores. A score without stored
// evidence keeps its mean with n = 0.
func evalScores(ce flywheel.CandidateEvaluation) flywheel.EvalScores {
	es := flywheel.EvalScores{Candidate: ce.Candidate, EvalType: ce.EvalType, EvaluationID: ce.ID,
		Scores: map[string]flywheel.ScoreDetail{}, Error: ce.Error}
	if ce.Summary != nil {
		es.Items = ce.Summary.Items
	}
	if ce.FinishedAt == nil {
		return es
	}
	for _, m := range mainMetrics {
		if d, ok := ce.Details[m]; ok {
			es.Scores[m] = d
		} else if v, ok := ce.Scores[m]; ok {
			es.Scores[m] = flywheel.ScoreDetail{Mean: v, CILow: v, CIHigh: v}
		}
	}
	return es
}

func fieldError(where, field, msg, typ string) error {
	return &flywheel.Error{Code: flywheel.EUNPROCESSABLE, Message: field + ": " + msg,
		Fields: []flywheel.FieldError{{Loc: []string{where, field}, Msg: msg, Type: typ}}}
}

// checkID says what is wrong with the job id of query parameter field.
func checkID(field, id string) error {
	if id == "" {
		return fieldError("query", field, "Field required", "missing")
	}
	if !store.ValidID(id) {
		return fieldError("query", field, "Invalid job id format (24 hexadecimal digits)", "value_error")
	}
	return nil
}

// run reads a run named by query parameter field.
func (s *Service) run(ctx context.Context, field, id string) (*flywheel.Run, error) {
	r, err := s.Store.GetRun(ctx, id)
	if errors.Is(err, flywheel.ErrNotFound) {
		return nil, flywheel.Errorf(flywheel.ENOTFOUND, "Job %s (%s) not found", id, field)
	}
	return r, err
}

// evalKey names one candidate's evaluation of one type.
type evalKey struct {
	candidate string
	evalType  flywheel.EvalType
}

// runEvals reads a run's evaluations by candidate and type, in order.
func (s *Service) runEvals(ctx context.Context, runID string) ([]evalKey, map[evalKey]flywheel.CandidateEvaluation, error) {
	evals, err := s.Store.RunEvaluations(ctx, runID)
	if err != nil {
		return nil, nil, err
	}
	var order []evalKey
	out := map[evalKey]flywheel.CandidateEvaluation{}
	for _, ce := range evals {
		k := evalKey{ce.Candidate, ce.EvalType}
		if _, ok := out[k]; !ok {
			order = append(order, k)
		}
		out[k] = ce
	}
	return order, out, nil
}

// CompareJobs sets runs a and b side by side: data statistics, every
// candidate's main scores under each evaluation type with the difference
// B − A, a paired test on the items both evaluations share, and how the
// recommendation changed. Items are the same when they replay the same
// logged record (the record hashes of the runs' manifests); when a run has
// no manifest, when they are scored against the same production answer.
func (s *Service) CompareJobs(ctx context.Context, a, b string) (*flywheel.JobComparison, error) {
	if err := checkID("a", a); err != nil {
		return nil, err
	}
	if err := checkID("b", b); err != nil {
		return nil, err
	}
	ra, err := s.run(ctx, "a", a)
	if err != nil {
		return nil, err
	}
	rb, err := s.run(ctx, "b", b)
	if err != nil {
		return nil, err
	}
	orderA, evalsA, err := s.runEvals(ctx, ra.ID)
	if err != nil {
		return nil, err
	}
	orderB, evalsB, err := s.runEvals(ctx, rb.ID)
	if err != nil {
		return nil, err
	}
	c := &flywheel.JobComparison{A: ra, B: rb, ToolsA: map[string]int{}, ToolsB: map[string]int{},
		Scores: []flywheel.ScoreComparison{}, Notes: []string{}, PairedBy: flywheel.PairedByRecord}
	c.RecommendationChange = recommendationChange(ra.Recommendation, rb.Recommendation)
	recA, err := s.evalRecords(ctx, ra.ID)
	if err != nil {
		return nil, err
	}
	recB, err := s.evalRecords(ctx, rb.ID)
	if err != nil {
		return nil, err
	}
	if recA == nil || recB == nil {
		c.PairedBy = flywheel.PairedByAnswer
		for _, r := range []struct {
			id   string
			recs []string
		}{{ra.ID, recA}, {rb.ID, recB}} {
			if r.recs == nil {
				c.Notes = append(c.Notes, fmt.Sprintf("Run %s has no manifest: items were matched by their production answer, not by their logged record.", r.id))
			}
		}
	}

	// Items of both runs, read and keyed once per evaluation.
	items := map[string][]keyedItem{}
	load := func(ce flywheel.CandidateEvaluation) ([]keyedItem, error) {
		if its, ok := items[ce.ID]; ok {
			return its, nil
		}
		raw, err := s.Store.ItemScores(ctx, ce.ID)
		if err != nil {
			return nil, err
		}
		recs := recA
		if ce.RunID == rb.ID {
			recs = recB
		}
		its := make([]keyedItem, len(raw))
		for i, it := range raw {
			its[i] = keyedItem{ItemResult: it}
			switch {
			case c.PairedBy == flywheel.PairedByAnswer:
				its[i].key = itemKey(it)
			case it.Index >= 0 && it.Index < len(recs):
				its[i].key = recs[it.Index]
			}
		}
		items[ce.ID] = its
		return its, nil
	}
	keysA, keysB := map[string]int{}, map[string]int{}
	for side, order := range [][]evalKey{orderA, orderB} {
		evals, tools, keys := evalsA, c.ToolsA, keysA
		if side == 1 {
			evals, tools, keys = evalsB, c.ToolsB, keysB
		}
		counted := false
		for _, k := range order {
			its, err := load(evals[k])
			if err != nil {
				return nil, err
			}
			if len(its) == 0 {
				continue
			}
			if !counted {
				// Every evaluation of a run replays the same dataset: the
				// first with items stands for all.
				counted = true
				for _, it := range its {
					tools[cmp.Or(it.Tool, "(none)")]++
					if it.key != "" {
						keys[it.key]++
					}
				}
			}
		}
	}
	for key, na := range keysA {
		nb := keysB[key]
		switch {
		case na == 1 && nb == 1:
			c.SharedItems++
		case nb > 0:
			c.AmbiguousItems++
		}
	}
	if len(keysA) == 0 || len(keysB) == 0 {
		c.Notes = append(c.Notes, "A run has no stored evaluation items: no paired test is possible.")
	} else if c.SharedItems == 0 {
		c.Notes = append(c.Notes, "The runs share no evaluation item: the differences are between independent samples, not paired.")
	}
	if c.AmbiguousItems > 0 {
		what := "logged records"
		if c.PairedBy == flywheel.PairedByAnswer {
			what = "production answers"
		}
		c.Notes = append(c.Notes, fmt.Sprintf("Left out of the pairing: %d %s found more than once in a run.", c.AmbiguousItems, what))
	}

	// Rows: A's candidates and types in order, then those only B has.
	order := slices.Clone(orderA)
	for _, k := range orderB {
		if _, ok := evalsA[k]; !ok {
			order = append(order, k)
		}
	}
	for _, k := range order {
		ea, okA := evalsA[k]
		eb, okB := evalsB[k]
		var sa, sb flywheel.EvalScores
		if okA {
			sa = evalScores(ea)
		}
		if okB {
			sb = evalScores(eb)
		}
		var pairs *pairing
		if okA && okB {
			ia, err := load(ea)
			if err != nil {
				return nil, err
			}
			ib, err := load(eb)
			if err != nil {
				return nil, err
			}
			pairs = pair(ia, ib)
		}
		for _, m := range mainMetrics {
			da, hasA := sa.Scores[m]
			db, hasB := sb.Scores[m]
			if !hasA && !hasB {
				continue
			}
			row := flywheel.ScoreComparison{Candidate: k.candidate, EvalType: k.evalType, Metric: m}
			if hasA {
				row.A = &da
			}
			if hasB {
				row.B = &db
			}
			if hasA && hasB {
				d := db.Mean - da.Mean
				row.Difference = &d
			}
			if pairs != nil {
				row.SharedItems = len(pairs.a)
				row.Paired = s.pairedTest(pairs, m)
			}
			c.Scores = append(c.Scores, row)
		}
	}
	return c, nil
}

// evalRecords returns the record hashes of a run's evaluation set in its
// order (an item's Index is its position), or nil when the run has no
// manifest.
func (s *Service) evalRecords(ctx context.Context, runID string) ([]string, error) {
	m, err := s.Store.GetRunManifest(ctx, runID)
	if errors.Is(err, flywheel.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if d := m.Dataset(flywheel.ManifestEval); d != nil && len(d.RecordHashes) > 0 {
		return d.RecordHashes, nil
	}
	return nil, nil
}

// itemKey identifies an evaluation item across runs by what production
// answered: the expected tool and the reference answer. Items without a
// reference have no key.
func itemKey(it flywheel.ItemResult) string {
	if len(it.Reference) == 0 {
		return ""
	}
	ref := it.Reference
	var v any
	if json.Unmarshal(ref, &v) == nil {
		// Canonical form: object keys sorted, no spacing.
		if b, err := json.Marshal(v); err == nil {
			ref = b
		}
	}
	h := sha256.New()
	h.Write([]byte(it.Tool))
	h.Write([]byte{0})
	h.Write(ref)
	return string(h.Sum(nil))
}

// keyedItem is an item with its itemKey.
type keyedItem struct {
	key string
	flywheel.ItemResult
}

// pairing is the items two evaluations share, matched by key: a[i] and
// b[i] are the same item; keys found more than once on either side are
// left out.
type pairing struct {
	a, b []flywheel.ItemResult
}

func pair(ia, ib []keyedItem) *pairing {
	index := func(its []keyedItem) (map[string]int, map[string]int) {
		at, count := map[string]int{}, map[string]int{}
		for i, it := range its {
			if it.key != "" {
				at[it.key] = i
				count[it.key]++
			}
		}
		return at, count
	}
	_, countA := index(ia)
	atB, countB := index(ib)
	p := &pairing{}
	for _, it := range ia {
		if it.key == "" || countA[it.key] != 1 || countB[it.key] != 1 {
			continue
		}
		p.a = append(p.a, it.ItemResult)
		p.b = append(p.b, ib[atB[it.key]].ItemResult)
	}
	return p
}

// pairedTest runs eval.Compare on the shared items, re-indexed so that a
// pair has one index, and reports B − A. It is nil when no shared item
// has the metric on both sides.
func (s *Service) pairedTest(p *pairing, metric string) *flywheel.PairedTest {
	ca := eval.Candidate{Name: "a"}
	cb := eval.Candidate{Name: "b"}
	for i := range p.a {
		ca.Result.Items = append(ca.Result.Items, flywheel.ItemResult{Index: i, Scores: p.a[i].Scores})
		cb.Result.Items = append(cb.Result.Items, flywheel.ItemResult{Index: i, Scores: p.b[i].Scores})
	}
	cp, err := eval.Compare(cb, ca, metric, s.Bootstrap)
	if err != nil {
		return nil // no item scored on both sides
	}
	t := &flywheel.PairedTest{N: cp.N, MeanA: cp.MeanB, MeanB: cp.MeanA, Diff: cp.Diff, Verdict: flywheel.VerdictNone}
	switch {
	case cp.Diff.N > 1 && cp.Diff.CILow > 0:
		t.Verdict = flywheel.VerdictBetter
	case cp.Diff.N > 1 && cp.Diff.CIHigh < 0:
		t.Verdict = flywheel.VerdictWorse
	}
	return t
}

// recommendationChange says how the recommendation went from a to b.
func recommendationChange(a, b *flywheel.Recommendation) string {
	name := func(r *flywheel.Recommendation) string {
		switch {
		case r == nil:
			return "no recommendation"
		case r.Candidate == "":
			return "no candidate"
		case r.EvalType != "":
			return fmt.Sprintf("%s (%s)", r.Candidate, r.EvalType)
		}
		return r.Candidate
	}
	na, nb := name(a), name(b)
	if na == nb {
		return "unchanged: " + na
	}
	return na + " → " + nb
}
