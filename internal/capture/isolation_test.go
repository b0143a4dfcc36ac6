package capture_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/capture"
	"github.com/flywheel-go/flywheel/internal/flywheeltest"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

// TestProxyIsolatesBadRecords sends 3,000 calls through the proxy into a
// real store on each database: one with a NUL in a message, one with
// invalid UTF-8 in a message, one with a 100,000-byte workload id. All
// 3,000 are answered; 2,997 are stored and the 3 others counted rejected,
// each logged with its field, never the whole batch as store_failed.
func TestProxyIsolatesBadRecords(t *testing.T) {
	t.Parallel()
	const n, nul, badUTF8, long = 3000, 10, 1500, 2999
	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			t.Parallel()
			s := storetest.Open(t, d)
			upstream := httptest.NewServer(jsonReply(http.StatusOK, chatResp))
			t.Cleanup(upstream.Close)
			var logs flywheeltest.SyncBuffer
			b := &testBundle{reg: prometheus.NewRegistry()}
			p, err := capture.New(capture.Config{
				UpstreamURL: upstream.URL, Ingester: s, Registerer: b.reg,
				Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			})
			require.NoError(t, err)
			srv := httptest.NewServer(p)
			t.Cleanup(srv.Close)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				_ = p.Run(ctx)
			}()
			t.Cleanup(func() {
				cancel()
				<-done
			})

			var wg sync.WaitGroup
			jobs := make(chan int)
			errs := make(chan error, n)
			for range 8 {
				wg.Go(func() {
					for i := range jobs {
						content, workload := fmt.Sprintf("question %d", i), "w"
						switch i {
						case nul:
							content = `a\u0000b`
						case badUTF8:
							content = "bad \xff\xfe"
						case long:
							workload = strings.Repeat("w", 100_000)
						}
						req, err := http.NewRequest(http.MethodPost, srv.URL+capture.Path,
							strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"`+content+`"}]}`))
						if err != nil {
							errs <- err
							continue
						}
						req.Header.Set("Content-Type", "application/json")
						req.Header.Set(capture.HeaderWorkloadID, workload)
						req.Header.Set(capture.HeaderClientID, "c")
						resp, err := http.DefaultClient.Do(req)
						if err != nil {
							errs <- err
							continue
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							errs <- fmt.Errorf("call %d: status %d", i, resp.StatusCode)
						}
					}
				})
			}
			for i := 1; i <= n; i++ {
				jobs <- i
			}
			close(jobs)
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}

			records := func(result string) float64 {
				return b.counter(t, "flywheel_capture_records_total", "result", result)
			}
			require.Eventually(t, func() bool {
				return records(capture.ResultRecorded)+records(capture.ResultRejected)+records(capture.ResultStoreFailed) == n
			}, 30*time.Second, 10*time.Millisecond)
			require.Equal(t, float64(n-3), records(capture.ResultRecorded))
			require.Equal(t, float64(3), records(capture.ResultRejected))
			require.Zero(t, records(capture.ResultStoreFailed))
			stored, err := s.CountLogs(context.Background(), "", "")
			require.NoError(t, err)
			require.Equal(t, n-3, stored)
			out := logs.String()
			require.Equal(t, 3, strings.Count(out, "Captured record rejected"), out)
			require.Contains(t, out, "field=request.messages[0].content")
			require.Contains(t, out, "field=workload_id")
			t.Logf("%s: %d calls, %d stored, %d rejected", d, n, stored, int(records(capture.ResultRejected)))
		})
	}
}
