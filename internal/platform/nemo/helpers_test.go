package nemo_test

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/platform/nemo"
	"github.com/flywheel-go/flywheel/internal/platform/nemo/nemotest"
	"github.com/flywheel-go/flywheel/internal/testcorpus"
)

// bfclPath returns a file of the generated tool-calling corpus.
func bfclPath(t testing.TB, name string) string {
	t.Helper()
	return filepath.Join(testcorpus.BFCLDir(t), name)
}

// readRecords returns the first n records of a BFCL log file.
func readRecords(t testing.TB, name string, n int) []json.RawMessage {
	t.Helper()
	f, err := os.Open(bfclPath(t, name))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var out []json.RawMessage
	for sc.Scan() && len(out) < n {
		out = append(out, append(json.RawMessage(nil), sc.Bytes()...))
	}
	require.NoError(t, sc.Err())
	require.Len(t, out, n)
	return out
}

func writeLines(t testing.TB, path string, lines []json.RawMessage) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	var b []byte
	for _, l := range lines {
		b = append(b, l...)
		b = append(b, '\n')
	}
	require.NoError(t, os.WriteFile(path, b, 0o644))
}

// trainingRow turns a logged record into the Customizer's training format.
func trainingRow(t testing.TB, rec json.RawMessage) json.RawMessage {
	t.Helper()
	var r struct {
		Request struct {
			Messages []json.RawMessage `json:"messages"`
			Tools    json.RawMessage   `json:"tools"`
		} `json:"request"`
		Response struct {
			Choices []struct {
				Message map[string]any `json:"message"`
			} `json:"choices"`
		} `json:"response"`
	}
	require.NoError(t, json.Unmarshal(rec, &r))
	msg := r.Response.Choices[0].Message
	msg["content"] = ""
	m, err := json.Marshal(msg)
	require.NoError(t, err)
	out, err := json.Marshal(map[string]any{"messages": append(r.Request.Messages, m), "tools": r.Request.Tools})
	require.NoError(t, err)
	return out
}

type datasets struct {
	eval, icl, train flywheel.Dataset
}

// buildDatasets writes eval, ICL and training datasets at the blueprint's
// paths from BFCL records.
func buildDatasets(t testing.TB, prefix string) datasets {
	t.Helper()
	recs := readRecords(t, "multiple.jsonl", 60)
	dir := t.TempDir()
	writeLines(t, filepath.Join(dir, "eval", "eval_data.jsonl"), recs[:20])
	writeLines(t, filepath.Join(dir, "icl", "eval_data.jsonl"), recs[:20])
	var train []json.RawMessage
	for _, r := range recs[20:] {
		train = append(train, trainingRow(t, r))
	}
	writeLines(t, filepath.Join(dir, "train", "training", "train_data.jsonl"), train[:36])
	writeLines(t, filepath.Join(dir, "train", "validation", "val_data.jsonl"), train[36:])
	return datasets{
		eval:  flywheel.Dataset{Name: prefix + "-eval", Type: flywheel.DatasetBase, Path: filepath.Join(dir, "eval"), NumRecords: 20},
		icl:   flywheel.Dataset{Name: prefix + "-icl", Type: flywheel.DatasetICL, Path: filepath.Join(dir, "icl"), NumRecords: 20},
		train: flywheel.Dataset{Name: prefix + "-train", Type: flywheel.DatasetTrain, Path: filepath.Join(dir, "train"), NumRecords: 40},
	}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// newPlatform returns a platform pointed at fake, with fast retries and polls.
func newPlatform(t testing.TB, fake *nemotest.Server, mod func(*nemo.Config)) *nemo.Platform {
	t.Helper()
	cfg := nemo.Config{
		NeMo:             nemo.Service{BaseURL: fake.URL, Token: "nemo-token"},
		NIM:              nemo.Service{BaseURL: fake.NIMURL, Token: "nim-token"},
		DataStore:        nemo.Service{BaseURL: fake.URL, Token: "hf-token"},
		Retry:            nemo.RetryPolicy{MaxAttempts: 8, BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond},
		AttemptTimeout:   5 * time.Second,
		EvalPollInterval: 5 * time.Millisecond,
		Logger:           testLogger(t),
	}
	if mod != nil {
		mod(&cfg)
	}
	p, err := nemo.New(cfg)
	require.NoError(t, err)
	return p
}

func candidate() flywheel.NIMConfig {
	return flywheel.NIMConfig{
		ModelName: "meta/llama-3.2-1b-instruct", ModelType: "llm", ContextLength: 8192,
		GPUs: 1, PVCSize: "25Gi", Tag: "1.8.3", CustomizationEnabled: true,
		CustomizerConfigs: &flywheel.CustomizerConfig{Target: "meta/llama-3.2-1b-instruct@2.0", GPUs: 1,
			MaxSeqLength: 8192, TrainingPrecision: "bf16-mixed"},
	}
}

func customizationRequest(key string, ds flywheel.Dataset) flywheel.CustomizationRequest {
	return flywheel.CustomizationRequest{
		Key: key, RunID: "run", NIMID: "nim", WorkloadID: "bfcl-multiple", Model: candidate(),
		Training:     flywheel.TrainingConfig{TrainingType: "sft", FinetuningType: "lora", Epochs: 2, BatchSize: 16, LearningRate: 0.0001},
		LoRA:         flywheel.LoRAConfig{AdapterDim: 32, AdapterDropout: 0.1},
		TrainDataset: ds,
		OutputName:   "customized-meta-llama-3.2-1b-instruct",
	}
}

// waitDeployment polls until the deployment is ready or terminal.
func waitDeployment(ctx context.Context, t testing.TB, p *nemo.Platform, id string) flywheel.Deployment {
	t.Helper()
	for {
		d, err := p.Deployment(ctx, id)
		require.NoError(t, err)
		switch d.Status {
		case flywheel.DeploymentReady, flywheel.DeploymentFailed, flywheel.DeploymentCancelled:
			return d
		}
		select {
		case <-ctx.Done():
			t.Fatalf("deployment %s not ready: last status %s (%s)", id, d.Status, d.Message)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// waitCustomization polls until the job is terminal.
func waitCustomization(ctx context.Context, t testing.TB, p *nemo.Platform, id string) flywheel.CustomizationJob {
	t.Helper()
	for {
		j, err := p.Customization(ctx, id)
		require.NoError(t, err)
		switch j.Status {
		case flywheel.JobCompleted, flywheel.JobFailed, flywheel.JobCancelled:
			return j
		}
		select {
		case <-ctx.Done():
			t.Fatalf("customization %s not done: last status %s (%s)", id, j.Status, j.Message)
		case <-time.After(5 * time.Millisecond):
		}
	}
}
