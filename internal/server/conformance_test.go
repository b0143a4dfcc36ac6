package server_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/server"
	"github.com/flywheel-go/flywheel/internal/server/servertest"
)

// conformanceCase is one request and the operation of the document that
// describes its answer.
type conformanceCase struct {
	name    string
	method  string
	target  string
	body    string
	header  []string
	docPath string
	status  int
	// blueprint marks the cases the blueprint's document describes.
	blueprint bool
	// prepare changes the mocks before the request.
	prepare func(b *testBundle)
}

func conformanceCases() []conformanceCase {
	minimal := func(b *testBundle) {
		b.jobs.GetJobFunc = func(_ context.Context, id string) (*flywheel.JobDetail, error) {
			return &flywheel.JobDetail{Run: &flywheel.Run{ID: id, WorkloadID: "w", ClientID: "c", Status: flywheel.RunPending, StartedAt: start}}, nil
		}
	}
	detailOf := func(status flywheel.RunStatus) func(b *testBundle) {
		return func(b *testBundle) {
			b.jobs.GetJobFunc = func(_ context.Context, id string) (*flywheel.JobDetail, error) {
				return servertest.Detail(id, status, start), nil
			}
		}
	}
	fail := func(code, msg string) func(b *testBundle) {
		return func(b *testBundle) {
			err := flywheel.Errorf(code, "%s", msg)
			b.jobs.GetJobFunc = func(context.Context, string) (*flywheel.JobDetail, error) { return nil, err }
			b.jobs.CancelJobFunc = func(context.Context, string) (string, error) { return "", err }
			b.jobs.DeleteJobFunc = func(context.Context, string) (string, error) { return "", err }
			b.jobs.ListItemsFunc = func(context.Context, flywheel.ItemFilter) (flywheel.ItemPage, error) {
				return flywheel.ItemPage{}, err
			}
		}
	}
	emptyList := func(b *testBundle) {
		b.jobs.ListJobsFunc = func(context.Context, flywheel.JobFilter) (flywheel.JobPage, error) { return flywheel.JobPage{}, nil }
	}
	return []conformanceCase{
		{name: "CreateJob", method: "POST", target: "/api/jobs", body: `{"workload_id":"w","client_id":"c"}`, docPath: "/api/jobs", status: 200, blueprint: true},
		{name: "CreateJobWithSplit", method: "POST", target: "/api/jobs", body: `{"workload_id":"w","client_id":"c","data_split_config":{"eval_size":20,"val_ratio":0.1,"min_total_records":50,"random_seed":null,"limit":100,"parse_function_arguments":true}}`, docPath: "/api/jobs", status: 200, blueprint: true},
		{name: "CreateJobMissingFields", method: "POST", target: "/api/jobs", body: `{}`, docPath: "/api/jobs", status: 422, blueprint: true},
		{name: "CreateJobBadJSON", method: "POST", target: "/api/jobs", body: `{"workload_id":`, docPath: "/api/jobs", status: 422, blueprint: true},
		{name: "CreateJobWrongTypes", method: "POST", target: "/api/jobs", body: `{"workload_id":1,"client_id":"c","data_split_config":{"val_ratio":2}}`, docPath: "/api/jobs", status: 422, blueprint: true},
		{name: "CreateJobNotObject", method: "POST", target: "/api/jobs", body: `[]`, docPath: "/api/jobs", status: 422, blueprint: true},
		{name: "CreateJobTooLarge", method: "POST", target: "/api/jobs", body: `{"workload_id":"` + strings.Repeat("w", server.MaxJobBodyBytes) + `"}`, docPath: "/api/jobs", status: 413},
		{name: "CreateJobBadKey", method: "POST", target: "/api/jobs", body: `{"workload_id":"w","client_id":"c"}`, header: []string{"Idempotency-Key", strings.Repeat("k", 300)}, docPath: "/api/jobs", status: 422},
		{name: "ListJobs", method: "GET", target: "/api/jobs", docPath: "/api/jobs", status: 200, blueprint: true},
		{name: "ListJobsEmpty", method: "GET", target: "/api/jobs", docPath: "/api/jobs", status: 200, blueprint: true, prepare: emptyList},
		{name: "ListJobsBadQuery", method: "GET", target: "/api/jobs?status=done&limit=x", docPath: "/api/jobs", status: 422},
		{name: "GetJobRunning", method: "GET", target: "/api/jobs/run-1", docPath: "/api/jobs/{job_id}", status: 200, blueprint: true},
		{name: "GetJobCompleted", method: "GET", target: "/api/jobs/run-1", docPath: "/api/jobs/{job_id}", status: 200, blueprint: true, prepare: detailOf(flywheel.RunCompleted)},
		{name: "GetJobFailed", method: "GET", target: "/api/jobs/run-1", docPath: "/api/jobs/{job_id}", status: 200, blueprint: true, prepare: detailOf(flywheel.RunFailed)},
		{name: "GetJobMinimal", method: "GET", target: "/api/jobs/run-1", docPath: "/api/jobs/{job_id}", status: 200, blueprint: true, prepare: minimal},
		{name: "GetJobWithWarnings", method: "GET", target: "/api/jobs/run-1", docPath: "/api/jobs/{job_id}", status: 200, blueprint: true, prepare: failingDetail},
		{name: "GetJobInvalidID", method: "GET", target: "/api/jobs/x", docPath: "/api/jobs/{job_id}", status: 400, prepare: fail(flywheel.EINVALID, "Invalid job_id format")},
		{name: "GetJobNotFound", method: "GET", target: "/api/jobs/x", docPath: "/api/jobs/{job_id}", status: 404, prepare: fail(flywheel.ENOTFOUND, "Job not found")},
		{name: "GetJobInternal", method: "GET", target: "/api/jobs/x", docPath: "/api/jobs/{job_id}", status: 500, prepare: fail(flywheel.EINTERNAL, "Internal error")},
		{name: "DeleteJob", method: "DELETE", target: "/api/jobs/run-1", docPath: "/api/jobs/{job_id}", status: 200, blueprint: true},
		{name: "DeleteRunningJob", method: "DELETE", target: "/api/jobs/run-1", docPath: "/api/jobs/{job_id}", status: 400, prepare: fail(flywheel.EPRECONDITION, "Cannot delete a running job. Please cancel the job first.")},
		{name: "DeleteMissingJob", method: "DELETE", target: "/api/jobs/run-1", docPath: "/api/jobs/{job_id}", status: 404, prepare: fail(flywheel.ENOTFOUND, "Job with ID run-1 not found")},
		{name: "CancelJob", method: "POST", target: "/api/jobs/run-1/cancel", docPath: "/api/jobs/{job_id}/cancel", status: 200, blueprint: true},
		{name: "CancelFinishedJob", method: "POST", target: "/api/jobs/run-1/cancel", docPath: "/api/jobs/{job_id}/cancel", status: 400, prepare: fail(flywheel.EPRECONDITION, "Cannot cancel a job that has already finished.")},
		{name: "CancelConflict", method: "POST", target: "/api/jobs/run-1/cancel", docPath: "/api/jobs/{job_id}/cancel", status: 409, prepare: fail(flywheel.ECONFLICT, "Job is being deleted")},
		{name: "Items", method: "GET", target: "/api/evaluations/e1/items?tool=get_weather&divergent=true&limit=1", docPath: "/api/evaluations/{evaluation_id}/items", status: 200},
		{name: "ItemsBadQuery", method: "GET", target: "/api/evaluations/e1/items?limit=0", docPath: "/api/evaluations/{evaluation_id}/items", status: 422},
		{name: "ItemsNotFound", method: "GET", target: "/api/evaluations/e1/items", docPath: "/api/evaluations/{evaluation_id}/items", status: 404, prepare: fail(flywheel.ENOTFOUND, "Evaluation not found")},
		{name: "Logs", method: "POST", target: "/api/logs", body: `{"workload_id":"w","client_id":"c","timestamp":1746000037,"request":{},"response":{}}` + "\nnot json\n", docPath: "/api/logs", status: 200},
		{name: "LogsEmpty", method: "POST", target: "/api/logs", body: "\n\n", docPath: "/api/logs", status: 400},
		{name: "Healthz", method: "GET", target: "/healthz", docPath: "/healthz", status: 200},
		{name: "Readyz", method: "GET", target: "/readyz", docPath: "/readyz", status: 200},
		{name: "NotReady", method: "GET", target: "/readyz", docPath: "/readyz", status: 503, prepare: func(b *testBundle) {
			b.jobs.ReadyFunc = func(context.Context) error { return flywheel.Errorf(flywheel.EUNAVAILABLE, "database unreachable") }
		}},
	}
}

