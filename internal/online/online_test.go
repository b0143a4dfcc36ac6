package online_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/eval"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/online"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

const toolRequest = `{"model":"prod","messages":[{"role":"user","content":"Book a ride to the airport for 2"}],
"tools":[{"type":"function","function":{"name":"book_ride","parameters":{"type":"object",
"properties":{"destination":{"type":"string"},"seats":{"type":"integer"}},"required":["destination","seats"]}}}]}`

// answer is a chat-completion response body calling book_ride with args.
func answer(args string) json.RawMessage {
	b, _ := json.Marshal(map[string]any{"id": "r", "object": "chat.completion", "choices": []any{map[string]any{"index": 0,
		"finish_reason": "tool_calls", "message": map[string]any{"role": "assistant", "content": nil,
			"tool_calls": []any{map[string]any{"id": "c1", "type": "function",
				"function": map[string]any{"name": "book_ride", "arguments": args}}}}}}})
	return b
}

var (
	production = answer(`{"destination": "airport", "seats": 2}`)
	same       = answer(`{"seats": 2, "destination": "airport"}`)
	wrongArgs  = answer(`{"destination": "station", "seats": 2}`)
)

// sample is a sample of promotion p answered as candidate at at.
func sample(p flywheel.Promotion, candidate json.RawMessage, at time.Time) flywheel.OnlineSample {
	return flywheel.OnlineSample{PromotionID: p.ID, WorkloadID: p.WorkloadID, ClientID: p.ClientID, Model: p.Candidate,
		Request: json.RawMessage(toolRequest), Production: production, Candidate: candidate,
		ProductionLatency: 400 * time.Millisecond, CandidateLatency: 100 * time.Millisecond, At: at}
}

// metricValue reads a counter or gauge of reg with the labels.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			}
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// fakePromotions is the promotions' store and Promoter: a rollback ends
// the promotion, as the real one does.
type fakePromotions struct {
	mu        sync.Mutex
	active    map[string]flywheel.Promotion
	rollbacks []rollback
}

type rollback struct {
	id, reason string
	evidence   flywheel.OnlineStats
	actor      string // the audit log's actor of the rollback
}

func (f *fakePromotions) ActivePromotions(context.Context) ([]flywheel.Promotion, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []flywheel.Promotion{}
	for _, p := range f.active {
		out = append(out, p)
	}
	return out, nil
}

func (f *fakePromotions) Rollback(ctx context.Context, id, reason string, evidence json.RawMessage) (*flywheel.Promotion, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.active[id]
	if !ok {
		return nil, flywheel.Errorf(flywheel.ECONFLICT, "promotion %s is not active", id)
	}
	var st flywheel.OnlineStats
	if err := json.Unmarshal(evidence, &st); err != nil {
		return nil, err
	}
	delete(f.active, id)
	f.rollbacks = append(f.rollbacks, rollback{id: id, reason: reason, evidence: st, actor: flywheel.ActorFrom(ctx)})
	p.Status = flywheel.PromotionRolledBack
	return &p, nil
}

func (f *fakePromotions) calls() []rollback {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]rollback(nil), f.rollbacks...)
}

type bundle struct {
	store      *store.Store
	reg        *prometheus.Registry
	metrics    *online.Metrics
	promotions *fakePromotions
	reader     *online.Reader
	now        time.Time
}

