package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// onlineCommand is `workloads online WORKLOAD`.
func (j *jobsCmd) onlineCommand() *cobra.Command {
	var (
		clientID string
		out      output
	)
	cmd := &cobra.Command{
		Use:   "online WORKLOAD",
		Short: "Show the online agreement of a workload's promoted candidates with production: per metric the mean, 95% interval and n over the rolling window",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := j.client()
			if err != nil {
				return err
			}
			resp, err := c.WorkloadOnline(commandContext(cmd), args[0], clientID)
			if err != nil {
				return fmt.Errorf("online agreement of workload %s: %w", args[0], err)
			}
			if out == outputJSON {
				return writeJSON(j.opts.Stdout, resp)
			}
			return writeOnline(j.opts.Stdout, resp)
		},
	}
	cmd.Flags().StringVar(&clientID, "client-id", "", "only the promotions of this client")
	addOutputFlag(cmd, &out)
	return cmd
}

// writeOnline prints one table row per promotion and metric, the main
// metric first.
func writeOnline(w io.Writer, stats []api.OnlineStats) error {
	if len(stats) == 0 {
		_, err := fmt.Fprintln(w, "No promotion of this workload has online samples.")
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "PROMOTION\tCLIENT\tMODEL\tSTATE\tN\tERRORS\tMETRIC\tMEAN [95% CI]\tCANDIDATE P50/P90 MS\tPRODUCTION P50/P90 MS\tWINDOW END")
	for _, st := range stats {
		state := "ended"
		if st.Active {
			state = "active"
		}
		metrics := make([]string, 0, len(st.Scores))
		for m := range st.Scores {
			metrics = append(metrics, m)
		}
		slices.SortFunc(metrics, func(a, b string) int {
			if ra, rb := onlineRank(a), onlineRank(b); ra != rb {
				return ra - rb
			}
			return strings.Compare(a, b)
		})
		if len(metrics) == 0 {
			metrics = append(metrics, "")
		}
		end := st.WindowEnd
		for _, m := range metrics {
			detail := "-"
			if d, ok := st.Scores[m]; ok {
				detail = formatDetail(&d)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", st.PromotionID, st.ClientID, st.Model, state, st.N, st.Errors,
				orDash(m), detail, latency(st.CandidateLatencyMS), latency(st.ProductionLatencyMS), formatTime(&end))
		}
	}
	return flush(tw)
}

// onlineRank puts the metric the rollback watches by default first.
func onlineRank(metric string) int {
	if metric == flywheel.ScoreFunctionNameAndArgs {
		return 0
	}
	return 1
}

// latency is "p50/p90", or "-" without a value.
func latency(p flywheel.Percentiles) string {
	if p.N == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f/%.0f", p.P50, p.P90)
}
