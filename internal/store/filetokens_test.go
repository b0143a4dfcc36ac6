package store_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

// fileTokens parses a tokens file of "name scope secret" lines.
func fileTokens(t *testing.T, lines ...string) []flywheel.Token {
	t.Helper()
	toks, err := flywheel.ParseTokensFile(strings.NewReader(strings.Join(lines, "\n")))
	require.NoError(t, err)
	return toks
}

func secretOf(name string, version int) string {
	return fmt.Sprintf("%s-v%d-0123456789abcdefghijklmnopqrstuvwxyz", name, version)
}

func TestSyncFileTokens(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			t.Parallel()
			s := storetest.Open(t, d)
			ctx := context.Background()
			t0 := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)

			// A token made by the CLI is never touched by the file.
			cli := &flywheel.Token{ID: flywheel.NewTokenID(), Name: "prom", Scope: flywheel.ScopeAdmin, Hash: "cli-hash", CreatedAt: t0}
			require.NoError(t, s.CreateToken(ctx, cli))

			v1 := fileTokens(t, "prom read "+secretOf("prom", 1), "ci write "+secretOf("ci", 1))
			res, err := s.SyncFileTokens(ctx, v1, t0)
			require.NoError(t, err)
			require.Equal(t, store.FileTokensSync{Added: []string{"file-ci", "file-prom"}}, res)

			got, err := s.GetFileTokenByHash(ctx, flywheel.HashSecret(secretOf("prom", 1)))
			require.NoError(t, err)
			require.Equal(t, "file-prom", got.ID)
			require.Equal(t, flywheel.ScopeRead, got.Scope)
			require.Equal(t, flywheel.TokenSourceFile, got.Source)
			require.Equal(t, t0, got.CreatedAt)
			_, err = s.GetFileTokenByHash(ctx, "cli-hash")
			require.ErrorIs(t, err, flywheel.ErrNotFound, "a CLI token is never found by its hash")

			t.Run("Idempotent", func(t *testing.T) {
				res, err := s.SyncFileTokens(ctx, v1, t0.Add(time.Hour))
				require.NoError(t, err)
				require.Equal(t, store.FileTokensSync{Unchanged: 2}, res)
				list, err := s.ListTokens(ctx)
				require.NoError(t, err)
				require.Len(t, list, 3)
				for _, tok := range list {
					require.Nil(t, tok.RevokedAt, tok.ID)
					require.Equal(t, t0, tok.CreatedAt, tok.ID)
				}
				c, err := s.GetToken(ctx, cli.ID)
				require.NoError(t, err)
				require.Equal(t, flywheel.TokenSourceCLI, c.Source)
			})

			t.Run("RotateEndsSessions", func(t *testing.T) {
				sess := &flywheel.Session{Hash: "sess-ci", TokenID: "file-ci", CreatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour)}
				require.NoError(t, s.CreateSession(ctx, sess))
				keep := &flywheel.Session{Hash: "sess-prom", TokenID: "file-prom", CreatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour)}
				require.NoError(t, s.CreateSession(ctx, keep))
				v2 := fileTokens(t, "prom admin "+secretOf("prom", 1), "ci write "+secretOf("ci", 2))
				res, err := s.SyncFileTokens(ctx, v2, t0.Add(2*time.Hour))
				require.NoError(t, err)
				require.Equal(t, store.FileTokensSync{Changed: []string{"file-ci", "file-prom"}}, res)
				_, err = s.GetFileTokenByHash(ctx, flywheel.HashSecret(secretOf("ci", 1)))
				require.ErrorIs(t, err, flywheel.ErrNotFound, "the old secret no longer works")
				got, err := s.GetFileTokenByHash(ctx, flywheel.HashSecret(secretOf("ci", 2)))
				require.NoError(t, err)
				require.Equal(t, "file-ci", got.ID)
				_, err = s.GetSession(ctx, "sess-ci")
				require.ErrorIs(t, err, flywheel.ErrNotFound, "a new secret ends the old one's sessions")
				_, err = s.GetSession(ctx, "sess-prom")
				require.NoError(t, err, "a scope change keeps sessions")
				p, err := s.GetToken(ctx, "file-prom")
				require.NoError(t, err)
				require.Equal(t, flywheel.ScopeAdmin, p.Scope)
			})

			t.Run("RemovalRevokes", func(t *testing.T) {
				at := t0.Add(3 * time.Hour)
				res, err := s.SyncFileTokens(ctx, fileTokens(t, "ci write "+secretOf("ci", 2)), at)
				require.NoError(t, err)
				require.Equal(t, store.FileTokensSync{Revoked: []string{"file-prom"}, Unchanged: 1}, res)
				p, err := s.GetToken(ctx, "file-prom")
				require.NoError(t, err)
				require.NotNil(t, p.RevokedAt)
				require.Equal(t, at, *p.RevokedAt)
				_, err = s.GetSession(ctx, "sess-prom")
				require.ErrorIs(t, err, flywheel.ErrNotFound)
				c, err := s.GetToken(ctx, cli.ID)
				require.NoError(t, err)
				require.Nil(t, c.RevokedAt, "CLI tokens are not the file's to revoke")

				// An empty file revokes every file token, once.
				res, err = s.SyncFileTokens(ctx, nil, at.Add(time.Minute))
				require.NoError(t, err)
				require.Equal(t, store.FileTokensSync{Revoked: []string{"file-ci"}}, res)
				res, err = s.SyncFileTokens(ctx, nil, at.Add(2*time.Minute))
				require.NoError(t, err)
				require.Equal(t, store.FileTokensSync{}, res)
				p, err = s.GetToken(ctx, "file-prom")
				require.NoError(t, err)
				require.Equal(t, at, *p.RevokedAt, "revoking again keeps the first time")

				// Listed again, a token is active again.
				res, err = s.SyncFileTokens(ctx, fileTokens(t, "prom read "+secretOf("prom", 3)), at.Add(time.Hour))
				require.NoError(t, err)
				require.Equal(t, store.FileTokensSync{Added: []string{"file-prom"}}, res)
				p, err = s.GetToken(ctx, "file-prom")
				require.NoError(t, err)
				require.Nil(t, p.RevokedAt)
			})

			t.Run("RenameKeepsSecret", func(t *testing.T) {
				at := t0.Add(5 * time.Hour)
				res, err := s.SyncFileTokens(ctx, fileTokens(t, "prometheus read "+secretOf("prom", 3)), at)
				require.NoError(t, err)
				require.Equal(t, store.FileTokensSync{Added: []string{"file-prometheus"}, Revoked: []string{"file-prom"}}, res)
				got, err := s.GetFileTokenByHash(ctx, flywheel.HashSecret(secretOf("prom", 3)))
				require.NoError(t, err)
				require.Equal(t, "file-prometheus", got.ID, "the active token of the secret, not the revoked old name")
				require.Nil(t, got.RevokedAt)
			})

			t.Run("RefusesOtherTokens", func(t *testing.T) {
				_, err := s.SyncFileTokens(ctx, []flywheel.Token{*cli}, t0)
				require.ErrorContains(t, err, "not a tokens file's token")
			})
		})
	}
}

