package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/platform/endpoint"
	"github.com/flywheel-go/flywheel/internal/promote"
	"github.com/flywheel-go/flywheel/internal/server"
	"github.com/flywheel-go/flywheel/internal/server/servertest"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

// promotionSetup serves the API with a real promotion service: a SQLite
// store, the endpoint platform and a model server that lists the
// candidates; job run-done is completed, every other job is running.
func promotionSetup(t *testing.T) (*testBundle, *store.Store) {
	t.Helper()
	models := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprint(w, `{"data":[{"id":"meta/llama-3.2-1b-instruct"},{"id":"meta/llama-3.2-3b-instruct"}]}`)
	}))
	t.Cleanup(models.Close)
	b := setup(t)
	st := storetest.Open(t, store.SQLite)
	b.jobs.GetJobFunc = func(_ context.Context, id string) (*flywheel.JobDetail, error) {
		status := flywheel.RunRunning
		if id == "run-done" {
			status = flywheel.RunCompleted
		}
		d := servertest.Detail(id, status, start)
		for _, n := range d.NIMs {
			d.Run.Spec.Candidates = append(d.Run.Spec.Candidates, flywheel.NIMConfig{ModelName: n.ModelName, Endpoint: models.URL + "/v1"})
		}
		return d, nil
	}
	svc := promote.New(promote.Options{Store: st, Jobs: b.jobs, Platform: &endpoint.Platform{}, Audit: st})
	t.Cleanup(svc.Close)
	b.opts.Promotions = svc
	b.opts.Audit = st
	return b, st
}

