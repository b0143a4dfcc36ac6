package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/flywheel-go/flywheel/internal/store"
)

func newBackupCommand(g *globals) *cobra.Command {
	var (
		to    string
		force bool
	)
	cmd := &cobra.Command{
		Use:   "backup --to FILE [--force]",
		Short: "Copy the SQLite database to FILE while the server runs (online backup)",
		Long: `backup writes a consistent copy of the SQLite database (same --db, --data-dir and
--config as serve) with SQLite's VACUUM INTO, while serve and workers keep running. The copy
is checked with SQLite's integrity check before it is moved to FILE, so FILE is never a partial
backup. Restore: stop flywheel, put the file in place of the database (remove its -wal and -shm
files), start flywheel.

PostgreSQL databases are backed up with pg_dump instead:
  pg_dump --format=custom --file flywheel.dump "$FLYWHEEL_DATABASE_URL"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" {
				return errors.New("--to FILE is required")
			}
			cfg, err := g.load()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			s, err := store.Open(ctx, cfg.DatabaseURL, store.Options{Logger: g.logger(cfg)})
			if err != nil {
				return err
			}
			defer s.Close()
			res, err := s.Backup(ctx, to, force)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Backed up the database to %s (%d bytes, %d tables, integrity check ok).\n",
				res.Path, res.Bytes, res.Tables)
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "backup file to write")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite FILE if it exists")
	return cmd
}
