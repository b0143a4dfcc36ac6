package online

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/flywheel-go/flywheel/internal/eval"
	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// Recorder defaults.
const (
	QueueSizeDefault    = 1000
	BatchSizeDefault    = 100
	DrainTimeoutDefault = 5 * time.Second
)

// RecorderOptions configures a Recorder.
type RecorderOptions struct {
	// Store receives the scored samples.
	Store interface {
		InsertOnlineScores(ctx context.Context, samples []flywheel.OnlineScore) error
	}
	// Checker is the tool-call checker's mode (eval.tool_call_checker).
	Checker eval.ToolCallChecker
	// Metrics counts the samples (nil: unregistered metrics).
	Metrics *Metrics
	// QueueSize bounds the samples waiting to be scored (QueueSizeDefault).
	QueueSize int
	// BatchSize is the most samples stored at once (BatchSizeDefault).
	BatchSize int
	// DrainTimeout bounds scoring and storing the queued samples once
	// Run's ctx ends (DrainTimeoutDefault).
	DrainTimeout time.Duration
	Logger       *slog.Logger
	Now          func() time.Time
}

// Recorder scores the samples the capture proxy collects and stores the
// scores. Record never blocks: when the queue is full the sample is
// dropped and counted. It implements flywheel.OnlineRecorder.
type Recorder struct {
	opts    RecorderOptions
	scorer  eval.Scorer
	queue   chan flywheel.OnlineSample
	metrics *Metrics
	logger  *slog.Logger
}

var _ flywheel.OnlineRecorder = (*Recorder)(nil)

// NewRecorder returns a Recorder; start its worker with Run.
func NewRecorder(opts RecorderOptions) *Recorder {
	opts.QueueSize = cmp.Or(opts.QueueSize, QueueSizeDefault)
	opts.BatchSize = cmp.Or(opts.BatchSize, BatchSizeDefault)
	opts.DrainTimeout = cmp.Or(opts.DrainTimeout, DrainTimeoutDefault)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &Recorder{opts: opts, scorer: eval.Scorer{Checker: opts.Checker}, queue: make(chan flywheel.OnlineSample, opts.QueueSize),
		metrics: opts.Metrics, logger: opts.Logger}
	if r.metrics == nil {
		r.metrics, _ = NewMetrics(nil) // registers nothing: cannot fail
	}
	if r.logger == nil {
		r.logger = slog.New(slog.DiscardHandler)
	}
	return r
}

// Record implements flywheel.OnlineRecorder: it queues s and returns at
// once; a sample that finds the queue full is dropped and counted
// (flywheel_online_samples_total{result="dropped"}).
func (r *Recorder) Record(_ context.Context, s flywheel.OnlineSample) {
	if s.At.IsZero() {
		s.At = r.opts.Now()
	}
	select {
	case r.queue <- s:
	default:
		r.metrics.count(ResultDropped, 1)
	}
}

// Run scores and stores queued samples until ctx ends, then those still
// queued (within DrainTimeout), and returns nil. Run it once.
func (r *Recorder) Run(ctx context.Context) error {
	batch := make([]flywheel.OnlineScore, 0, r.opts.BatchSize)
	for {
		select {
		case <-ctx.Done():
			r.drain(ctx, batch[:0])
			return nil
		case s := <-r.queue:
			batch = batch[:0]
			if sc, ok := r.score(s); ok {
				batch = append(batch, sc)
			}
			batch = r.fill(batch)
			if ctx.Err() != nil {
				r.drain(ctx, batch)
				return nil
			}
			r.store(ctx, batch)
		}
	}
}

// drain stores batch and the samples still queued, within DrainTimeout.
func (r *Recorder) drain(ctx context.Context, batch []flywheel.OnlineScore) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.DrainTimeout)
	defer cancel()
	for batch = r.fill(batch); len(batch) > 0 && dctx.Err() == nil; {
		r.store(dctx, batch)
		batch = r.fill(batch[:0])
	}
}

// fill adds the queued samples to batch, up to BatchSize, without waiting.
func (r *Recorder) fill(batch []flywheel.OnlineScore) []flywheel.OnlineScore {
	for len(batch) < r.opts.BatchSize {
		select {
		case s := <-r.queue:
			if sc, ok := r.score(s); ok {
				batch = append(batch, sc)
			}
		default:
			return batch
		}
	}
	return batch
}

// score scores one sample; ok is false when production's answer or the
// request cannot be scored (counted and logged).
func (r *Recorder) score(s flywheel.OnlineSample) (flywheel.OnlineScore, bool) {
	sc := flywheel.OnlineScore{PromotionID: s.PromotionID, WorkloadID: s.WorkloadID, ClientID: s.ClientID, Model: s.Model,
		At: s.At.UTC(), Error: s.CandidateError,
		ProductionLatencyMS: float64(s.ProductionLatency) / float64(time.Millisecond),
		CandidateLatencyMS:  float64(s.CandidateLatency) / float64(time.Millisecond)}
	answer := s.Candidate
	if s.CandidateError != "" {
		answer = nil // a failed answer scores 0, as in the offline evaluation
	}
	scores, err := r.scorer.Score(s.Request, s.Production, answer)
	switch {
	case errors.Is(err, eval.ErrAnswerUnreadable):
		sc.Error = "candidate: " + err.Error()
	case err != nil:
		r.metrics.count(ResultUnscorable, 1)
		r.logger.Warn("Online sample not scored", slog.String("workload_id", s.WorkloadID), slog.String("client_id", s.ClientID),
			slog.String("promotion_id", s.PromotionID), slog.String("error", err.Error()))
		return sc, false
	}
	if sc.Error == "" && len(answer) == 0 {
		sc.Error = "candidate gave no answer"
	}
	sc.Scores = scores
	return sc, true
}

func (r *Recorder) store(ctx context.Context, batch []flywheel.OnlineScore) {
	if len(batch) == 0 {
		return
	}
	if err := r.opts.Store.InsertOnlineScores(ctx, batch); err != nil {
		r.metrics.count(ResultStoreFailed, len(batch))
		r.logger.WarnContext(ctx, "Storing online samples failed", slog.Int("samples", len(batch)), slog.String("error", err.Error()))
		return
	}
	r.metrics.count(ResultScored, len(batch))
	for _, s := range batch {
		r.metrics.observe(s)
	}
}