// TestBlueprintConformance checks every answer the blueprint's contract
// describes against our description of it (blueprint_contract_test.go) and,
// when FLYWHEEL_BLUEPRINT_DIR names the blueprint's reference files, against
// its own openapi.json too. Every property the blueprint declares must be
// present, so a renamed, dropped or retyped field fails.
func TestBlueprintConformance(t *testing.T) {
	t.Parallel()
	t.Run("Description", func(t *testing.T) {
		t.Parallel()
		testBlueprintConformance(t, blueprintContractDoc(t))
	})
	t.Run("BlueprintDocument", func(t *testing.T) {
		t.Parallel()
		theirs := blueprintReferenceDoc(t)
		if theirs == nil {
			t.Skip(envBlueprintDir + " is not set: no blueprint openapi.json to check the answers against")
		}
		testBlueprintConformance(t, theirs)
	})
}

func testBlueprintConformance(t *testing.T, root map[string]any) {
	doc := &schemaDoc{root: root, allPresent: true}
	covered := map[string]bool{}
	for _, tc := range conformanceCases() {
		if !tc.blueprint {
			continue
		}
		covered[tc.method+" "+tc.docPath] = true
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			if tc.prepare != nil {
				tc.prepare(b)
			}
			resp := do(t, b.server(), tc.method, tc.target, tc.body, tc.header...)
			require.Equal(t, tc.status, resp.status, "body: %s", resp.body)
			schema, err := doc.responseSchema(tc.docPath, tc.method, tc.status)
			require.NoError(t, err)
			errs := doc.validate(schema, resp.json(t), "$")
			require.Empty(t, errs, "answer breaks the blueprint's schema:\n%s\nbody: %s", strings.Join(errs, "\n"), resp.body)
		})
	}
	// Every operation of the blueprint is exercised.
	paths := doc.root["paths"].(map[string]any)
	for path, item := range paths {
		for method := range item.(map[string]any) {
			require.True(t, covered[strings.ToUpper(method)+" "+path], "blueprint operation %s %s has no conformance case", method, path)
		}
	}
}

