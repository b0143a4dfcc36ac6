package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/platform/nemo/nemotest"
)

// startGuardedServe runs an API-only serve on SQLite with the NeMo fake as
// its platform and returns its address, process and client.
func startGuardedServe(t testing.TB, extra string) (string, *child, *apiClient) {
	t.Helper()
	dir := t.TempDir()
	hs := httptest.NewServer(nemotest.NewHandler(nemotest.Options{}))
	t.Cleanup(hs.Close)
	cfg := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(nemoConfig(hs.URL, hs.URL+nemotest.NIMPrefix, "  workers: 1\n", 1)+extra), 0o644))
	dataDir := filepath.Join(dir, "data")
	require.NoError(t, os.MkdirAll(dataDir, 0o755))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	args := []string{"serve", "--addr", addr, "--workers", "0", "--config", cfg, "--data-dir", dataDir,
		"--db", "sqlite:" + filepath.Join(dataDir, "flywheel.db")}
	serve := start(t, dir, "serve", args...)
	c := &apiClient{base: "http://" + addr, http: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}}
	deadline := time.Now().Add(60 * time.Second)
	for {
		require.False(t, serve.exited(), "serve exited: %v\n%s", serve.err, tailFile(serve.log, 4000))
		if code, err := c.do(http.MethodGet, "/readyz", nil, nil); err == nil && code == http.StatusOK {
			break
		}
		require.True(t, time.Now().Before(deadline), "serve not ready")
		time.Sleep(50 * time.Millisecond)
	}
	return addr, serve, c
}

// TestServeGuard sends the requests of a hostile web page to a real serve
// on loopback with authentication off: cross-site text/plain posts to the
// API and to River's UI's JSON endpoints, and a DNS-rebound Host.
func TestServeGuard(t *testing.T) {
	t.Parallel()
	addr, _, c := startGuardedServe(t, "")
	base := "http://" + addr

	send := func(method, path, body string, header ...string) (int, http.Header, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		require.NoError(t, err)
		for i := 0; i+1 < len(header); i += 2 {
			if header[i] == "Host" {
				req.Host = header[i+1]
				continue
			}
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := c.http.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, resp.Header, string(b)
	}

	// A run whose stage jobs River's UI could cancel.
	id := c.createJob(t, "w", "c")

	crossSite := []string{"Content-Type", "text/plain", "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}
	oldBrowser := []string{"Content-Type", "text/plain", "Origin", "https://evil.example"}
	noBrowser := []string{"Content-Type", "text/plain"}
	targets := []struct{ method, path, body string }{
		{"POST", "/api/jobs", `{"workload_id":"w","client_id":"c"}`},
		{"POST", "/api/logs", `{"workload_id":"w","client_id":"c","timestamp":1,"request":{"messages":[]},"response":{"choices":[]}}`},
		{"POST", "/api/jobs/" + id + "/cancel", ""},
		{"DELETE", "/api/jobs/" + id, ""},
		{"POST", "/ui/river/api/jobs/cancel", `{"ids":["1","2","3","4","5"]}`},
		{"POST", "/ui/river/api/jobs/delete", `{"ids":["1"]}`},
		{"POST", "/ui/river/api/jobs/retry", `{"ids":["1"]}`},
		{"PUT", "/ui/river/api/queues/default/pause", `{}`},
	}
	for _, tg := range targets {
		for _, h := range [][]string{crossSite, oldBrowser} {
			status, _, body := send(tg.method, tg.path, tg.body, h...)
			require.Equal(t, http.StatusForbidden, status, "%s %s %v: %s", tg.method, tg.path, h, body)
		}
		status, _, body := send(tg.method, tg.path, tg.body+" ", noBrowser...)
		require.Equal(t, http.StatusUnsupportedMediaType, status, "%s %s: %s", tg.method, tg.path, body)
	}
	var listed api.JobsListResponse
	_, err := c.do(http.MethodGet, "/api/jobs", nil, &listed)
	require.NoError(t, err)
	require.Len(t, listed.Jobs, 1, "no run was created")
	require.NotEqual(t, "cancelled", c.job(t, id).Status, "the run was not cancelled")

	// River's endpoints are real and answer a same-origin JSON request: the
	// guard is what refused the others.
	status, _, body := send("PUT", "/ui/river/api/queues/default/pause", "{}", "Content-Type", "application/json",
		"Sec-Fetch-Site", "same-origin", "Origin", base)
	require.NotContains(t, []int{403, 415, 421}, status, body)
	require.Contains(t, body, `"message"`, "River answered (its errors are {message}, ours {detail})")

	// DNS rebinding: evil.example now resolves to 127.0.0.1; its page reads nothing.
	for _, path := range []string{"/ui/", "/ui/runs/" + id + "/cancel", "/ui/river/", "/api/jobs", "/metrics"} {
		status, _, body := send("GET", path, "", "Host", "evil.example:"+strings.Split(addr, ":")[1])
		require.Equal(t, http.StatusMisdirectedRequest, status, path)
		require.NotContains(t, body, "csrf")
	}
	status, _, body = send("GET", "/ui/runs/"+id+"/cancel", "")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, `name="csrf"`, "the real page holds the token the rebinding page could not read")

	// No page can be framed, River's included.
	for _, path := range []string{"/ui/", "/ui/river/", "/ui/river/jobs", "/api/jobs", "/healthz"} {
		status, h, _ := send("GET", path, "")
		require.Equal(t, http.StatusOK, status, path)
		require.Equal(t, "DENY", h.Get("X-Frame-Options"), path)
		require.Contains(t, strings.Join(h.Values("Content-Security-Policy"), ";"), "frame-ancestors 'none'", path)
	}
}

// BenchmarkSlowUploads measures a serve process under 20 concurrent slow
// 30 MB POST /api/logs uploads: its peak resident memory (VmHWM) and the
// slowest /healthz answer meanwhile. Run it with
//
//	go test ./cmd/flywheel -run '^$' -bench SlowUploads -benchtime 1x
//
// FLYWHEEL_UPLOADS, FLYWHEEL_UPLOAD_MB and FLYWHEEL_UPLOAD_KBPS change the
// number, size and per-upload rate (default 20, 30, 600).
func BenchmarkSlowUploads(b *testing.B) {
	uploads := envInt("FLYWHEEL_UPLOADS", 20)
	sizeMB := envInt("FLYWHEEL_UPLOAD_MB", 30)
	kbps := envInt("FLYWHEEL_UPLOAD_KBPS", 600)
	_, serve, c := startGuardedServe(b, "")
	baseline := procStatusKB(b, serve.pid(), "VmRSS")

	for b.Loop() {
		stop := make(chan struct{})
		var healthMax atomic.Int64
		var healthFails atomic.Int64
		var hwg sync.WaitGroup
		hwg.Go(func() {
			hc := &http.Client{Timeout: 5 * time.Second}
			for {
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
				}
				t0 := time.Now()
				resp, err := hc.Get(c.base + "/healthz")
				if err != nil || resp.StatusCode != http.StatusOK {
					healthFails.Add(1)
				}
				if resp != nil {
					resp.Body.Close()
				}
				if d := time.Since(t0).Milliseconds(); d > healthMax.Load() {
					healthMax.Store(d)
				}
			}
		})

		start := time.Now()
		var wg sync.WaitGroup
		results := make([]api.LogsResponse, uploads)
		sent := make([]int, uploads)
		errs := make([]error, uploads)
		for i := range uploads {
			wg.Go(func() { results[i], sent[i], errs[i] = slowUpload(c.base, i, sizeMB<<20, kbps<<10) })
		}
		wg.Wait()
		elapsed := time.Since(start)
		close(stop)
		hwg.Wait()

		total := 0
		for i := range uploads {
			require.NoError(b, errs[i], "upload %d", i)
			require.Equal(b, sent[i], results[i].Lines, "upload %d: every line was read", i)
			require.Equal(b, sent[i], results[i].Inserted+results[i].Duplicates, "upload %d: every line was stored", i)
			total += sent[i]
		}
		peak := procStatusKB(b, serve.pid(), "VmHWM")
		require.Zero(b, healthFails.Load(), "/healthz answered throughout")
		b.ReportMetric(float64(peak)/1024, "peak_rss_MB")
		b.ReportMetric(float64(baseline)/1024, "start_rss_MB")
		b.ReportMetric(float64(healthMax.Load()), "healthz_max_ms")
		b.ReportMetric(float64(total)/elapsed.Seconds(), "records/s")
		b.ReportMetric(elapsed.Seconds(), "upload_s")
		b.Logf("%d uploads of %d MB at %d KB/s each: %d records in %s; RSS %d MB at start, peak %d MB; slowest /healthz %d ms",
			uploads, sizeMB, kbps, total, elapsed.Round(time.Second), baseline/1024, peak/1024, healthMax.Load())
	}
}

