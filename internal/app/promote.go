package app

import (
	"context"
	"log/slog"

	"github.com/flywheel-go/flywheel/internal/capture"
	"github.com/flywheel-go/flywheel/internal/config"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/promote"
	"github.com/flywheel-go/flywheel/internal/store"
)

// newPromotions returns the promotion service of the API process: it
// serves promoted candidates on a.Platform and has the gateway reload its
// routes after every change.
func (a *App) newPromotions(cfg *config.Config, logger *slog.Logger) *promote.Service {
	return promote.New(promote.Options{
		Store: a.Store, Jobs: a.Engine, Platform: a.Platform, Audit: a.Store, Logger: logger,
		ReadyTimeout: cfg.Capture.Promotion.ReadyTimeout, PollInterval: cfg.Engine.PollInterval,
		OnChange: func() {
			if a.capture == nil {
				return
			}
			if err := a.capture.RefreshRoutes(context.Background()); err != nil {
				logger.Warn("Gateway routes not reloaded; they reload within capture.promotion.route_refresh", slog.Any("error", err))
			}
		},
	})
}

// gatewayRouting is the routing part of the gateway's configuration.
func (a *App) gatewayRouting(cfg *config.Config, getenv func(string) string, c *capture.Config) {
	r := cfg.Capture.Promotion
	c.Routes, c.Recorder = a.Store, a.recorder
	c.RouteRefresh, c.ShadowQueueSize, c.ShadowWorkers = r.RouteRefresh, r.ShadowQueueSize, r.ShadowWorkers
	c.ReferenceShareCanary, c.ReferenceShareFull = config.ShareOrNone(r.ReferenceShareCanary), config.ShareOrNone(r.ReferenceShareFull)
	switch cfg.Platform.Name {
	case config.PlatformEndpoint:
		c.CandidateAPIKey = getenv("OPENAI_API_KEY")
	case config.PlatformNeMo:
		c.CandidateAPIKey = cfg.NMP.NIMAPIKey
	}
}

// promotedJobs is a JobService that refuses to delete a job one of whose
// candidates serves an active promotion: the deletion would remove its
// customized model and datasets.
type promotedJobs struct {
	flywheel.JobService
	store *store.Store
}

// DeleteJob deletes the run unless it serves a promotion.
func (j promotedJobs) DeleteJob(ctx context.Context, id string) (string, error) {
	active, err := j.store.ActivePromotions(ctx)
	if err != nil {
		return "", err
	}
	for _, p := range active {
		if p.JobID == id {
			return "", flywheel.Errorf(flywheel.ECONFLICT, "Job %s serves promotion %s (%s of %s/%s); roll it back before deleting the job",
				id, p.ID, p.Candidate, p.WorkloadID, p.ClientID)
		}
	}
	return j.JobService.DeleteJob(ctx, id)
}
