package cli_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/cli"
	"github.com/flywheel-go/flywheel/internal/history"
	"github.com/flywheel-go/flywheel/internal/history/historytest"
	"github.com/flywheel-go/flywheel/internal/server"
	"github.com/flywheel-go/flywheel/internal/server/servertest"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

func TestCompareAndHistory(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t, store.SQLite)
	fx := historytest.Seed(t, s, start)
	srv := httptest.NewServer(server.New(server.Options{Jobs: &servertest.JobService{}, History: &history.Service{Store: s},
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}))
	t.Cleanup(srv.Close)
	run := func(t *testing.T, newCmd func(cli.Options) *cobra.Command, args ...string) (string, error) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		cmd := newCmd(cli.Options{ServerURL: func() string { return srv.URL }, Stdout: &stdout, Stderr: &stderr})
		cmd.SetArgs(args)
		cmd.SetOut(&stderr)
		cmd.SetErr(&stderr)
		cmd.SilenceUsage = true
		err := cmd.ExecuteContext(t.Context())
		return stdout.String(), err
	}
	// fields returns the columns of the line of out whose first columns
	// are lead.
	fields := func(t *testing.T, out string, lead ...string) []string {
		t.Helper()
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) >= len(lead) && slices.Equal(f[:len(lead)], lead) {
				return f
			}
		}
		t.Fatalf("no line starts with %q in\n%s", lead, out)
		return nil
	}

	t.Run("CompareTable", func(t *testing.T) {
		t.Parallel()
		out, err := run(t, cli.NewJobsCommand, "compare", fx.A, fx.B)
		require.NoError(t, err)
		require.Contains(t, out, "Recommendation: no candidate → m1 (customized-eval)")
		require.Contains(t, out, "Shared evaluation items: 30 (matched by answer), 1 ambiguous left out")
		row := fields(t, out, "m1", "base-eval")
		require.Equal(t, []string{"m1", "base-eval", historytest.Metric,
			"0.500", "[0.357,", "0.643]", "n=42", "0.857", "[0.738,", "0.952]", "n=42",
			"+0.357", "+0.667", "[+0.500,", "+0.833]", "30", "b", "better"}, row)
		require.Equal(t, []string{"evaluation", "42", "42", "+0"}, fields(t, out, "evaluation"))
		require.Equal(t, []string{"lookup", "42", "42"}, fields(t, out, "lookup"))

		out, err = run(t, cli.NewJobsCommand, "compare", fx.A, fx.C)
		require.NoError(t, err)
		require.Contains(t, out, "Note: The runs share no evaluation item")
		require.Contains(t, fields(t, out, "m1", "base-eval"), "shared")

		out, err = run(t, cli.NewJobsCommand, "compare", fx.A, fx.B, "-o", "json")
		require.NoError(t, err)
		var c api.JobCompareResponse
		require.NoError(t, json.Unmarshal([]byte(out), &c))
		require.Equal(t, 30, c.Scores[0].Paired.N)

		_, err = run(t, cli.NewJobsCommand, "compare", fx.A, "nothex")
		require.ErrorContains(t, err, "b")
	})

	t.Run("HistoryTable", func(t *testing.T) {
		t.Parallel()
		out, err := run(t, cli.NewWorkloadsCommand, "history", historytest.Workload, "--client-id", historytest.Client)
		require.NoError(t, err)
		require.Contains(t, out, "Workload history-w (client acme), "+historytest.Metric+": 3 finished runs, oldest first")
		header := fields(t, out, "RUN")
		require.Equal(t, []string{"RUN", "FINISHED", "STATUS", "RECORDS", "EVAL", "RECOMMENDED", "m1", "base-eval", "m1", "customized-eval"}, header)
		rowB := fields(t, out, fx.B)
		require.Equal(t, []string{"completed", "0", "42", "m1", "(customized-eval)", "0.857", "[0.738,", "0.952]", "n=42", "1.000"}, rowB[3:13])
		rowA := fields(t, out, fx.A)
		require.Equal(t, "-", rowA[len(rowA)-1], "A has no customized evaluation")

		out, err = run(t, cli.NewWorkloadsCommand, "list")
		require.NoError(t, err)
		require.Equal(t, []string{historytest.Workload, historytest.Client, "3", "3", fx.C, "completed"}, fields(t, out, historytest.Workload)[:6])

		_, err = run(t, cli.NewWorkloadsCommand, "history", historytest.Workload, "--metric", "nope")
		require.ErrorContains(t, err, "--metric")
		_, err = run(t, cli.NewWorkloadsCommand, "history", "nope")
		require.ErrorContains(t, err, "no runs")
	})
}
