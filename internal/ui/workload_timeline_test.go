package ui_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
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

// A workload's timeline lists, oldest first, its schedule's creation,
// fire and deletion, the runs' ends, each promotion, the replaced one and
// the rollback with its evidence; another workload's entries are left out,
// and only admins see who did what.
func TestWorkloadTimeline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.Open(t, store.SQLite)
	at := time.Date(2026, 3, 15, 14, 30, 0, 0, time.UTC)
	historytest.Seed(t, s, at)
	jobs := &servertest.JobService{GetJobFunc: func(_ context.Context, id string) (*flywheel.JobDetail, error) {
		d := servertest.Detail(id, flywheel.RunCompleted, at)
		d.Run.WorkloadID, d.Run.ClientID = historytest.Workload, historytest.Client
		for _, n := range d.NIMs {
			d.Run.Spec.Candidates = append(d.Run.Spec.Candidates, flywheel.NIMConfig{ModelName: n.ModelName})
		}
		return d, nil
	}}
	svc := promote.New(promote.Options{Store: s, Jobs: jobs, Platform: &flywheeltest.Platform{}, Audit: s})
	t.Cleanup(svc.Close)

	mine := map[string]any{"workload_id": historytest.Workload, "client_id": historytest.Client}
	add := func(action, target string, detail map[string]any) {
		require.NoError(t, s.AddAudit(ctx, &flywheel.AuditEntry{Actor: "ops (tok1)", Action: action, Target: target, Detail: detail}))
	}
	add(flywheel.AuditScheduleCreated, "sched-1", map[string]any{"workload_id": historytest.Workload, "client_id": historytest.Client,
		"min_new_records": 50})
	add(flywheel.AuditScheduleCreated, "sched-other", map[string]any{"workload_id": "other", "client_id": historytest.Client, "cron": "@daily"})
	add(flywheel.AuditScheduleFired, "sched-1", map[string]any{"workload_id": historytest.Workload, "client_id": historytest.Client,
		"reason": "50 new records", "run_id": "run-done"})
	add(flywheel.AuditScheduleDeleted, "sched-1", nil)
	add(flywheel.AuditScheduleDeleted, "sched-other", nil)
	add(flywheel.AuditLogsIngested, historytest.Workload, mine)

	const cand = "meta/llama-3.2-1b-instruct"
	shadow, err := svc.Promote(ctx, flywheel.PromoteRequest{JobID: "run-done", Candidate: cand, Variant: flywheel.VariantBase, Mode: flywheel.ModeShadow})
	require.NoError(t, err)
	canary, err := svc.Promote(ctx, flywheel.PromoteRequest{JobID: "run-done", Candidate: cand, Variant: flywheel.VariantBase,
		Mode: flywheel.ModeCanary, CanaryPercent: 20})
	require.NoError(t, err)
	evidence, err := json.Marshal(flywheel.OnlineStats{N: 25, Scores: map[string]flywheel.ScoreDetail{
		flywheel.ScoreFunctionNameAndArgs: {N: 25, Mean: 0, CILow: 0, CIHigh: 0.137}}})
	require.NoError(t, err)
	_, err = svc.Rollback(ctx, canary.ID, "online agreement below 0.8", evidence)
	require.NoError(t, err)

	srv := httptest.NewServer(ui.New(ui.Options{Jobs: jobs, History: &history.Service{Store: s}, Promotions: svc, Audit: s}))
	t.Cleanup(srv.Close)
	page := do(t, noRedirect(), http.MethodGet, srv.URL+"/ui/workloads/"+historytest.Workload+"/timeline", nil, nil)
	require.Equal(t, http.StatusOK, page.status, page.body)

	var events []string
	for _, part := range strings.Split(page.body, `<td class="event"><code>`)[1:] {
		events = append(events, part[:strings.Index(part, "</code>")])
	}
	runEnds := strings.Count(page.body, "<code>run.finished</code>")
	require.Positive(t, runEnds, "the seeded runs' ends")
	var loop []string
	for _, e := range events {
		if e != "run.finished" {
			loop = append(loop, e)
		}
	}
	require.Equal(t, []string{flywheel.AuditScheduleCreated, flywheel.AuditScheduleFired, flywheel.AuditScheduleDeleted, flywheel.AuditLogsIngested,
		flywheel.AuditJobPromoted, "promotion.replaced", flywheel.AuditJobPromoted, flywheel.AuditPromotionRolledBack}, loop)
	require.NotContains(t, page.body, "sched-other", "another workload's schedule")
	require.Contains(t, page.body, "min_new_records 50")
	require.Contains(t, page.body, "50 new records → run run-done")
	require.Contains(t, page.body, "in canary 20%: promotion "+canary.ID+", replacing "+shadow.ID)
	require.Contains(t, page.body, "function_name_and_args_accuracy 0.00 [0.00, 0.14]")
	require.Contains(t, page.body, `class="event-alert"`)
	require.Contains(t, page.body, "ops (tok1)", "an admin (authentication off) sees who")

	reader := flywheel.WithPrincipal(ctx, &flywheel.Principal{Name: "viewer", TokenID: "tok2", Scope: flywheel.ScopeRead})
	rec := httptest.NewRecorder()
	req := httptest.NewRequestWithContext(reader, http.MethodGet, "/ui/workloads/"+historytest.Workload+"/timeline", nil)
	ui.New(ui.Options{Jobs: jobs, History: &history.Service{Store: s}, Promotions: svc, Audit: s}).ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	require.NotContains(t, rec.Body.String(), "ops (tok1)", "a reader does not see the audit log's actors")
	require.Contains(t, rec.Body.String(), flywheel.AuditPromotionRolledBack)

	page = do(t, noRedirect(), http.MethodGet, srv.URL+"/ui/workloads/"+historytest.Workload, nil, nil)
	require.Contains(t, page.body, `href="/ui/workloads/`+historytest.Workload+`/timeline"`)
}
