// Package promote makes a candidate of a finished run serve its workload's
// traffic through the capture proxy, and ends such promotions. It checks
// that the run completed and that the chosen candidate and variant were
// evaluated successfully, has the platform serve the variant (the
// candidate's model, or its customized model) under a key of the
// promotion's own (so the run's cleanup never stops it), records the
// promotion (replacing the active one of the workload and client) and
// audits every promotion and rollback. Serving is resumed when the process
// starts: a local model server does not outlive its process.
package promote

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/store"
)

// Defaults of Options.
const (
	PollIntervalDefault = 2 * time.Second
	ReadyTimeoutDefault = 30 * time.Minute
	// evalFile is the evaluation file of a run's datasets.
	evalFile = "eval_data.jsonl"
)

// Store keeps promotions; *store.Store implements it.
type Store interface {
	CreatePromotion(ctx context.Context, p *flywheel.PromotionRoute) (*flywheel.PromotionRoute, error)
	GetPromotion(ctx context.Context, id string) (*flywheel.PromotionRoute, error)
	ActivePromotions(ctx context.Context) ([]flywheel.PromotionRoute, error)
	ListPromotions(ctx context.Context, workloadID, clientID string) ([]flywheel.Promotion, error)
	EndPromotion(ctx context.Context, id string, status flywheel.PromotionStatus, reason string, evidence json.RawMessage, at time.Time) (bool, error)
	SetPromotionServing(ctx context.Context, id, endpoint, servedModel, deploymentID string) error
}

// Jobs returns a run with its candidates, evaluations and customizations.
type Jobs interface {
	GetJob(ctx context.Context, id string) (*flywheel.JobDetail, error)
}

// Options configures a Service.
type Options struct {
	Store    Store
	Jobs     Jobs
	Platform flywheel.Platform
	// Audit, when set, records every promotion and rollback.
	Audit  flywheel.AuditLog
	Logger *slog.Logger
	Now    flywheel.Clock
	// PollInterval is how often a starting deployment is looked at
	// (default PollIntervalDefault); ReadyTimeout bounds the wait for it
	// (default ReadyTimeoutDefault).
	PollInterval time.Duration
	ReadyTimeout time.Duration
	// OnChange is called after a promotion starts, ends or gets its
	// endpoint (the capture proxy reloads its routes).
	OnChange func()
}

