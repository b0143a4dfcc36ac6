package local

// End-to-end tests of the local platform with a real llama-server and a
// real PyTorch training run. They run when FLYWHEEL_LOCAL_E2E=1 (CI sets
// it after scripts/install-local.sh):
//
//	FLYWHEEL_LOCAL_E2E=1 go test ./internal/platform/local
//
// With the switch on, a missing llama-server or torch fails them, never
// skips them.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// e2eEnv is the switch that turns on the end-to-end tests.
const e2eEnv = "FLYWHEEL_LOCAL_E2E"

func requireInstalled(t *testing.T) {
	t.Helper()
	if os.Getenv(e2eEnv) != "1" {
		t.Skip(e2eEnv + "=1 runs this end-to-end test (after scripts/install-local.sh)")
	}
	_, err := FindLlamaServer()
	require.NoError(t, err, "llama-server not found: run scripts/install-local.sh")
	out, err := exec.Command(PythonDefault, "-c", "import torch, numpy").CombinedOutput()
	require.NoError(t, err, "python3-torch not importable (%s): run scripts/install-local.sh", out)
}

func newE2EPlatform(t *testing.T, dir string, opts Options) *Platform {
	t.Helper()
	requireInstalled(t)
	opts.DataDir = dir
	if opts.Base == "" {
		opts.Base = BaseRandom // these tests check the plumbing; TestBuildBase the bases
	}
	p, err := New(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func waitReady(ctx context.Context, t *testing.T, p *Platform, id string) flywheel.Deployment {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		d, err := p.Deployment(ctx, id)
		require.NoError(t, err)
		if d.Status == flywheel.DeploymentReady {
			return d
		}
		require.NotEqual(t, flywheel.DeploymentFailed, d.Status, d.Message)
		require.True(t, time.Now().Before(deadline), "deployment %s not ready: %s", id, d.Message)
		time.Sleep(200 * time.Millisecond)
	}
}

func waitJob(ctx context.Context, t *testing.T, p *Platform, id string, limit time.Duration) flywheel.CustomizationJob {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		j, err := p.Customization(ctx, id)
		require.NoError(t, err)
		switch j.Status {
		case flywheel.JobCompleted:
			return j
		case flywheel.JobFailed, flywheel.JobCancelled:
			require.Fail(t, "job ended", "%s: %s", j.Status, j.Message)
		}
		require.True(t, time.Now().Before(deadline), "job %s still %s after %s", id, j.Status, limit)
		time.Sleep(500 * time.Millisecond)
	}
}

// chatRequest is the logged request of a record: its prompt and tools.
func chatRequest(t *testing.T, r Record) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"messages": r.Messages[:len(r.Messages)-1], "tools": toolsWithType(r), "temperature": 0, "max_tokens": 64,
	})
	require.NoError(t, err)
	return b
}

func toolsWithType(r Record) []map[string]any {
	var out []map[string]any
	for _, tl := range r.Tools {
		out = append(out, map[string]any{"type": "function", "function": map[string]any{"name": tl.Function.Name, "parameters": tl.Function.Parameters}})
	}
	return out
}

type accuracy struct {
	n, name, exact, parsed int
}

func (a accuracy) String() string {
	return fmt.Sprintf("n=%d parsed=%.2f name=%.2f exact=%.2f", a.n, float64(a.parsed)/float64(a.n), float64(a.name)/float64(a.n), float64(a.exact)/float64(a.n))
}

