// Package cli holds the `flywheel jobs` and `flywheel workloads` commands:
// a command-line client of the REST API (create, list, get, cancel, delete,
// items, compare and a live watch; the workloads and a workload's history).
package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/client"
	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// Defaults of the jobs commands.
const (
	// WatchIntervalDefault is how often `jobs watch` polls the server.
	WatchIntervalDefault = time.Second
	// WatchMaxFailures is how many polls in a row may fail before `jobs
	// watch` gives up.
	WatchMaxFailures = 5
	// widthDefault is the line width when the terminal's is unknown.
	widthDefault = 100
)

// Options is what the jobs commands need from the program around them.
type Options struct {
	// ServerURL returns the base URL of the flywheel server; it is called
	// when a command runs, after flags are parsed.
	ServerURL func() string
	// Token returns the API token sent as "Authorization: Bearer"; it is
	// called when a command runs (nil or "": none).
	Token func() string
	// Stdout receives results, Stderr messages.
	Stdout io.Writer
	Stderr io.Writer
	// HTTPClient is used for every call (nil: a client with a 30 s timeout).
	HTTPClient *http.Client
	// IsTerminal reports whether w is a terminal (nil: checks *os.File).
	// `jobs watch` redraws in place on a terminal and prints plain lines
	// otherwise.
	IsTerminal func(w io.Writer) bool
	// Width returns the terminal's width for w (nil: asks the terminal).
	Width func(w io.Writer) int
	// Now is the clock (nil: time.Now).
	Now flywheel.Clock
}

