package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/server"
	"github.com/flywheel-go/flywheel/internal/server/servertest"
)

type manifestFunc func(ctx context.Context, id string) (*flywheel.Manifest, error)

func (f manifestFunc) GetManifest(ctx context.Context, id string) (*flywheel.Manifest, error) {
	return f(ctx, id)
}

func cliManifest(id string) *flywheel.Manifest {
	return &flywheel.Manifest{
		Version: flywheel.ManifestVersion, RunID: id, WorkloadID: "w", ClientID: "c", CreatedAt: start, Seed: 42,
		WorkloadType: flywheel.WorkloadToolCalling, Config: flywheel.RunSpec{Candidates: []flywheel.NIMConfig{{ModelName: "m"}}},
		Datasets: []flywheel.ManifestDataset{
			{Kind: flywheel.ManifestEval, RecordIDs: []int64{1}, RecordHashes: []string{"a"}, Hash: "x"},
			{Kind: flywheel.ManifestTrain, RecordIDs: []int64{2}, RecordHashes: []string{"b"}, Hash: "y"},
		},
		Models: []flywheel.ManifestModel{{Name: "m", Digest: "sha256:00"}}, Versions: map[string]string{"flywheel": "1"},
	}
}

func TestManifest(t *testing.T) {
	t.Parallel()
	b := &testBundle{jobs: &servertest.JobService{}, stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	srv := httptest.NewServer(server.New(server.Options{Jobs: b.jobs, Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
		Manifests: manifestFunc(func(_ context.Context, id string) (*flywheel.Manifest, error) {
			if id == "gone" {
				return nil, flywheel.Errorf(flywheel.ENOTFOUND, "Job gone not found")
			}
			return cliManifest(id), nil
		})}))
	t.Cleanup(srv.Close)
	b.url = srv.URL

	// jobs manifest prints it; jobs create --from-manifest sends it back.
	require.NoError(t, b.run(t, "manifest", "r0"))
	var got flywheel.Manifest
	require.NoError(t, json.Unmarshal(b.stdout.Bytes(), &got))
	require.Equal(t, cliManifest("r0"), &got)
	file := filepath.Join(t.TempDir(), "manifest.json")
	require.NoError(t, os.WriteFile(file, b.stdout.Bytes(), 0o644))

	var req flywheel.CreateJobRequest
	b.jobs.CreateJobFunc = func(_ context.Context, r flywheel.CreateJobRequest) (*flywheel.Run, error) {
		req = r
		return &flywheel.Run{ID: "r1"}, nil
	}
	b.stdout.Reset()
	require.NoError(t, b.run(t, "create", "--from-manifest", file))
	require.Equal(t, "Created job r1 (queued): NIM workflow started\n", b.stdout.String())
	require.Equal(t, cliManifest("r0"), req.Manifest)

	require.ErrorContains(t, b.run(t, "create", "--from-manifest", file, "--eval-size", "3"), "drop the data_split_config flags")
	require.ErrorContains(t, b.run(t, "create", "--from-manifest", filepath.Join(t.TempDir(), "none.json")), "read manifest")
	require.ErrorContains(t, b.run(t, "manifest", "gone"), "get manifest of job gone: server answered 404")
}

func TestGetShowsLeakage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.jobs.GetJobFunc = func(_ context.Context, id string) (*flywheel.JobDetail, error) {
		d := servertest.Detail(id, flywheel.RunCompleted, start)
		d.Run.Stats = &flywheel.DataStats{Total: 50, Selected: 40, Eval: 10, Train: 22, Val: 5,
			Leakage: &flywheel.LeakageStats{Exact: 1, Near: 2, Train: 2, Val: 1}}
		return d, nil
	}
	require.NoError(t, b.run(t, "get", "r1"))
	require.Contains(t, b.stdout.String(), "Leakage guard:  3 removed from train/val as repeats of eval records (1 exact, 2 near; train 2, val 1)")
}
