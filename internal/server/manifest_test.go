package server_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// manifestReader is a flywheel.ManifestReader over a function.
type manifestReader func(ctx context.Context, id string) (*flywheel.Manifest, error)

func (f manifestReader) GetManifest(ctx context.Context, id string) (*flywheel.Manifest, error) {
	return f(ctx, id)
}

func sampleManifest(id string) *flywheel.Manifest {
	return &flywheel.Manifest{
		Version: flywheel.ManifestVersion, RunID: id, WorkloadID: "w", ClientID: "c", CreatedAt: time.Unix(1_700_000_000, 0).UTC(),
		WorkloadType: flywheel.WorkloadToolCalling, Seed: 42,
		Config: flywheel.RunSpec{Candidates: []flywheel.NIMConfig{{ModelName: "local/tiny-s"}}},
		Datasets: []flywheel.ManifestDataset{
			{Kind: flywheel.ManifestEval, Name: "flywheel-eval-w-1", RecordIDs: []int64{1}, RecordHashes: []string{"a"}, Hash: "h1"},
			{Kind: flywheel.ManifestTrain, Name: "flywheel-train-w-1", RecordIDs: []int64{2, 3}, RecordHashes: []string{"b", "c"}, Hash: "h2"},
			{Kind: flywheel.ManifestVal, RecordIDs: []int64{}, RecordHashes: []string{}, Hash: "h3"},
			{Kind: flywheel.ManifestICL, RecordIDs: []int64{2}, RecordHashes: []string{"b"}, Examples: [][]int64{{2}}, Hash: "h4"},
		},
		Leakage:  &flywheel.LeakageStats{Exact: 1, Near: 2, Train: 3, RecordIDs: []int64{7, 8, 9}},
		Models:   []flywheel.ManifestModel{{Name: "local/tiny-s", Digest: "sha256:00", AdapterID: "customized-tiny", AdapterDigest: "sha256:01"}},
		Versions: map[string]string{"flywheel": "test", "torch": "2.1"},
	}
}

func TestGetManifest(t *testing.T) {
	t.Parallel()
	docJSON, err := api.DocumentJSON()
	require.NoError(t, err)
	doc := &schemaDoc{root: loadYAMLDoc(t, docJSON), closed: true}

	tests := []struct {
		name   string
		reader flywheel.ManifestReader
		status int
	}{
		{"Found", manifestReader(func(_ context.Context, id string) (*flywheel.Manifest, error) { return sampleManifest(id), nil }), 200},
		{"NotBuiltYet", manifestReader(func(context.Context, string) (*flywheel.Manifest, error) {
			return nil, flywheel.Errorf(flywheel.ENOTFOUND, "Job run-1 has no manifest: its datasets were not built (status pending)")
		}), 404},
		{"Unavailable", nil, 503},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.opts.Manifests = tc.reader
			resp := do(t, b.server(), "GET", "/api/jobs/run-1/manifest", "")
			require.Equal(t, tc.status, resp.status, "body: %s", resp.body)
			schema, err := doc.responseSchema("/api/jobs/{job_id}/manifest", "GET", tc.status)
			require.NoError(t, err)
			errs := doc.validate(schema, resp.json(t), "$")
			require.Empty(t, errs, "answer breaks our document:\n%s\nbody: %s", strings.Join(errs, "\n"), resp.body)
		})
	}
}

func TestCreateJobFromManifest(t *testing.T) {
	t.Parallel()
	manifestJSON := string(mustMarshal(t, sampleManifest("run-0")))

	t.Run("ManifestAlone", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var got flywheel.CreateJobRequest
		b.jobs.CreateJobFunc = func(_ context.Context, req flywheel.CreateJobRequest) (*flywheel.Run, error) {
			got = req
			return &flywheel.Run{ID: "run-1", Status: flywheel.RunPending}, nil
		}
		resp := do(t, b.server(), "POST", "/api/jobs", `{"manifest":`+manifestJSON+`}`)
		require.Equal(t, 200, resp.status, "body: %s", resp.body)
		require.NotNil(t, got.Manifest)
		require.Equal(t, sampleManifest("run-0"), got.Manifest)
		require.Empty(t, got.WorkloadID, "the job service takes the workload from the manifest")
	})

	for _, tc := range []struct {
		name, body, loc string
	}{
		{"NotAnObject", `{"manifest":[1]}`, `"loc":["body","manifest"]`},
		{"UnknownField", `{"manifest":{"datasetz":[]}}`, `"loc":["body","manifest"]`},
		{"WrongType", `{"manifest":{"seed":"x"}}`, `"loc":["body","manifest"]`},
		{"BadWorkload", `{"workload_id":7,"manifest":` + manifestJSON + `}`, `"loc":["body","workload_id"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			resp := do(t, b.server(), "POST", "/api/jobs", tc.body)
			require.Equal(t, 422, resp.status, "body: %s", resp.body)
			require.Contains(t, string(resp.body), tc.loc)
		})
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
