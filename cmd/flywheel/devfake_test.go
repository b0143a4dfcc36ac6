package main_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/demo"
	"github.com/flywheel-go/flywheel/internal/platform/nemo/nemotest"
)

// fakeCounters reads GET /_fake/counters of a nemo-fake process.
func fakeCounters(t *testing.T, addr string) (nemotest.Counters, error) {
	t.Helper()
	var c nemotest.Counters
	resp, err := http.Get("http://" + addr + nemotest.CountersPath) //nolint:noctx // test
	if err != nil {
		return c, err
	}
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&c))
	return c, nil
}

// TestDevNemoFakeFaults runs `flywheel dev nemo-fake` with faults on its
// flags (503s, answers lost by cutting the connection, latency spikes) and
// a whole run of `flywheel serve` against it through the real NeMo
// clients. The run completes, and the fake's counters endpoint shows the
// injected faults, one creation per remote resource, no duplicate and
// nothing live after the cleanup.
func TestDevNemoFakeFaults(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fakeAddr := freeAddr(t)
	cfg := writeFile(t, filepath.Join(dir, "config.yaml"), nemoConfig("http://"+fakeAddr, "http://"+fakeAddr+nemotest.NIMPrefix,
		"  poll_interval: 100ms\n  retry:\n    initial_backoff: 100ms\n    max_backoff: 1s\n", 4))
	dataDir := filepath.Join(dir, "data")
	common := []string{"--config", cfg, "--data-dir", dataDir}

	fake := start(t, dir, "nemo-fake", append([]string{"dev", "nemo-fake", "--addr", fakeAddr,
		"--fail-rate", "0.2", "--lose-rate", "0.1", "--latency-spike", "0.05:50ms", "--seed", "7"}, common...)...)
	eventually(t, 30*time.Second, 20*time.Millisecond, "nemo-fake answers its counters", func() bool {
		require.False(t, fake.exited(), "nemo-fake exited: %v\n%s", fake.err, tailFile(fake.log, 4096))
		_, err := fakeCounters(t, fakeAddr)
		return err == nil
	})

	const workload, client = "fault-kit", "faults"
	recs, err := demo.Records(150, 11, workload, client, time.Now())
	require.NoError(t, err)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, r := range recs {
		require.NoError(t, enc.Encode(r))
	}
	logs := writeFile(t, filepath.Join(dir, "logs.jsonl"), buf.String())
	require.Contains(t, run(t, append([]string{"load", "--file", logs}, common...)...), "Loaded 150 records")

	addr := freeAddr(t)
	serve := start(t, dir, "serve", append([]string{"serve", "--addr", addr}, common...)...)
	c := newAPIClient(t, addr)
	c.waitReady(t, serve, 30*time.Second)
	started := time.Now()
	id := c.createJob(t, workload, client)
	j := c.waitFinished(t, id, 3*time.Minute)
	if j.Status != "completed" {
		logStages(t, j)
	}
	requireCompleted(t, j, 2)
	runTime := time.Since(started)

	var counters nemotest.Counters
	eventually(t, 30*time.Second, 100*time.Millisecond, "nothing live on the fake after the cleanup", func() bool {
		counters, err = fakeCounters(t, fakeAddr)
		require.NoError(t, err)
		return counters.LiveTotal == 0
	})
	t.Logf("run %s; fake: %d requests, faults %v, created %v, deleted %v, cancelled %v", runTime.Round(time.Millisecond),
		counters.Requests, counters.Faults, counters.Created, counters.Deleted, counters.Cancelled)
	require.Positive(t, counters.Faults[nemotest.FaultError5xx], "503s were injected")
	require.Positive(t, counters.Faults[nemotest.FaultLostResponse], "answers were lost")
	require.Zero(t, counters.DuplicatesTotal, "nothing created twice: %v", counters.Duplicates)
	require.Equal(t, 2, counters.Created[nemotest.KindDeployment], "one deployment per candidate")
	require.Equal(t, 2, counters.Created[nemotest.KindCustomization], "one customization per candidate")
	require.Equal(t, counters.Created[nemotest.KindDeployment], counters.Deleted[nemotest.KindDeployment],
		"every deployment deleted")
	require.Zero(t, counters.Stored[nemotest.KindDeployment])
	require.Empty(t, counters.Live.Customizations)
	require.Empty(t, counters.Live.Evaluations)
}

// TestDevNemoFakeBadFlags checks that bad fault flags stop the fake at
// start with an error naming the flag.
func TestDevNemoFakeBadFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--fail-rate", "1.5"}, "--fail-rate 1.5: must be a fraction between 0 and 1"},
		{[]string{"--lose-rate", "-0.1"}, "--lose-rate -0.1: must be a fraction"},
		{[]string{"--latency-spike", "0.1"}, `--latency-spike "0.1": want P:DUR`},
		{[]string{"--latency-spike", "0.1:soon"}, `"soon" is not a positive duration`},
		{[]string{"--latency-spike", "x:1s"}, `fraction "x" is not a number`},
		{[]string{"--fail-rate-for", "nimz=0.5"}, `"nimz" is not an endpoint class`},
		{[]string{"--fail-rate-for", "GET /v1/nothing=0.5"}, `"GET /v1/nothing" is not an endpoint class`},
		{[]string{"--fail-rate-for", "nim"}, `want KEY=RATE`},
		{[]string{"--fail-rate-for", "nim=2"}, `--fail-rate-for nim 2: must be a fraction`},
		{[]string{"--lose-as", "drop"}, `--lose-as "drop": want cut or 502`},
		{[]string{"--epoch-duration", "-1s"}, `--epoch-duration -1s: must be positive`},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, "_"), func(t *testing.T) {
			t.Parallel()
			args := append([]string{"dev", "nemo-fake", "--addr", "127.0.0.1:0", "--data-dir", dir}, tt.args...)
			cmd := exec.Command(os.Getenv(binaryEnv), args...)
			cmd.Env = childEnv()
			out, err := cmd.CombinedOutput()
			require.Error(t, err, "flywheel %s must fail:\n%s", strings.Join(args, " "), out)
			require.Contains(t, string(out), tt.want)
			require.NotContains(t, string(out), "goroutine", "no stack trace")
		})
	}

	t.Run("EndpointKeyAccepted", func(t *testing.T) {
		t.Parallel()
		// A valid per-endpoint rate starts the fake, which then answers 503
		// on that endpoint only.
		addr := freeAddr(t)
		fake := start(t, dir, "nemo-fake-endpoint", "dev", "nemo-fake", "--addr", addr, "--data-dir", dir,
			"--fail-rate-for", nemotest.EndpointNIMModels+"=1", "--fail-rate-for", "deployment=0")
		eventually(t, 30*time.Second, 20*time.Millisecond, "nemo-fake answers", func() bool {
			require.False(t, fake.exited(), "nemo-fake exited: %v\n%s", fake.err, tailFile(fake.log, 4096))
			_, err := fakeCounters(t, addr)
			return err == nil
		})
		resp, err := http.Get("http://" + addr + nemotest.NIMPrefix + "/v1/models") //nolint:noctx // test
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		resp, err = http.Get("http://" + addr + "/v1/deployment/model-deployments") //nolint:noctx // test
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	})
}
