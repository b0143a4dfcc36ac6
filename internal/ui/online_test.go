package ui_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/ui"
)

type onlineReporter struct {
	stats []flywheel.OnlineStats
	asked [2]string
}

func (o *onlineReporter) OnlineReport(_ context.Context, workloadID, clientID string) ([]flywheel.OnlineStats, error) {
	o.asked = [2]string{workloadID, clientID}
	return o.stats, nil
}

type promotionLister []flywheel.Promotion

func (p promotionLister) ListPromotions(context.Context, string, string) ([]flywheel.Promotion, error) {
	return p, nil
}

// TestOnlinePage shows each promotion's window (metrics with intervals and
// n, the main one first, errors, latencies) and the promotion timeline.
func TestOnlinePage(t *testing.T) {
	t.Parallel()
	end := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	ended := end.Add(-2 * time.Hour)
	rep := &onlineReporter{stats: []flywheel.OnlineStats{
		{WorkloadID: "support", ClientID: "acme", Model: "small", PromotionID: "p1", Active: true, N: 120, Errors: 2,
			Scores: map[string]flywheel.ScoreDetail{
				"ast_accuracy":                    {N: 120, Mean: 0.5},
				flywheel.ScoreFunctionNameAndArgs: {N: 120, Mean: 0.9, CILow: 0.842, CIHigh: 0.95},
			},
			CandidateLatencyMS: flywheel.Percentiles{N: 118, P50: 80, P90: 120, P99: 200}, WindowStart: end.Add(-time.Hour), WindowEnd: end},
		{WorkloadID: "support", ClientID: "acme", Model: "older", PromotionID: "p0", N: 0, Scores: map[string]flywheel.ScoreDetail{},
			WindowStart: ended, WindowEnd: ended},
	}}
	timeline := promotionLister{
		{ID: "p1", WorkloadID: "support", ClientID: "acme", JobID: "run-9", Candidate: "small", Variant: flywheel.VariantICL,
			Mode: flywheel.ModeCanary, CanaryPercent: 10, Status: flywheel.PromotionActive, CreatedAt: end.Add(-3 * time.Hour)},
		{ID: "p0", WorkloadID: "support", ClientID: "acme", JobID: "run-8", Candidate: "older", Variant: flywheel.VariantBase,
			Mode: flywheel.ModeShadow, Status: flywheel.PromotionRolledBack, Reason: "online function_name_and_args_accuracy 0.400 is below 0.8",
			CreatedAt: end.Add(-5 * time.Hour), EndedAt: &ended},
	}
	h := ui.New(ui.Options{Online: rep, Promotions: timeline, Prefix: "/ui"})
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequestWithContext(context.Background(), http.MethodGet, path, nil))
		return rec.Code, rec.Body.String()
	}
	code, body := get("/ui/online?workload=support&client=acme")
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, [2]string{"support", "acme"}, rep.asked)
	require.Contains(t, body, `aria-current="page">Online`)
	require.Contains(t, body, "0.842 – 0.950")
	require.Less(t, strings.Index(body, "function_name_and_args_accuracy</code>"), strings.Index(body, "ast_accuracy</code>"), "the main metric first")
	require.Contains(t, body, "80.0 / 120 / 200 ms")
	require.Contains(t, body, "No sample in the window.")
	require.Contains(t, body, "canary 10.0%")
	require.Contains(t, body, `href="/ui/runs/run-8"`)
	require.Contains(t, body, "is below 0.8")

	code, body = get("/ui/online?workload=" + strings.Repeat("w", 300))
	require.Equal(t, http.StatusBadRequest, code, body)

	code, _ = get("/ui/online")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, [2]string{"", ""}, rep.asked)

	rec := httptest.NewRecorder()
	ui.New(ui.Options{Prefix: "/ui"}).ServeHTTP(rec, httptest.NewRequestWithContext(context.Background(), http.MethodGet, "/ui/online", nil))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code, "without the online evaluation")
}