// Service implements flywheel.PromotionService.
type Service struct {
	opts   Options
	logger *slog.Logger
	bg     context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ flywheel.PromotionService = (*Service)(nil)

// New returns a Service; call Start to resume the active promotions'
// serving and Close to stop waiting on deployments.
func New(opts Options) *Service {
	opts.PollInterval = cmp.Or(opts.PollInterval, PollIntervalDefault)
	opts.ReadyTimeout = cmp.Or(opts.ReadyTimeout, ReadyTimeoutDefault)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.OnChange == nil {
		opts.OnChange = func() {}
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	bg, cancel := context.WithCancel(context.Background())
	return &Service{opts: opts, logger: logger.With("component", "promote"), bg: bg, cancel: cancel}
}

// Start makes sure every active promotion is served (a local model server
// stopped with the process that started it is started again, on a new
// port recorded as the promotion's endpoint). It returns at once.
func (s *Service) Start(ctx context.Context) error {
	active, err := s.opts.Store.ActivePromotions(ctx)
	if err != nil {
		return fmt.Errorf("resume promotions: %w", err)
	}
	for _, p := range active {
		req, err := s.deployRequest(ctx, p.Promotion)
		if err != nil {
			s.logger.WarnContext(ctx, "Promotion not resumed", slog.String("promotion_id", p.ID), slog.Any("error", err))
			continue
		}
		s.goServe(p, req)
	}
	return nil
}

// Close stops the waits for deployments to become ready.
func (s *Service) Close() {
	s.cancel()
	s.wg.Wait()
}

// invalid is a 422 naming a body field.
func invalid(field, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return &flywheel.Error{Code: flywheel.EUNPROCESSABLE, Message: msg,
		Fields: []flywheel.FieldError{{Loc: []string{"body", field}, Msg: msg, Type: "value_error"}}}
}

// validate checks a request's fields.
func validate(req flywheel.PromoteRequest) error {
	switch {
	case strings.TrimSpace(req.Candidate) == "":
		return invalid("candidate", "candidate is required: the model name of a candidate of the run")
	case !req.Variant.Valid():
		return invalid("variant", "variant must be base, icl or customized, not %q", req.Variant)
	case !req.Mode.Valid():
		return invalid("mode", "mode must be shadow, canary or full, not %q", req.Mode)
	case req.Mode == flywheel.ModeCanary && !(req.CanaryPercent > 0 && req.CanaryPercent <= 100):
		return invalid("canary_percent", "canary_percent must be more than 0 and at most 100 in canary mode, not %g", req.CanaryPercent)
	case req.Mode != flywheel.ModeCanary && req.CanaryPercent != 0:
		return invalid("canary_percent", "canary_percent is only for canary mode")
	}
	return nil
}

// Promote implements flywheel.PromotionService.
func (s *Service) Promote(ctx context.Context, req flywheel.PromoteRequest) (*flywheel.Promotion, error) {
	if err := validate(req); err != nil {
		return nil, err
	}
	d, err := s.opts.Jobs.GetJob(ctx, req.JobID)
	if err != nil {
		return nil, err
	}
	run := d.Run
	if run.Status != flywheel.RunCompleted {
		return nil, flywheel.Errorf(flywheel.ECONFLICT, "Job %s is %s: only the candidates of a completed run can be promoted", run.ID, run.Status)
	}
	nim, err := findCandidate(d, req.Candidate)
	if err != nil {
		return nil, err
	}
	if !evaluated(nim, req.Variant.EvalType()) {
		return nil, flywheel.Errorf(flywheel.ECONFLICT, "Candidate %s has no successful %s in job %s: its %s variant cannot be promoted",
			req.Candidate, req.Variant.EvalType(), run.ID, req.Variant)
	}
	p := flywheel.PromotionRoute{Promotion: flywheel.Promotion{
		ID: store.NewID(s.opts.Now()), WorkloadID: run.WorkloadID, ClientID: run.ClientID, JobID: run.ID,
		Candidate: req.Candidate, Variant: req.Variant, Mode: req.Mode, CanaryPercent: req.CanaryPercent,
		CreatedBy: flywheel.ActorFrom(ctx), CreatedAt: s.opts.Now().UTC(),
	}}
	if req.Variant == flywheel.VariantICL {
		if p.ICLPrompt, err = iclPrompt(run); err != nil {
			return nil, flywheel.Errorf(flywheel.ECONFLICT, "Job %s: the few-shot examples of its ICL evaluation cannot be read: %v", run.ID, err)
		}
	}
	dreq, err := s.deployRequestFor(ctx, d, nim, p.Promotion)
	if err != nil {
		return nil, err
	}
	dep, err := s.serve(ctx, dreq)
	if err != nil {
		if errors.Is(err, flywheel.ErrPermanent) {
			return nil, flywheel.Errorf(flywheel.ECONFLICT, "The %s platform cannot serve %s (%s): %v", s.opts.Platform.Name(), req.Candidate, req.Variant, err)
		}
		return nil, flywheel.Errorf(flywheel.EUNAVAILABLE, "Serving %s failed; try again: %v", req.Candidate, err)
	}
	if dep.Status == flywheel.DeploymentFailed {
		return nil, flywheel.Errorf(flywheel.ECONFLICT, "Serving %s failed: %s", req.Candidate, dep.Message)
	}
	p.DeploymentID = dep.ID
	ready := dep.Status == flywheel.DeploymentReady
	if ready {
		p.Endpoint, p.ServedModel = dep.Endpoint.BaseURL, cmp.Or(dep.Endpoint.Model, req.Candidate)
	}
	replaced, err := s.opts.Store.CreatePromotion(ctx, &p)
	if err != nil {
		s.undeploy(ctx, p.DeploymentID)
		return nil, err
	}
	s.opts.OnChange()
	if replaced != nil && replaced.DeploymentID != "" && replaced.DeploymentID != p.DeploymentID {
		s.undeploy(ctx, replaced.DeploymentID)
	}
	detail := map[string]any{"promotion_id": p.ID, "candidate": p.Candidate, "variant": string(p.Variant), "mode": string(p.Mode),
		"workload_id": p.WorkloadID, "client_id": p.ClientID}
	if p.Mode == flywheel.ModeCanary {
		detail["canary_percent"] = p.CanaryPercent
	}
	if replaced != nil {
		detail["replaced"] = replaced.ID
	}
	s.audit(ctx, flywheel.AuditJobPromoted, run.ID, detail)
	s.logger.InfoContext(ctx, "Candidate promoted", slog.String("promotion_id", p.ID), slog.String("job_id", run.ID),
		slog.String("candidate", p.Candidate), slog.String("variant", string(p.Variant)), slog.String("mode", string(p.Mode)),
		slog.Bool("ready", ready))
	if !ready {
		s.goServe(p, dreq)
	}
	return &p.Promotion, nil
}

// Rollback implements flywheel.Promoter: production answers the
// workload's traffic again at once, and what served the candidate stops.
func (s *Service) Rollback(ctx context.Context, id, reason string, evidence json.RawMessage) (*flywheel.Promotion, error) {
	p, err := s.GetPromotion(ctx, id)
	if err != nil {
		return nil, err
	}
	if len(evidence) > 0 && !json.Valid(evidence) {
		return nil, invalid("evidence", "evidence must be JSON")
	}
	reason = cmp.Or(strings.TrimSpace(reason), flywheel.RollbackReasonManual)
	ended, err := s.opts.Store.EndPromotion(ctx, id, flywheel.PromotionRolledBack, reason, evidence, s.opts.Now())
	if err != nil {
		return nil, err
	}
	if !ended {
		return nil, flywheel.Errorf(flywheel.ECONFLICT, "Promotion %s is %s, not active", id, p.Status)
	}
	s.opts.OnChange()
	full, err := s.opts.Store.GetPromotion(ctx, id)
	if err != nil {
		return nil, err
	}
	detail := map[string]any{"reason": reason, "job_id": p.JobID, "candidate": p.Candidate, "workload_id": p.WorkloadID,
		"client_id": p.ClientID, "mode": string(p.Mode)}
	if len(evidence) > 0 {
		var v any
		if json.Unmarshal(evidence, &v) == nil {
			detail["evidence"] = v
		}
	}
	// Audited when production took over, not once the candidate stopped.
	s.audit(ctx, flywheel.AuditPromotionRolledBack, id, detail)
	s.undeploy(ctx, full.DeploymentID)
	s.logger.InfoContext(ctx, "Promotion rolled back", slog.String("promotion_id", id), slog.String("reason", reason))
	return &full.Promotion, nil
}

// GetPromotion implements flywheel.PromotionService.
func (s *Service) GetPromotion(ctx context.Context, id string) (*flywheel.Promotion, error) {
	p, err := s.opts.Store.GetPromotion(ctx, id)
	if errors.Is(err, flywheel.ErrNotFound) {
		return nil, flywheel.Errorf(flywheel.ENOTFOUND, "Promotion not found")
	}
	if err != nil {
		return nil, err
	}
	return &p.Promotion, nil
}

// ListPromotions implements flywheel.PromotionService.
func (s *Service) ListPromotions(ctx context.Context, workloadID, clientID string) ([]flywheel.Promotion, error) {
	return s.opts.Store.ListPromotions(ctx, workloadID, clientID)
}

func findCandidate(d *flywheel.JobDetail, name string) (*flywheel.NIMDetail, error) {
	names := make([]string, 0, len(d.NIMs))
	for i := range d.NIMs {
		if d.NIMs[i].ModelName == name {
			return &d.NIMs[i], nil
		}
		names = append(names, d.NIMs[i].ModelName)
	}
	return nil, invalid("candidate", "%q is not a candidate of job %s (its candidates: %s)", name, d.Run.ID, strings.Join(names, ", "))
}

// evaluated reports whether the candidate has a finished evaluation of
// the type without error.
func evaluated(nim *flywheel.NIMDetail, t flywheel.EvalType) bool {
	return slices.ContainsFunc(nim.Evaluations, func(e flywheel.Evaluation) bool {
		return e.EvalType == t && e.FinishedAt != nil && e.Error == "" && len(e.Scores) > 0
	})
}

// deployRequest rebuilds the deploy request of a stored promotion.
func (s *Service) deployRequest(ctx context.Context, p flywheel.Promotion) (flywheel.DeployRequest, error) {
	d, err := s.opts.Jobs.GetJob(ctx, p.JobID)
	if err != nil {
		return flywheel.DeployRequest{}, err
	}
	nim, err := findCandidate(d, p.Candidate)
	if err != nil {
		return flywheel.DeployRequest{}, err
	}
	return s.deployRequestFor(ctx, d, nim, p)
}

// deployRequestFor is what the platform is asked to serve: the candidate
// under the promotion's key, with its customization's output for the
// customized variant.
func (s *Service) deployRequestFor(ctx context.Context, d *flywheel.JobDetail, nim *flywheel.NIMDetail, p flywheel.Promotion) (flywheel.DeployRequest, error) {
	var cfg *flywheel.NIMConfig
	for i, c := range d.Run.Spec.Candidates {
		if c.ModelName == nim.ModelName {
			cfg = &d.Run.Spec.Candidates[i]
		}
	}
	if cfg == nil {
		return flywheel.DeployRequest{}, flywheel.Errorf(flywheel.ECONFLICT, "Candidate %s is not in job %s's configuration", nim.ModelName, d.Run.ID)
	}
	req := flywheel.DeployRequest{Key: "promotion/" + p.ID, RunID: d.Run.ID, NIMID: nim.ID, Model: *cfg}
	if p.Variant != flywheel.VariantCustomized {
		return req, nil
	}
	for _, c := range nim.Customizations {
		if c.JobID == "" || c.Error != "" {
			continue
		}
		job, err := s.opts.Platform.Customization(ctx, c.JobID)
		if err != nil {
			return flywheel.DeployRequest{}, flywheel.Errorf(flywheel.ECONFLICT, "The customized model of %s (customization %s) is unavailable: %v",
				nim.ModelName, c.JobID, err)
		}
		req.Adapter = &job
		return req, nil
	}
	return flywheel.DeployRequest{}, flywheel.Errorf(flywheel.ECONFLICT, "Candidate %s has no completed customization in job %s", nim.ModelName, d.Run.ID)
}

// serve asks the platform to serve req (CandidateServer when it has one).
func (s *Service) serve(ctx context.Context, req flywheel.DeployRequest) (flywheel.Deployment, error) {
	if cs, ok := s.opts.Platform.(flywheel.CandidateServer); ok {
		return cs.ServeCandidate(ctx, req)
	}
	return s.opts.Platform.Deploy(ctx, req)
}

// goServe waits in the background for p's deployment to be ready and
// records its endpoint.
func (s *Service) goServe(p flywheel.PromotionRoute, req flywheel.DeployRequest) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(s.bg, s.opts.ReadyTimeout)
		defer cancel()
		dep, err := s.serve(ctx, req)
		for {
			switch {
			case err == nil && dep.Status == flywheel.DeploymentReady:
				model := cmp.Or(dep.Endpoint.Model, p.Candidate)
				if dep.Endpoint.BaseURL == p.Endpoint && model == p.ServedModel && dep.ID == p.DeploymentID {
					return
				}
				if cur, err := s.opts.Store.GetPromotion(ctx, p.ID); err != nil || cur.Status != flywheel.PromotionActive {
					// Ended while it started: stop what was started.
					s.undeploy(ctx, dep.ID)
					return
				}
				if err := s.opts.Store.SetPromotionServing(ctx, p.ID, dep.Endpoint.BaseURL, model, dep.ID); err != nil {
					s.logger.WarnContext(ctx, "Promotion endpoint not recorded", slog.String("promotion_id", p.ID), slog.Any("error", err))
					return
				}
				s.logger.InfoContext(ctx, "Promoted candidate serving", slog.String("promotion_id", p.ID),
					slog.String("endpoint", dep.Endpoint.BaseURL), slog.String("model", model))
				s.opts.OnChange()
				return
			case err != nil && errors.Is(err, flywheel.ErrPermanent), err == nil && dep.Status == flywheel.DeploymentFailed:
				s.logger.WarnContext(ctx, "Promoted candidate cannot be served; production keeps answering",
					slog.String("promotion_id", p.ID), slog.Any("error", err), slog.String("message", dep.Message))
				return
			}
			select {
			case <-ctx.Done():
				s.logger.WarnContext(context.WithoutCancel(ctx), "Promoted candidate not ready in time; production keeps answering",
					slog.String("promotion_id", p.ID))
				return
			case <-time.After(s.opts.PollInterval):
			}
			dep, err = s.poll(ctx, req, dep)
		}
	}()
}

