package ui

import (
	"context"
	"net/http"
	"net/url"
	"slices"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// PromotionLister lists the promotions of a workload (every workload when
// workloadID is empty; one client when clientID is not), newest first.
type PromotionLister interface {
	ListPromotions(ctx context.Context, workloadID, clientID string) ([]flywheel.Promotion, error)
}

// onlinePromotionsShown is the most promotions the timeline shows.
const onlinePromotionsShown = 50

// onlineMetricOrder puts the main metrics first.
var onlineMetricOrder = []string{flywheel.ScoreFunctionNameAndArgs, flywheel.ScoreFunctionName}

type onlineMetric struct {
	Name   string
	Detail flywheel.ScoreDetail
}

type onlineRow struct {
	flywheel.OnlineStats
	Metrics []onlineMetric
}

type onlineView struct {
	page
	Workload, Client string
	Rows             []onlineRow
	// Promotions is the promotion timeline, newest first; nil when this
	// process has no promotions to list.
	Promotions   []flywheel.Promotion
	HasTimeline  bool
	RunLinkByJob map[string]string
}

// onlinePage shows the online agreement of the promoted candidates (of a
// workload and client when the filters say so): per promotion the rolling
// window's metrics with their intervals, n, errors and latencies, and the
// timeline of promotions.
func (h *Handler) onlinePage(w http.ResponseWriter, r *http.Request) {
	if h.opts.Online == nil {
		h.errorPage(w, r, flywheel.Errorf(flywheel.EUNAVAILABLE, "The online evaluation is not available in this process."))
		return
	}
	q := r.URL.Query()
	v := onlineView{page: h.page(r, "Online evaluation"), Workload: q.Get("workload"), Client: q.Get("client")}
	v.Nav = "online"
	if len(v.Workload) > flywheel.MaxIDBytes || len(v.Client) > flywheel.MaxIDBytes {
		h.errorPage(w, r, flywheel.Errorf(flywheel.EINVALID, "The workload and client filters are at most %d bytes.", flywheel.MaxIDBytes))
		return
	}
	stats, err := h.opts.Online.OnlineReport(r.Context(), v.Workload, v.Client)
	if err != nil {
		h.errorPage(w, r, err)
		return
	}
	for _, st := range stats {
		row := onlineRow{OnlineStats: st}
		for name, d := range st.Scores {
			row.Metrics = append(row.Metrics, onlineMetric{Name: name, Detail: d})
		}
		slices.SortFunc(row.Metrics, func(a, b onlineMetric) int {
			ia, ib := metricRank(a.Name), metricRank(b.Name)
			if ia != ib {
				return ia - ib
			}
			if a.Name < b.Name {
				return -1
			}
			return 1
		})
		v.Rows = append(v.Rows, row)
	}
	if h.opts.Promotions != nil {
		ps, err := h.opts.Promotions.ListPromotions(r.Context(), v.Workload, v.Client)
		if err != nil {
			h.errorPage(w, r, err)
			return
		}
		v.HasTimeline = true
		v.Promotions = ps[:min(len(ps), onlinePromotionsShown)]
		v.RunLinkByJob = map[string]string{}
		for _, p := range v.Promotions {
			v.RunLinkByJob[p.JobID] = h.opts.Prefix + "/runs/" + url.PathEscape(p.JobID)
		}
	}
	h.render(w, r, http.StatusOK, "online", v)
}

// metricRank orders metrics: the main ones first, in onlineMetricOrder.
func metricRank(name string) int {
	if i := slices.Index(onlineMetricOrder, name); i >= 0 {
		return i
	}
	return len(onlineMetricOrder)
}
