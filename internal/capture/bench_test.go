package capture_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/capture"
)

// BenchmarkOverhead compares a chat call made straight to an upstream with
// the same call through the proxy (recording on), one after the other, and
// reports the p50 of each and their difference.
func BenchmarkOverhead(b *testing.B) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, chatResp)
	}))
	defer upstream.Close()
	ing := &fakeIngester{}
	p, err := capture.New(capture.Config{UpstreamURL: upstream.URL, Ingester: ing, Registerer: prometheus.NewRegistry()})
	require.NoError(b, err)
	proxy := httptest.NewServer(p)
	defer proxy.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 10 * time.Second}
	call := func(url string) time.Duration {
		req, _ := http.NewRequest(http.MethodPost, url+capture.Path, strings.NewReader(chatReq))
		req.Header.Set(capture.HeaderWorkloadID, "w")
		req.Header.Set(capture.HeaderClientID, "c")
		start := time.Now()
		resp, err := client.Do(req)
		require.NoError(b, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Equal(b, http.StatusOK, resp.StatusCode)
		return time.Since(start)
	}
	call(upstream.URL)
	call(proxy.URL)
	var direct, proxied []time.Duration
	for b.Loop() {
		direct = append(direct, call(upstream.URL))
		proxied = append(proxied, call(proxy.URL))
	}
	p50 := func(d []time.Duration) float64 {
		s := slices.Clone(d)
		slices.Sort(s)
		return float64(s[len(s)/2].Microseconds())
	}
	b.ReportMetric(p50(direct), "direct-p50-µs")
	b.ReportMetric(p50(proxied), "proxy-p50-µs")
	b.ReportMetric(p50(proxied)-p50(direct), "overhead-p50-µs")
}

// BenchmarkPassThroughLargeBodies sends a 64 MiB upload and receives a
// 64 MiB download through the proxy (not recorded) and reports the bytes
// allocated per round trip in this process (client, proxy and upstream
// together): far below the 128 MiB carried when bodies are streamed.
func BenchmarkPassThroughLargeBodies(b *testing.B) {
	const size = 64 << 20
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			n, _ := io.Copy(io.Discard, r.Body)
			if n != size {
				w.WriteHeader(http.StatusBadRequest)
			}
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = io.Copy(w, io.LimitReader(zeros{}, size))
	}))
	defer upstream.Close()
	p, err := capture.New(capture.Config{UpstreamURL: upstream.URL, Ingester: &fakeIngester{}, Registerer: prometheus.NewRegistry()})
	require.NoError(b, err)
	proxy := httptest.NewServer(p)
	defer proxy.Close()
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}

	b.ReportAllocs()
	b.SetBytes(2 * size)
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodPost, proxy.URL+"/v1/uploads/u/parts", io.LimitReader(zeros{}, size))
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := client.Do(req)
		require.NoError(b, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Equal(b, http.StatusOK, resp.StatusCode)

		resp, err = client.Get(proxy.URL + "/v1/files/f/content")
		require.NoError(b, err)
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Equal(b, int64(size), n)
	}
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