func TestPromoteAPI(t *testing.T) {
	t.Parallel()
	b, st := promotionSetup(t)
	h := b.server()
	const small = "meta/llama-3.2-1b-instruct"

	res := do(t, h, http.MethodPost, "/api/jobs/run-1/promote", `{"candidate":"`+small+`","variant":"base","mode":"shadow"}`)
	require.Equal(t, http.StatusConflict, res.status, "body: %s", res.body)
	require.Contains(t, res.detail(t), "only the candidates of a completed run can be promoted")

	for _, tc := range []struct {
		name, body, field string
	}{
		{"UnknownCandidate", `{"candidate":"nope","variant":"base","mode":"shadow"}`, "candidate"},
		{"MissingCandidate", `{"variant":"base","mode":"shadow"}`, "candidate"},
		{"Variant", `{"candidate":"` + small + `","variant":"tuned","mode":"shadow"}`, "variant"},
		{"Mode", `{"candidate":"` + small + `","variant":"base","mode":"half"}`, "mode"},
		{"CanaryZero", `{"candidate":"` + small + `","variant":"base","mode":"canary"}`, "canary_percent"},
		{"CanaryOver", `{"candidate":"` + small + `","variant":"base","mode":"canary","canary_percent":150}`, "canary_percent"},
		{"CanaryOutsideCanary", `{"candidate":"` + small + `","variant":"base","mode":"full","canary_percent":20}`, "canary_percent"},
		{"UnknownField", `{"candidate":"` + small + `","variant":"base","mode":"full","percent":20}`, "percent"},
		{"WrongType", `{"candidate":"` + small + `","variant":"base","mode":"canary","canary_percent":"20"}`, "canary_percent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := do(t, h, http.MethodPost, "/api/jobs/run-done/promote", tc.body)
			require.Equal(t, http.StatusUnprocessableEntity, res.status, "body: %s", res.body)
			item := res.json(t).(map[string]any)["detail"].([]any)[0].(map[string]any)
			require.Equal(t, []any{"body", tc.field}, item["loc"], "body: %s", res.body)
		})
	}

	// The 3b candidate's base evaluation never finished.
	res = do(t, h, http.MethodPost, "/api/jobs/run-done/promote", `{"candidate":"meta/llama-3.2-3b-instruct","variant":"base","mode":"shadow"}`)
	require.Equal(t, http.StatusConflict, res.status, "body: %s", res.body)
	require.Contains(t, res.detail(t), "has no successful base-eval")
	// The endpoint platform cannot serve customized models.
	res = do(t, h, http.MethodPost, "/api/jobs/run-done/promote", `{"candidate":"`+small+`","variant":"customized","mode":"full"}`)
	require.Equal(t, http.StatusConflict, res.status, "body: %s", res.body)

	res = do(t, h, http.MethodPost, "/api/jobs/run-done/promote", `{"candidate":"`+small+`","variant":"base","mode":"canary","canary_percent":20}`)
	require.Equal(t, http.StatusOK, res.status, "body: %s", res.body)
	p := res.json(t).(map[string]any)
	id := p["id"].(string)
	require.Equal(t, "active", p["status"])
	require.Equal(t, "canary", p["mode"])
	require.Equal(t, 20.0, p["canary_percent"])
	require.Equal(t, small, p["served_model"])
	require.NotEmpty(t, p["endpoint"], "the endpoint platform's model answers at once")

	res = do(t, h, http.MethodGet, "/api/promotions?workload_id=bfcl-simple&client_id=bfcl", "")
	require.Equal(t, http.StatusOK, res.status, "body: %s", res.body)
	require.Len(t, res.json(t).(map[string]any)["promotions"], 1)
	res = do(t, h, http.MethodGet, "/api/promotions/"+id, "")
	require.Equal(t, http.StatusOK, res.status, "body: %s", res.body)
	res = do(t, h, http.MethodGet, "/api/promotions/000000000000000000000000", "")
	require.Equal(t, http.StatusNotFound, res.status, "body: %s", res.body)

	res = do(t, h, http.MethodPost, "/api/promotions/"+id+"/rollback", `{"reason":"answers too long"}`)
	require.Equal(t, http.StatusOK, res.status, "body: %s", res.body)
	p = res.json(t).(map[string]any)
	require.Equal(t, "rolled_back", p["status"])
	require.Equal(t, "answers too long", p["reason"])
	require.NotNil(t, p["ended_at"])
	res = do(t, h, http.MethodPost, "/api/promotions/"+id+"/rollback", "")
	require.Equal(t, http.StatusConflict, res.status, "body: %s", res.body)

	entries, err := st.ListAudit(context.Background(), flywheel.AuditQuery{})
	require.NoError(t, err)
	require.Len(t, entries, 2)
	require.Equal(t, flywheel.AuditPromotionRolledBack, entries[0].Action)
	require.Equal(t, id, entries[0].Target)
	require.Equal(t, "answers too long", entries[0].Detail["reason"])
	require.Equal(t, flywheel.AuditJobPromoted, entries[1].Action)
	require.Equal(t, "run-done", entries[1].Target)
	require.Equal(t, id, entries[1].Detail["promotion_id"])
	require.Equal(t, flywheel.ActorLocal, entries[1].Actor)
}

func TestPromoteAPIScopes(t *testing.T) {
	t.Parallel()
	var svc flywheel.PromotionService
	b := authSetup(t, true, func(o *server.Options) { o.Promotions = svc })
	for _, tc := range []struct {
		method, path, body string
		allowed            []flywheel.Scope
	}{
		{"POST", "/api/jobs/run-1/promote", `{"candidate":"m","variant":"base","mode":"full"}`, []flywheel.Scope{flywheel.ScopeAdmin}},
		{"POST", "/api/promotions/p1/rollback", "", []flywheel.Scope{flywheel.ScopeAdmin}},
		{"GET", "/api/promotions", "", []flywheel.Scope{flywheel.ScopeRead, flywheel.ScopeWrite, flywheel.ScopeAdmin}},
		{"GET", "/api/promotions/p1", "", []flywheel.Scope{flywheel.ScopeRead, flywheel.ScopeWrite, flywheel.ScopeAdmin}},
	} {
		for _, sc := range flywheel.Scopes() {
			t.Run(string(sc)+" "+tc.method+" "+tc.path, func(t *testing.T) {
				res := do(t, b.h, tc.method, tc.path, tc.body, bearer(b.secrets[string(sc)])...)
				for _, a := range tc.allowed {
					if a == sc {
						require.Equal(t, http.StatusServiceUnavailable, res.status, "body: %s", res.body) // no service: past the check
						return
					}
				}
				require.Equal(t, http.StatusForbidden, res.status, "body: %s", res.body)
			})
		}
	}
}
