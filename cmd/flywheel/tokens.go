package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/store"
)

// Limits of token names.
const maxTokenNameLen = 100

func newTokensCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tokens",
		Short: "Create, list and revoke API tokens (works on the database directly)",
		Long: `API tokens authenticate requests to the REST API and the capture proxy
("Authorization: Bearer <token>") and log in to the dashboard. Each token has one scope:

  read    GET /api/jobs, evaluation items, the dashboard
  write   read, plus create and cancel runs, and POST /api/logs
  admin   everything: delete runs, River's UI at /ui/river
  ingest  only POST /api/logs and the capture proxy /v1/* (a production app's token)

A token's secret is printed once, when it is created; only its SHA-256 hash is stored.
These commands work on the database directly (same --db, --data-dir and --config as serve).

Tokens can also be managed by a file, server.auth.tokens_file (a mounted Kubernetes Secret):
one "NAME SCOPE SECRET" line each, synced at every start of serve and worker. "tokens list"
shows them with source "file"; change or remove them in the file, not with "tokens revoke".`,
	}
	cmd.AddCommand(newTokensCreateCommand(g), newTokensListCommand(g), newTokensRevokeCommand(g))
	return cmd
}

// openTokenStore opens and migrates the configured database.
func openTokenStore(ctx context.Context, g *globals) (*store.Store, error) {
	cfg, err := g.load()
	if err != nil {
		return nil, err
	}
	s, err := store.Open(ctx, cfg.DatabaseURL, store.Options{})
	if err != nil {
		return nil, err
	}
	if _, err := s.Migrate(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

func newTokensCreateCommand(g *globals) *cobra.Command {
	var (
		name, scope string
		expires     time.Duration
		asJSON      bool
	)
	cmd := &cobra.Command{
		Use:   "create --name NAME --scope read|write|admin|ingest [--expires DURATION]",
		Short: "Create a token and print its secret (shown only this once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			name = strings.TrimSpace(name)
			if name == "" || len(name) > maxTokenNameLen || strings.ContainsFunc(name, func(r rune) bool { return r < ' ' || r == 0x7f }) {
				return fmt.Errorf("--name must be 1 to %d printable characters", maxTokenNameLen)
			}
			sc, err := flywheel.ParseScope(scope)
			if err != nil {
				return fmt.Errorf("--scope: %w", err)
			}
			if expires < 0 {
				return fmt.Errorf("--expires must be positive (got %s)", expires)
			}
			ctx := cmd.Context()
			s, err := openTokenStore(ctx, g)
			if err != nil {
				return err
			}
			defer s.Close()
			now := time.Now().UTC()
			t := &flywheel.Token{ID: flywheel.NewTokenID(), Name: name, Scope: sc, CreatedAt: now}
			secret := flywheel.NewTokenSecret(t.ID)
			t.Hash = flywheel.HashSecret(secret)
			if expires > 0 {
				at := now.Add(expires)
				t.ExpiresAt = &at
			}
			if err := s.CreateToken(ctx, t); err != nil {
				return err
			}
			if asJSON {
				return g.printJSON(struct {
					*flywheel.Token
					Secret string `json:"secret"`
				}{t, secret})
			}
			fmt.Fprintf(g.stdout, "Created token %s (%q, scope %s, expires %s).\n", t.ID, t.Name, t.Scope, expiry(t.ExpiresAt))
			fmt.Fprintln(g.stdout, "Its secret is shown only now; store it safely:")
			fmt.Fprintln(g.stdout)
			fmt.Fprintln(g.stdout, "  "+secret)
			fmt.Fprintln(g.stdout)
			fmt.Fprintln(g.stdout, "Use it as \"Authorization: Bearer <secret>\", FLYWHEEL_TOKEN for the flywheel client, or on the dashboard's login page.")
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "what the token is for (shown by list and in the logs)")
	cmd.Flags().StringVar(&scope, "scope", "", "read, write, admin or ingest")
	cmd.Flags().DurationVar(&expires, "expires", 0, "lifetime, such as 720h (default: never expires)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the token and its secret as JSON")
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.MarkFlagRequired("scope")
	return cmd
}

func expiry(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

func newTokensListCommand(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, err := openTokenStore(ctx, g)
			if err != nil {
				return err
			}
			defer s.Close()
			tokens, err := s.ListTokens(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				return g.printJSON(tokens)
			}
			if len(tokens) == 0 {
				fmt.Fprintln(g.stdout, "No tokens. Create one with 'flywheel tokens create --name NAME --scope SCOPE'.")
				return nil
			}
			now := time.Now()
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tSCOPE\tSOURCE\tCREATED\tLAST USED\tEXPIRES\tSTATE")
			for _, t := range tokens {
				state := "active"
				switch {
				case t.RevokedAt != nil:
					state = "revoked " + t.RevokedAt.UTC().Format(time.RFC3339)
				case t.Usable(now) != nil:
					state = "expired"
				}
				used := "never"
				if t.LastUsedAt != nil {
					used = t.LastUsedAt.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Scope, t.Source, t.CreatedAt.UTC().Format(time.RFC3339), used,
					expiry(t.ExpiresAt), state)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print tokens as JSON")
	return cmd
}

func newTokensRevokeCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token at once (its dashboard sessions end too)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if sid, ok := flywheel.ParseTokenSecret(id); ok {
				id = sid // a pasted secret names its token
			}
			ctx := cmd.Context()
			s, err := openTokenStore(ctx, g)
			if err != nil {
				return err
			}
			defer s.Close()
			if t, err := s.GetToken(ctx, id); err == nil && t.Managed() {
				return fmt.Errorf("token %s is managed by the tokens file (server.auth.tokens_file): remove its line "+
					"%q from the file (or its Secret) and restart or wait for serve to read it again; it is then revoked", id, t.Name)
			}
			if err := s.RevokeToken(ctx, id, time.Now().UTC()); err != nil {
				if errors.Is(err, flywheel.ErrNotFound) {
					return fmt.Errorf("no token has the id %q ('flywheel tokens list' shows them)", id)
				}
				return err
			}
			fmt.Fprintf(g.stdout, "Revoked token %s.\n", id)
			return nil
		},
	}
}
