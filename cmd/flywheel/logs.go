package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/flywheel-go/flywheel/internal/app"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/redact"
	"github.com/flywheel-go/flywheel/internal/store"
)

func newLogsCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "logs",
		Short: "Govern the stored production logs: delete them, redact them again",
	}
	cmd.AddCommand(newLogsDeleteCommand(g), newLogsRedactCommand(g))
	return cmd
}

func newLogsDeleteCommand(g *globals) *cobra.Command {
	var (
		workloadID, clientID, before string
		asJSON                       bool
	)
	cmd := &cobra.Command{
		Use:   "delete --workload-id W [--client-id C] [--before T]",
		Short: "Delete stored records of a workload (of one client, older than a time)",
		Long: `Delete the stored records of a workload, of one of its clients with --client-id, and
only those logged before --before (RFC 3339, such as 2025-01-31T00:00:00Z, or a
duration ago, such as 720h). Prints how many records were deleted; the deletion is
recorded in the audit log.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := flywheel.LogFilter{WorkloadID: workloadID, ClientID: clientID}
			if before != "" {
				t, err := parseBefore(before, time.Now())
				if err != nil {
					return err
				}
				f.Before = t
			}
			ctx := cmd.Context()
			s, err := openTokenStore(ctx, g)
			if err != nil {
				return err
			}
			defer s.Close()
			n, err := s.DeleteLogs(ctx, f)
			if err != nil {
				return err
			}
			detail := map[string]any{"deleted": n, "workload_id": f.WorkloadID}
			if f.ClientID != "" {
				detail["client_id"] = f.ClientID
			}
			if !f.Before.IsZero() {
				detail["before"] = f.Before.UTC().Format(time.RFC3339Nano)
			}
			if err := cliAudit(ctx, s, flywheel.AuditLogsDeleted, logsTarget(f.WorkloadID, f.ClientID), detail); err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(detail)
			}
			fmt.Fprintf(g.stdout, "Deleted %d records of workload %s", n, f.WorkloadID)
			if f.ClientID != "" {
				fmt.Fprintf(g.stdout, ", client %s", f.ClientID)
			}
			if !f.Before.IsZero() {
				fmt.Fprintf(g.stdout, ", logged before %s", f.Before.UTC().Format(time.RFC3339))
			}
			fmt.Fprintln(g.stdout)
			return nil
		},
	}
	cmd.Flags().StringVar(&workloadID, "workload-id", "", "workload whose records are deleted (required)")
	cmd.Flags().StringVar(&clientID, "client-id", "", "only this client's records")
	cmd.Flags().StringVar(&before, "before", "", "only records logged before this time (RFC 3339) or this long ago (720h)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	_ = cmd.MarkFlagRequired("workload-id")
	return cmd
}

func newLogsRedactCommand(g *globals) *cobra.Command {
	var (
		workloadID string
		asJSON     bool
	)
	cmd := &cobra.Command{
		Use:   "redact [--workload-id W]",
		Short: "Redact stored records with the configured detectors (logs.redaction)",
		Long: `Run the configured redaction (logs.redaction) over records already stored, of one
workload or of all of them. New records are redacted when they are ingested; this
is for records stored before redaction was on or before a detector was added. A
record whose redacted form is already stored is deleted as the duplicate it is.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			r, err := app.NewRedactor(cfg, nil)
			if err != nil {
				return err
			}
			if !r.Enabled() {
				return fmt.Errorf("redaction is off (logs.redaction): nothing to do")
			}
			ctx := cmd.Context()
			s, err := openTokenStore(ctx, g)
			if err != nil {
				return err
			}
			defer s.Close()
			res, err := redactStored(ctx, s, r, workloadID)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(res)
			}
			fmt.Fprintf(g.stdout, "Read %d records: %d redacted, %d deleted as duplicates of their redacted form\n",
				res["scanned"], res["changed"], res["merged"])
			if c, _ := res["redacted"].(redact.Counts); len(c) > 0 {
				fmt.Fprintf(g.stdout, "Redacted %s\n", formatCounts(c))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&workloadID, "workload-id", "", "only this workload's records")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

// redactStored redacts the stored records of a workload ("" for all) in one
// transaction, records it in the audit log, and returns what it did.
func redactStored(ctx context.Context, s *store.Store, r *redact.Redactor, workloadID string) (map[string]any, error) {
	counts := redact.Counts{}
	var scanned, changed, merged int
	err := s.InTx(ctx, func(q *store.Queries) error {
		var err error
		scanned, changed, merged, err = q.RedactStored(ctx, workloadID, func(rec *flywheel.LogRecord) bool {
			c := r.Record(rec)
			counts.Add(c)
			return c.Total() > 0
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	res := map[string]any{"scanned": scanned, "changed": changed, "merged": merged, "redacted": counts}
	target := workloadID
	if target == "" {
		target = "*"
	}
	if err := cliAudit(ctx, s, flywheel.AuditLogsRedacted, target, res); err != nil {
		return nil, err
	}
	return res, nil
}

// cliAudit records an action of the command line in the audit log.
func cliAudit(ctx context.Context, s *store.Store, action, target string, detail map[string]any) error {
	if err := s.AddAudit(ctx, &flywheel.AuditEntry{Actor: flywheel.ActorCLI, Action: action, Target: target, Detail: detail}); err != nil {
		return fmt.Errorf("record the audit entry (the action itself is done): %w", err)
	}
	return nil
}

// parseBefore reads an RFC 3339 time, or a duration before now.
func parseBefore(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--before %q: not an RFC 3339 time (2025-01-31T00:00:00Z) or a positive duration (720h)", s)
}

// logsTarget names the logs of a workload and client in the audit log.
func logsTarget(workloadID, clientID string) string {
	if clientID == "" {
		return workloadID
	}
	return workloadID + "/" + clientID
}

// formatCounts prints redaction counts as "cards 3, secrets 1" (by name).
func formatCounts(c redact.Counts) string {
	parts := make([]string, 0, len(c))
	for _, k := range slices.Sorted(maps.Keys(c)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, c[k]))
	}
	return strings.Join(parts, ", ")
}
