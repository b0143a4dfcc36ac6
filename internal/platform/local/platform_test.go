package local

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/gguf"
	"github.com/flywheel-go/flywheel/internal/tokenizer"
)

type testBundle struct {
	dir      string
	platform *Platform
	opts     Options
}

// setup returns a Platform whose llama-server and python are this test
// binary (see TestMain), so that process handling is tested for real.
func setup(t *testing.T) *testBundle {
	t.Helper()
	dir := t.TempDir()
	self, err := os.Executable()
	require.NoError(t, err)
	bin := filepath.Join(dir, "bin")
	require.NoError(t, os.MkdirAll(bin, 0o755))
	require.NoError(t, os.Symlink(self, filepath.Join(bin, "llama-server")))
	require.NoError(t, os.Symlink(self, filepath.Join(bin, "fake-python")))
	opts := Options{
		DataDir:     filepath.Join(dir, "data"),
		LlamaServer: filepath.Join(bin, "llama-server"),
		Python:      filepath.Join(bin, "fake-python"),
		StopGrace:   2 * time.Second,
		Base:        BaseRandom,
	}
	p, err := New(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return &testBundle{dir: dir, platform: p, opts: opts}
}

func (b *testBundle) waitDeployment(t *testing.T, id string, want flywheel.DeploymentStatus) flywheel.Deployment {
	t.Helper()
	var d flywheel.Deployment
	require.Eventually(t, func() bool {
		var err error
		d, err = b.platform.Deployment(context.Background(), id)
		require.NoError(t, err)
		return d.Status == want
	}, 10*time.Second, 20*time.Millisecond, "deployment %s never %s", id, want)
	return d
}

func (b *testBundle) waitJob(t *testing.T, id string, want string) flywheel.CustomizationJob {
	t.Helper()
	var j flywheel.CustomizationJob
	require.Eventually(t, func() bool {
		var err error
		j, err = b.platform.Customization(context.Background(), id)
		require.NoError(t, err)
		return j.Status == want
	}, 10*time.Second, 20*time.Millisecond, "job %s never %s", id, want)
	return j
}

func deployData(t *testing.T, d flywheel.Deployment) DeploymentData {
	t.Helper()
	var st DeploymentData
	require.NoError(t, json.Unmarshal(d.Data, &st))
	return st
}

func TestDeploy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("ReadyIdempotentAndUndeployed", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		req := flywheel.DeployRequest{Key: "run/a", Model: flywheel.NIMConfig{ModelName: "local/tiny-xs"}}
		d, err := b.platform.Deploy(ctx, req)
		require.NoError(t, err)
		require.Equal(t, flywheel.DeploymentPending, d.Status)
		require.True(t, strings.HasPrefix(d.Endpoint.BaseURL, "http://127.0.0.1:"))
		require.Equal(t, "local/tiny-xs", d.Endpoint.Model)
		st := deployData(t, d)
		require.True(t, st.alive())
		require.FileExists(t, filepath.Join(b.opts.DataDir, "models", "tiny-xs.gguf"))
		require.FileExists(t, st.LogPath)

		ready := b.waitDeployment(t, d.ID, flywheel.DeploymentReady)
		again, err := b.platform.Deploy(ctx, req)
		require.NoError(t, err)
		require.Equal(t, d.ID, again.ID)
		require.Equal(t, st.PID, deployData(t, again).PID, "no second process for the same key")
		require.Equal(t, ready.Endpoint, again.Endpoint)

		require.NoError(t, b.platform.Undeploy(ctx, d.ID))
		require.False(t, st.alive())
		got, err := b.platform.Deployment(ctx, d.ID)
		require.NoError(t, err)
		require.Equal(t, flywheel.DeploymentCancelled, got.Status)
		require.NoError(t, b.platform.Undeploy(ctx, d.ID))

		// After an undeploy, the same key starts a new server.
		d2, err := b.platform.Deploy(ctx, req)
		require.NoError(t, err)
		require.NotEqual(t, st.PID, deployData(t, d2).PID)
		require.NoError(t, b.platform.Undeploy(ctx, d2.ID))
	})

	t.Run("FreshInstanceUndeploys", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		d, err := b.platform.Deploy(ctx, flywheel.DeployRequest{Key: "k", Model: flywheel.NIMConfig{ModelName: "local/tiny-xs"}})
		require.NoError(t, err)
		st := deployData(t, d)

		fresh, err := New(b.opts)
		require.NoError(t, err)
		got, err := fresh.Deployment(ctx, d.ID)
		require.NoError(t, err)
		require.Equal(t, d.Endpoint, got.Endpoint)
		require.NoError(t, fresh.Release(ctx, flywheel.Resource{Kind: flywheel.ResourceDeployment, RemoteID: d.ID, Data: d.Data}))
		require.False(t, st.alive())
	})

	t.Run("LedgerDataWithoutStateFile", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		d, err := b.platform.Deploy(ctx, flywheel.DeployRequest{Key: "k", Model: flywheel.NIMConfig{ModelName: "local/tiny-xs"}})
		require.NoError(t, err)
		st := deployData(t, d)
		require.NoError(t, os.RemoveAll(filepath.Join(b.opts.DataDir, "deployments", d.ID)))
		require.NoError(t, b.platform.Release(ctx, flywheel.Resource{Kind: flywheel.ResourceDeployment, RemoteID: d.ID, Data: d.Data}))
		require.False(t, st.alive())
	})

	t.Run("ProcessGoneIsFailed", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		d, err := b.platform.Deploy(ctx, flywheel.DeployRequest{Key: "k", Model: flywheel.NIMConfig{ModelName: "local/tiny-xs"}})
		require.NoError(t, err)
		st := deployData(t, d)
		require.NoError(t, st.stop(ctx, time.Second))
		got := b.waitDeployment(t, d.ID, flywheel.DeploymentFailed)
		require.Contains(t, got.Message, "llama-server exited")
	})

	t.Run("PidReuseIsNotKilled", func(t *testing.T) {
		t.Parallel()
		// A state whose pid is this test process but with another start
		// time must not be signalled.
		self := procIdentity{PID: os.Getpid(), StartTicks: 1, Program: "llama-server"}
		require.False(t, self.alive())
		require.NoError(t, self.stop(ctx, time.Second))
	})

	t.Run("Errors", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, err := b.platform.Deploy(ctx, flywheel.DeployRequest{Model: flywheel.NIMConfig{ModelName: "local/tiny-s"}})
		require.ErrorIs(t, err, flywheel.ErrPermanent)
		_, err = b.platform.Deploy(ctx, flywheel.DeployRequest{Key: "k", Model: flywheel.NIMConfig{ModelName: "local/huge"}})
		require.ErrorIs(t, err, flywheel.ErrPermanent)
		require.ErrorContains(t, err, `unknown size "huge"`)
		_, err = b.platform.Deployment(ctx, "llama-0000000000000000")
		require.ErrorIs(t, err, flywheel.ErrNotFound)
		_, err = b.platform.Deployment(ctx, "../../etc")
		require.ErrorIs(t, err, flywheel.ErrNotFound)
		require.NoError(t, b.platform.Undeploy(ctx, "llama-0000000000000000"))
	})
}

