package local

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"
)

// Throughput is the outcome of MeasureThroughput.
type Throughput struct {
	Requests    int           `json:"requests"`
	Errors      int           `json:"errors"`
	Concurrency int           `json:"concurrency"`
	Elapsed     time.Duration `json:"elapsed"`
	// PerSecond is completed requests per second of wall time.
	PerSecond    float64 `json:"requests_per_second"`
	LatencyP50MS float64 `json:"latency_p50_ms"`
	LatencyP95MS float64 `json:"latency_p95_ms"`
}

// MeasureThroughput posts each body to baseURL's /v1/chat/completions with
// the given number of concurrent workers and reports the server's own
// throughput: the reference the evaluation runner is compared against.
func MeasureThroughput(ctx context.Context, client *http.Client, baseURL string, bodies [][]byte, concurrency int) (Throughput, error) {
	if len(bodies) == 0 {
		return Throughput{}, fmt.Errorf("measure throughput: no requests")
	}
	concurrency = max(concurrency, 1)
	jobs := make(chan []byte)
	var (
		mu        sync.Mutex
		latencies []float64
		errs      int
		firstErr  error
		wg        sync.WaitGroup
	)
	start := time.Now()
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for body := range jobs {
				t0 := time.Now()
				err := postChat(ctx, client, baseURL, body)
				ms := float64(time.Since(t0).Microseconds()) / 1000
				mu.Lock()
				if err != nil {
					errs++
					if firstErr == nil {
						firstErr = err
					}
				} else {
					latencies = append(latencies, ms)
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, b := range bodies {
		select {
		case jobs <- b:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Throughput{}, fmt.Errorf("measure throughput: %w", err)
	}
	elapsed := time.Since(start)
	sort.Float64s(latencies)
	pct := func(q float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		return latencies[min(len(latencies)-1, int(q*float64(len(latencies))))]
	}
	t := Throughput{
		Requests: len(bodies), Errors: errs, Concurrency: concurrency, Elapsed: elapsed,
		PerSecond:    float64(len(latencies)) / elapsed.Seconds(),
		LatencyP50MS: pct(0.50), LatencyP95MS: pct(0.95),
	}
	if errs == len(bodies) {
		return t, fmt.Errorf("measure throughput: every request failed: %w", firstErr)
	}
	return t, nil
}

func postChat(ctx context.Context, client *http.Client, baseURL string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/v1/chat/completions", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("chat completion: status %d", resp.StatusCode)
	}
	return nil
}
