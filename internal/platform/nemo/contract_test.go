package nemo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/platform/nemo"
)

// recorded is one request as the service saw it.
type recorded struct {
	Method      string
	Path        string
	ContentType string
	Auth        string
	Body        []byte
}

// contractFixture is a documented request shape (testdata/*.json).
type contractFixture struct {
	Method      string          `json:"method"`
	Path        string          `json:"path"`
	ContentType string          `json:"content_type"`
	Body        json.RawMessage `json:"body"`
	// NDJSON, for commits, lists the body's lines.
	NDJSON []json.RawMessage `json:"ndjson"`
	// Form, for form posts, is the encoded body.
	Form string `json:"form"`
}

// recorder is a service that records requests and answers each path with a
// canned JSON body (default {}).
type recorder struct {
	mu      sync.Mutex
	reqs    []recorded
	answers map[string]string
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.reqs = append(r.reqs, recorded{Method: req.Method, Path: req.URL.RequestURI(),
		ContentType: req.Header.Get("Content-Type"), Auth: req.Header.Get("Authorization"), Body: b})
	answer, ok := r.answers[req.Method+" "+req.URL.Path]
	r.mu.Unlock()
	if !ok {
		answer = "{}"
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, answer)
}

func (r *recorder) last(t *testing.T) recorded {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	require.NotEmpty(t, r.reqs)
	return r.reqs[len(r.reqs)-1]
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

func checkContract(t *testing.T, fixture string, got recorded) {
	t.Helper()
	var want contractFixture
	require.NoError(t, json.Unmarshal(readFixture(t, fixture), &want))
	require.Equal(t, want.Method, got.Method, "method")
	require.Equal(t, want.Path, got.Path, "path")
	if want.ContentType != "" {
		require.Equal(t, want.ContentType, got.ContentType, "content type")
	}
	switch {
	case want.NDJSON != nil:
		lines := bytes.Split(bytes.TrimSpace(got.Body), []byte("\n"))
		require.Len(t, lines, len(want.NDJSON), "NDJSON lines")
		for i := range lines {
			require.JSONEq(t, string(want.NDJSON[i]), string(lines[i]), "NDJSON line %d", i+1)
		}
	case want.Form != "":
		require.Equal(t, want.Form, string(got.Body))
	case want.Body != nil:
		require.JSONEq(t, string(want.Body), string(got.Body))
	default:
		require.Empty(t, got.Body, "no body expected")
	}
}

// TestContract checks every call's method, path and body against the
// documented shapes in testdata, and that each service gets its own token.
func TestContract(t *testing.T) {
	t.Parallel()

	type bundle struct {
		rec *recorder
		p   *nemo.Platform
	}
	setup := func(t *testing.T, answers map[string]string) bundle {
		t.Helper()
		rec := &recorder{answers: answers}
		srv := httptest.NewServer(rec)
		t.Cleanup(srv.Close)
		p, err := nemo.New(nemo.Config{
			NeMo:      nemo.Service{BaseURL: srv.URL, Token: "nemo-token"},
			NIM:       nemo.Service{BaseURL: srv.URL + "/nim", Token: "nim-token"},
			DataStore: nemo.Service{BaseURL: srv.URL + "/ds", Token: "hf-token"},
			Retry:     nemo.RetryPolicy{MaxAttempts: 1},
		})
		require.NoError(t, err)
		return bundle{rec: rec, p: p}
	}
	ctx := t.Context()
	ds := flywheel.Dataset{Name: "flywheel-train-wl-1"}
	uri := "hf://datasets/dfwbp/flywheel-eval-wl-1"

	tests := []struct {
		name    string
		fixture string
		token   string
		answers map[string]string
		call    func(ctx context.Context, p *nemo.Platform) error
	}{
		{
			name: "DeploymentCreate", fixture: "dms_create.json", token: "nemo-token",
			call: func(ctx context.Context, p *nemo.Platform) error {
				return p.DMS.Create(ctx, nemo.CreateDeployment{
					Name: "meta-llama-3.2-1b-instruct", Namespace: "dfwbp",
					Config: nemo.DeploymentConfig{Model: "meta/llama-3.2-1b-instruct", NIMDeployment: &nemo.NIMDeployment{
						ImageName: "nvcr.io/nim/meta/llama-3.2-1b-instruct", ImageTag: "1.8.3", PVCSize: "25Gi", GPU: 1,
						AdditionalEnvs: map[string]string{"NIM_GUIDED_DECODING_BACKEND": "outlines"},
					}},
				})
			},
		},
		{
			name: "DeploymentDelete", fixture: "dms_delete.json", token: "nemo-token",
			call: func(ctx context.Context, p *nemo.Platform) error {
				return p.Undeploy(ctx, "dfwbp/meta-llama-3.2-1b-instruct")
			},
		},
		{
			name: "NIMModels", fixture: "nim_models.json", token: "nim-token",
			call: func(ctx context.Context, p *nemo.Platform) error {
				_, err := p.Proxy.Models(ctx)
				return err
			},
		},
		{
			name: "CustomizationConfig", fixture: "customization_config.json", token: "nemo-token",
			answers: map[string]string{"GET /v1/customization/jobs": `{"data":[],"pagination":{"total_pages":0}}`},
			call: func(ctx context.Context, p *nemo.Platform) error {
				_, err := p.Customizer.EnsureConfig(ctx, "meta/llama-3.2-1b-instruct",
					nemo.CustomizationConfig{Namespace: "dfwbp", Target: "meta/llama-3.2-1b-instruct@2.0",
						TrainingOptions: []nemo.TrainingOption{{TrainingType: "sft", FinetuningType: "lora", NumGPUs: 1,
							NumNodes: 1, TensorParallelSize: 1, DataParallelSize: 1, MicroBatchSize: 1}},
						TrainingPrecision: "bf16-mixed", MaxSeqLength: 8192})
				return err
			},
		},
		{
			name: "CustomizationJob", fixture: "customization_job.json", token: "nemo-token",
			answers: map[string]string{
				"GET /v1/customization/jobs":                                    `{"data":[],"pagination":{"total_pages":0}}`,
				"POST /v1/customization/jobs":                                   `{"id":"cust-JGTaMbJMdqjJU8WbQdN9Q2","output_model":"dfwbp/customized-meta-llama-3.2-1b-instruct@cust-JGTaMbJMdqjJU8WbQdN9Q2","status":"created"}`,
				"GET /v1/customization/jobs/cust-JGTaMbJMdqjJU8WbQdN9Q2/status": `{"status":"created"}`,
			},
			call: func(ctx context.Context, p *nemo.Platform) error {
				req := customizationRequest("run-1/nim-1", ds)
				req.WorkloadID = "wl"
				job, err := p.StartCustomization(ctx, req)
				if err == nil && job.OutputModel != "dfwbp/customized-meta-llama-3.2-1b-instruct@cust-JGTaMbJMdqjJU8WbQdN9Q2" {
					t.Errorf("output model %q", job.OutputModel)
				}
				return err
			},
		},
		{
			name: "CustomizationCancel", fixture: "customization_cancel.json", token: "nemo-token",
			call: func(ctx context.Context, p *nemo.Platform) error {
				return p.CancelCustomization(ctx, "cust-JGTaMbJMdqjJU8WbQdN9Q2")
			},
		},
		{
			name: "EvaluationToolCalling", fixture: "evaluation_job_tool_calling.json", token: "nemo-token",
			answers: map[string]string{
				"GET /v1/evaluation/jobs":                           `{"data":[],"pagination":{"total_pages":0}}`,
				"POST /v1/evaluation/jobs":                          `{"id":"eval-UVW123XYZ456","status":"created"}`,
				"GET /v1/evaluation/jobs/eval-UVW123XYZ456":         `{"id":"eval-UVW123XYZ456","status":"completed","status_details":{"progress":100}}`,
				"GET /v1/evaluation/jobs/eval-UVW123XYZ456/results": string(readFixture(t, "evaluation_results_response.json")),
			},
			call: func(ctx context.Context, p *nemo.Platform) error {
				_, err := p.Evaluate(ctx, flywheel.EvalRequest{EvaluationID: "ev-1", RunID: "run-1", EvalType: flywheel.EvalBase,
					WorkloadType: flywheel.WorkloadToolCalling, Target: flywheel.Endpoint{Model: "meta/llama-3.2-1b-instruct"},
					Dataset: flywheel.Dataset{Name: "flywheel-eval-wl-1", NMPURI: &uri}, Limit: 1000,
					Judge: &flywheel.Endpoint{Model: "meta/llama-3.3-70b-instruct"}}, nil)
				return err
			},
		},
		{
			name: "EvaluationGenericRemoteJudge", fixture: "evaluation_job_generic.json", token: "nemo-token",
			answers: map[string]string{
				"GET /v1/evaluation/jobs":                           `{"data":[],"pagination":{"total_pages":0}}`,
				"POST /v1/evaluation/jobs":                          `{"id":"eval-UVW123XYZ456","status":"created"}`,
				"GET /v1/evaluation/jobs/eval-UVW123XYZ456":         `{"id":"eval-UVW123XYZ456","status":"completed","status_details":{"progress":100}}`,
				"GET /v1/evaluation/jobs/eval-UVW123XYZ456/results": `{"tasks":{"llm-as-judge":{"metrics":{"llm-judge":{"scores":{"similarity":{"value":7.5,"stats":{"count":4,"mean":7.5}}}}}}}}`,
			},
			call: func(ctx context.Context, p *nemo.Platform) error {
				res, err := p.Evaluate(ctx, flywheel.EvalRequest{EvaluationID: "ev-2", RunID: "run-1", EvalType: flywheel.EvalICL,
					WorkloadType: flywheel.WorkloadGeneric, Target: flywheel.Endpoint{Model: "meta/llama-3.2-1b-instruct"},
					Dataset: flywheel.Dataset{Name: "flywheel-eval-wl-1", NMPURI: &uri},
					Judge:   &flywheel.Endpoint{BaseURL: "https://judge.example", Model: "meta/llama-3.3-70b-instruct", APIKey: "judge-key"}}, nil)
				if err == nil && res.Scores[flywheel.ScoreSimilarity] != 7.5 {
					t.Errorf("similarity %v", res.Scores)
				}
				return err
			},
		},
		{
			name: "EvaluationCancelAndDelete", fixture: "evaluation_delete.json", token: "nemo-token",
			call: func(ctx context.Context, p *nemo.Platform) error {
				return p.Release(ctx, flywheel.Resource{Kind: flywheel.ResourceEvaluation, RemoteID: "eval-UVW123XYZ456"})
			},
		},
		{
			name: "EntityNamespace", fixture: "entity_namespace.json", token: "nemo-token",
			call: func(ctx context.Context, p *nemo.Platform) error { return p.Entities.CreateNamespace(ctx, "dfwbp") },
		},
		{
			name: "EntityDatasetRegister", fixture: "entity_dataset.json", token: "nemo-token",
			answers: map[string]string{"GET /v1/datasets/dfwbp/flywheel-eval-wl-1": `{"name":"flywheel-eval-wl-1"}`},
			call: func(ctx context.Context, p *nemo.Platform) error {
				_, err := p.Entities.RegisterDataset(ctx, nemo.EntityDataset{Name: "flywheel-eval-wl-1", Namespace: "dfwbp",
					FilesURL: "hf://datasets/dfwbp/flywheel-eval-wl-1", Project: "flywheel"})
				return err
			},
		},
		{
			name: "EntityModelDelete", fixture: "entity_model_delete.json", token: "nemo-token",
			call: func(ctx context.Context, p *nemo.Platform) error {
				return p.Release(ctx, flywheel.Resource{Kind: flywheel.ResourceModel,
					RemoteID: "dfwbp/customized-meta-llama-3.2-1b-instruct@cust-JGTaMbJMdqjJU8WbQdN9Q2"})
			},
		},
		{
			name: "DataStoreNamespace", fixture: "datastore_namespace.json", token: "hf-token",
			call: func(ctx context.Context, p *nemo.Platform) error { return p.DataStore.CreateNamespace(ctx, "dfwbp") },
		},
		{
			name: "RepoCreate", fixture: "hf_repo_create.json", token: "hf-token",
			call: func(ctx context.Context, p *nemo.Platform) error {
				return p.DataStore.CreateRepo(ctx, "dfwbp", "flywheel-train-wl-1")
			},
		},
		{
			name: "Preupload", fixture: "hf_preupload.json", token: "hf-token",
			call: func(ctx context.Context, p *nemo.Platform) error {
				_, err := p.DataStore.Preupload(ctx, "dfwbp", "flywheel-train-wl-1",
					[]nemo.RepoFile{{Path: "training/train_data.jsonl", Content: []byte("{\"messages\":[]}\n")}})
				return err
			},
		},
		{
			name: "Commit", fixture: "hf_commit.json", token: "hf-token",
			call: func(ctx context.Context, p *nemo.Platform) error {
				_, err := p.DataStore.Commit(ctx, "dfwbp", "flywheel-train-wl-1", "Upload flywheel-train-wl-1", []nemo.RepoFile{
					{Path: "training/train_data.jsonl", Content: []byte("{\"messages\":[]}\n")},
					{Path: "validation/val_data.jsonl", Content: []byte("{}\n")},
				})
				return err
			},
		},
		{
			name: "Download", fixture: "hf_download.json", token: "hf-token",
			call: func(ctx context.Context, p *nemo.Platform) error {
				_, err := p.DataStore.Download(ctx, "dfwbp", "flywheel-eval-wl-1", "eval_data.jsonl")
				return err
			},
		},
		{
			name: "RepoDelete", fixture: "hf_repo_delete.json", token: "hf-token",
			call: func(ctx context.Context, p *nemo.Platform) error {
				return p.DataStore.DeleteRepo(ctx, "dfwbp", "flywheel-train-wl-1")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tt.answers)
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			require.NoError(t, tt.call(cctx, b.p))
			var want contractFixture
			require.NoError(t, json.Unmarshal(readFixture(t, tt.fixture), &want))
			// Find the documented call among those made (a call may look
			// things up first).
			b.rec.mu.Lock()
			reqs := append([]recorded(nil), b.rec.reqs...)
			b.rec.mu.Unlock()
			var got *recorded
			for i := range reqs {
				r := reqs[i]
				r.Path = strings.TrimPrefix(strings.TrimPrefix(r.Path, "/nim"), "/ds")
				if r.Method == want.Method && r.Path == want.Path {
					got = &r
				}
			}
			require.NotNil(t, got, "no %s %s among %d requests", want.Method, want.Path, len(reqs))
			checkContract(t, tt.fixture, *got)
			require.Equal(t, "Bearer "+tt.token, got.Auth)
		})
	}
}