// TestSyncFileTokensConcurrent starts several replicas at once on one
// database: each syncs the same file; no error, no duplicate row.
func TestSyncFileTokensConcurrent(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			t.Parallel()
			s := storetest.Open(t, d)
			ctx := context.Background()
			var lines []string
			for i := range 20 {
				name := fmt.Sprintf("t%02d", i)
				lines = append(lines, name+" read "+secretOf(name, 1))
			}
			toks := fileTokens(t, lines...)
			const replicas = 6
			var wg sync.WaitGroup
			errs := make([]error, replicas)
			added := make([]int, replicas)
			for r := range replicas {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// Each replica reads the file in its own order.
					mine := append([]flywheel.Token(nil), toks...)
					for i := range mine {
						j := (i + r*7) % len(mine)
						mine[i], mine[j] = mine[j], mine[i]
					}
					res, err := s.SyncFileTokens(ctx, mine, time.Now())
					errs[r], added[r] = err, len(res.Added)
				}()
			}
			wg.Wait()
			for r, err := range errs {
				require.NoError(t, err, "replica %d", r)
			}
			list, err := s.ListTokens(ctx)
			require.NoError(t, err)
			require.Len(t, list, 20)
			for _, tok := range list {
				require.Nil(t, tok.RevokedAt)
				require.Equal(t, flywheel.TokenSourceFile, tok.Source)
			}
			total := 0
			for _, n := range added {
				total += n
			}
			require.GreaterOrEqual(t, total, 20, "every token added by some replica")
		})
	}
}
