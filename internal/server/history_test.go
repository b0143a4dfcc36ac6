package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/history"
	"github.com/flywheel-go/flywheel/internal/history/historytest"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

// TestHistoryAPI serves the workloads, a workload's history and the
// comparison of two runs from a real store, and checks every answer
// against our document.
func TestHistoryAPI(t *testing.T) {
	t.Parallel()
	docJSON, err := api.DocumentJSON()
	require.NoError(t, err)
	doc := &schemaDoc{root: loadYAMLDoc(t, docJSON), closed: true}
	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			t.Parallel()
			s := storetest.Open(t, d)
			fx := historytest.Seed(t, s, start)
			b := setup(t)
			b.opts.History = &history.Service{Store: s}
			h := b.server()
			get := func(target, docPath string, status int, out any) response {
				t.Helper()
				res := do(t, h, "GET", target, "")
				require.Equal(t, status, res.status, "%s: %s", target, res.body)
				schema, err := doc.responseSchema(docPath, "GET", status)
				require.NoError(t, err)
				errs := doc.validate(schema, res.json(t), "$")
				require.Empty(t, errs, "answer breaks our document:\n%s\nbody: %s", strings.Join(errs, "\n"), res.body)
				if out != nil {
					decodeInto(t, res, out)
				}
				return res
			}

			var ws api.WorkloadsResponse
			get("/api/workloads", "/api/workloads", http.StatusOK, &ws)
			require.Len(t, ws.Workloads, 1)
			require.Equal(t, api.WorkloadSummary{WorkloadID: historytest.Workload, ClientID: historytest.Client, Runs: 3, FinishedRuns: 3,
				LastRun: ws.Workloads[0].LastRun}, ws.Workloads[0])
			require.Equal(t, fx.C, ws.Workloads[0].LastRun.ID)

			const histPath = "/api/workloads/{workload_id}/history"
			var hist api.WorkloadHistoryResponse
			get("/api/workloads/"+historytest.Workload+"/history?client_id="+historytest.Client+"&limit=10", histPath, http.StatusOK, &hist)
			require.Equal(t, []string{historytest.Metric}, hist.Metrics)
			require.Len(t, hist.Runs, 3)
			require.Equal(t, fx.A, hist.Runs[0].ID)
			require.Equal(t, "completed", hist.Runs[1].Status)
			require.NotNil(t, hist.Runs[1].FinishedAt)
			require.Equal(t, "customized-eval", string(hist.Runs[1].Recommendation.EvalType))
			require.Len(t, hist.Runs[1].Evaluations, 2)
			sc := hist.Runs[1].Evaluations[0].Scores[historytest.Metric]
			require.Equal(t, 42, sc.N)
			get("/api/workloads/nope/history", histPath, http.StatusNotFound, nil)
			get("/api/workloads/"+historytest.Workload+"/history?limit=0", histPath, http.StatusUnprocessableEntity, nil)

			const cmpPath = "/api/jobs/compare"
			var c api.JobCompareResponse
			get("/api/jobs/compare?a="+fx.A+"&b="+fx.B, cmpPath, http.StatusOK, &c)
			require.Equal(t, "answer", c.PairedBy, "the fixture runs have no manifest")
			require.Equal(t, historytest.Shared, c.SharedItems)
			require.Equal(t, historytest.Ambiguous, c.AmbiguousItems)
			require.Equal(t, 42, c.A.Tools["lookup"])
			require.Equal(t, 42, c.B.DataStats.Eval)
			require.Len(t, c.Scores, 2)
			require.Equal(t, historytest.Shared, c.Scores[0].Paired.N)
			require.InDelta(t, historytest.PairedMean, c.Scores[0].Paired.Diff.Mean, 1e-12)
			require.Equal(t, flywheel.VerdictBetter, c.Scores[0].Paired.Verdict)
			require.Nil(t, c.Scores[1].A)
			require.Nil(t, c.Scores[1].Paired)

			get("/api/jobs/compare?a="+fx.A+"&b="+fx.C, cmpPath, http.StatusOK, &c)
			require.Zero(t, c.SharedItems)
			require.Nil(t, c.Scores[0].Paired)
			require.NotEmpty(t, c.Notes)

			res := get("/api/jobs/compare?a="+fx.A, cmpPath, http.StatusUnprocessableEntity, nil)
			require.Contains(t, string(res.body), `"loc":["query","b"]`)
			res = get("/api/jobs/compare?a="+fx.A+"&b=nothex", cmpPath, http.StatusUnprocessableEntity, nil)
			require.Contains(t, string(res.body), `"loc":["query","b"]`)
			get("/api/jobs/compare?a="+fx.A+"&b="+url.QueryEscape(strings.Repeat("0", 24)), cmpPath, http.StatusNotFound, nil)

			// The literal path beside /api/jobs/{job_id}: other methods get 405.
			require.Equal(t, http.StatusMethodNotAllowed, do(t, h, "POST", "/api/jobs/compare", "{}").status)
		})
	}
}

func TestHistoryUnavailable(t *testing.T) {
	t.Parallel()
	h := setup(t).server()
	for _, target := range []string{"/api/workloads", "/api/workloads/w/history", "/api/jobs/compare?a=x&b=y"} {
		require.Equal(t, http.StatusServiceUnavailable, do(t, h, "GET", target, "").status, target)
	}
}