// TestContractResponses checks that documented answers parse into the
// fields the flywheel reads.
func TestContractResponses(t *testing.T) {
	t.Parallel()
	t.Run("CustomizationStatus", func(t *testing.T) {
		t.Parallel()
		rec := &recorder{answers: map[string]string{
			"GET /v1/customization/jobs/cust-1/status": string(readFixture(t, "customization_status_response.json")),
			"GET /v1/customization/jobs/cust-1":        `{"id":"cust-1","output_model":"dfwbp/customized-m@cust-1"}`,
		}}
		srv := httptest.NewServer(rec)
		defer srv.Close()
		p, err := nemo.New(nemo.Config{NeMo: nemo.Service{BaseURL: srv.URL}, NIM: nemo.Service{BaseURL: srv.URL},
			DataStore: nemo.Service{BaseURL: srv.URL}})
		require.NoError(t, err)
		job, err := p.Customization(t.Context(), "cust-1")
		require.NoError(t, err)
		require.Equal(t, flywheel.JobRunning, job.Status)
		require.Equal(t, 2, job.EpochsCompleted)
		require.Equal(t, 1210, job.StepsCompleted)
		require.InDelta(t, 100.0, job.Progress, 1e-9)
		require.Equal(t, []float64{2.14, 1.9}, job.Losses)
		require.Equal(t, "dfwbp/customized-m@cust-1", job.OutputModel)
		require.JSONEq(t, `{"train_loss":1.718,"val_loss":1.866,"val_losses":[1.95],"best_epoch":2,"steps_per_epoch":605,
			"elapsed_time":12.5,"remote_status":"running","last_status_log":{"updated_at":"2025-03-19T22:50:15.684382","message":"Training"}}`,
			string(job.Data))
	})
	t.Run("EvaluationResults", func(t *testing.T) {
		t.Parallel()
		var res nemo.EvaluationResults
		require.NoError(t, json.Unmarshal(readFixture(t, "evaluation_results_response.json"), &res))
		s, ok := res.Score("custom-tool-calling", "tool-calling-accuracy", "function_name_accuracy")
		require.True(t, ok)
		require.Equal(t, 0.9, s.Value)
		require.Equal(t, 100, s.Stats.Count)
	})
}
