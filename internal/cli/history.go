package cli

import (
	"fmt"
	"io"
	"slices"
	"sort"

	"github.com/spf13/cobra"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/client"
	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// compareCommand is `jobs compare A B`.
func (j *jobsCmd) compareCommand() *cobra.Command {
	var out output
	cmd := &cobra.Command{
		Use:   "compare A B",
		Short: "Set two jobs side by side: data, scores with the difference B − A, a paired test on shared items",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := j.client()
			if err != nil {
				return err
			}
			resp, err := c.CompareJobs(commandContext(cmd), args[0], args[1])
			if err != nil {
				return fmt.Errorf("compare jobs %s and %s: %w", args[0], args[1], err)
			}
			if out == outputJSON {
				return writeJSON(j.opts.Stdout, resp)
			}
			return writeComparison(j.opts.Stdout, resp)
		},
	}
	addOutputFlag(cmd, &out)
	return cmd
}

// NewWorkloadsCommand returns the `workloads` command with its
// subcommands list and history.
func NewWorkloadsCommand(opts Options) *cobra.Command {
	j := &jobsCmd{opts: opts.withDefaults()}
	cmd := &cobra.Command{
		Use:   "workloads",
		Short: "List workloads and show a workload's history of runs through the REST API",
	}
	cmd.AddCommand(j.workloadsListCommand(), j.historyCommand(), j.onlineCommand())
	return cmd
}

func (j *jobsCmd) workloadsListCommand() *cobra.Command {
	var out output
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List every workload and client with runs, the newest run first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := j.client()
			if err != nil {
				return err
			}
			resp, err := c.ListWorkloads(commandContext(cmd))
			if err != nil {
				return fmt.Errorf("list workloads: %w", err)
			}
			if out == outputJSON {
				return writeJSON(j.opts.Stdout, resp)
			}
			tw := newTable(j.opts.Stdout)
			fmt.Fprintln(tw, "WORKLOAD\tCLIENT\tRUNS\tFINISHED\tLAST RUN\tSTATUS\tSTARTED")
			for _, w := range resp.Workloads {
				started := w.LastRun.StartedAt
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\n", w.WorkloadID, orDash(w.ClientID), w.Runs, w.FinishedRuns,
					w.LastRun.ID, w.LastRun.Status, formatTime(&started))
			}
			return flush(tw)
		},
	}
	addOutputFlag(cmd, &out)
	return cmd
}

func (j *jobsCmd) historyCommand() *cobra.Command {
	var (
		opts   client.HistoryOptions
		metric string
		out    output
	)
	cmd := &cobra.Command{
		Use:   "history WORKLOAD",
		Short: "Show a workload's finished runs, oldest first, with every candidate's score per evaluation type",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := j.client()
			if err != nil {
				return err
			}
			resp, err := c.WorkloadHistory(commandContext(cmd), args[0], opts)
			if err != nil {
				return fmt.Errorf("history of workload %s: %w", args[0], err)
			}
			if out == outputJSON {
				return writeJSON(j.opts.Stdout, resp)
			}
			if metric != "" && !slices.Contains(resp.Metrics, metric) {
				return fmt.Errorf("--metric: the runs have no score %q (they have: %v)", metric, resp.Metrics)
			}
			if metric == "" && len(resp.Metrics) > 0 {
				metric = resp.Metrics[0]
			}
			return writeHistory(j.opts.Stdout, resp, metric)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.ClientID, "client-id", "", "only the runs of this client")
	f.IntVar(&opts.Limit, "limit", 0, "the newest N finished runs (the server's default when 0)")
	f.StringVar(&metric, "metric", "", "the score shown (default: the one that decided most recommendations)")
	addOutputFlag(cmd, &out)
	return cmd
}

