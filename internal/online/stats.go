// Package online evaluates a promoted candidate while it serves: the
// capture proxy hands it every request answered by both production and the
// candidate, a Recorder scores the candidate's answer against production's
// with the offline evaluation's metrics and checker (eval.Scorer) and stores
// the scores, a Reader computes the rolling agreement with its confidence
// interval, and a Monitor rolls a promotion back when the agreement is
// below a threshold with confidence.
package online

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/flywheel-go/flywheel/internal/eval"
	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// Defaults of the rolling window.
const (
	WindowDefault        = time.Hour
	WindowSamplesDefault = 500
	RetentionDefault     = 14 * 24 * time.Hour
	// ReportSeriesMax is the most series OnlineReport returns.
	ReportSeriesMax = 20
)

// Store holds the scored samples (the store package implements it).
type Store interface {
	InsertOnlineScores(ctx context.Context, samples []flywheel.OnlineScore) error
	ListOnlineScores(ctx context.Context, q flywheel.OnlineQuery) ([]flywheel.OnlineScore, error)
	ListOnlineSeries(ctx context.Context, workloadID, clientID string, since time.Time, limit int) ([]flywheel.OnlineSeries, error)
	ExpireOnlineScores(ctx context.Context, before time.Time) (int64, error)
}

// Promotions lists the active promotions (the promotions' store).
type Promotions interface {
	ActivePromotions(ctx context.Context) ([]flywheel.Promotion, error)
}

// PromotionsFunc adapts a function to Promotions.
type PromotionsFunc func(ctx context.Context) ([]flywheel.Promotion, error)

// ActivePromotions implements Promotions.
func (f PromotionsFunc) ActivePromotions(ctx context.Context) ([]flywheel.Promotion, error) {
	return f(ctx)
}

// Compute returns the stats of one series' samples: per metric the mean
// and its 95% interval from eval.Describe, the candidate's failed answers,
// and latency percentiles (the candidate's over its answered samples).
// The window spans the samples' times; the identity fields are left for
// the caller.
func Compute(samples []flywheel.OnlineScore, boot eval.Bootstrap) flywheel.OnlineStats {
	st := flywheel.OnlineStats{N: len(samples), Scores: map[string]flywheel.ScoreDetail{}}
	perMetric := map[string][]float64{}
	var prodMS, candMS []float64
	for i, s := range samples {
		if i == 0 || s.At.Before(st.WindowStart) {
			st.WindowStart = s.At
		}
		if s.At.After(st.WindowEnd) {
			st.WindowEnd = s.At
		}
		for k, v := range s.Scores {
			perMetric[k] = append(perMetric[k], v)
		}
		if s.Error != "" {
			st.Errors++
		} else if s.CandidateLatencyMS > 0 {
			candMS = append(candMS, s.CandidateLatencyMS)
		}
		if s.ProductionLatencyMS > 0 {
			prodMS = append(prodMS, s.ProductionLatencyMS)
		}
	}
	for k, vals := range perMetric {
		st.Scores[k] = eval.Describe(vals, boot)
	}
	st.CandidateLatencyMS = percentiles(candMS)
	st.ProductionLatencyMS = percentiles(prodMS)
	return st
}

func percentiles(ms []float64) flywheel.Percentiles {
	if len(ms) == 0 {
		return flywheel.Percentiles{}
	}
	p := eval.Percentiles(ms, 0.5, 0.9, 0.99)
	return flywheel.Percentiles{N: len(ms), P50: p[0], P90: p[1], P99: p[2]}
}

// ReaderOptions configures a Reader.
type ReaderOptions struct {
	Store Store
	// Promotions says which promotions are active; nil: none is.
	Promotions Promotions
	// Window and WindowSamples bound the rolling window (WindowDefault,
	// WindowSamplesDefault).
	Window        time.Duration
	WindowSamples int
	// Retention is how far back OnlineReport looks for ended promotions
	// (RetentionDefault).
	Retention time.Duration
	Bootstrap eval.Bootstrap
	Now       func() time.Time
}

// Reader computes the rolling online agreement. It implements
// flywheel.AgreementReader and flywheel.OnlineReporter.
type Reader struct {
	opts ReaderOptions
}

var (
	_ flywheel.AgreementReader = (*Reader)(nil)
	_ flywheel.OnlineReporter  = (*Reader)(nil)
)