// poll looks at a starting deployment again: through the platform's
// CandidateServer (idempotent by key), else its Deployment; one that has
// gone is started again.
func (s *Service) poll(ctx context.Context, req flywheel.DeployRequest, dep flywheel.Deployment) (flywheel.Deployment, error) {
	if _, ok := s.opts.Platform.(flywheel.CandidateServer); ok || dep.ID == "" {
		return s.serve(ctx, req)
	}
	d, err := s.opts.Platform.Deployment(ctx, dep.ID)
	if errors.Is(err, flywheel.ErrNotFound) {
		return s.serve(ctx, req)
	}
	return d, err
}

// undeploy stops what served a promotion; a failure is logged.
func (s *Service) undeploy(ctx context.Context, id string) {
	if id == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	if err := s.opts.Platform.Undeploy(ctx, id); err != nil && !errors.Is(err, flywheel.ErrNotFound) {
		s.logger.WarnContext(ctx, "Stopping a promoted candidate failed", slog.String("deployment_id", id), slog.Any("error", err))
	}
}

func (s *Service) audit(ctx context.Context, action, target string, detail map[string]any) {
	if s.opts.Audit == nil {
		return
	}
	e := &flywheel.AuditEntry{Actor: flywheel.ActorFrom(ctx), Action: action, Target: target, Detail: detail}
	if err := s.opts.Audit.AddAudit(context.WithoutCancel(ctx), e); err != nil {
		s.logger.WarnContext(ctx, "Audit entry not recorded", slog.String("action", action), slog.String("target", target),
			slog.Any("error", err))
	}
}

