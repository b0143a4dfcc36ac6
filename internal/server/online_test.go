package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// onlineReporter answers OnlineReport with fixed stats.
type onlineReporter struct {
	stats []flywheel.OnlineStats
	err   error
	asked [2]string
}

func (o *onlineReporter) OnlineReport(_ context.Context, workloadID, clientID string) ([]flywheel.OnlineStats, error) {
	o.asked = [2]string{workloadID, clientID}
	return o.stats, o.err
}

// TestWorkloadOnline: GET /api/workloads/{workload_id}/online answers the
// reporter's stats in the documented shape, 503 without a reporter and 422
// naming a bad parameter.
func TestWorkloadOnline(t *testing.T) {
	t.Parallel()
	docJSON, err := api.DocumentJSON()
	require.NoError(t, err)
	doc := &schemaDoc{root: loadYAMLDoc(t, docJSON), closed: true, allPresent: true}
	end := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	rep := &onlineReporter{stats: []flywheel.OnlineStats{
		{WorkloadID: "support", ClientID: "acme", Model: "small", PromotionID: "p1", Active: true, N: 120, Errors: 2,
			Scores:             map[string]flywheel.ScoreDetail{flywheel.ScoreFunctionNameAndArgs: {N: 120, Mean: 0.9, StdErr: 0.03, CILow: 0.85, CIHigh: 0.95}},
			CandidateLatencyMS: flywheel.Percentiles{N: 118, P50: 80, P90: 120, P99: 200}, ProductionLatencyMS: flywheel.Percentiles{N: 120, P50: 400, P90: 600, P99: 900},
			WindowStart: end.Add(-time.Hour), WindowEnd: end},
		{WorkloadID: "support", ClientID: "acme", Model: "older", PromotionID: "p0", WindowStart: end, WindowEnd: end},
	}}

	t.Run("Stats", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.opts.Online = rep
		resp := do(t, b.server(), http.MethodGet, "/api/workloads/support/online?client_id=acme", "")
		require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
		require.Equal(t, [2]string{"support", "acme"}, rep.asked)
		schema, err := doc.responseSchema("/api/workloads/{workload_id}/online", http.MethodGet, http.StatusOK)
		require.NoError(t, err)
		require.Empty(t, doc.validate(schema, resp.json(t), "$"), "body: %s", resp.body)
		got := resp.json(t).([]any)
		require.Len(t, got, 2)
		first := got[0].(map[string]any)
		require.Equal(t, true, first["active"])
		require.Equal(t, "2026-06-01T11:00:00.000000+00:00", first["window_start"])
		require.Equal(t, 0.95, first["scores"].(map[string]any)[flywheel.ScoreFunctionNameAndArgs].(map[string]any)["ci_high"])
		require.Equal(t, map[string]any{}, got[1].(map[string]any)["scores"])
	})

	t.Run("Empty", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.opts.Online = &onlineReporter{}
		resp := do(t, b.server(), http.MethodGet, "/api/workloads/none/online", "")
		require.Equal(t, http.StatusOK, resp.status)
		require.JSONEq(t, `[]`, string(resp.body))
	})

	t.Run("Unavailable", func(t *testing.T) {
		t.Parallel()
		resp := do(t, setup(t).server(), http.MethodGet, "/api/workloads/support/online", "")
		require.Equal(t, http.StatusServiceUnavailable, resp.status)
	})

	t.Run("BadClientID", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.opts.Online = rep
		resp := do(t, b.server(), http.MethodGet, "/api/workloads/support/online?client_id="+strings.Repeat("c", 300), "")
		require.Equal(t, http.StatusUnprocessableEntity, resp.status)
		require.Contains(t, string(resp.body), "client_id")
	})
}