// NewReader returns a Reader.
func NewReader(opts ReaderOptions) *Reader {
	opts.Window = cmp.Or(opts.Window, WindowDefault)
	opts.WindowSamples = cmp.Or(opts.WindowSamples, WindowSamplesDefault)
	opts.Retention = cmp.Or(opts.Retention, RetentionDefault)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Reader{opts: opts}
}

// Stats returns the stats of a promotion's rolling window ending at end:
// its samples of the last Window, at most the newest WindowSamples.
func (r *Reader) Stats(ctx context.Context, p flywheel.Promotion, end time.Time) (flywheel.OnlineStats, error) {
	samples, err := r.opts.Store.ListOnlineScores(ctx, flywheel.OnlineQuery{WorkloadID: p.WorkloadID, ClientID: p.ClientID,
		Model: p.Candidate, PromotionID: p.ID, Since: end.Add(-r.opts.Window), Limit: r.opts.WindowSamples})
	if err != nil {
		return flywheel.OnlineStats{}, err
	}
	// A sample stored late may be newer than end; the window ends at end.
	samples = slices.DeleteFunc(samples, func(s flywheel.OnlineScore) bool { return s.At.After(end) })
	st := Compute(samples, r.opts.Bootstrap)
	st.WorkloadID, st.ClientID, st.Model, st.PromotionID = p.WorkloadID, p.ClientID, p.Candidate, p.ID
	st.Active = p.Status == flywheel.PromotionActive
	if st.N == 0 {
		st.WindowStart, st.WindowEnd = end.Add(-r.opts.Window).UTC(), end.UTC()
	}
	return st, nil
}

// active returns the active promotions of a workload (and client, when
// not empty; every workload when workloadID is empty).
func (r *Reader) active(ctx context.Context, workloadID, clientID string) ([]flywheel.Promotion, error) {
	if r.opts.Promotions == nil {
		return nil, nil
	}
	all, err := r.opts.Promotions.ActivePromotions(ctx)
	if err != nil {
		return nil, fmt.Errorf("list active promotions: %w", err)
	}
	out := all[:0:0]
	for _, p := range all {
		if (workloadID == "" || p.WorkloadID == workloadID) && (clientID == "" || p.ClientID == clientID) {
			p.Status = flywheel.PromotionActive
			out = append(out, p)
		}
	}
	return out, nil
}

// CurrentAgreement implements flywheel.AgreementReader: the rolling
// window of the workload's active promotion, ending now.
func (r *Reader) CurrentAgreement(ctx context.Context, workloadID, clientID string) (flywheel.OnlineStats, bool, error) {
	act, err := r.active(ctx, workloadID, clientID)
	if err != nil || len(act) == 0 {
		return flywheel.OnlineStats{}, false, err
	}
	st, err := r.Stats(ctx, act[0], r.opts.Now())
	if err != nil {
		return flywheel.OnlineStats{}, false, err
	}
	return st, st.N > 0, nil
}

// OnlineReport implements flywheel.OnlineReporter: the rolling window of
// each active promotion of the workload, ending now, then each other
// series with samples kept (ended promotions, newest first), whose window
// ends at its newest sample; ReportSeriesMax in all.
func (r *Reader) OnlineReport(ctx context.Context, workloadID, clientID string) ([]flywheel.OnlineStats, error) {
	now := r.opts.Now()
	act, err := r.active(ctx, workloadID, clientID)
	if err != nil {
		return nil, err
	}
	out := []flywheel.OnlineStats{}
	seen := map[string]bool{}
	for _, p := range act {
		st, err := r.Stats(ctx, p, now)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
		seen[seriesKey(p.WorkloadID, p.ClientID, p.Candidate, p.ID)] = true
	}
	series, err := r.opts.Store.ListOnlineSeries(ctx, workloadID, clientID, now.Add(-r.opts.Retention), ReportSeriesMax+len(act))
	if err != nil {
		return nil, err
	}
	for _, s := range series {
		if len(out) >= ReportSeriesMax {
			break
		}
		if seen[seriesKey(s.WorkloadID, s.ClientID, s.Model, s.PromotionID)] {
			continue
		}
		p := flywheel.Promotion{ID: s.PromotionID, WorkloadID: s.WorkloadID, ClientID: s.ClientID, Candidate: s.Model}
		st, err := r.Stats(ctx, p, s.Last)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func seriesKey(workloadID, clientID, model, promotionID string) string {
	return workloadID + "\x00" + clientID + "\x00" + model + "\x00" + promotionID
}