func setup(t *testing.T, d store.Dialect, promotions ...flywheel.Promotion) *bundle {
	t.Helper()
	b := &bundle{store: storetest.Open(t, d), reg: prometheus.NewRegistry(),
		promotions: &fakePromotions{active: map[string]flywheel.Promotion{}},
		now:        time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
	for _, p := range promotions {
		b.promotions.active[p.ID] = p
	}
	var err error
	b.metrics, err = online.NewMetrics(b.reg)
	require.NoError(t, err)
	b.reader = online.NewReader(online.ReaderOptions{Store: b.store, Promotions: b.promotions, Now: func() time.Time { return b.now }})
	return b
}

// record scores and stores samples through a Recorder.
func (b *bundle) record(t *testing.T, samples ...flywheel.OnlineSample) {
	t.Helper()
	r := online.NewRecorder(online.RecorderOptions{Store: b.store, Metrics: b.metrics, QueueSize: len(samples)})
	for _, s := range samples {
		r.Record(context.Background(), s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Run drains the queue and returns
	require.NoError(t, r.Run(ctx))
}

func promotion(id string) flywheel.Promotion {
	return flywheel.Promotion{ID: id, WorkloadID: "support", ClientID: "acme", Candidate: "small-" + id, Status: flywheel.PromotionActive}
}

// TestRecorderScoresWithOfflineChecker: the stored scores are the offline
// evaluation's: identical calls score 1, wrong arguments name 1 and args 0,
// a failed candidate 0 with its error.
func TestRecorderScoresWithOfflineChecker(t *testing.T) {
	t.Parallel()
	p := promotion("p1")
	b := setup(t, store.SQLite, p)
	failed := sample(p, nil, b.now.Add(-time.Second))
	failed.CandidateError = "candidate: 503 Service Unavailable"
	unscorable := sample(p, same, b.now)
	unscorable.Production = json.RawMessage(`{"choices":[]}`)
	b.record(t, sample(p, same, b.now.Add(-3*time.Second)), sample(p, wrongArgs, b.now.Add(-2*time.Second)), failed, unscorable)

	got, err := b.store.ListOnlineScores(context.Background(), flywheel.OnlineQuery{WorkloadID: "support", ClientID: "acme",
		Model: p.Candidate, PromotionID: "p1"})
	require.NoError(t, err)
	require.Len(t, got, 3)
	failedRow, wrong, identical := got[0], got[1], got[2]
	require.Equal(t, 1.0, identical.Scores[flywheel.ScoreFunctionName])
	require.Equal(t, 1.0, identical.Scores[flywheel.ScoreFunctionNameAndArgs])
	require.Equal(t, 1.0, identical.Scores[eval.ScoreASTAccuracy])
	require.Empty(t, identical.Error)
	require.InDelta(t, 400, identical.ProductionLatencyMS, 1e-9)
	require.InDelta(t, 100, identical.CandidateLatencyMS, 1e-9)
	require.Equal(t, 1.0, wrong.Scores[flywheel.ScoreFunctionName])
	require.Equal(t, 0.0, wrong.Scores[flywheel.ScoreFunctionNameAndArgs])
	require.Equal(t, 0.0, failedRow.Scores[flywheel.ScoreFunctionName])
	require.Equal(t, "candidate: 503 Service Unavailable", failedRow.Error)

	for result, want := range map[string]float64{online.ResultScored: 3, online.ResultUnscorable: 1, online.ResultDropped: 0} {
		v, ok := metricValue(t, b.reg, "flywheel_online_samples_total", map[string]string{"result": result})
		require.True(t, ok, result)
		require.Equal(t, want, v, result)
	}
	n, ok := metricValue(t, b.reg, "flywheel_online_latency_seconds", map[string]string{"role": "candidate"})
	require.True(t, ok)
	require.Equal(t, 2.0, n, "the failed answer's latency is not the candidate's")
}

// TestRecorderNeverBlocks: with the queue full and no worker, Record
// returns at once and counts the drops.
func TestRecorderNeverBlocks(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := online.NewMetrics(reg)
	require.NoError(t, err)
	r := online.NewRecorder(online.RecorderOptions{Store: storetest.Open(t, store.SQLite), Metrics: m, QueueSize: 4})
	p := promotion("p1")
	start := time.Now()
	for range 1000 {
		r.Record(context.Background(), sample(p, same, time.Time{}))
	}
	require.Less(t, time.Since(start), time.Second)
	dropped, ok := metricValue(t, reg, "flywheel_online_samples_total", map[string]string{"result": online.ResultDropped})
	require.True(t, ok)
	require.Equal(t, 996.0, dropped)
}

// TestCompute: per-metric means carry eval.Describe's interval; latency
// percentiles and errors are counted.
func TestCompute(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	var samples []flywheel.OnlineScore
	vals := make([]float64, 0, 100)
	for i := range 100 {
		v := 0.0
		if i%5 != 0 {
			v = 1
		}
		vals = append(vals, v)
		s := flywheel.OnlineScore{At: at.Add(time.Duration(i) * time.Second), Scores: map[string]float64{flywheel.ScoreFunctionNameAndArgs: v},
			ProductionLatencyMS: float64(i + 1), CandidateLatencyMS: 10}
		if i < 3 {
			s.Error = "timeout"
		}
		samples = append(samples, s)
	}
	st := online.Compute(samples, eval.Bootstrap{})
	require.Equal(t, 100, st.N)
	require.Equal(t, 3, st.Errors)
	d := st.Scores[flywheel.ScoreFunctionNameAndArgs]
	require.Equal(t, eval.Describe(vals, eval.Bootstrap{}), d)
	require.InDelta(t, 0.8, d.Mean, 1e-9)
	require.Less(t, d.CILow, 0.8)
	require.Greater(t, d.CIHigh, 0.8)
	require.InDelta(t, 0.72, d.CILow, 0.02)
	require.InDelta(t, 0.88, d.CIHigh, 0.02)
	require.Equal(t, flywheel.Percentiles{N: 97, P50: 10, P90: 10, P99: 10}, st.CandidateLatencyMS)
	require.Equal(t, 100, st.ProductionLatencyMS.N)
	require.InDelta(t, 50.5, st.ProductionLatencyMS.P50, 1e-9)
	require.Equal(t, at, st.WindowStart)
	require.Equal(t, at.Add(99*time.Second), st.WindowEnd)

	require.Equal(t, flywheel.OnlineStats{Scores: map[string]flywheel.ScoreDetail{}}, online.Compute(nil, eval.Bootstrap{}))
}

// TestReaderWindow: the window holds the samples of the last Window, at
// most the newest WindowSamples; CurrentAgreement reads the active
// promotion's, and OnlineReport lists ended promotions after it.
func TestReaderWindow(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			p, old := promotion("p1"), promotion("p0")
			b := setup(t, d, p)
			var samples []flywheel.OnlineSample
			for i := range 30 { // 30 bad samples over an hour ago
				samples = append(samples, sample(p, wrongArgs, b.now.Add(-2*time.Hour+time.Duration(i)*time.Second)))
			}
			for i := range 20 { // 20 good ones within the hour
				samples = append(samples, sample(p, same, b.now.Add(-time.Duration(i)*time.Minute)))
			}
			samples = append(samples, sample(old, wrongArgs, b.now.Add(-3*time.Hour)))
			b.record(t, samples...)

			st, ok, err := b.reader.CurrentAgreement(ctx, "support", "acme")
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, 20, st.N)
			require.True(t, st.Active)
			require.Equal(t, "p1", st.PromotionID)
			require.Equal(t, 1.0, st.Scores[flywheel.ScoreFunctionNameAndArgs].Mean)

			few := online.NewReader(online.ReaderOptions{Store: b.store, Promotions: b.promotions, WindowSamples: 5, Window: 3 * time.Hour,
				Now: func() time.Time { return b.now }})
			st, ok, err = few.CurrentAgreement(ctx, "support", "acme")
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, 5, st.N, "window_samples is the smaller bound")
			require.Equal(t, b.now.Add(-4*time.Minute), st.WindowStart)

			_, ok, err = b.reader.CurrentAgreement(ctx, "support", "other")
			require.NoError(t, err)
			require.False(t, ok)

			report, err := b.reader.OnlineReport(ctx, "support", "")
			require.NoError(t, err)
			require.Len(t, report, 2)
			require.Equal(t, "p1", report[0].PromotionID)
			require.True(t, report[0].Active)
			require.Equal(t, "p0", report[1].PromotionID)
			require.False(t, report[1].Active)
			require.Equal(t, 1, report[1].N, "an ended promotion's window ends at its newest sample")

			report, err = b.reader.OnlineReport(ctx, "nothing", "")
			require.NoError(t, err)
			require.Empty(t, report)
		})
	}
}

