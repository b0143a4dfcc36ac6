package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/flywheel-go/flywheel/api"
)

// NewSchedulesCommand returns the `schedules` command with its subcommands
// create, list, get and delete.
func NewSchedulesCommand(opts Options) *cobra.Command {
	j := &jobsCmd{opts: opts.withDefaults()}
	cmd := &cobra.Command{
		Use:   "schedules",
		Short: "Create, list, inspect and delete schedules that start runs by themselves (cron, new records, online agreement)",
	}
	cmd.AddCommand(j.scheduleCreateCommand(), j.scheduleListCommand(), j.scheduleGetCommand(), j.scheduleDeleteCommand())
	return cmd
}

func (j *jobsCmd) scheduleCreateCommand() *cobra.Command {
	var (
		req      api.ScheduleRequest
		minNew   int
		below    float64
		disabled bool
		out      output
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a schedule for a workload and client (at least one of --cron, --min-new-records, --agreement-below)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			if f.Changed("min-new-records") {
				req.MinNewRecords = &minNew
			}
			if f.Changed("agreement-below") {
				req.AgreementBelow = &below
			}
			if disabled {
				enabled := false
				req.Enabled = &enabled
			}
			c, err := j.client()
			if err != nil {
				return err
			}
			sc, err := c.CreateSchedule(commandContext(cmd), req)
			if err != nil {
				return fmt.Errorf("create schedule: %w", err)
			}
			if out == outputJSON {
				return writeJSON(j.opts.Stdout, sc)
			}
			_, err = fmt.Fprintf(j.opts.Stdout, "Created schedule %s (%s); next cron time: %s\n", sc.ID, triggers(sc), formatTime(sc.NextFireAt))
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.WorkloadID, "workload-id", "", "workload whose runs the schedule starts (required)")
	f.StringVar(&req.ClientID, "client-id", "", "client whose runs the schedule starts (required)")
	f.StringVar(&req.Cron, "cron", "", `5-field cron expression in UTC ("0 * * * *": hourly), or @daily, @every 6h`)
	f.IntVar(&minNew, "min-new-records", 0, "start a run once this many records were logged since the newest run was created")
	f.Float64Var(&below, "agreement-below", 0, "start a run when the upper bound of the online agreement's interval is below this (0-1)")
	f.StringVar(&req.AgreementMetric, "agreement-metric", "", "online metric --agreement-below reads (default function_name_and_args_accuracy)")
	f.BoolVar(&disabled, "disabled", false, "create the schedule disabled")
	_ = cmd.MarkFlagRequired("workload-id")
	_ = cmd.MarkFlagRequired("client-id")
	addOutputFlag(cmd, &out)
	return cmd
}

func (j *jobsCmd) scheduleListCommand() *cobra.Command {
	var out output
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List schedules, newest first, with their next cron time and last run",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := j.client()
			if err != nil {
				return err
			}
			list, err := c.ListSchedules(commandContext(cmd))
			if err != nil {
				return fmt.Errorf("list schedules: %w", err)
			}
			if out == outputJSON {
				return writeJSON(j.opts.Stdout, list)
			}
			return writeScheduleTable(j.opts.Stdout, list.Schedules)
		},
	}
	addOutputFlag(cmd, &out)
	return cmd
}

func (j *jobsCmd) scheduleGetCommand() *cobra.Command {
	var out output
	cmd := &cobra.Command{
		Use:   "get ID",
		Short: "Show a schedule and its recent fires and skips",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := j.client()
			if err != nil {
				return err
			}
			d, err := c.GetSchedule(commandContext(cmd), args[0])
			if err != nil {
				return fmt.Errorf("get schedule %s: %w", args[0], err)
			}
			if out == outputJSON {
				return writeJSON(j.opts.Stdout, d)
			}
			if err := writeScheduleTable(j.opts.Stdout, []api.Schedule{d.Schedule}); err != nil {
				return err
			}
			if len(d.Events) == 0 {
				_, err = fmt.Fprintln(j.opts.Stdout, "\nNo trigger has been due yet.")
				return err
			}
			fmt.Fprintln(j.opts.Stdout)
			tw := newTable(j.opts.Stdout)
			fmt.Fprintln(tw, "AT\tOUTCOME\tRUN\tREASON")
			for _, e := range d.Events {
				at := e.At
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", formatTime(&at), e.Outcome, orDash(deref(e.RunID)), truncate(e.Reason, 120))
			}
			if err := tw.Flush(); err != nil {
				return fmt.Errorf("write table: %w", err)
			}
			return nil
		},
	}
	addOutputFlag(cmd, &out)
	return cmd
}

func (j *jobsCmd) scheduleDeleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a schedule (the runs it started are kept)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := j.client()
			if err != nil {
				return err
			}
			resp, err := c.DeleteSchedule(commandContext(cmd), args[0])
			if err != nil {
				return fmt.Errorf("delete schedule %s: %w", args[0], err)
			}
			_, err = fmt.Fprintf(j.opts.Stdout, "%s: %s\n", resp.ID, resp.Message)
			return err
		},
	}
}

// triggers describes a schedule's triggers in one line.
func triggers(sc api.Schedule) string {
	var parts []string
	if sc.Cron != "" {
		parts = append(parts, "cron "+sc.Cron)
	}
	if sc.MinNewRecords != nil {
		parts = append(parts, strconv.Itoa(*sc.MinNewRecords)+" new records")
	}
	if sc.AgreementBelow != nil {
		p := fmt.Sprintf("%s < %g", sc.AgreementMetric, *sc.AgreementBelow)
		if sc.AgreementStatus != "" {
			p += " (" + sc.AgreementStatus + ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}

func writeScheduleTable(w io.Writer, scheds []api.Schedule) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "ID\tWORKLOAD\tCLIENT\tENABLED\tTRIGGERS\tNEXT CRON TIME\tLAST FIRED\tLAST RUN")
	for _, sc := range scheds {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%s\t%s\t%s\t%s\n", sc.ID, sc.WorkloadID, sc.ClientID, sc.Enabled, triggers(sc),
			formatTime(sc.NextFireAt), formatTime(sc.LastFiredAt), orDash(deref(sc.LastRunID)))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}
