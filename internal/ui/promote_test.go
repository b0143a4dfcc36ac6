package ui_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/flywheeltest"
	"github.com/flywheel-go/flywheel/internal/history"
	"github.com/flywheel-go/flywheel/internal/history/historytest"
	"github.com/flywheel-go/flywheel/internal/promote"
	"github.com/flywheel-go/flywheel/internal/server/servertest"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
	"github.com/flywheel-go/flywheel/internal/ui"
)

// The run page of a completed run has a Promote form per candidate variant
// that was evaluated successfully; promoting leads to the workload page's
// Promotions section, whose Rollback button ends the promotion.
func TestPromoteAndRollbackForms(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t, store.SQLite)
	at := time.Date(2026, 3, 15, 14, 30, 0, 0, time.UTC)
	historytest.Seed(t, s, at) // the workload page shows a workload with runs
	jobs := &servertest.JobService{GetJobFunc: func(_ context.Context, id string) (*flywheel.JobDetail, error) {
		status := flywheel.RunRunning
		if id == "run-done" {
			status = flywheel.RunCompleted
		}
		d := servertest.Detail(id, status, at)
		d.Run.WorkloadID, d.Run.ClientID = historytest.Workload, historytest.Client
		for _, n := range d.NIMs {
			d.Run.Spec.Candidates = append(d.Run.Spec.Candidates, flywheel.NIMConfig{ModelName: n.ModelName})
		}
		return d, nil
	}}
	svc := promote.New(promote.Options{Store: s, Jobs: jobs, Platform: &flywheeltest.Platform{}})
	t.Cleanup(svc.Close)
	srv := httptest.NewServer(ui.New(ui.Options{Jobs: jobs, History: &history.Service{Store: s}, Promotions: svc}))
	t.Cleanup(srv.Close)
	client := noRedirect()
	same := http.Header{"Sec-Fetch-Site": {"same-origin"}}

	page := do(t, client, http.MethodGet, srv.URL+"/ui/runs/run-done", nil, nil)
	require.Equal(t, http.StatusOK, page.status)
	require.Contains(t, page.body, `action="/ui/runs/run-done/promote"`)
	require.Contains(t, page.body, `name="variant" value="customized"`)
	m := csrfRe.FindStringSubmatch(page.body)
	require.Len(t, m, 2)
	token := m[1]
	page = do(t, client, http.MethodGet, srv.URL+"/ui/runs/run-1", nil, nil)
	require.NotContains(t, page.body, "/promote", "a running run cannot promote")

	form := url.Values{"csrf": {token}, "candidate": {"meta/llama-3.2-1b-instruct"}, "variant": {"base"}, "mode": {"canary"},
		"canary_percent": {"25"}}
	got := do(t, client, http.MethodPost, srv.URL+"/ui/runs/run-done/promote", form, http.Header{"Sec-Fetch-Site": {"cross-site"}})
	require.Equal(t, http.StatusForbidden, got.status, "a cross-site form is refused")
	got = do(t, client, http.MethodPost, srv.URL+"/ui/runs/run-done/promote", form, same)
	require.Equal(t, http.StatusSeeOther, got.status, got.body)
	require.Equal(t, "/ui/workloads/"+historytest.Workload+"?client_id="+historytest.Client+"#promotions", got.header.Get("Location"))

	ps, err := s.ListPromotions(context.Background(), historytest.Workload, historytest.Client)
	require.NoError(t, err)
	require.Len(t, ps, 1)
	require.Equal(t, 25.0, ps[0].CanaryPercent)
	page = do(t, client, http.MethodGet, srv.URL+"/ui/workloads/"+historytest.Workload+"?client_id="+historytest.Client, nil, nil)
	require.Equal(t, http.StatusOK, page.status, page.body)
	require.Contains(t, page.body, `id="promotions"`)
	require.Contains(t, page.body, "canary 25%")
	require.Contains(t, page.body, `action="/ui/promotions/`+ps[0].ID+`/rollback"`)

	got = do(t, client, http.MethodPost, srv.URL+"/ui/promotions/"+ps[0].ID+"/rollback", url.Values{"csrf": {token},
		"reason": {"rolled back from the dashboard"}}, same)
	require.Equal(t, http.StatusSeeOther, got.status, got.body)
	p, err := s.GetPromotion(context.Background(), ps[0].ID)
	require.NoError(t, err)
	require.Equal(t, flywheel.PromotionRolledBack, p.Status)
	page = do(t, client, http.MethodGet, srv.URL+"/ui/workloads/"+historytest.Workload+"?client_id="+historytest.Client, nil, nil)
	require.Contains(t, page.body, "rolled_back")
	require.NotContains(t, page.body, "/rollback\"", "no Rollback button on an ended promotion")

	got = do(t, client, http.MethodPost, srv.URL+"/ui/runs/run-1/promote", form, same)
	require.Equal(t, http.StatusConflict, got.status, "a running run: the service refuses")
}