// TestMonitorRollsBackOnEvidence: 100 good samples keep the promotion; 100
// bad ones more roll it back once, with evidence whose interval is below
// the threshold; 10 bad samples are too few to act on.
func TestMonitorRollsBackOnEvidence(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, fresh := promotion("p1"), promotion("p2")
	fresh.ClientID = "globex"
	b := setup(t, store.SQLite, p, fresh)
	mon := online.NewMonitor(online.MonitorOptions{Reader: b.reader, Promoter: b.promotions, Store: b.store, Metrics: b.metrics,
		AutoRollback: true, MinSamples: 50, RollbackBelow: 0.8, Now: func() time.Time { return b.now }})

	batch := func(p flywheel.Promotion, n int, candidate json.RawMessage, end time.Time) []flywheel.OnlineSample {
		var out []flywheel.OnlineSample
		for i := range n {
			out = append(out, sample(p, candidate, end.Add(-time.Duration(n-i)*time.Second)))
		}
		return out
	}
	b.record(t, batch(p, 100, same, b.now.Add(-5*time.Minute))...)
	b.record(t, batch(fresh, 10, wrongArgs, b.now)...)
	require.NoError(t, mon.Check(ctx))
	require.Empty(t, b.promotions.calls())
	v, ok := metricValue(t, b.reg, "flywheel_online_agreement", map[string]string{"workload": "support", "client": "acme",
		"model": p.Candidate, "metric": flywheel.ScoreFunctionNameAndArgs})
	require.True(t, ok)
	require.Equal(t, 1.0, v)
	v, ok = metricValue(t, b.reg, "flywheel_online_agreement_ci_high", map[string]string{"client": "globex",
		"metric": flywheel.ScoreFunctionNameAndArgs})
	require.True(t, ok)
	require.Equal(t, 0.0, v, "10 bad samples: a low interval, but fewer than min_samples")

	b.record(t, batch(p, 100, wrongArgs, b.now)...)
	require.NoError(t, mon.Check(ctx))
	require.NoError(t, mon.Check(ctx), "a rolled-back promotion is no longer watched")
	calls := b.promotions.calls()
	require.Len(t, calls, 1)
	require.Equal(t, "p1", calls[0].id)
	require.Equal(t, flywheel.ActorOnline, calls[0].actor, "audited as the online monitor's")
	ev := calls[0].evidence
	require.Equal(t, 200, ev.N)
	d := ev.Scores[flywheel.ScoreFunctionNameAndArgs]
	require.InDelta(t, 0.5, d.Mean, 1e-9)
	require.Less(t, d.CIHigh, 0.8)
	require.Contains(t, calls[0].reason, fmt.Sprintf("n=%d", 200))
	v, _ = metricValue(t, b.reg, "flywheel_online_rollbacks_total", map[string]string{"result": online.RollbackDone})
	require.Equal(t, 1.0, v)
	_, ok = metricValue(t, b.reg, "flywheel_online_agreement", map[string]string{"client": "acme"})
	require.False(t, ok, "the gauges of an ended promotion are removed")
}

