package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/engine"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/flywheeltest"
	"github.com/flywheel-go/flywheel/internal/server"
	"github.com/flywheel-go/flywheel/internal/stage"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
	"github.com/flywheel-go/flywheel/internal/ui"
)

// Candidate models of every test run.
const (
	smallModel = "meta/llama-3.2-1b-instruct"
	largeModel = "meta/llama-3.2-3b-instruct"
)

// slowWorkload names runs whose evaluations block until cancelled.
const slowWorkload = "slow"

var testTools = []string{"get_weather", "book_flight", "search_web", "send_email"}

var testClasses = []string{"wrong_function", "wrong_arguments", "missing_call"}

// evaluator produces realistic evaluations: many items over several tools,
// a per-model accuracy, divergences with error classes, intervals and a
// summary with latency and cost. Evaluations of the slow workload block
// until their context ends.
type evaluator struct {
	items int
	mu    sync.Mutex
	calls int
}

var _ flywheel.Evaluator = (*evaluator)(nil)

func accuracy(model string, t flywheel.EvalType) float64 {
	p := 0.55
	if strings.Contains(model, "3b") {
		p = 0.7
	}
	switch t {
	case flywheel.EvalICL:
		p += 0.05
	case flywheel.EvalCustomized:
		p += 0.2
	}
	return p
}

func (e *evaluator) Evaluate(ctx context.Context, req flywheel.EvalRequest, progress flywheel.ProgressFunc) (flywheel.EvalResult, error) {
	e.mu.Lock()
	e.calls++
	e.mu.Unlock()
	if strings.Contains(req.Dataset.Name, "-"+slowWorkload+"-") {
		if progress != nil {
			progress(30)
		}
		<-ctx.Done()
		return flywheel.EvalResult{}, ctx.Err()
	}
	n := e.items
	p := accuracy(req.Target.Model, req.EvalType)
	res := flywheel.EvalResult{Summary: flywheel.EvalSummary{Items: n, ErrorClasses: map[string]int{},
		PerTool: map[string]flywheel.ScoreDetail{}}}
	var hits, argHits float64
	perTool := map[string][2]int{}
	latencies := make([]float64, 0, n)
	for i := range n {
		tool := testTools[i%len(testTools)]
		// A low-discrepancy sequence decides which items are right.
		u := math.Mod(float64(i)*0.6180339887+0.31, 1)
		ok := u < p
		argsOK := ok && math.Mod(float64(i)*0.4142135623, 1) < 0.9
		ref := fmt.Sprintf(`{"name":%q,"arguments":{"city":"Paris","day":%d}}`, tool, i%7)
		it := flywheel.ItemResult{Index: i, Tool: tool, Reference: json.RawMessage(ref),
			Request:      json.RawMessage(fmt.Sprintf(`{"messages":[{"role":"user","content":"question %d"}]}`, i)),
			LatencyMS:    40 + float64(i%17)*3,
			PromptTokens: 300 + i%50, CompletionTokens: 20 + i%9,
			Scores: map[string]float64{flywheel.ScoreFunctionName: b2f(ok), flywheel.ScoreFunctionNameAndArgs: b2f(argsOK)}}
		switch {
		case !ok:
			cls := testClasses[i%len(testClasses)]
			it.ErrorClass = cls
			if cls == "missing_call" {
				it.Prediction = json.RawMessage(`{"content":"I cannot help with that."}`)
			} else {
				it.Prediction = json.RawMessage(fmt.Sprintf(`{"name":%q,"arguments":{"city":"Lyon"}}`, testTools[(i+1)%len(testTools)]))
			}
			res.Summary.ErrorClasses[cls]++
		case !argsOK:
			it.ErrorClass = "wrong_arguments"
			it.Prediction = json.RawMessage(fmt.Sprintf(`{"name":%q,"arguments":{"city":"Paris","day":%d}}`, tool, i%7+1))
			res.Summary.ErrorClasses["wrong_arguments"]++
		default:
			it.Prediction = it.Reference
		}
		hits += b2f(ok)
		argHits += b2f(argsOK)
		c := perTool[tool]
		c[0]++
		if ok {
			c[1]++
		}
		perTool[tool] = c
		latencies = append(latencies, it.LatencyMS)
		res.Items = append(res.Items, it)
		if progress != nil && i%100 == 0 {
			progress(float64(i) * 100 / float64(n))
		}
	}
	detail := func(k, total float64) flywheel.ScoreDetail {
		m := k / total
		se := math.Sqrt(m * (1 - m) / total)
		return flywheel.ScoreDetail{N: int(total), Mean: m, StdErr: se, CILow: math.Max(0, m-1.96*se), CIHigh: math.Min(1, m+1.96*se)}
	}
	res.Details = map[string]flywheel.ScoreDetail{
		flywheel.ScoreFunctionName:        detail(hits, float64(n)),
		flywheel.ScoreFunctionNameAndArgs: detail(argHits, float64(n)),
	}
	res.Scores = map[string]float64{
		flywheel.ScoreFunctionName:        res.Details[flywheel.ScoreFunctionName].Mean,
		flywheel.ScoreFunctionNameAndArgs: res.Details[flywheel.ScoreFunctionNameAndArgs].Mean,
	}
	for tool, c := range perTool {
		res.Summary.PerTool[tool] = detail(float64(c[1]), float64(c[0]))
	}
	sort.Float64s(latencies)
	res.Summary.Answered, res.Summary.LatencyN, res.Summary.TokensN = n, n, n
	res.Summary.LatencyP50MS = new(latencies[len(latencies)/2])
	res.Summary.LatencyP95MS = new(latencies[len(latencies)*95/100])
	res.Summary.PromptTokens, res.Summary.CompletionTokens = new(325.0), new(24.0)
	res.Summary.CostPer1KReq = 0.35
	if strings.Contains(req.Target.Model, "3b") {
		res.Summary.CostPer1KReq = 0.9
	}
	if progress != nil {
		progress(100)
	}
	return res, nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// recommender picks the candidate whose customized model scores best.
type recommender struct{}

func (recommender) Recommend(ctx context.Context, run *flywheel.Run, nims []flywheel.NIMDetail) (*flywheel.Recommendation, error) {
	rec := &flywheel.Recommendation{EvalType: flywheel.EvalCustomized, Metric: flywheel.ScoreFunctionName, Margin: 0.05,
		Findings: []string{"fine-tuning (customized-eval) helped"}}
	best := -1.0
	for _, n := range nims {
		for _, e := range n.Evaluations {
			if e.EvalType != flywheel.EvalCustomized {
				continue
			}
			s := e.Scores[flywheel.ScoreFunctionName]
			rec.Evidence = append(rec.Evidence, fmt.Sprintf("%s customized: %s %.3f vs production 1.000", n.ModelName, rec.Metric, s))
			if s > best {
				best, rec.Candidate = s, n.ModelName
			}
		}
	}
	rec.Reason = "highest " + rec.Metric + " among customized candidates"
	return rec, nil
}

type testBundle struct {
	engine *engine.Engine
	store  *store.Store
	ui     http.Handler
	server *httptest.Server
}

type setupOpts struct {
	items int
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// setup starts a real engine on SQLite with the scripted platform and the
// evaluator above, the dashboard over it and the REST server around both.
func setup(tb testing.TB, so setupOpts) *testBundle {
	tb.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, storetest.URL(tb, store.SQLite), store.Options{})
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = s.Close() })
	_, err = engine.Migrate(ctx, s)
	require.NoError(tb, err)
	logger := testLogger(tb)
	ev := &evaluator{items: so.items}
	if ev.items == 0 {
		ev.items = 120
	}
	opts := engine.Options{
		Store: s, Logger: logger, Workers: 8,
		Spec: flywheel.RunSpec{Namespace: "dfwbp",
			Candidates: []flywheel.NIMConfig{{ModelName: smallModel, CustomizationEnabled: true}, {ModelName: largeModel, CustomizationEnabled: true}},
			Judge:      flywheel.JudgeConfig{DeploymentType: flywheel.DeploymentTypeRemote}},
		Retry:             engine.RetryPolicy{MaxAttempts: 3, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond},
		LeaseTTL:          time.Second,
		ReaperInterval:    time.Hour,
		FetchPollInterval: 20 * time.Millisecond,
		Embedded:          true,
	}
	opts.Runner = &stage.Runner{Store: s, Platform: &flywheeltest.Platform{DeployPolls: 1, CustomizationPolls: 2},
		Datasets: &flywheeltest.Builder{Records: 500}, Evaluator: ev, Recommender: recommender{}, Logger: logger,
		Settings: stage.Settings{PollInterval: 10 * time.Millisecond, DataDir: tb.TempDir()}}
	e, err := engine.New(opts)
	require.NoError(tb, err)
	require.NoError(tb, e.Start(ctx))
	tb.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Stop(stopCtx)
	})
	b := &testBundle{engine: e, store: s}
	b.ui = ui.New(ui.Options{Jobs: e, Logger: logger, Prefix: "/ui", RefreshInterval: time.Second})
	riverCtx, stopRiver := context.WithCancel(ctx)
	tb.Cleanup(stopRiver)
	river, err := e.RiverUI(riverCtx, "/ui/river")
	require.NoError(tb, err)
	b.server = httptest.NewServer(server.New(server.Options{Jobs: e, UI: b.ui, RiverUI: river, Logger: logger}))
	tb.Cleanup(b.server.Close)
	return b
}

