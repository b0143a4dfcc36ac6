package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"

	"github.com/flywheel-go/flywheel/internal/config"
	"github.com/flywheel-go/flywheel/internal/eval"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/online"
	"github.com/flywheel-go/flywheel/internal/promote"
)

// onlineParts is the online evaluation of a process: the reader (the
// API's report and the schedules' agreement), the monitor (the leader's
// check) and, in API processes, the recorder the gateway feeds.
type onlineParts struct {
	metrics  *online.Metrics
	reader   *online.Reader
	monitor  *online.Monitor
	promoter *appPromoter
	// recorderDone closes when the recorder has stored what it had queued.
	recorderDone chan struct{}
}

// newOnline builds the online evaluation's reader and monitor. Every
// process has them: the leader that runs the check may be any worker.
func (a *App) newOnline(cfg *config.Config, logger *slog.Logger) error {
	oc := cfg.Online
	m, err := online.NewMetrics(a.Registry)
	if err != nil {
		return err
	}
	reader := online.NewReader(online.ReaderOptions{Store: a.Store, Promotions: online.PromotionsFunc(a.activePromotions),
		Window: oc.Window, WindowSamples: oc.WindowSamples, Retention: oc.Retention})
	a.online = onlineParts{metrics: m, reader: reader, promoter: &appPromoter{a: a, cfg: cfg, logger: logger}}
	a.online.monitor = online.NewMonitor(online.MonitorOptions{Reader: reader, Promoter: a.online.promoter, Store: a.Store,
		Retention: oc.Retention, Metrics: m, AutoRollback: oc.AutoRollback, MinSamples: oc.MinSamples, Metric: oc.Metric,
		RollbackBelow: oc.RollbackBelow, Logger: logger})
	return nil
}

// activePromotions lists the active promotions of every workload.
func (a *App) activePromotions(ctx context.Context) ([]flywheel.Promotion, error) {
	routes, err := a.Store.ActivePromotions(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]flywheel.Promotion, len(routes))
	for i, r := range routes {
		out[i] = r.Promotion
	}
	return out, nil
}

// startRecorder starts the recorder that scores what the gateway hands it
// (API processes; call it before the gateway is built), until bg ends.
func (a *App) startRecorder(bg context.Context, cfg *config.Config, logger *slog.Logger) {
	rec := online.NewRecorder(online.RecorderOptions{Store: a.Store, Checker: eval.ToolCallChecker(cfg.Eval.ToolCallChecker),
		Metrics: a.online.metrics, QueueSize: cfg.Online.QueueSize, Logger: logger.With("component", "online")})
	a.recorder = rec
	a.online.recorderDone = make(chan struct{})
	go func() {
		defer close(a.online.recorderDone)
		_ = rec.Run(bg)
	}()
}

// waitRecorder waits until the recorder has stored its queue (Close).
func (a *App) waitRecorder() {
	if a.online.recorderDone != nil {
		<-a.online.recorderDone
	}
}

// appPromoter rolls promotions back for the monitor through the process's
// promotion service; a process without the API builds one the first time.
type appPromoter struct {
	a      *App
	cfg    *config.Config
	logger *slog.Logger
	once   sync.Once
	svc    *promote.Service
}

// Rollback implements flywheel.Promoter.
func (p *appPromoter) Rollback(ctx context.Context, id, reason string, evidence json.RawMessage) (*flywheel.Promotion, error) {
	if p.a.Promotions != nil {
		return p.a.Promotions.Rollback(ctx, id, reason, evidence)
	}
	p.once.Do(func() { p.svc = p.a.newPromotions(p.cfg, p.logger) })
	return p.svc.Rollback(ctx, id, reason, evidence)
}

// close stops the service it built, if any.
func (p *appPromoter) close() {
	if p != nil && p.svc != nil {
		p.svc.Close()
	}
}
