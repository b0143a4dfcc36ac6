package eval_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/eval"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/openai"
	"github.com/flywheel-go/flywheel/internal/openai/openaitest"
)

// benchConcurrency is the number of requests in flight in the benchmarks.
const benchConcurrency = 16

// fixedReply is a tool-calling chat completion the fast server sends.
const fixedReply = `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"finish_reason":"tool_calls","message":{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"calculate_triangle_area","arguments":"{\"base\": 10, \"height\": 5, \"unit\": \"units\"}"}}]}}],"usage":{"prompt_tokens":120,"completion_tokens":20,"total_tokens":140}}`

// writeBenchDataset writes n records cycled from the BFCL simple file and
// returns its path and the request bodies (for the plain loop).
func writeBenchDataset(b *testing.B, n int) (string, [][]byte) {
	b.Helper()
	f, err := os.Open(filepath.Join(bfclDir(b), "simple.jsonl"))
	require.NoError(b, err)
	defer f.Close()
	var lines [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		lines = append(lines, bytes.Clone(sc.Bytes()))
	}
	require.NoError(b, sc.Err())
	path := filepath.Join(b.TempDir(), "eval_data.jsonl")
	out, err := os.Create(path)
	require.NoError(b, err)
	w := bufio.NewWriter(out)
	bodies := make([][]byte, 0, len(lines))
	for _, l := range lines {
		var rec struct {
			Request json.RawMessage `json:"request"`
		}
		require.NoError(b, json.Unmarshal(l, &rec))
		bodies = append(bodies, rec.Request)
	}
	for i := range n {
		_, _ = w.Write(lines[i%len(lines)])
		_ = w.WriteByte('\n')
	}
	require.NoError(b, w.Flush())
	require.NoError(b, out.Close())
	return path, bodies
}

// plainLoop sends n requests with `conc` goroutines and a bare
// http.Client, reading each reply fully: the load generator the runner is
// compared with.
func plainLoop(b *testing.B, client *http.Client, url string, bodies [][]byte, n, conc int) time.Duration {
	b.Helper()
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				resp, err := client.Post(url+"/v1/chat/completions", "application/json", bytes.NewReader(bodies[i%int64(len(bodies))]))
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	require.Zero(b, failed.Load())
	return time.Since(start)
}

// BenchmarkRunnerThroughput compares the runner's requests per second with
// a plain Go client loop at the same concurrency against the same local
// server, alternating the two each iteration. Server modes:
//
//   - fixed: one canned reply, request not decoded (pure HTTP cost; the
//     runner's own CPU shows fully on a small machine);
//
//   - scripted: the fake decodes each request and answers with the logged
//     reply, as a minimal real server would;
//
//   - fixed-1ms: the canned reply after 1 ms, a very fast model;
//
//   - fixed-20ms: the canned reply after 20 ms, the speed measured for a
//     1M-parameter model served by llama-server on this kind of machine.
//
//     go test -run '^$' -bench RunnerThroughput -benchtime 5x ./internal/eval/
func BenchmarkRunnerThroughput(b *testing.B) {
	l := loadLogged(b, filepath.Join(bfclDir(b), "simple.jsonl"))
	modes := []struct {
		name  string
		items int
		opts  openaitest.Options
	}{
		{"fixed", 5000, openaitest.Options{FixedReply: []byte(fixedReply)}},
		{"scripted", 5000, openaitest.Options{Chat: l.policy(b, nil)}},
		{"fixed-1ms", 5000, openaitest.Options{FixedReply: []byte(fixedReply), Latency: time.Millisecond}},
		{"fixed-20ms", 1000, openaitest.Options{FixedReply: []byte(fixedReply), Latency: 20 * time.Millisecond}},
	}
	for _, mode := range modes {
		b.Run(mode.name, func(b *testing.B) {
			items := mode.items
			path, bodies := writeBenchDataset(b, items)
			srv := openaitest.New(mode.opts)
			b.Cleanup(srv.Close)
			tr := openai.NewTransport()
			b.Cleanup(tr.CloseIdleConnections)
			client := &http.Client{Transport: tr}
			runner := eval.NewRunner(eval.Options{Concurrency: benchConcurrency, HTTPClient: client})
			req := flywheel.EvalRequest{WorkloadType: flywheel.WorkloadToolCalling,
				Target: flywheel.Endpoint{BaseURL: srv.URL, Model: "m"}, Dataset: flywheel.Dataset{Path: path}}

			// Warm the connection pool.
			plainLoop(b, client, srv.URL, bodies, 2*benchConcurrency, benchConcurrency)
			var runnerTime, plainTime, runnerCPU, plainCPU time.Duration
			for b.Loop() {
				cpu0 := processCPU(b)
				plainTime += plainLoop(b, client, srv.URL, bodies, items, benchConcurrency)
				cpu1 := processCPU(b)
				start := time.Now()
				res, err := runner.Evaluate(context.Background(), req, nil)
				runnerTime += time.Since(start)
				runnerCPU += processCPU(b) - cpu1
				plainCPU += cpu1 - cpu0
				require.NoError(b, err)
				require.Equal(b, items, res.Summary.Items)
				require.Zero(b, res.Summary.Errors)
			}
			runnerRPS := float64(items*b.N) / runnerTime.Seconds()
			plainRPS := float64(items*b.N) / plainTime.Seconds()
			b.ReportMetric(runnerRPS, "runner_req/s")
			b.ReportMetric(plainRPS, "plain_req/s")
			b.ReportMetric(runnerRPS/plainRPS, "ratio")
			// CPU per request of the whole process (client and in-process
			// server): what bounds throughput on a busy machine.
			b.ReportMetric(float64(runnerCPU.Microseconds())/float64(items*b.N), "runner_cpu_us/req")
			b.ReportMetric(float64(plainCPU.Microseconds())/float64(items*b.N), "plain_cpu_us/req")
		})
	}
}