// iclPrompt returns the few-shot block the run's ICL evaluation put in
// the system message of its records: the ICL dataset's first record's
// system message, less the original system message of the same record in
// the base dataset.
func iclPrompt(run *flywheel.Run) (string, error) {
	var base, icl string
	for _, ds := range run.Datasets {
		switch ds.Type {
		case flywheel.DatasetBase:
			base = ds.Path
		case flywheel.DatasetICL:
			icl = ds.Path
		}
	}
	if icl == "" {
		return "", errors.New("the run has no ICL dataset")
	}
	iclSys, _, err := firstSystemMessage(filepath.Join(icl, evalFile))
	if err != nil {
		return "", err
	}
	if iclSys == "" {
		return "", errors.New("its first record has no few-shot system message")
	}
	if base != "" {
		if orig, ok, err := firstSystemMessage(filepath.Join(base, evalFile)); err == nil && ok && orig != "" {
			if block, cut := strings.CutSuffix(iclSys, "\n\n"+orig); cut {
				return block, nil
			}
		}
	}
	return iclSys, nil
}

// firstSystemMessage reads the text of the system message of a dataset
// file's first record.
func firstSystemMessage(path string) (string, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", false, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	line, err := r.ReadBytes('\n')
	if err != nil && len(line) == 0 {
		return "", false, fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	var rec struct {
		Request struct {
			Messages []struct {
				Role    string          `json:"role"`
				Content json.RawMessage `json:"content"`
			} `json:"messages"`
		} `json:"request"`
	}
	if err := json.Unmarshal(line, &rec); err != nil {
		return "", false, fmt.Errorf("decode %s: %w", filepath.Base(path), err)
	}
	for _, m := range rec.Request.Messages {
		if m.Role != "system" {
			continue
		}
		var s string
		if json.Unmarshal(m.Content, &s) != nil {
			return "", true, nil
		}
		return s, true, nil
	}
	return "", false, nil
}