func (b *testBundle) create(tb testing.TB, workload, client string) *flywheel.Run {
	tb.Helper()
	run, err := b.engine.CreateJob(context.Background(), flywheel.CreateJobRequest{WorkloadID: workload, ClientID: client})
	require.NoError(tb, err)
	return run
}

// finished waits until the run and all its stages are done.
func (b *testBundle) finished(tb testing.TB, id string) *flywheel.JobDetail {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := b.engine.WaitFinished(ctx, id, 10*time.Millisecond)
	require.NoError(tb, err, "run did not finish")
	require.Eventually(tb, func() bool {
		d, err := b.engine.GetJob(ctx, id)
		require.NoError(tb, err)
		for _, s := range d.Stages {
			if !s.Status.Done() {
				return false
			}
		}
		return true
	}, 30*time.Second, 10*time.Millisecond)
	d, err := b.engine.GetJob(ctx, id)
	require.NoError(tb, err)
	return d
}

// evaluating waits until a stage of the run is running an evaluation.
func (b *testBundle) evaluating(tb testing.TB, id string) {
	tb.Helper()
	require.Eventually(tb, func() bool {
		d, err := b.engine.GetJob(context.Background(), id)
		require.NoError(tb, err)
		for _, s := range d.Stages {
			if s.Name == flywheel.StageRunBaseEval && s.Status == flywheel.StageRunning {
				return true
			}
		}
		return false
	}, 30*time.Second, 10*time.Millisecond)
}
