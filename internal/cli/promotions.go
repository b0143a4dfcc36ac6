package cli

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/flywheel-go/flywheel/api"
)

// NewPromotionsCommand returns the `promotions` command with its
// subcommands list, get and rollback.
func NewPromotionsCommand(opts Options) *cobra.Command {
	j := &jobsCmd{opts: opts.withDefaults()}
	cmd := &cobra.Command{
		Use:   "promotions",
		Short: "List promoted candidates and roll them back (production answers again)",
	}
	cmd.AddCommand(j.promotionListCommand(), j.promotionGetCommand(), j.promotionRollbackCommand())
	return cmd
}

func (j *jobsCmd) promoteCommand() *cobra.Command {
	var (
		req api.PromoteRequest
		out output
	)
	cmd := &cobra.Command{
		Use:   "promote ID",
		Short: "Make a candidate of a completed job answer its workload's traffic through the gateway (shadow, canary or full)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := j.client()
			if err != nil {
				return err
			}
			p, err := c.Promote(commandContext(cmd), args[0], req)
			if err != nil {
				return fmt.Errorf("promote job %s: %w", args[0], err)
			}
			if out == outputJSON {
				return writeJSON(j.opts.Stdout, p)
			}
			return writePromotions(j.opts.Stdout, []api.Promotion{p})
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Candidate, "candidate", "", "the candidate's model name in the job (required)")
	f.StringVar(&req.Variant, "variant", "base", "base, icl (with the job's few-shot examples) or customized")
	f.StringVar(&req.Mode, "mode", "shadow", "shadow (production answers, the candidate is scored), canary or full")
	f.Float64Var(&req.CanaryPercent, "canary-percent", 0, "canary mode: the share of conversations the candidate answers (0 < p <= 100)")
	_ = cmd.MarkFlagRequired("candidate")
	addOutputFlag(cmd, &out)
	return cmd
}

func (j *jobsCmd) promotionListCommand() *cobra.Command {
	var (
		workload, clientID string
		out                output
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List promotions, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := j.client()
			if err != nil {
				return err
			}
			resp, err := c.ListPromotions(commandContext(cmd), workload, clientID)
			if err != nil {
				return fmt.Errorf("list promotions: %w", err)
			}
			if out == outputJSON {
				return writeJSON(j.opts.Stdout, resp)
			}
			return writePromotions(j.opts.Stdout, resp.Promotions)
		},
	}
	cmd.Flags().StringVar(&workload, "workload-id", "", "only this workload's promotions")
	cmd.Flags().StringVar(&clientID, "client-id", "", "only this client's promotions")
	addOutputFlag(cmd, &out)
	return cmd
}

func (j *jobsCmd) promotionGetCommand() *cobra.Command {
	var out output
	cmd := &cobra.Command{
		Use:   "get ID",
		Short: "Show one promotion",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := j.client()
			if err != nil {
				return err
			}
			p, err := c.GetPromotion(commandContext(cmd), args[0])
			if err != nil {
				return fmt.Errorf("get promotion %s: %w", args[0], err)
			}
			if out == outputJSON {
				return writeJSON(j.opts.Stdout, p)
			}
			return writePromotions(j.opts.Stdout, []api.Promotion{p})
		},
	}
	addOutputFlag(cmd, &out)
	return cmd
}

func (j *jobsCmd) promotionRollbackCommand() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "rollback ID",
		Short: "End a promotion: production answers the workload's next request",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := j.client()
			if err != nil {
				return err
			}
			p, err := c.RollbackPromotion(commandContext(cmd), args[0], reason)
			if err != nil {
				return fmt.Errorf("roll back promotion %s: %w", args[0], err)
			}
			_, err = fmt.Fprintf(j.opts.Stdout, "%s: %s (%s)\n", p.ID, p.Status, p.Reason)
			return err
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (kept with the promotion and in the audit log)")
	return cmd
}

// writePromotions prints promotions as a table.
func writePromotions(w io.Writer, ps []api.Promotion) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tWORKLOAD\tCLIENT\tJOB\tCANDIDATE\tVARIANT\tMODE\tSTATUS\tENDPOINT\tCREATED")
	for _, p := range ps {
		mode := p.Mode
		if mode == "canary" {
			mode = fmt.Sprintf("canary %g%%", p.CanaryPercent)
		}
		endpoint := p.Endpoint
		if endpoint == "" && p.Status == "active" {
			endpoint = "(starting: production answers)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.WorkloadID, p.ClientID, p.JobID, p.Candidate, p.Variant,
			mode, p.Status, endpoint, p.CreatedAt.Format("2006-01-02 15:04:05"))
	}
	return tw.Flush()
}
