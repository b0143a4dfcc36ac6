package local

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/demo"
	"github.com/flywheel-go/flywheel/tools"
)

// BenchmarkTrainerVsRawTorch reports the trainer's training throughput
// (tokens per CPU second: batch making, forward, loss, backward, gradient
// clipping and the optimizer step) against PyTorch's raw forward and
// backward pass over the same model and the same batches, as a ratio
// (trainer.py --bench). The model is a fresh tiny-s, the data the demo
// workload tokenized as a customization job does.
//
//	go test ./internal/platform/local -run '^$' -bench TrainerVsRawTorch -benchtime 1x
func BenchmarkTrainerVsRawTorch(b *testing.B) {
	out, err := exec.Command(PythonDefault, "-c", "import torch, numpy").CombinedOutput()
	require.NoError(b, err, "python3-torch not importable (%s): run scripts/install-local.sh", out)
	dir := b.TempDir()
	tok := DefaultTokenizer()
	size, err := SizeFor("local/tiny-s")
	require.NoError(b, err)
	m, err := NewModel("local/tiny-s", size, tok, 1)
	require.NoError(b, err)
	base := filepath.Join(dir, "tiny-s.gguf")
	require.NoError(b, m.WriteFile(base))

	logs, err := demo.Records(400, 42, "w", "c", time.Unix(1e9, 0))
	require.NoError(b, err)
	var chats bytes.Buffer
	for _, l := range logs {
		var req struct {
			Messages json.RawMessage `json:"messages"`
			Tools    json.RawMessage `json:"tools"`
		}
		var resp struct {
			Choices []struct {
				Message json.RawMessage `json:"message"`
			} `json:"choices"`
		}
		require.NoError(b, json.Unmarshal(l.Request, &req))
		require.NoError(b, json.Unmarshal(l.Response, &resp))
		var msgs []json.RawMessage
		require.NoError(b, json.Unmarshal(req.Messages, &msgs))
		line, err := json.Marshal(map[string]any{"messages": append(msgs, resp.Choices[0].Message), "tools": req.Tools})
		require.NoError(b, err)
		chats.Write(append(line, '\n'))
	}
	train := filepath.Join(dir, "train.tok.jsonl")
	w, err := os.Create(train)
	require.NoError(b, err)
	st, err := PrepareTrainingData(&chats, w, tok)
	require.NoError(b, err)
	require.NoError(b, w.Close())
	require.Equal(b, 400, st.Written, st.Skipped)

	script := filepath.Join(dir, "trainer.py")
	require.NoError(b, os.WriteFile(script, []byte(tools.Trainer()), 0o644))
	const steps, batch = 20, 16
	var res struct {
		Trainer float64 `json:"trainer_tokens_per_cpu_s"`
		Raw     float64 `json:"raw_tokens_per_cpu_s"`
		Ratio   float64 `json:"ratio"`
	}
	b.ResetTimer()
	for range b.N {
		cmd := exec.Command(PythonDefault, script, "--base", base, "--train", train, "--out", filepath.Join(dir, "unused.gguf"),
			"--bench", strconv.Itoa(steps), "--batch-size", strconv.Itoa(batch), "--threads", "1")
		cmd.Env = trainerEnv(1)
		stdout, err := cmd.Output()
		require.NoError(b, err, "%s", stdout)
		var last []byte
		for _, line := range bytes.Split(bytes.TrimSpace(stdout), []byte("\n")) {
			if bytes.Contains(line, []byte(`"event": "bench"`)) {
				last = line
			}
		}
		require.NotNil(b, last, "no bench line in %s", stdout)
		require.NoError(b, json.Unmarshal(last, &res))
	}
	b.ReportMetric(res.Trainer, "trainer-tok/cpu-s")
	b.ReportMetric(res.Raw, "raw-tok/cpu-s")
	b.ReportMetric(res.Ratio, "ratio")
}
