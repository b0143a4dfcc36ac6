package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

func TestTokens(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			t.Parallel()
			s := storetest.Open(t, d)
			ctx := context.Background()
			created := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
			expires := created.Add(48 * time.Hour)

			id := flywheel.NewTokenID()
			secret := flywheel.NewTokenSecret(id)
			tok := &flywheel.Token{ID: id, Name: "ci", Scope: flywheel.ScopeWrite, Hash: flywheel.HashSecret(secret),
				CreatedAt: created, ExpiresAt: &expires}
			require.NoError(t, s.CreateToken(ctx, tok))
			other := &flywheel.Token{ID: flywheel.NewTokenID(), Name: "app", Scope: flywheel.ScopeIngest, Hash: "h2",
				CreatedAt: created.Add(time.Minute)}
			require.NoError(t, s.CreateToken(ctx, other))

			got, err := s.GetToken(ctx, id)
			require.NoError(t, err)
			require.Equal(t, "ci", got.Name)
			require.Equal(t, flywheel.ScopeWrite, got.Scope)
			require.Equal(t, created, got.CreatedAt)
			require.Equal(t, expires, *got.ExpiresAt)
			require.Nil(t, got.LastUsedAt)
			require.Nil(t, got.RevokedAt)
			require.True(t, flywheel.SecretMatches(secret, got.Hash))
			require.False(t, flywheel.SecretMatches(secret+"x", got.Hash))

			_, err = s.GetToken(ctx, "0000000000000000")
			require.True(t, errors.Is(err, flywheel.ErrNotFound))

			list, err := s.ListTokens(ctx)
			require.NoError(t, err)
			require.Len(t, list, 2)
			require.Equal(t, id, list[0].ID)
			require.Equal(t, other.ID, list[1].ID)

			t.Run("TouchOnlyMovesForward", func(t *testing.T) {
				at := created.Add(time.Hour)
				require.NoError(t, s.TouchToken(ctx, id, at))
				require.NoError(t, s.TouchToken(ctx, id, at.Add(-time.Minute)))
				got, err := s.GetToken(ctx, id)
				require.NoError(t, err)
				require.Equal(t, at, *got.LastUsedAt)
			})

			t.Run("Sessions", func(t *testing.T) {
				sess := &flywheel.Session{Hash: flywheel.HashSecret("cookie"), TokenID: id, CreatedAt: created,
					ExpiresAt: created.Add(time.Hour)}
				require.NoError(t, s.CreateSession(ctx, sess))
				old := &flywheel.Session{Hash: flywheel.HashSecret("old"), TokenID: id, CreatedAt: created,
					ExpiresAt: created.Add(time.Minute)}
				require.NoError(t, s.CreateSession(ctx, old))
				got, err := s.GetSession(ctx, sess.Hash)
				require.NoError(t, err)
				require.Equal(t, id, got.TokenID)
				require.Equal(t, sess.ExpiresAt, got.ExpiresAt)

				n, err := s.DeleteExpiredSessions(ctx, created.Add(30*time.Minute))
				require.NoError(t, err)
				require.Equal(t, int64(1), n)
				_, err = s.GetSession(ctx, old.Hash)
				require.True(t, errors.Is(err, flywheel.ErrNotFound))

				require.NoError(t, s.DeleteSession(ctx, sess.Hash))
				require.NoError(t, s.DeleteSession(ctx, sess.Hash))
				_, err = s.GetSession(ctx, sess.Hash)
				require.True(t, errors.Is(err, flywheel.ErrNotFound))
			})

			t.Run("RevokeKeepsFirstTimeAndEndsSessions", func(t *testing.T) {
				sess := &flywheel.Session{Hash: flywheel.HashSecret("live"), TokenID: other.ID, ExpiresAt: created.Add(time.Hour)}
				require.NoError(t, s.CreateSession(ctx, sess))
				at := created.Add(2 * time.Hour)
				require.NoError(t, s.RevokeToken(ctx, other.ID, at))
				require.NoError(t, s.RevokeToken(ctx, other.ID, at.Add(time.Hour)))
				got, err := s.GetToken(ctx, other.ID)
				require.NoError(t, err)
				require.Equal(t, at, *got.RevokedAt)
				require.Error(t, got.Usable(at))
				_, err = s.GetSession(ctx, sess.Hash)
				require.True(t, errors.Is(err, flywheel.ErrNotFound))

				err = s.RevokeToken(ctx, "ffffffffffffffff", at)
				require.True(t, errors.Is(err, flywheel.ErrNotFound))
			})
		})
	}
}