// score replays held-out records against an endpoint and compares the
// parsed tool_calls with the logged ones.
func score(ctx context.Context, t *testing.T, baseURL string, recs []Record) accuracy {
	t.Helper()
	var acc accuracy
	client := &http.Client{Timeout: 30 * time.Second}
	for _, r := range recs {
		acc.n++
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/v1/chat/completions", bytes.NewReader(chatRequest(t, r)))
		require.NoError(t, err)
		resp, err := client.Do(req)
		require.NoError(t, err)
		var out struct {
			Choices []struct {
				Message struct {
					ToolCalls []struct {
						Function struct {
							Name      string `json:"name"`
							Arguments string `json:"arguments"`
						} `json:"function"`
					} `json:"tool_calls"`
				} `json:"message"`
			} `json:"choices"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || len(out.Choices) == 0 || len(out.Choices[0].Message.ToolCalls) == 0 {
			continue // unparsable output counts as wrong
		}
		acc.parsed++
		got := out.Choices[0].Message.ToolCalls[0].Function
		want := r.Messages[len(r.Messages)-1].ToolCalls[0].Function
		if got.Name != want.Name {
			continue
		}
		acc.name++
		var wantArgs string
		require.NoError(t, json.Unmarshal(want.Arguments, &wantArgs))
		var g, w map[string]any
		if json.Unmarshal([]byte(got.Arguments), &g) == nil && json.Unmarshal([]byte(wantArgs), &w) == nil && fmt.Sprint(g) == fmt.Sprint(w) {
			acc.exact++
		}
	}
	return acc
}

func writeDataset(t *testing.T, dir string, train []Record) flywheel.Dataset {
	t.Helper()
	writeRecords(t, filepath.Join(dir, "training", "train_data.jsonl"), train)
	writeRecords(t, filepath.Join(dir, "validation", "val_data.jsonl"), train[:len(train)/10])
	return flywheel.Dataset{Name: "train", Path: dir, Type: flywheel.DatasetTrain, NumRecords: len(train)}
}

// TestE2EDeployTrainServe deploys two candidates, fine-tunes one on a toy
// workload and serves the result: the customized candidate answers
// held-out requests with parsed tool_calls, far better than its base.
func TestE2EDeployTrainServe(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := newE2EPlatform(t, filepath.Join(dir, "data"), Options{})

	heldOut := toyWorkload(60, 2)
	var deps []flywheel.Deployment
	for _, name := range []string{"local/tiny-s", "local/tiny-m"} {
		d, err := p.Deploy(ctx, flywheel.DeployRequest{Key: "run1/" + name, Model: flywheel.NIMConfig{ModelName: name}})
		require.NoError(t, err)
		require.Equal(t, flywheel.DeploymentPending, d.Status)
		again, err := p.Deploy(ctx, flywheel.DeployRequest{Key: "run1/" + name, Model: flywheel.NIMConfig{ModelName: name}})
		require.NoError(t, err)
		require.Equal(t, d.ID, again.ID, "Deploy is idempotent on Key")
		require.Equal(t, d.Endpoint, again.Endpoint)
		deps = append(deps, d)
	}
	for i := range deps {
		deps[i] = waitReady(ctx, t, p, deps[i].ID)
	}
	base := score(ctx, t, deps[0].Endpoint.BaseURL, heldOut)
	t.Logf("base tiny-s: %s", base)

	start := time.Now()
	job, err := p.StartCustomization(ctx, flywheel.CustomizationRequest{
		Key: "run1/tiny-s/ft", Model: flywheel.NIMConfig{ModelName: "local/tiny-s"},
		Training:     flywheel.TrainingConfig{FinetuningType: "all_weights", Epochs: 6, BatchSize: 16, LearningRate: 3e-3},
		TrainDataset: writeDataset(t, filepath.Join(dir, "ds"), toyWorkload(600, 1)),
		OutputName:   "customized-tiny-s",
	})
	require.NoError(t, err)
	job = waitJob(ctx, t, p, job.ID, 5*time.Minute)
	t.Logf("training: %d steps, %d epochs in %s, loss %.3f -> %.3f", job.StepsCompleted, job.EpochsCompleted,
		time.Since(start).Round(time.Second), job.Losses[0], job.Losses[len(job.Losses)-1])
	require.Equal(t, 6, job.EpochsCompleted)
	require.Less(t, job.Losses[len(job.Losses)-1], job.Losses[0]/4)
	require.Equal(t, "customized-tiny-s", job.OutputModel)

	ft, err := p.Deploy(ctx, flywheel.DeployRequest{Key: "run1/tiny-s/customized", Model: flywheel.NIMConfig{ModelName: "local/tiny-s"}, Adapter: &job})
	require.NoError(t, err)
	ft = waitReady(ctx, t, p, ft.ID)
	tuned := score(ctx, t, ft.Endpoint.BaseURL, heldOut)
	t.Logf("customized tiny-s: %s", tuned)
	require.GreaterOrEqual(t, tuned.parsed, 50, "tool calls parsed by llama-server")
	require.GreaterOrEqual(t, tuned.name, base.name+40, "customized beats base on held-out records")

	// llama-server's own throughput at concurrency 1 (the evaluation
	// runner's reference).
	var bodies [][]byte
	for _, r := range heldOut {
		bodies = append(bodies, chatRequest(t, r))
	}
	tp, err := MeasureThroughput(ctx, &http.Client{Timeout: 30 * time.Second}, ft.Endpoint.BaseURL, bodies, 1)
	require.NoError(t, err)
	t.Logf("llama-server throughput: %.1f req/s at concurrency 1 (p50 %.1f ms, p95 %.1f ms, errors %d)", tp.PerSecond, tp.LatencyP50MS, tp.LatencyP95MS, tp.Errors)

	for _, d := range append(deps, ft) {
		var st DeploymentData
		require.NoError(t, json.Unmarshal(d.Data, &st))
		require.NoError(t, p.Undeploy(ctx, d.ID))
		require.False(t, st.alive(), "llama-server %d stopped", st.PID)
		got, err := p.Deployment(ctx, d.ID)
		require.NoError(t, err)
		require.Equal(t, flywheel.DeploymentCancelled, got.Status)
		require.NoError(t, p.Undeploy(ctx, d.ID), "undeploying twice is fine")
	}
}

// TestE2ELoRA trains a LoRA adapter briefly and serves base + adapter.
func TestE2ELoRA(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := newE2EPlatform(t, filepath.Join(dir, "data"), Options{MaxTrainSeconds: 8})
	job, err := p.StartCustomization(ctx, flywheel.CustomizationRequest{
		Key: "lora", Model: flywheel.NIMConfig{ModelName: "local/tiny-xs"},
		Training:     flywheel.TrainingConfig{FinetuningType: "lora", Epochs: 50, BatchSize: 16, LearningRate: 1e-2},
		LoRA:         flywheel.LoRAConfig{AdapterDim: 8, Alpha: 16, TargetModules: []string{"q_proj", "v_proj", "ffn_up"}},
		TrainDataset: writeDataset(t, filepath.Join(dir, "ds"), toyWorkload(200, 1)),
	})
	require.NoError(t, err)
	job = waitJob(ctx, t, p, job.ID, 2*time.Minute)
	require.True(t, strings.HasSuffix(job.URI, "adapter.gguf"), job.URI)
	d, err := p.Deploy(ctx, flywheel.DeployRequest{Key: "lora-dep", Model: flywheel.NIMConfig{ModelName: "local/tiny-xs"}, Adapter: &job})
	require.NoError(t, err)
	d = waitReady(ctx, t, p, d.ID)
	var st DeploymentData
	require.NoError(t, json.Unmarshal(d.Data, &st))
	require.Equal(t, job.URI, st.Adapter)
	require.Contains(t, procArgs(st.PID), "--lora")
	require.NoError(t, p.Undeploy(ctx, d.ID))
}

// TestE2ECancelTraining cancels a running trainer: it stops within seconds.
func TestE2ECancelTraining(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := newE2EPlatform(t, filepath.Join(dir, "data"), Options{})
	job, err := p.StartCustomization(ctx, flywheel.CustomizationRequest{
		Key: "cancel-me", Model: flywheel.NIMConfig{ModelName: "local/tiny-s"},
		Training:     flywheel.TrainingConfig{FinetuningType: "all_weights", Epochs: 100, BatchSize: 16},
		TrainDataset: writeDataset(t, filepath.Join(dir, "ds"), toyWorkload(300, 1)),
	})
	require.NoError(t, err)
	for {
		job, err = p.Customization(ctx, job.ID)
		require.NoError(t, err)
		if job.StepsCompleted > 0 {
			break
		}
		require.Equal(t, flywheel.JobPending, job.Status)
		time.Sleep(200 * time.Millisecond)
	}
	require.Equal(t, flywheel.JobRunning, job.Status)
	var st JobData
	require.NoError(t, json.Unmarshal(job.Data, &st))
	start := time.Now()
	require.NoError(t, p.CancelCustomization(ctx, job.ID))
	stopped := time.Since(start)
	require.False(t, st.alive())
	require.Less(t, stopped, 5*time.Second)
	t.Logf("trainer stopped %s after cancel", stopped.Round(time.Millisecond))
	job, err = p.Customization(ctx, job.ID)
	require.NoError(t, err)
	require.Equal(t, flywheel.JobCancelled, job.Status)
	require.NoError(t, p.CancelCustomization(ctx, job.ID), "cancelling twice is fine")
}

// TestE2EKillParent runs a Flywheel stand-in (this test binary) that
// deploys a model, kills it with SIGKILL, and checks that its llama-server
// died with it; then checks that Undeploy from a fresh Platform stops a
// server its (still running) creator left behind.
func TestE2EKillParent(t *testing.T) {
	if os.Getenv("LOCAL_E2E_CHILD_DIR") != "" {
		return // the child runs in TestMain
	}
	requireInstalled(t)
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestE2EKillParent$")
	cmd.Env = append(os.Environ(), "LOCAL_E2E_CHILD_DIR="+dir)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	sc := bufio.NewScanner(out)
	var st DeploymentData
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
			require.NoError(t, json.Unmarshal([]byte(rest), &st))
			break
		}
	}
	require.NotZero(t, st.PID, "child deployed a model")
	require.True(t, st.alive())
	require.NoError(t, syscall.Kill(cmd.Process.Pid, syscall.SIGKILL))
	_ = cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for st.alive() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	require.False(t, st.alive(), "llama-server %d survived kill -9 of its parent", st.PID)

	// A leftover server whose creator is still alive: a fresh instance
	// stops it through the state file.
	ctx := context.Background()
	a := newE2EPlatform(t, filepath.Join(dir, "data2"), Options{})
	d, err := a.Deploy(ctx, flywheel.DeployRequest{Key: "leftover", Model: flywheel.NIMConfig{ModelName: "local/tiny-xs"}})
	require.NoError(t, err)
	d = waitReady(ctx, t, a, d.ID)
	var left DeploymentData
	require.NoError(t, json.Unmarshal(d.Data, &left))
	b := newE2EPlatform(t, filepath.Join(dir, "data2"), Options{})
	require.NoError(t, b.Release(ctx, flywheel.Resource{Kind: flywheel.ResourceDeployment, RemoteID: d.ID, Data: d.Data}))
	require.False(t, left.alive(), "fresh instance stopped the leftover server")
}

// runKillChild is the child of TestE2EKillParent: deploy, report, wait.
func runKillChild(dir string) {
	ctx := context.Background()
	p, err := New(Options{DataDir: filepath.Join(dir, "data"), Base: BaseRandom})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	d, err := p.Deploy(ctx, flywheel.DeployRequest{Key: "child", Model: flywheel.NIMConfig{ModelName: "local/tiny-xs"}})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	for i := 0; i < 300; i++ {
		d, _ = p.Deployment(ctx, d.ID)
		if d.Status == flywheel.DeploymentReady {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Printf("READY %s\n", d.Data)
	time.Sleep(time.Minute)
	os.Exit(0)
}

// e2eChild runs the child of TestE2EKillParent when asked to.
func e2eChild() bool {
	dir := os.Getenv("LOCAL_E2E_CHILD_DIR")
	if dir == "" {
		return false
	}
	runKillChild(dir)
	return true
}
