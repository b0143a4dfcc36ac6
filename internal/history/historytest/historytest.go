// Package historytest stores runs with evaluations and per-item results
// whose comparison is known, for the history, API and dashboard tests.
package historytest

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/flywheel-go/flywheel/internal/eval"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/store"
)

// Workload and Client are the fixture runs' workload and client;
// Candidate is their one candidate model.
const (
	Workload  = "history-w"
	Client    = "acme"
	Candidate = "m1"
	// Metric is the score every fixture item carries.
	Metric = flywheel.ScoreFunctionNameAndArgs
)

// Item is one evaluation item of a fixture run: the production answer it
// is scored against, the logged record it replays (for runs with a
// manifest; empty: the answer names it too), and its score.
type Item struct {
	Ref    string
	Record string
	Score  float64
}

// Eval is one evaluation of the fixture candidate.
type Eval struct {
	Type  flywheel.EvalType
	Items []Item
}

// RunSpec describes a fixture run.
type RunSpec struct {
	Start time.Time
	// Recommend names the recommended eval type ("": no candidate).
	Recommend flywheel.EvalType
	Evals     []Eval
	// Manifest stores a manifest whose evaluation set is the first
	// evaluation's items' records, in order.
	Manifest bool
}

// Items returns n items whose answers are ref-<from>…ref-<from+n-1>;
// item i scores score(from+i).
func Items(from, n int, score func(i int) float64) []Item {
	out := make([]Item, n)
	for k := range n {
		out[k] = Item{Ref: fmt.Sprintf("ref-%d", from+k), Score: score(from + k)}
	}
	return out
}

// AddRun stores a finished (completed) run as spec says and returns its id.
func AddRun(tb testing.TB, s *store.Store, spec RunSpec) string {
	tb.Helper()
	ctx := context.Background()
	run := &flywheel.Run{ID: store.NewID(spec.Start), WorkloadID: Workload, ClientID: Client, Status: flywheel.RunRunning,
		StartedAt: spec.Start, Datasets: []flywheel.Dataset{}}
	must(tb, s.CreateRun(ctx, run))
	nim := &flywheel.NIMRun{ID: store.NewID(spec.Start), RunID: run.ID, ModelName: Candidate, Status: flywheel.NIMCompleted,
		DeploymentStatus: flywheel.DeploymentCompleted}
	must(tb, s.CreateNIM(ctx, nim))
	n := 0
	for _, e := range spec.Evals {
		n = max(n, len(e.Items))
		row, err := s.UpsertEvaluation(ctx, nim.ID, e.Type)
		must(tb, err)
		res := &flywheel.EvalResult{Scores: map[string]float64{}, Details: map[string]flywheel.ScoreDetail{}}
		var vals []float64
		var items []flywheel.ItemResult
		for i, it := range e.Items {
			ref, _ := json.Marshal(map[string]any{"role": "assistant", "content": it.Ref})
			items = append(items, flywheel.ItemResult{EvaluationID: row.ID, Index: i, Tool: "lookup", Reference: ref,
				Scores: map[string]float64{Metric: it.Score}})
			vals = append(vals, it.Score)
		}
		d := eval.Describe(vals, eval.Bootstrap{})
		res.Scores[Metric], res.Details[Metric] = d.Mean, d
		res.Summary = flywheel.EvalSummary{Items: len(e.Items), Answered: len(e.Items)}
		must(tb, s.ReplaceItems(ctx, row.ID, items))
		must(tb, s.FinishEvaluation(ctx, row.ID, res, ""))
	}
	if spec.Manifest && len(spec.Evals) > 0 {
		d := flywheel.ManifestDataset{Kind: flywheel.ManifestEval, RecordIDs: []int64{}, RecordHashes: []string{}}
		for i, it := range spec.Evals[0].Items {
			rec := cmp.Or(it.Record, it.Ref)
			sum := sha256.Sum256([]byte(rec))
			d.RecordIDs = append(d.RecordIDs, int64(i+1))
			d.RecordHashes = append(d.RecordHashes, hex.EncodeToString(sum[:]))
		}
		must(tb, s.SetRunManifest(ctx, &flywheel.Manifest{Version: flywheel.ManifestVersion, RunID: run.ID, WorkloadID: Workload,
			ClientID: Client, CreatedAt: spec.Start, Datasets: []flywheel.ManifestDataset{d}}))
	}
	must(tb, s.SetRunStats(ctx, run.ID, flywheel.DataStats{Total: 3 * n, Selected: 3 * n, Eval: n, Train: 2 * n}))
	rec := &flywheel.Recommendation{Metric: Metric, Margin: 0.05, Reason: "no candidate is non-inferior"}
	if spec.Recommend != "" {
		rec.Candidate, rec.EvalType, rec.Reason = Candidate, spec.Recommend, "cheapest non-inferior"
	}
	must(tb, s.SetRunRecommendation(ctx, run.ID, rec))
	_, err := s.FinishRun(ctx, run.ID, flywheel.RunCompleted, "")
	must(tb, err)
	return run.ID
}

// Fixture is the constructed comparison: runs A and B share the items
// ref-10…ref-39 (30 items) and each holds "dup" twice (left out as
// ambiguous). On the shared items A scores 1 on ref-10…ref-19 and 0 on
// the rest, B scores 1 on all: the paired difference B − A is 20/30. C
// shares no item with either.
type Fixture struct {
	A, B, C string
}

// Shared, PairedMean and the ambiguous count of the Fixture.
const (
	Shared     = 30
	PairedMean = 20.0 / 30.0
	Ambiguous  = 1
)

// Seed stores the Fixture's runs, A oldest, C newest.
func Seed(tb testing.TB, s *store.Store, start time.Time) Fixture {
	tb.Helper()
	dup := []Item{{Ref: "dup", Score: 1}, {Ref: "dup", Score: 0}}
	aItems := append(Items(0, 40, func(i int) float64 { return b2f(i < 20) }), dup...)
	bItems := append(Items(10, 40, func(i int) float64 { return b2f(i < 45) }), dup...)
	var f Fixture
	f.A = AddRun(tb, s, RunSpec{Start: start, Evals: []Eval{{Type: flywheel.EvalBase, Items: aItems}}})
	f.B = AddRun(tb, s, RunSpec{Start: start.Add(time.Hour), Recommend: flywheel.EvalCustomized, Evals: []Eval{
		{Type: flywheel.EvalBase, Items: bItems},
		{Type: flywheel.EvalCustomized, Items: Items(10, 40, func(int) float64 { return 1 })},
	}})
	f.C = AddRun(tb, s, RunSpec{Start: start.Add(2 * time.Hour), Evals: []Eval{
		{Type: flywheel.EvalBase, Items: Items(100, 25, func(i int) float64 { return b2f(i%2 == 0) })},
	}})
	return f
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}