func TestModelsAreDeterministic(t *testing.T) {
	t.Parallel()

	tok := DefaultTokenizer()
	size, err := SizeFor("local/tiny-xs")
	require.NoError(t, err)
	var files [2]bytes.Buffer
	for i := range files {
		f, err := NewModel("local/tiny-xs", size, tok, 7)
		require.NoError(t, err)
		require.NoError(t, f.Write(&files[i]))
	}
	require.Equal(t, files[0].Bytes(), files[1].Bytes())

	f, err := gguf.Read(bytes.NewReader(files[0].Bytes()))
	require.NoError(t, err)
	require.Equal(t, "llama", f.String("general.architecture"))
	require.Equal(t, tokenizer.ChatTemplate, f.String(tokenizer.KeyChatTemplate))
	n := 0
	for _, tn := range f.Tensors {
		n += int(tn.Elements())
	}
	require.Equal(t, size.Params(tok.VocabSize()), n)
	emb := f.Tensor("token_embd.weight")
	require.Equal(t, []uint64{uint64(size.Embd), uint64(tok.VocabSize())}, emb.Dims)

	other, err := NewModel("local/tiny-xs", size, tok, 8)
	require.NoError(t, err)
	require.NotEqual(t, emb.Data[:8], other.Tensor("token_embd.weight").Data[:8], "the seed matters")
}

func writeTrainDir(t *testing.T, dir string, recs []Record, extraLines ...string) flywheel.Dataset {
	t.Helper()
	path := filepath.Join(dir, "training", "train_data.jsonl")
	writeRecords(t, path, recs)
	if len(extraLines) > 0 {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		require.NoError(t, err)
		for _, l := range extraLines {
			_, err = f.WriteString(l + "\n")
			require.NoError(t, err)
		}
		require.NoError(t, f.Close())
	}
	return flywheel.Dataset{Name: "train", Path: dir}
}

