package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/flywheel-go/flywheel/internal/app"
	"github.com/flywheel-go/flywheel/internal/client"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/ingest"
	"github.com/flywheel-go/flywheel/internal/store"
)

func newLoadCommand(g *globals) *cobra.Command {
	var (
		workloadID, clientID, file string
		asJSON                     bool
	)
	cmd := &cobra.Command{
		Use:   "load --file FILE [--workload-id ID --client-id ID]",
		Short: "Load production logs (JSONL: the blueprint's log format or {messages, tools})",
		Long: `Load production logs into the log store. Each line is one record, either in the
blueprint's log format ({workload_id, client_id, timestamp, request, response}) or in
the conversation format ({"messages": [...], "tools": [...]}). --workload-id and
--client-id replace the ids of every record; without them each record must carry
its own. Records already stored (same content) are skipped. A bad line is reported
with its line number and reason, and every good line is kept.

Without --server it writes into the database directly: give it the same --db and
--data-dir (or config) as 'flywheel serve'. With --server URL it sends the records
to that server's POST /api/logs instead (token: --token or FLYWHEEL_TOKEN, scope
ingest or write).`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			opts := ingest.Options{WorkloadID: workloadID, ClientID: clientID}
			if cmd.Flags().Changed("server") {
				// The server parses, redacts and stores what it receives.
				c, err := client.New(g.server, nil)
				if err != nil {
					return err
				}
				return runLoad(ctx, g, &apiIngester{c: c.WithToken(g.apiToken())}, file, opts, asJSON)
			}
			s, err := store.Open(ctx, cfg.DatabaseURL, store.Options{})
			if err != nil {
				return err
			}
			defer s.Close()
			if _, err := s.Migrate(ctx); err != nil {
				return err
			}
			if opts.Redactor, err = app.NewRedactor(cfg, nil); err != nil {
				return err
			}
			return runLoad(ctx, g, s, file, opts, asJSON)
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "JSONL file to load (- for standard input)")
	cmd.Flags().StringVar(&workloadID, "workload-id", "", "workload id for every record")
	cmd.Flags().StringVar(&clientID, "client-id", "", "client id for every record")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the summary as JSON")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func runLoad(ctx context.Context, g *globals, s flywheel.LogIngester, file string, opts ingest.Options, asJSON bool) error {
	var (
		r    io.Reader = os.Stdin
		size int64     = -1
	)
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil {
			size = st.Size()
		}
		r = f
	}
	var bar *progressbar.ProgressBar
	if out, ok := g.stderr.(*os.File); ok && term.IsTerminal(int(out.Fd())) && size > 0 {
		bar = progressbar.NewOptions64(size, progressbar.OptionSetWriter(out), progressbar.OptionShowBytes(true),
			progressbar.OptionSetDescription("loading"), progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish())
	}
	start := time.Now()
	sum, err := ingest.Load(ctx, r, opts, s, func(n int64, _ ingest.Summary) {
		if bar != nil {
			_ = bar.Set64(n)
		}
	})
	if bar != nil {
		_ = bar.Finish()
	}
	elapsed := time.Since(start)
	// A load through a server is audited there; a direct one here.
	if st, direct := s.(*store.Store); direct && sum.Lines > 0 {
		detail := map[string]any{"lines": sum.Lines, "inserted": sum.Loaded, "duplicates": sum.Duplicates, "rejected": sum.Rejected}
		if len(sum.Redacted) > 0 {
			detail["redacted"] = sum.Redacted
		}
		if auditErr := cliAudit(context.WithoutCancel(ctx), st, flywheel.AuditLogsIngested, "flywheel load", detail); auditErr != nil {
			fmt.Fprintf(g.stderr, "warning: %v\n", auditErr)
		}
	}
	if asJSON {
		if encErr := g.printJSON(sum); encErr != nil {
			return encErr
		}
	} else {
		fmt.Fprintf(g.stdout, "Loaded %d records, %d duplicates skipped, %d rejected (%d lines, %.1fs, %.0f records/s)\n",
			sum.Loaded, sum.Duplicates, sum.Rejected, sum.Lines, elapsed.Seconds(), float64(sum.Loaded+sum.Duplicates)/max(elapsed.Seconds(), 1e-9))
		if len(sum.Redacted) > 0 {
			fmt.Fprintf(g.stdout, "Redacted %s\n", formatCounts(sum.Redacted))
		}
		for _, rej := range sum.Rejections {
			fmt.Fprintf(g.stdout, "  rejected %s\n", rej.Error())
		}
		if shown := len(sum.Rejections); shown < sum.Rejected {
			fmt.Fprintf(g.stdout, "  … and %d more rejected lines\n", sum.Rejected-shown)
		}
	}
	if err != nil {
		return fmt.Errorf("load stopped after %d records: %w", sum.Loaded, err)
	}
	return nil
}
