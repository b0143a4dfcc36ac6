package ui

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// promoteOption is one candidate variant a completed run can promote: its
// evaluation succeeded.
type promoteOption struct {
	Candidate string
	Variant   flywheel.PromotionVariant
	EvalType  flywheel.EvalType
}

// promoteView is the run page's Promote section (admins, completed runs).
type promoteView struct {
	Prefix, CSRF, RunID string
	Options             []promoteOption
}

// promotionsView is a workload page's Promotions section.
type promotionsView struct {
	Prefix, CSRF string
	CanRollback  bool
	List         []flywheel.Promotion
}

// promoter is the promotion service, when Options.Promotions is one.
func (h *Handler) promoter() flywheel.PromotionService {
	s, _ := h.opts.Promotions.(flywheel.PromotionService)
	return s
}

// isAdmin reports whether r may promote and roll back: an admin token, or
// authentication off.
func isAdmin(r *http.Request) bool {
	p := flywheel.PrincipalFrom(r.Context())
	return p == nil || p.Scope == flywheel.ScopeAdmin
}

// promoteSection returns the Promote section of a completed run's page:
// a form per candidate variant whose evaluation succeeded; nil when the
// run cannot promote or the viewer may not.
func (h *Handler) promoteSection(r *http.Request, d *flywheel.JobDetail) *promoteView {
	if h.promoter() == nil || !isAdmin(r) || d.Run.Status != flywheel.RunCompleted {
		return nil
	}
	v := &promoteView{Prefix: h.opts.Prefix, CSRF: h.csrf, RunID: d.Run.ID}
	for _, n := range d.NIMs {
		for _, variant := range []flywheel.PromotionVariant{flywheel.VariantBase, flywheel.VariantICL, flywheel.VariantCustomized} {
			for _, e := range n.Evaluations {
				if e.EvalType == variant.EvalType() && e.FinishedAt != nil && e.Error == "" && len(e.Scores) > 0 {
					v.Options = append(v.Options, promoteOption{Candidate: n.ModelName, Variant: variant, EvalType: e.EvalType})
					break
				}
			}
		}
	}
	if len(v.Options) == 0 {
		return nil
	}
	return v
}

// promotionsSection returns a workload's Promotions section; nil when no
// promotion service is available.
func (h *Handler) promotionsSection(r *http.Request, workload, client string) (*promotionsView, error) {
	if h.opts.Promotions == nil {
		return nil, nil
	}
	list, err := h.opts.Promotions.ListPromotions(r.Context(), workload, client)
	if err != nil {
		return nil, err
	}
	return &promotionsView{Prefix: h.opts.Prefix, CSRF: h.csrf, CanRollback: h.promoter() != nil && isAdmin(r), List: list}, nil
}

// workloadPromotionsLink is the Promotions section of a workload's page.
func (h *Handler) workloadPromotionsLink(p *flywheel.Promotion) string {
	return h.opts.Prefix + "/workloads/" + url.PathEscape(p.WorkloadID) + "?client_id=" + url.QueryEscape(p.ClientID) + "#promotions"
}

// promote answers the run page's Promote form.
func (h *Handler) promote(w http.ResponseWriter, r *http.Request) {
	svc := h.promoter()
	if svc == nil {
		h.errorPage(w, r, flywheel.Errorf(flywheel.EUNAVAILABLE, "Promotions are not available in this process."))
		return
	}
	if err := h.checkForm(r); err != nil {
		h.errorPage(w, r, err)
		return
	}
	f := r.PostForm
	req := flywheel.PromoteRequest{JobID: r.PathValue("id"), Candidate: f.Get("candidate"),
		Variant: flywheel.PromotionVariant(f.Get("variant")), Mode: flywheel.PromotionMode(f.Get("mode"))}
	if s := strings.TrimSpace(f.Get("canary_percent")); s != "" && req.Mode == flywheel.ModeCanary {
		pct, err := strconv.ParseFloat(s, 64)
		if err != nil {
			h.errorPage(w, r, flywheel.Errorf(flywheel.EINVALID, "The canary share must be a number of percent, not %q.", s))
			return
		}
		req.CanaryPercent = pct
	}
	p, err := svc.Promote(r.Context(), req)
	if err != nil {
		h.errorPage(w, r, err)
		return
	}
	h.opts.Logger.InfoContext(r.Context(), "Dashboard action", "action", "promote", "run_id", req.JobID, "promotion_id", p.ID)
	http.Redirect(w, r, h.workloadPromotionsLink(p), http.StatusSeeOther)
}

// rollback answers a Promotions section's Rollback button.
func (h *Handler) rollback(w http.ResponseWriter, r *http.Request) {
	svc := h.promoter()
	if svc == nil {
		h.errorPage(w, r, flywheel.Errorf(flywheel.EUNAVAILABLE, "Promotions are not available in this process."))
		return
	}
	if err := h.checkForm(r); err != nil {
		h.errorPage(w, r, err)
		return
	}
	p, err := svc.Rollback(r.Context(), r.PathValue("id"), r.PostForm.Get("reason"), nil)
	if err != nil {
		h.errorPage(w, r, err)
		return
	}
	h.opts.Logger.InfoContext(r.Context(), "Dashboard action", "action", "rollback", "promotion_id", p.ID)
	http.Redirect(w, r, h.workloadPromotionsLink(p), http.StatusSeeOther)
}