// slowUpload sends about size bytes of log lines to POST /api/logs at rate
// bytes per second and returns the answer and the number of lines sent.
// Lines repeat every 2,000 so that the database stays small (repeats are
// stored as duplicates, after the same parsing and hashing).
func slowUpload(base string, n, size, rate int) (api.LogsResponse, int, error) {
	pr, pw := io.Pipe()
	lines := 0
	go func() {
		w := bufio.NewWriterSize(pw, 64<<10)
		written := 0
		t0 := time.Now()
		for written < size {
			line := fmt.Sprintf(`{"workload_id":"upload-%d","client_id":"bench","timestamp":%d,"request":{"model":"m","messages":[{"role":"system","content":"You are a helpful assistant that answers support questions about orders, refunds and shipping."},{"role":"user","content":"Where is my order %d? It was due on Monday and the tracking page says nothing."}],"tools":[{"type":"function","function":{"name":"get_order","parameters":{"type":"object","properties":{"order_id":{"type":"string"}}}}}]},"response":{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"get_order","arguments":"{\"order_id\":\"%d\"}"}}]}}]}}`+"\n",
				n, 1_750_000_000+lines%2000, lines%2000, lines%2000)
			if _, err := w.WriteString(line); err != nil {
				return
			}
			written += len(line)
			lines++
			if ahead := time.Duration(float64(written)/float64(rate)*float64(time.Second)) - time.Since(t0); ahead > 0 {
				if err := w.Flush(); err != nil {
					return
				}
				time.Sleep(ahead)
			}
		}
		_ = w.Flush()
		_ = pw.Close()
	}()
	req, err := http.NewRequest(http.MethodPost, base+"/api/logs", pr)
	if err != nil {
		return api.LogsResponse{}, 0, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		return api.LogsResponse{}, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return api.LogsResponse{}, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return api.LogsResponse{}, 0, fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	var out api.LogsResponse
	if err := json.Unmarshal(body, &out); err != nil {
		return api.LogsResponse{}, 0, err
	}
	return out, lines, nil
}

// procStatusKB reads a kB field of /proc/<pid>/status.
func procStatusKB(t testing.TB, pid int, field string) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for line := range bytes.Lines(data) {
		if v, ok := bytes.CutPrefix(line, []byte(field+":")); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(string(v)), " kB"))
			require.NoError(t, err)
			return n
		}
	}
	require.FailNow(t, "no "+field+" in /proc status")
	return 0
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}
