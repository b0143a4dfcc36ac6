package main

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBackupCommand backs up a database holding a token and restores it as
// another data directory, where the token is listed.
func TestBackupCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := authEnv(t)
	_, _, err := flywheelCmd(ctx, env, "tokens", "create", "--name", "kept-by-backup", "--scope", "read")
	require.NoError(t, err)

	_, _, err = flywheelCmd(ctx, env, "backup")
	require.ErrorContains(t, err, "--to FILE is required")

	out := filepath.Join(t.TempDir(), "flywheel.db")
	stdout, _, err := flywheelCmd(ctx, env, "backup", "--to", out)
	require.NoError(t, err)
	require.Contains(t, stdout, "Backed up the database to "+out)
	require.Contains(t, stdout, "integrity check ok")

	_, _, err = flywheelCmd(ctx, env, "backup", "--to", out)
	require.ErrorContains(t, err, "already exists")

	restored := map[string]string{"HOME": t.TempDir(), "FLYWHEEL_DATABASE_URL": "sqlite:" + out}
	stdout, _, err = flywheelCmd(ctx, restored, "tokens", "list")
	require.NoError(t, err)
	require.Contains(t, stdout, "kept-by-backup")

	_, _, err = flywheelCmd(ctx, map[string]string{"HOME": t.TempDir(),
		"FLYWHEEL_DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"}, "backup", "--to", out+".pg")
	require.ErrorContains(t, err, "pg_dump")
}