func TestCustomization(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("ProgressCompletionAndServing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		req := flywheel.CustomizationRequest{
			Key: "run/ft", Model: flywheel.NIMConfig{ModelName: "local/tiny-xs"},
			Training:     flywheel.TrainingConfig{FinetuningType: "all_weights", Epochs: 2, BatchSize: 4, LearningRate: 1e-4},
			TrainDataset: writeTrainDir(t, filepath.Join(b.dir, "ds"), toyWorkload(20, 1), "not json", `{"messages": [{"role": "user", "content": "hi"}]}`),
			OutputName:   "customized-tiny-xs",
		}
		j, err := b.platform.StartCustomization(ctx, req)
		require.NoError(t, err)
		require.Contains(t, []string{flywheel.JobPending, flywheel.JobRunning}, j.Status)
		again, err := b.platform.StartCustomization(ctx, req)
		require.NoError(t, err)
		require.Equal(t, j.ID, again.ID)

		var st JobData
		require.NoError(t, json.Unmarshal(j.Data, &st))
		require.Equal(t, 20, st.Prepared.Written)
		require.Len(t, st.Prepared.Skipped, 2)
		require.Contains(t, st.Prepared.Skipped[0], "line 21: invalid JSON")
		require.Contains(t, st.Prepared.Skipped[1], "line 22: need a prompt and an answer")
		require.Contains(t, st.Args, "0.0001", "the requested learning rate is used")

		done := b.waitJob(t, j.ID, flywheel.JobCompleted)
		require.Equal(t, 6, done.StepsCompleted)
		require.Equal(t, 2, done.EpochsCompleted)
		require.InDelta(t, 100, done.Progress, 1e-9)
		require.Len(t, done.Losses, 6)
		require.Equal(t, "customized-tiny-xs", done.OutputModel)
		require.Equal(t, "validation loss 0.5000", done.Message)

		d, err := b.platform.Deploy(ctx, flywheel.DeployRequest{Key: "run/ft/dep", Model: req.Model, Adapter: &done})
		require.NoError(t, err)
		require.Equal(t, st.Output, deployData(t, d).ModelPath, "a full fine-tune is served as its own model file")
		require.NoError(t, b.platform.Undeploy(ctx, d.ID))

		require.NoError(t, b.platform.Release(ctx, flywheel.Resource{Kind: flywheel.ResourceModel, RemoteID: j.ID}))
		require.NoFileExists(t, st.Output)
	})

	t.Run("CopyAugmentation", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		opts := b.opts
		opts.DataDir, opts.Augment = filepath.Join(b.dir, "data-aug"), 2
		p, err := New(opts)
		require.NoError(t, err)
		t.Cleanup(func() { _ = p.Close() })
		j, err := p.StartCustomization(ctx, flywheel.CustomizationRequest{
			Key: "aug", Model: flywheel.NIMConfig{ModelName: "local/tiny-xs"},
			Training:     flywheel.TrainingConfig{FinetuningType: "all_weights", Epochs: 3, BatchSize: 4},
			TrainDataset: writeTrainDir(t, filepath.Join(b.dir, "ds"), toyWorkload(20, 1)),
		})
		require.NoError(t, err)
		var st JobData
		require.NoError(t, json.Unmarshal(j.Data, &st))
		require.Equal(t, 20, st.Prepared.Written)
		require.Equal(t, 40, st.Prepared.Variants, "two variants of every record (each copies its arguments from the question)")
		require.Contains(t, strings.Join(st.Args, " "), "--epochs 3 --epoch-size 20", "an epoch is the records, not the variants")
		tokens, err := os.ReadFile(filepath.Join(p.jobDir(j.ID), "train.tok.jsonl"))
		require.NoError(t, err)
		require.Equal(t, 60, strings.Count(string(tokens), "\n"))
		require.NoError(t, p.CancelCustomization(ctx, j.ID))
	})

	t.Run("Cancel", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		j, err := b.platform.StartCustomization(ctx, flywheel.CustomizationRequest{
			Key: "c", Model: flywheel.NIMConfig{ModelName: "local/tiny-xs"},
			Training:     flywheel.TrainingConfig{FinetuningType: "lora", Epochs: 50},
			LoRA:         flywheel.LoRAConfig{AdapterDim: 4, TargetModules: []string{"q_proj", "attn_v"}},
			TrainDataset: writeTrainDir(t, filepath.Join(b.dir, "ds"), toyWorkload(5, 1)),
		})
		require.NoError(t, err)
		var st JobData
		require.NoError(t, json.Unmarshal(j.Data, &st))
		require.Equal(t, "lora", st.Mode)
		require.Contains(t, strings.Join(st.Args, " "), "--rank 4 --alpha 8 --dropout 0 --targets q,v")
		b.waitJob(t, j.ID, flywheel.JobRunning)
		start := time.Now()
		require.NoError(t, b.platform.CancelCustomization(ctx, j.ID))
		require.Less(t, time.Since(start), time.Second)
		require.False(t, st.alive())
		got, err := b.platform.Customization(ctx, j.ID)
		require.NoError(t, err)
		require.Equal(t, flywheel.JobCancelled, got.Status)
		require.NoError(t, b.platform.CancelCustomization(ctx, j.ID))
		require.NoError(t, b.platform.CancelCustomization(ctx, "ft-0000000000000000"))
	})

	t.Run("TrainerError", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		j, err := b.platform.StartCustomization(ctx, flywheel.CustomizationRequest{
			Key: "e", Model: flywheel.NIMConfig{ModelName: "local/tiny-xs"},
			Training:     flywheel.TrainingConfig{Epochs: 99},
			TrainDataset: writeTrainDir(t, filepath.Join(b.dir, "ds"), toyWorkload(5, 1)),
		})
		require.NoError(t, err)
		got := b.waitJob(t, j.ID, flywheel.JobFailed)
		require.Equal(t, "no usable training examples", got.Message)
	})

	t.Run("BadInput", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ds := writeTrainDir(t, filepath.Join(b.dir, "ds"), nil, "garbage", `{"messages": []}`)
		_, err := b.platform.StartCustomization(ctx, flywheel.CustomizationRequest{Key: "b", Model: flywheel.NIMConfig{ModelName: "local/tiny-xs"}, TrainDataset: ds})
		require.ErrorIs(t, err, flywheel.ErrPermanent)
		require.ErrorContains(t, err, "none of 2 records is usable: line 1: invalid JSON")

		_, err = b.platform.StartCustomization(ctx, flywheel.CustomizationRequest{Key: "m", Model: flywheel.NIMConfig{ModelName: "local/tiny-xs"},
			TrainDataset: flywheel.Dataset{Name: "x", Path: filepath.Join(b.dir, "missing")}})
		require.ErrorIs(t, err, flywheel.ErrPermanent)

		_, err = b.platform.StartCustomization(ctx, flywheel.CustomizationRequest{Key: "l", Model: flywheel.NIMConfig{ModelName: "local/tiny-xs"},
			Training: flywheel.TrainingConfig{FinetuningType: "lora"}, LoRA: flywheel.LoRAConfig{TargetModules: []string{"mlp"}},
			TrainDataset: writeTrainDir(t, filepath.Join(b.dir, "ds2"), toyWorkload(3, 1))})
		require.ErrorContains(t, err, `unknown module "mlp"`)

		_, err = b.platform.Customization(ctx, "ft-0000000000000000")
		require.ErrorIs(t, err, flywheel.ErrNotFound)
	})
}