// TestOwnDocumentConformance checks every answer against our own document,
// closed: a field the document does not describe fails.
func TestOwnDocumentConformance(t *testing.T) {
	t.Parallel()
	docJSON, err := api.DocumentJSON()
	require.NoError(t, err)
	doc := &schemaDoc{root: loadYAMLDoc(t, docJSON), closed: true}
	for _, tc := range conformanceCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			if tc.prepare != nil {
				tc.prepare(b)
			}
			resp := do(t, b.server(), tc.method, tc.target, tc.body, tc.header...)
			require.Equal(t, tc.status, resp.status, "body: %s", resp.body)
			schema, err := doc.responseSchema(tc.docPath, tc.method, tc.status)
			require.NoError(t, err)
			errs := doc.validate(schema, resp.json(t), "$")
			require.Empty(t, errs, "answer breaks our document:\n%s\nbody: %s", strings.Join(errs, "\n"), resp.body)
		})
	}
}

// TestDocumentCoversRoutes checks that our document describes every route
// the server serves and serves every operation it describes.
func TestDocumentCoversRoutes(t *testing.T) {
	t.Parallel()
	docJSON, err := api.DocumentJSON()
	require.NoError(t, err)
	doc := loadYAMLDoc(t, docJSON)
	param := regexp.MustCompile(`\{[^}]*\}`)
	norm := func(p string) string { return param.ReplaceAllString(p, "{}") }

	documented := map[string]bool{}
	for path, item := range doc["paths"].(map[string]any) {
		for method := range item.(map[string]any) {
			if method == "parameters" {
				continue
			}
			documented[strings.ToUpper(method)+" "+norm(path)] = true
		}
	}

	b := setup(t)
	b.opts.UI = http.NotFoundHandler()
	b.opts.RiverUI = http.NotFoundHandler()
	b.opts.Capture = http.NotFoundHandler()
	served := map[string]bool{}
	for _, r := range server.RoutesOf(b.server()) {
		served[r] = true
	}
	for r := range served {
		require.True(t, documented[r], "route %s is not in api/openapi.yaml", r)
	}
	for r := range documented {
		require.True(t, served[r], "api/openapi.yaml describes %s, which the server does not serve", r)
	}
	keys := sortedKeys(served)
	require.True(t, slices.Contains(keys, "POST /api/jobs"), fmt.Sprint(keys))
}