// TestMonitorWithoutPromoter: a nil Promoter, or auto_rollback off, only
// logs and counts the decision, once per promotion.
func TestMonitorWithoutPromoter(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		auto   bool
		result string
	}{{"NilPromoter", true, online.RollbackNoPromoter}, {"Disabled", false, online.RollbackDisabled}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := promotion("p1")
			b := setup(t, store.SQLite, p)
			var samples []flywheel.OnlineSample
			for i := range 60 {
				samples = append(samples, sample(p, wrongArgs, b.now.Add(-time.Duration(i)*time.Second)))
			}
			b.record(t, samples...)
			mon := online.NewMonitor(online.MonitorOptions{Reader: b.reader, Metrics: b.metrics, AutoRollback: tt.auto,
				RollbackBelow: 0.8, Now: func() time.Time { return b.now }})
			require.NoError(t, mon.Check(context.Background()))
			require.NoError(t, mon.Check(context.Background()))
			v, _ := metricValue(t, b.reg, "flywheel_online_rollbacks_total", map[string]string{"result": tt.result})
			require.Equal(t, 1.0, v, "counted once per promotion, not at every check")
		})
	}
}

// TestShouldRollBack is the decision on its own.
func TestShouldRollBack(t *testing.T) {
	t.Parallel()
	m := flywheel.ScoreFunctionNameAndArgs
	stats := func(n int, mean, high float64) flywheel.OnlineStats {
		return flywheel.OnlineStats{N: n, Scores: map[string]flywheel.ScoreDetail{m: {N: n, Mean: mean, CIHigh: high}}}
	}
	tests := []struct {
		name  string
		stats flywheel.OnlineStats
		want  bool
	}{
		{"ConfidentlyBelow", stats(100, 0.5, 0.6), true},
		{"MeanBelowIntervalNot", stats(100, 0.75, 0.85), false},
		{"TooFew", stats(10, 0, 0), false},
		{"SingleBadSample", stats(1, 0, 0), false},
		{"NoMetric", flywheel.OnlineStats{N: 100, Scores: map[string]flywheel.ScoreDetail{}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, online.ShouldRollBack(tt.stats, m, 50, 0.8))
		})
	}
}