// BenchmarkRunnerMemory100k evaluates 100,000 items and reports the peak
// heap (objects live or not yet swept) during the run and the heap the
// returned result holds after a collection, with per-item results kept in
// EvalResult.Items ("keep") and streamed to an ItemSink ("sink").
//
//	go test -run '^$' -bench RunnerMemory100k -benchtime 1x ./internal/eval/
func BenchmarkRunnerMemory100k(b *testing.B) {
	const items = 100_000
	path, _ := writeBenchDataset(b, items)
	srv := openaitest.New(openaitest.Options{FixedReply: []byte(fixedReply)})
	b.Cleanup(srv.Close)
	tr := openai.NewTransport()
	b.Cleanup(tr.CloseIdleConnections)
	for _, mode := range []string{"keep", "sink"} {
		b.Run(mode, func(b *testing.B) {
			opts := eval.Options{Concurrency: benchConcurrency, HTTPClient: &http.Client{Transport: tr}}
			if mode == "sink" {
				opts.ItemSink = func(context.Context, flywheel.ItemResult) error { return nil }
			}
			runner := eval.NewRunner(opts)
			req := flywheel.EvalRequest{WorkloadType: flywheel.WorkloadToolCalling,
				Target: flywheel.Endpoint{BaseURL: srv.URL, Model: "m"}, Dataset: flywheel.Dataset{Path: path}}
			var peak, retained uint64
			for b.Loop() {
				runtime.GC()
				base := liveHeap()
				stop := make(chan struct{})
				done := make(chan uint64)
				go func() {
					var max uint64
					t := time.NewTicker(5 * time.Millisecond)
					defer t.Stop()
					for {
						if h := liveHeap(); h > max {
							max = h
						}
						select {
						case <-stop:
							done <- max
							return
						case <-t.C:
						}
					}
				}()
				res, err := runner.Evaluate(context.Background(), req, nil)
				require.NoError(b, err)
				require.Equal(b, items, res.Summary.Items)
				close(stop)
				if p := <-done; p > base && p-base > peak {
					peak = p - base
				}
				runtime.GC()
				if h := liveHeap(); h > base {
					retained = h - base
				}
				runtime.KeepAlive(res)
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak_heap_MiB")
			b.ReportMetric(float64(retained)/(1<<20), "result_MiB")
			b.ReportMetric(float64(retained)/items, "result_B/item")
		})
	}
}

// processCPU returns the CPU time (user and system) the process has used.
func processCPU(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// liveHeap returns the bytes of heap memory occupied by objects (live and
// not yet swept).
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
