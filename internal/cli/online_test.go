package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/cli"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/server"
	"github.com/flywheel-go/flywheel/internal/server/servertest"
)

type onlineReporter struct{ asked [2]string }

func (o *onlineReporter) OnlineReport(_ context.Context, workloadID, clientID string) ([]flywheel.OnlineStats, error) {
	o.asked = [2]string{workloadID, clientID}
	if workloadID == "none" {
		return nil, nil
	}
	end := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	return []flywheel.OnlineStats{{WorkloadID: workloadID, ClientID: "acme", Model: "small", PromotionID: "p1", Active: true, N: 120, Errors: 2,
		Scores: map[string]flywheel.ScoreDetail{
			"ast_accuracy":                    {N: 120, Mean: 0.5, CILow: 0.41, CIHigh: 0.59},
			flywheel.ScoreFunctionNameAndArgs: {N: 120, Mean: 0.9, CILow: 0.842, CIHigh: 0.95},
		},
		CandidateLatencyMS: flywheel.Percentiles{N: 118, P50: 80, P90: 120, P99: 200}, WindowStart: end.Add(-time.Hour), WindowEnd: end}}, nil
}

// TestWorkloadsOnline: `workloads online W` prints a row per promotion and
// metric, the watched metric first, with its interval and n.
func TestWorkloadsOnline(t *testing.T) {
	t.Parallel()
	rep := &onlineReporter{}
	srv := httptest.NewServer(server.New(server.Options{Jobs: &servertest.JobService{}, Online: rep,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}))
	t.Cleanup(srv.Close)
	run := func(args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		cmd := cli.NewWorkloadsCommand(cli.Options{ServerURL: func() string { return srv.URL }, Stdout: &stdout, Stderr: &stderr})
		cmd.SetArgs(args)
		cmd.SetOut(&stderr)
		cmd.SetErr(&stderr)
		require.NoError(t, cmd.ExecuteContext(t.Context()), stderr.String())
		return stdout.String()
	}

	out := run("online", "support", "--client-id", "acme")
	require.Equal(t, [2]string{"support", "acme"}, rep.asked)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, out)
	require.Equal(t, []string{"p1", "acme", "small", "active", "120", "2", flywheel.ScoreFunctionNameAndArgs,
		"0.900", "[0.842,", "0.950]", "n=120", "80/120", "-", "2026-06-01", "12:00:00Z"}, strings.Fields(lines[1]))
	require.Contains(t, lines[2], "ast_accuracy")

	var got []api.OnlineStats
	require.NoError(t, json.Unmarshal([]byte(run("online", "support", "-o", "json")), &got))
	require.Len(t, got, 1)
	require.Equal(t, 120, got[0].N)

	require.Contains(t, run("online", "none"), "No promotion of this workload has online samples.")
}
