package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/spf13/cobra"

	"github.com/flywheel-go/flywheel/internal/app"
	"github.com/flywheel-go/flywheel/internal/config"
)

func newServeCommand(g *globals) *cobra.Command {
	var (
		addr    string
		workers int
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the REST API and run workers in one process",
		Long: `Serve the REST API (blueprint-compatible /api/jobs, /healthz, /readyz, /metrics,
/openapi.json, River's UI at /ui/river) and run the stage workers.

With no flags and no config it uses an embedded SQLite database in the per-user
data directory. With --db postgres://… several processes may serve and work on
the same database (add more with 'flywheel worker').`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("addr") {
				cfg.Server.Addr = addr
			}
			if err := cfg.Validate(); err != nil { // --addr may expose the server
				return configError(err)
			}
			if cmd.Flags().Changed("workers") {
				cfg.Engine.Workers = workers
			}
			logger := g.logger(cfg)
			ctx := cmd.Context()
			a, err := app.Open(ctx, cfg, logger, app.Options{Workers: cfg.Engine.Workers > 0, API: true})
			if err != nil {
				return err
			}
			defer a.Close()
			warnAuth(ctx, cfg, a, logger)
			ln, err := net.Listen("tcp", cfg.Server.Addr)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", cfg.Server.Addr, err)
			}
			if err := a.Start(ctx); err != nil {
				return err
			}
			logger.InfoContext(ctx, "Flywheel started", "version", app.Version, "addr", ln.Addr().String(),
				"database", a.Store.Dialect(), "platform", a.Platform.Name(), "workers", cfg.Engine.Workers, "data_dir", cfg.DataDir)
			logged := logStop(ctx, logger, "Flywheel stopping: finishing requests, handing back unfinished stages")
			err = a.Serve(ctx, ln)
			logged()
			return err
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8000", "listen address HOST:PORT")
	cmd.Flags().IntVar(&workers, "workers", 0, fmt.Sprintf(
		"stages run at once in this process (default engine.workers from the config, else %d; 0: API only)", config.WorkersDefault))
	return cmd
}

// logStop logs msg with the reason (the signal) when ctx ends. The function
// it returns waits until that line is written, or cancels it when ctx has
// not ended.
func logStop(ctx context.Context, logger *slog.Logger, msg string) func() {
	done := make(chan struct{})
	log := func() { logger.Info(msg, "reason", context.Cause(ctx).Error()) }
	stop := context.AfterFunc(ctx, func() {
		defer close(done)
		log()
	})
	return func() {
		if !stop() {
			<-done
			return
		}
		// A context closes its Done channel before it starts its
		// after-funcs: whoever saw it end and got here first stopped the
		// line from being written, so write it now.
		if ctx.Err() != nil {
			log()
		}
	}
}

func newWorkerCommand(g *globals) *cobra.Command {
	var workers int
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run stage workers only (scale-out on Postgres)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("workers") {
				cfg.Engine.Workers = workers
			}
			if cfg.Engine.Workers < 1 {
				return fmt.Errorf("a worker needs --workers of at least 1")
			}
			logger := g.logger(cfg)
			ctx := cmd.Context()
			a, err := app.Open(ctx, cfg, logger, app.Options{Workers: true})
			if err != nil {
				return err
			}
			defer a.Close()
			if err := a.Start(ctx); err != nil {
				return err
			}
			logger.InfoContext(ctx, "Worker started", "process", a.Engine.ProcessID(), "database", a.Store.Dialect(),
				"platform", a.Platform.Name(), "workers", cfg.Engine.Workers)
			<-ctx.Done()
			logger.InfoContext(ctx, "Worker stopping; unfinished stages are handed back")
			return nil
		},
	}
	cmd.Flags().IntVar(&workers, "workers", 0, fmt.Sprintf(
		"stages run at once (default engine.workers from the config, else %d)", config.WorkersDefault))
	return cmd
}

func newMigrateCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply database migrations (flywheel's and River's)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			applied, err := app.Migrate(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if len(applied) == 0 {
				fmt.Fprintln(g.stdout, "Database is up to date.")
			}
			for _, v := range applied {
				fmt.Fprintln(g.stdout, "applied", v)
			}
			return nil
		},
	}
}

// warnAuth logs loudly when the server is reachable beyond loopback without
// authentication (server.insecure_no_auth), and says how to get in when
// authentication is on but no token exists yet.
func warnAuth(ctx context.Context, cfg *config.Config, a *app.App, logger *slog.Logger) {
	sc := cfg.Server
	if sc.ExposedWithoutAuth() {
		logger.WarnContext(ctx, "AUTHENTICATION IS OFF on an address beyond loopback (server.insecure_no_auth): anyone who "+
			"reaches "+sc.Addr+" can start, cancel and delete runs, read every record, feed training data and spend the "+
			"capture proxy's upstream key", "addr", sc.Addr)
		return
	}
	if !sc.AuthEnabled() {
		return
	}
	tokens, err := a.Store.ListTokens(ctx)
	if err != nil {
		logger.WarnContext(ctx, "Could not list API tokens", "error", err)
		return
	}
	for _, t := range tokens {
		if t.Usable(time.Now()) == nil {
			return
		}
	}
	logger.WarnContext(ctx, "Authentication is on and no usable API token exists: create one with "+
		"'flywheel tokens create --name NAME --scope admin' (same --db/--config as serve)")
}
