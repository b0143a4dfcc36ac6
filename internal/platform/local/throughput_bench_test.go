package local

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/demo"
	"github.com/flywheel-go/flywheel/internal/eval"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/openai"
)

// BenchmarkRunnerVsLlamaServer reports the evaluation runner's requests per
// second against a real llama-server serving a tiny candidate, as a ratio to
// a plain Go load loop posting the same request bodies to the same server at
// the same concurrency (llama-server's own throughput).
//
//	go test ./internal/platform/local -run '^$' -bench RunnerVsLlamaServer -benchtime 1x
func BenchmarkRunnerVsLlamaServer(b *testing.B) {
	if _, err := FindLlamaServer(); err != nil {
		b.Fatalf("%v", err)
	}
	ctx := context.Background()
	p, err := New(Options{DataDir: b.TempDir(), Parallel: 2, Base: BaseRandom})
	require.NoError(b, err)
	b.Cleanup(func() { _ = p.Close() })
	dep, err := p.Deploy(ctx, flywheel.DeployRequest{Key: "bench", Model: flywheel.NIMConfig{ModelName: "local/tiny-s"}})
	require.NoError(b, err)
	for dep.Status != flywheel.DeploymentReady {
		require.NotEqual(b, flywheel.DeploymentFailed, dep.Status, dep.Message)
		time.Sleep(200 * time.Millisecond)
		dep, err = p.Deployment(ctx, dep.ID)
		require.NoError(b, err)
	}

	const n, maxTokens = 120, 64
	recs, err := demo.Records(n, 3, "w", "c", time.Now())
	require.NoError(b, err)
	dir := b.TempDir()
	var file bytes.Buffer
	bodies := make([][]byte, 0, n)
	for _, r := range recs {
		line, err := json.Marshal(map[string]any{"workload_id": r.WorkloadID, "client_id": r.ClientID,
			"timestamp": r.Timestamp.Unix(), "request": r.Request, "response": r.Response})
		require.NoError(b, err)
		file.Write(line)
		file.WriteByte('\n')
		var req map[string]any
		require.NoError(b, json.Unmarshal(r.Request, &req))
		req["model"], req["max_tokens"] = dep.Endpoint.Model, maxTokens
		body, err := json.Marshal(req)
		require.NoError(b, err)
		bodies = append(bodies, body)
	}
	path := filepath.Join(dir, "eval_data.jsonl")
	require.NoError(b, os.WriteFile(path, file.Bytes(), 0o644))

	for _, conc := range []int{1, 2} {
		var direct, runner float64
		for range b.N {
			// Direct before and after the runner, averaged, so that the
			// server's prompt cache favours neither.
			before := plainLoop(b, dep.Endpoint.BaseURL, bodies, conc)
			mt := maxTokens
			r := eval.NewRunner(eval.Options{Concurrency: conc, MaxRetries: -1, Sampling: eval.Sampling{MaxTokens: &mt}})
			t0 := time.Now()
			res, err := r.Evaluate(ctx, flywheel.EvalRequest{EvaluationID: "b", EvalType: flywheel.EvalBase, WorkloadType: flywheel.WorkloadToolCalling,
				Target: dep.Endpoint, Dataset: flywheel.Dataset{Path: path}}, nil)
			require.NoError(b, err)
			require.Equal(b, n, res.Summary.Items)
			runner = float64(n) / time.Since(t0).Seconds()
			direct = (before + plainLoop(b, dep.Endpoint.BaseURL, bodies, conc)) / 2
		}
		b.ReportMetric(direct, "direct_req/s_c"+string(rune('0'+conc)))
		b.ReportMetric(runner, "runner_req/s_c"+string(rune('0'+conc)))
		b.ReportMetric(runner/direct, "ratio_c"+string(rune('0'+conc)))
	}
}

// plainLoop posts every body with conc workers and returns answers per second
// (any status: a model that answers with output the server cannot parse
// still took the server's time).
func plainLoop(b *testing.B, base string, bodies [][]byte, conc int) float64 {
	b.Helper()
	client := &http.Client{Transport: openai.NewTransport()}
	jobs := make(chan []byte)
	var wg sync.WaitGroup
	t0 := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for body := range jobs {
				resp, err := client.Post(base+"/v1/chat/completions", "application/json", bytes.NewReader(body))
				if err == nil {
					_, _ = bytes.NewBuffer(nil).ReadFrom(resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	for _, body := range bodies {
		jobs <- body
	}
	close(jobs)
	wg.Wait()
	return float64(len(bodies)) / time.Since(t0).Seconds()
}