func (o Options) withDefaults() Options {
	if o.ServerURL == nil {
		o.ServerURL = func() string { return "http://127.0.0.1:8000" }
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	if o.IsTerminal == nil {
		o.IsTerminal = func(w io.Writer) bool {
			f, ok := w.(*os.File)
			return ok && term.IsTerminal(int(f.Fd()))
		}
	}
	if o.Width == nil {
		o.Width = func(w io.Writer) int {
			if f, ok := w.(*os.File); ok {
				if width, _, err := term.GetSize(int(f.Fd())); err == nil && width > 0 {
					return width
				}
			}
			return widthDefault
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// jobsCmd carries the options to every subcommand.
type jobsCmd struct {
	opts Options
}

// NewJobsCommand returns the `jobs` command with its subcommands create,
// list, get, cancel, delete, watch and items.
func NewJobsCommand(opts Options) *cobra.Command {
	j := &jobsCmd{opts: opts.withDefaults()}
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "Create, inspect, watch, cancel and delete flywheel jobs through the REST API",
	}
	cmd.AddCommand(j.createCommand(), j.listCommand(), j.getCommand(), j.cancelCommand(),
		j.deleteCommand(), j.watchCommand(), j.itemsCommand(), j.manifestCommand(), j.promoteCommand())
	cmd.AddCommand(j.compareCommand())
	return cmd
}

func (j *jobsCmd) client() (*client.Client, error) {
	c, err := client.New(j.opts.ServerURL(), j.opts.HTTPClient)
	if err != nil || j.opts.Token == nil {
		return c, err
	}
	return c.WithToken(j.opts.Token()), nil
}

func commandContext(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

// output is the -o flag.
type output string

const (
	outputTable output = "table"
	outputJSON  output = "json"
)

func (o *output) String() string { return string(*o) }
func (o *output) Type() string   { return "table|json" }
func (o *output) Set(s string) error {
	switch output(s) {
	case outputTable, outputJSON:
		*o = output(s)
		return nil
	}
	return fmt.Errorf("must be table or json, not %q", s)
}

func addOutputFlag(cmd *cobra.Command, o *output) {
	*o = outputTable
	cmd.Flags().VarP(o, "output", "o", "output format: table or json")
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

func (j *jobsCmd) createCommand() *cobra.Command {
	var (
		req          client.CreateJobRequest
		out          output
		fromManifest string
		split        struct {
			evalSize, minTotal, limit int
			valRatio                  float64
			seed                      int64
			parseArgs                 bool
		}
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Start a flywheel run for a workload and client",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			o := &flywheel.DataSplitOverride{}
			set := false
			if f.Changed("eval-size") {
				o.EvalSize, set = &split.evalSize, true
			}
			if f.Changed("val-ratio") {
				o.ValRatio, set = &split.valRatio, true
			}
			if f.Changed("min-total-records") {
				o.MinTotalRecords, set = &split.minTotal, true
			}
			if f.Changed("limit") {
				o.Limit, set = &split.limit, true
			}
			if f.Changed("random-seed") {
				o.RandomSeed, set = &split.seed, true
			}
			if f.Changed("parse-function-arguments") {
				o.ParseFunctionArguments, set = &split.parseArgs, true
			}
			if set {
				req.DataSplitConfig = o
			}
			if fromManifest != "" {
				if set {
					return fmt.Errorf("--from-manifest takes the manifest's data split settings: drop the data_split_config flags")
				}
				m, err := readManifest(fromManifest)
				if err != nil {
					return err
				}
				req.Manifest = m
			} else {
				var missing []string
				for _, name := range []string{"client-id", "workload-id"} {
					if !f.Changed(name) {
						missing = append(missing, `"`+name+`"`)
					}
				}
				if len(missing) > 0 {
					return fmt.Errorf("required flag(s) %s not set (or --from-manifest FILE)", strings.Join(missing, ", "))
				}
			}
			c, err := j.client()
			if err != nil {
				return err
			}
			resp, err := c.CreateJob(commandContext(cmd), req)
			if err != nil {
				return fmt.Errorf("create job: %w", err)
			}
			if out == outputJSON {
				return writeJSON(j.opts.Stdout, resp)
			}
			_, err = fmt.Fprintf(j.opts.Stdout, "Created job %s (%s): %s\n", resp.ID, resp.Status, resp.Message)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.WorkloadID, "workload-id", "", "workload whose logged traffic is used (required unless --from-manifest)")
	f.StringVar(&req.ClientID, "client-id", "", "client whose logged traffic is used (required unless --from-manifest)")
	f.StringVar(&fromManifest, "from-manifest", "", "build exactly the datasets of this manifest (from `jobs manifest ID`), with its settings")
	f.StringVar(&req.IdempotencyKey, "idempotency-key", "", "repeat-safe key: the same key returns the same job")
	f.IntVar(&split.evalSize, "eval-size", 0, "data_split_config.eval_size")
	f.Float64Var(&split.valRatio, "val-ratio", 0, "data_split_config.val_ratio")
	f.IntVar(&split.minTotal, "min-total-records", 0, "data_split_config.min_total_records")
	f.IntVar(&split.limit, "limit", 0, "data_split_config.limit")
	f.Int64Var(&split.seed, "random-seed", 0, "data_split_config.random_seed")
	f.BoolVar(&split.parseArgs, "parse-function-arguments", true, "data_split_config.parse_function_arguments")
	addOutputFlag(cmd, &out)
	return cmd
}

func (j *jobsCmd) listCommand() *cobra.Command {
	var (
		opts client.ListOptions
		all  bool
		out  output
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List jobs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := j.client()
			if err != nil {
				return err
			}
			ctx := commandContext(cmd)
			var jobs []api.JobListItem
			var next *string
			for {
				page, err := c.ListJobs(ctx, opts)
				if err != nil {
					return fmt.Errorf("list jobs: %w", err)
				}
				jobs = append(jobs, page.Jobs...)
				next = page.NextCursor
				if !all || next == nil {
					break
				}
				opts.Cursor = *next
			}
			if out == outputJSON {
				return writeJSON(j.opts.Stdout, api.JobsListResponse{Jobs: jobs, NextCursor: next})
			}
			if err := writeJobTable(j.opts.Stdout, jobs, j.opts.Now()); err != nil {
				return err
			}
			if next != nil {
				fmt.Fprintf(j.opts.Stderr, "More jobs: --cursor %s (or --all)\n", *next)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.WorkloadID, "workload-id", "", "only jobs of this workload")
	f.StringVar(&opts.ClientID, "client-id", "", "only jobs of this client")
	f.StringVar(&opts.Status, "status", "", "only jobs in this status (pending, running, completed, failed, cancelled)")
	f.IntVar(&opts.Limit, "limit", 0, "page size (the server's default when 0)")
	f.StringVar(&opts.Cursor, "cursor", "", "start after this cursor (from a previous page)")
	f.BoolVar(&all, "all", false, "follow cursors and list every matching job")
	addOutputFlag(cmd, &out)
	return cmd
}

func (j *jobsCmd) getCommand() *cobra.Command {
	var out output
	cmd := &cobra.Command{
		Use:   "get ID",
		Short: "Show a job: candidates, stages, evaluations and scores",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := j.client()
			if err != nil {
				return err
			}
			d, err := c.GetJob(commandContext(cmd), args[0])
			if err != nil {
				return fmt.Errorf("get job %s: %w", args[0], err)
			}
			if out == outputJSON {
				return writeJSON(j.opts.Stdout, d)
			}
			return writeDetail(j.opts.Stdout, d, j.opts.Now())
		},
	}
	addOutputFlag(cmd, &out)
	return cmd
}

func (j *jobsCmd) cancelCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a running job and release its resources",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := j.client()
			if err != nil {
				return err
			}
			resp, err := c.CancelJob(commandContext(cmd), args[0])
			if err != nil {
				return fmt.Errorf("cancel job %s: %w", args[0], err)
			}
			_, err = fmt.Fprintf(j.opts.Stdout, "%s: %s\n", resp.ID, resp.Message)
			return err
		},
	}
}

func (j *jobsCmd) deleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a finished job and its remote resources",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := j.client()
			if err != nil {
				return err
			}
			resp, err := c.DeleteJob(commandContext(cmd), args[0])
			if err != nil {
				return fmt.Errorf("delete job %s: %w", args[0], err)
			}
			_, err = fmt.Fprintf(j.opts.Stdout, "%s: %s\n", resp.ID, resp.Message)
			return err
		},
	}
}

func (j *jobsCmd) itemsCommand() *cobra.Command {
	var (
		opts client.ItemOptions
		out  output
	)
	cmd := &cobra.Command{
		Use:   "items EVALUATION_ID",
		Short: "List the per-item results of an evaluation",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := j.client()
			if err != nil {
				return err
			}
			page, err := c.ListItems(commandContext(cmd), args[0], opts)
			if err != nil {
				return fmt.Errorf("list items of evaluation %s: %w", args[0], err)
			}
			if out == outputJSON {
				return writeJSON(j.opts.Stdout, page)
			}
			if err := writeItemTable(j.opts.Stdout, page); err != nil {
				return err
			}
			if page.NextOffset != nil {
				fmt.Fprintf(j.opts.Stderr, "Showing %d of %d; next page: --offset %d\n", len(page.Items), page.Total, *page.NextOffset)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Tool, "tool", "", "only items whose expected tool is this one")
	f.StringVar(&opts.ErrorClass, "error-class", "", "only items with this error class")
	f.BoolVar(&opts.Divergent, "divergent", false, "only items whose answer differed from production's")
	f.IntVar(&opts.Limit, "limit", 0, "page size (the server's default when 0)")
	f.IntVar(&opts.Offset, "offset", 0, "skip this many items")
	addOutputFlag(cmd, &out)
	return cmd
}