func TestPrepareTrainingData(t *testing.T) {
	t.Parallel()

	tok := DefaultTokenizer()
	var in bytes.Buffer
	for _, r := range toyWorkload(3, 5) {
		require.NoError(t, json.NewEncoder(&in).Encode(r))
	}
	in.WriteString("\n{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}, {\"role\": \"user\", \"content\": \"y\"}]}\n")
	var out bytes.Buffer
	st, err := PrepareTrainingData(&in, &out, tok)
	require.NoError(t, err)
	require.Equal(t, 4, st.Records)
	require.Equal(t, 3, st.Written)
	require.Equal(t, []string{`line 5: last message has role "user", want assistant`}, st.Skipped)

	var ex struct {
		IDs     []int `json:"ids"`
		NPrompt int   `json:"n_prompt"`
	}
	require.NoError(t, json.Unmarshal(bytes.SplitN(out.Bytes(), []byte("\n"), 2)[0], &ex))
	text := tok.Decode(ex.IDs)
	prompt := tok.Decode(ex.IDs[:ex.NPrompt])
	require.True(t, strings.HasSuffix(prompt, "<|im_start|>assistant\n"), prompt)
	require.True(t, strings.HasPrefix(text[len(prompt):], "<tool_call>\n{\"name\": \""), text)
	require.True(t, strings.HasSuffix(text, "</tool_call><|im_end|>"), text)
}
