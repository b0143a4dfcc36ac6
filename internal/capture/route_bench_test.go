package capture_test

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/capture"
	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// BenchmarkShadow compares a chat call of a workload in shadow promotion
// (production answers, a copy goes to the candidate in the background)
// with the same call of a workload without promotion, through one proxy,
// one after the other, and reports the p50 and p99 of each and the
// latency shadowing adds.
func BenchmarkShadow(b *testing.B) {
	p := promotion(flywheel.ModeShadow, 0, "")
	rb := setupRoutes(b, &p, 0, nil, false)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 10 * time.Second}
	call := func(workload string) time.Duration {
		req, _ := http.NewRequest(http.MethodPost, rb.srv.URL+capture.Path, strings.NewReader(chatReq))
		req.Header.Set(capture.HeaderWorkloadID, workload)
		req.Header.Set(capture.HeaderClientID, "c")
		start := time.Now()
		resp, err := client.Do(req)
		require.NoError(b, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Equal(b, http.StatusOK, resp.StatusCode)
		return time.Since(start)
	}
	call("w")
	call("none")
	var shadow, plain []time.Duration
	for b.Loop() {
		plain = append(plain, call("none"))
		shadow = append(shadow, call("w"))
	}
	pct := func(d []time.Duration, q float64) float64 {
		s := slices.Clone(d)
		slices.Sort(s)
		return float64(s[int(float64(len(s)-1)*q)].Microseconds())
	}
	b.ReportMetric(pct(plain, 0.5), "plain-p50-µs")
	b.ReportMetric(pct(shadow, 0.5), "shadow-p50-µs")
	b.ReportMetric(pct(shadow, 0.5)-pct(plain, 0.5), "added-p50-µs")
	b.ReportMetric(pct(plain, 0.99), "plain-p99-µs")
	b.ReportMetric(pct(shadow, 0.99), "shadow-p99-µs")
	b.ReportMetric(pct(shadow, 0.99)-pct(plain, 0.99), "added-p99-µs")
}
