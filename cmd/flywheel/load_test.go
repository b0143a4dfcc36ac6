package main_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/ingest"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
	"github.com/flywheel-go/flywheel/internal/testcorpus"
)

// TestLoadIsolatesBadLines loads 3,000 lines, three of which no database
// can store, on each database: 2,997 are stored and the three reported
// with their line, and the load goes on to the end.
func TestLoadIsolatesBadLines(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "logs.jsonl")
	require.NoError(t, os.WriteFile(file, []byte(testcorpus.BadLines(3000, 10, 1500, 2999)), 0o600))
	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			t.Parallel()
			url := storetest.URL(t, d)
			out := run(t, "load", "--file", file, "--db", url, "--data-dir", t.TempDir(), "--json")
			var sum ingest.Summary
			require.NoError(t, json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &sum), out)
			require.Equal(t, 3000, sum.Lines)
			require.Equal(t, 2997, sum.Loaded)
			require.Equal(t, 3, sum.Rejected)
			require.Len(t, sum.Rejections, 3)
			require.Equal(t, ingest.Rejection{Line: 10, Field: "request.messages[0].content", Reason: sum.Rejections[0].Reason}, sum.Rejections[0])
			require.Equal(t, 1500, sum.Rejections[1].Line)
			require.Contains(t, sum.Rejections[1].Reason, "UTF-8")
			require.Equal(t, ingest.Rejection{Line: 2999, Field: "workload_id", Reason: "longer than 255 bytes (100000)"}, sum.Rejections[2])

			s, err := store.Open(context.Background(), url, store.Options{})
			require.NoError(t, err)
			defer s.Close()
			n, err := s.CountLogs(context.Background(), "", "")
			require.NoError(t, err)
			require.Equal(t, 2997, n)
			t.Logf("%s: %d lines, %d stored, rejected lines %d, %d, %d", d, sum.Lines, n,
				sum.Rejections[0].Line, sum.Rejections[1].Line, sum.Rejections[2].Line)
		})
	}
}

// TestLoadStopsOnSignalMidLine sends SIGINT and SIGTERM to a load reading a
// line that never ends: it stops within seconds either way.
func TestLoadStopsOnSignalMidLine(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cmd := exec.Command(os.Getenv(binaryEnv), "load", "--file", "-", "--data-dir", dir,
				"--db", "sqlite:"+filepath.Join(dir, "f.db"))
			cmd.Env = childEnv()
			stdin, err := cmd.StdinPipe()
			require.NoError(t, err)
			var out strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &out
			require.NoError(t, cmd.Start())
			feedDone := make(chan struct{})
			go func() {
				defer close(feedDone)
				chunk := []byte(`{"workload_id":"` + strings.Repeat("x", 64<<10))
				for {
					if _, err := stdin.Write(chunk); err != nil {
						return
					}
					chunk = []byte(strings.Repeat("x", 64<<10))
				}
			}()
			time.Sleep(time.Second) // well into the line
			require.NoError(t, cmd.Process.Signal(sig))
			exited := make(chan error, 1)
			start := time.Now()
			go func() { exited <- cmd.Wait() }()
			select {
			case err := <-exited:
				require.Error(t, err, "a stopped load exits non-zero")
				t.Logf("%s: stopped %s after the signal", sig, time.Since(start).Round(time.Millisecond))
				require.Contains(t, out.String(), "context canceled")
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
				t.Fatalf("flywheel load still running 10 s after %s:\n%s", sig, out.String())
			}
			_ = stdin.Close()
			<-feedDone
		})
	}
}
