package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/client"
	"github.com/flywheel-go/flywheel/internal/config"
	"github.com/flywheel-go/flywheel/internal/demo"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/platform/nemo/nemotest"
	"github.com/flywheel-go/flywheel/internal/store"
)

// TestDiskFullSQLite runs the app on SQLite with its database and data
// directory on a small tmpfs, fills the disk mid-run (while the candidates'
// evaluations are held at the fake NIM) and lets the held requests go on
// while it is full. While the disk is full, POST /api/jobs and POST
// /api/logs answer 503 naming the full disk, reads work, and /readyz is not
// ready; once the filler is removed, /readyz is ready again, the refused
// logs are accepted, the run ends (completed, or failed with its reason)
// with every stage done and nothing left running remotely, and a new run
// completes.
func TestDiskFullSQLite(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", dir).CombinedOutput()
	require.NoError(t, err, "mount a tmpfs: %s", out)
	// Registered before the app's cleanups, so it runs after them (LIFO).
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	dataDir := filepath.Join(dir, "data")
	// The app logs through a handler that counts the failures it reports,
	// to say which paths the full disk went through.
	logs := &logCounts{n: map[string]int{}}
	b := &bundle{}
	b.fake, b.gate = startFake(t, nemotest.Options{})
	t.Cleanup(b.gate.open)
	b.cfg = testConfig(t, store.SQLite, b.fake, func(c *config.Config) {
		c.DataDir = dataDir
		c.DatabaseURL = "sqlite:" + filepath.Join(dataDir, "flywheel.db")
	})
	startLogged(t, b, slog.New(&countingHandler{next: testLogger(t).Handler(), counts: logs}))
	ctx := context.Background()
	base := b.api.BaseURL()

	const workload = "disk-full"
	recs, err := demo.Records(200, 5, workload, clientID, time.Now())
	require.NoError(t, err)
	inserted, _, err := b.app.Store.InsertLogs(ctx, recs)
	require.NoError(t, err)
	require.Equal(t, len(recs), inserted)

	// Hold every chat completion: the run stops inside its evaluations.
	b.gate.hold(chatsOf(func(string) bool { return true }))
	id := b.create(t, workload)
	require.True(t, waitFor(60*time.Second, 20*time.Millisecond, func() bool {
		held, _ := b.gate.counts()
		return held > 0
	}), "an evaluation reached the fake NIM")

	filler := filepath.Join(dir, "filler")
	fill(t, filler)
	filledAt := time.Now()

	// A new run cannot be stored: 503 with the reason. Writes that SQLite
	// can still serve from space its WAL file holds may succeed at first;
	// each answer is either a stored run or that 503, never a bare 500.
	var created []string
	var refused *client.APIError
	require.True(t, waitFor(20*time.Second, 50*time.Millisecond, func() bool {
		res, err := b.api.CreateJob(ctx, client.CreateJobRequest{JobRequest: api.JobRequest{WorkloadID: workload, ClientID: clientID}})
		if err == nil {
			created = append(created, res.ID)
			return false
		}
		require.ErrorAs(t, err, &refused, "an API error, not a transport error")
		require.Equal(t, http.StatusServiceUnavailable, refused.StatusCode, "%v", err)
		return true
	}), "POST /api/jobs never refused while the disk is full (%d runs stored)", len(created))
	require.Contains(t, refused.Detail, "disk full")
	t.Logf("POST /api/jobs on a full disk: 503 %q after %d stored", refused.Detail, len(created))

	code, detail := readyz(t, base)
	require.Equal(t, http.StatusServiceUnavailable, code, detail)
	require.Contains(t, detail, "disk full")

	// Reads still work; a batch of logs is refused with the reason (or
	// stored), never a bare 500.
	_, err = b.api.GetJob(ctx, id)
	require.NoError(t, err, "reads work on a full disk")
	line, err := json.Marshal(recs[0])
	require.NoError(t, err)
	resp, err := http.Post(strings.TrimSuffix(base, "/")+"/api/logs", "application/x-ndjson", strings.NewReader(string(line)+"\n")) //nolint:noctx // test
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	t.Logf("POST /api/logs on a full disk: %d %s", resp.StatusCode, body)
	require.Contains(t, []int{http.StatusOK, http.StatusServiceUnavailable}, resp.StatusCode, "%s", body)
	if resp.StatusCode == http.StatusServiceUnavailable {
		require.Contains(t, string(body), "disk full")
	}

	// The held evaluations go on while the disk is full: their results
	// and their stages' completions cannot be written for a while.
	b.gate.open()
	time.Sleep(3 * time.Second)
	code, detail = readyz(t, base)
	require.Equal(t, http.StatusServiceUnavailable, code, "still full: %s", detail)

	require.NoError(t, os.Remove(filler))
	freedAt := time.Now()
	require.True(t, waitFor(30*time.Second, 50*time.Millisecond, func() bool {
		code, _ := readyz(t, base)
		return code == http.StatusOK
	}), "ready again after space returned")
	readyAfter := time.Since(freedAt)

	// The batch refused while the disk was full is accepted now.
	resp, err = http.Post(strings.TrimSuffix(base, "/")+"/api/logs", "application/x-ndjson", strings.NewReader(string(line)+"\n")) //nolint:noctx // test
	require.NoError(t, err)
	body, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)

	for _, runID := range append([]string{id}, created...) {
		job := b.wait(t, runID, 2*time.Minute)
		require.Contains(t, []string{string(flywheel.RunCompleted), string(flywheel.RunFailed)}, job.Status, describe(job))
		if job.Status == string(flywheel.RunFailed) {
			require.NotNil(t, job.Error, "a failed run says why: %s", describe(job))
			require.NotEmpty(t, *job.Error)
		}
		t.Logf("run %s: %s", runID, describe(job))
	}
	endedAfter := time.Since(freedAt)
	require.True(t, waitFor(30*time.Second, 100*time.Millisecond, func() bool { return b.fake.Live().Empty() }),
		"nothing left running on the fake: %+v", b.fake.Live())

	// With space back, a new run completes.
	again := b.create(t, workload)
	job := b.wait(t, again, 2*time.Minute)
	require.Equal(t, string(flywheel.RunCompleted), job.Status, describe(job))
	t.Logf("disk full for %s; ready %s after space returned; every run ended %s after",
		freedAt.Sub(filledAt).Round(time.Millisecond), readyAfter.Round(time.Millisecond), endedAfter.Round(time.Millisecond))
	t.Logf("failures logged: %v", logs.snapshot())
}

// logCounts counts log records of level WARN and above by message.
type logCounts struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *logCounts) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n)
}

// countingHandler passes records on to next and counts them in counts.
type countingHandler struct {
	next   slog.Handler
	counts *logCounts
}

func (h *countingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.counts.mu.Lock()
		h.counts.n[r.Message]++
		h.counts.mu.Unlock()
	}
	return h.next.Handle(ctx, r)
}

func (h *countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &countingHandler{next: h.next.WithAttrs(as), counts: h.counts}
}

func (h *countingHandler) WithGroup(name string) slog.Handler {
	return &countingHandler{next: h.next.WithGroup(name), counts: h.counts}
}

// readyz returns the status and detail of GET /readyz.
func readyz(t *testing.T, base string) (int, string) {
	t.Helper()
	resp, err := http.Get(strings.TrimSuffix(base, "/") + "/readyz") //nolint:noctx // test
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out struct {
		Detail string `json:"detail"`
	}
	_ = json.Unmarshal(body, &out)
	return resp.StatusCode, out.Detail
}

// fill writes path until the disk it is on has no space left.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			require.True(t, errors.Is(err, syscall.ENOSPC), "fill: %v", err)
			return
		}
	}
}