func flush(tw interface{ Flush() error }) error {
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// formatDetail is "mean [low, high] n=N", or the mean alone without
// evidence.
func formatDetail(d *flywheel.ScoreDetail) string {
	if d == nil {
		return "-"
	}
	if d.N == 0 {
		return fmt.Sprintf("%.3f", d.Mean)
	}
	return fmt.Sprintf("%.3f [%.3f, %.3f] n=%d", d.Mean, d.CILow, d.CIHigh, d.N)
}

func formatRecommendation(r *flywheel.Recommendation) string {
	switch {
	case r == nil:
		return "-"
	case r.Candidate == "":
		return "none"
	case r.EvalType != "":
		return fmt.Sprintf("%s (%s)", r.Candidate, r.EvalType)
	}
	return r.Candidate
}

// historyColumn is one candidate under one evaluation type.
type historyColumn struct{ candidate, evalType string }

func writeHistory(w io.Writer, h api.WorkloadHistoryResponse, metric string) error {
	title := "Workload " + h.WorkloadID
	if h.ClientID != "" {
		title += " (client " + h.ClientID + ")"
	}
	if metric != "" {
		title += ", " + metric
	}
	fmt.Fprintf(w, "%s: %d finished runs, oldest first\n", title, len(h.Runs))
	var cols []historyColumn
	for _, r := range h.Runs {
		for _, e := range r.Evaluations {
			if c := (historyColumn{e.Candidate, e.EvalType}); !slices.Contains(cols, c) {
				cols = append(cols, c)
			}
		}
	}
	order := map[string]int{string(flywheel.EvalBase): 0, string(flywheel.EvalICL): 1, string(flywheel.EvalCustomized): 2}
	first := map[string]int{}
	for i, c := range cols {
		if _, ok := first[c.candidate]; !ok {
			first[c.candidate] = i
		}
	}
	sort.SliceStable(cols, func(a, b int) bool {
		if cols[a].candidate != cols[b].candidate {
			return first[cols[a].candidate] < first[cols[b].candidate]
		}
		return order[cols[a].evalType] < order[cols[b].evalType]
	})
	tw := newTable(w)
	fmt.Fprint(tw, "RUN\tFINISHED\tSTATUS\tRECORDS\tEVAL\tRECOMMENDED")
	for _, c := range cols {
		fmt.Fprintf(tw, "\t%s %s", c.candidate, c.evalType)
	}
	fmt.Fprintln(tw)
	for _, r := range h.Runs {
		eval := "-"
		if r.DataStats != nil {
			eval = fmt.Sprint(r.DataStats.Eval)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s", r.ID, formatTime(r.FinishedAt), r.Status, r.NumRecords, eval, formatRecommendation(r.Recommendation))
		for _, c := range cols {
			cell := "-"
			for _, e := range r.Evaluations {
				if e.Candidate == c.candidate && e.EvalType == c.evalType {
					if d, ok := e.Scores[metric]; ok {
						cell = formatDetail(&d)
					}
				}
			}
			fmt.Fprintf(tw, "\t%s", cell)
		}
		fmt.Fprintln(tw)
	}
	return flush(tw)
}

func writeComparison(w io.Writer, c api.JobCompareResponse) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "\tJOB\tSTATUS\tFINISHED\tWORKLOAD\tCLIENT\tRECOMMENDED")
	for _, side := range []struct {
		name string
		r    api.CompareRun
	}{{"A", c.A}, {"B", c.B}} {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", side.name, side.r.ID, side.r.Status, formatTime(side.r.FinishedAt),
			side.r.WorkloadID, side.r.ClientID, formatRecommendation(side.r.Recommendation))
	}
	if err := flush(tw); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nRecommendation: %s\n", c.RecommendationChange)
	fmt.Fprintf(w, "Shared evaluation items: %d (matched by %s)", c.SharedItems, c.PairedBy)
	if c.AmbiguousItems > 0 {
		fmt.Fprintf(w, ", %d ambiguous left out", c.AmbiguousItems)
	}
	fmt.Fprintln(w)
	for _, n := range c.Notes {
		fmt.Fprintf(w, "Note: %s\n", n)
	}

	fmt.Fprintln(w, "\nScores (difference and paired test: B − A)")
	tw = newTable(w)
	fmt.Fprintln(tw, "CANDIDATE\tEVAL\tMETRIC\tA\tB\tB−A\tPAIRED B−A [95% CI]\tN\tVERDICT")
	for _, s := range c.Scores {
		diff, paired, n, verdict := "-", "-", "-", "-"
		if s.Difference != nil {
			diff = fmt.Sprintf("%+.3f", *s.Difference)
		}
		if p := s.Paired; p != nil {
			paired = fmt.Sprintf("%+.3f [%+.3f, %+.3f]", p.Diff.Mean, p.Diff.CILow, p.Diff.CIHigh)
			n, verdict = fmt.Sprint(p.N), p.Verdict
		} else if s.SharedItems == 0 && s.A != nil && s.B != nil {
			verdict = "no shared items"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Candidate, s.EvalType, s.Metric, formatDetail(s.A), formatDetail(s.B),
			diff, paired, n, verdict)
	}
	if err := flush(tw); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nData")
	tw = newTable(w)
	fmt.Fprintln(tw, "COUNT\tA\tB\tB−A")
	sa, sb := c.A.DataStats, c.B.DataStats
	if sa == nil {
		sa = &flywheel.DataStats{}
	}
	if sb == nil {
		sb = &flywheel.DataStats{}
	}
	for _, row := range []struct {
		name string
		a, b int
	}{
		{"records used", c.A.NumRecords, c.B.NumRecords}, {"records read", sa.Total, sb.Total},
		{"selected", sa.Selected, sb.Selected}, {"evaluation", sa.Eval, sb.Eval}, {"training", sa.Train, sb.Train},
		{"validation", sa.Val, sb.Val},
	} {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%+d\n", row.name, row.a, row.b, row.b-row.a)
	}
	if err := flush(tw); err != nil {
		return err
	}
	var tools []string
	for t := range c.A.Tools {
		tools = append(tools, t)
	}
	for t := range c.B.Tools {
		if _, ok := c.A.Tools[t]; !ok {
			tools = append(tools, t)
		}
	}
	if len(tools) == 0 {
		return nil
	}
	sort.Strings(tools)
	fmt.Fprintln(w, "\nEvaluated items per tool")
	tw = newTable(w)
	fmt.Fprintln(tw, "TOOL\tA\tB")
	for _, t := range tools {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", t, c.A.Tools[t], c.B.Tools[t])
	}
	return flush(tw)
}
