package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flywheel-go/flywheel/internal/config"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/redact"
)

// NewRedactor returns the redactor of cfg's logs.redaction. When reg is not
// nil, what it replaces is counted in flywheel_redactions_total{path,
// detector} there.
func NewRedactor(cfg *config.Config, reg prometheus.Registerer) (*redact.Redactor, error) {
	r, err := redact.New(cfg.Logs.Redaction)
	if err != nil {
		return nil, fmt.Errorf("logs.redaction: %w", err)
	}
	if reg == nil || !r.Enabled() {
		return r, nil
	}
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flywheel_redactions_total",
		Help: "Values replaced by redaction before records were stored or used, by ingest path and detector.",
	}, []string{"path", "detector"})
	if err := reg.Register(vec); err != nil {
		return nil, fmt.Errorf("register redaction metrics: %w", err)
	}
	return r.WithObserver(func(path string, c redact.Counts) {
		for d, n := range c {
			vec.WithLabelValues(path, d).Add(float64(n))
		}
	}), nil
}

// auditedJobs is a JobService that records who created, cancelled and
// deleted runs in the audit log. The API and the dashboard share it.
type auditedJobs struct {
	flywheel.JobService
	audit  flywheel.AuditLog
	logger *slog.Logger
}

func (j auditedJobs) record(ctx context.Context, action, target string, detail map[string]any) {
	e := &flywheel.AuditEntry{Actor: flywheel.ActorFrom(ctx), Action: action, Target: target, Detail: detail}
	if err := j.audit.AddAudit(context.WithoutCancel(ctx), e); err != nil {
		j.logger.WarnContext(ctx, "Audit entry not recorded", slog.String("action", action), slog.String("target", target),
			slog.Any("error", err))
	}
}

// CreateJob creates the run and records it.
func (j auditedJobs) CreateJob(ctx context.Context, req flywheel.CreateJobRequest) (*flywheel.Run, error) {
	run, err := j.JobService.CreateJob(ctx, req)
	if err == nil && run != nil {
		detail := map[string]any{"workload_id": req.WorkloadID, "client_id": req.ClientID}
		if req.IdempotencyKey != "" {
			detail["idempotency_key"] = req.IdempotencyKey
		}
		j.record(ctx, flywheel.AuditJobCreated, run.ID, detail)
	}
	return run, err
}

// CancelJob cancels the run and records it.
func (j auditedJobs) CancelJob(ctx context.Context, id string) (string, error) {
	msg, err := j.JobService.CancelJob(ctx, id)
	if err == nil {
		j.record(ctx, flywheel.AuditJobCancelled, id, map[string]any{"message": msg})
	}
	return msg, err
}

// DeleteJob deletes the run and records what it said it removed.
func (j auditedJobs) DeleteJob(ctx context.Context, id string) (string, error) {
	msg, err := j.JobService.DeleteJob(ctx, id)
	if err == nil {
		j.record(ctx, flywheel.AuditJobDeleted, id, map[string]any{"message": msg})
	}
	return msg, err
}
