package app

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/store"
)

// TokensFileIntervalDefault is how often serve syncs server.auth.tokens_file
// again, so that a rotated Secret takes effect without a restart. It syncs
// even when the file did not change here: another process (a worker that
// started with a file not yet updated) may have synced an older one.
const TokensFileIntervalDefault = 30 * time.Second

// tokensFile syncs the tokens of server.auth.tokens_file to the store.
type tokensFile struct {
	path   string
	store  *store.Store
	logger *slog.Logger
	synced bool // once at least
}

// sync reads the file and stores its tokens; it logs what changed. Errors
// name the file and the bad lines, never a secret.
func (f *tokensFile) sync(ctx context.Context) error {
	data, err := f.read(ctx)
	if err != nil {
		return fmt.Errorf("server.auth.tokens_file: %w", err)
	}
	toks, err := flywheel.ParseTokensFile(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("server.auth.tokens_file %s: %w", f.path, err)
	}
	res, err := f.store.SyncFileTokens(ctx, toks, time.Now())
	if err != nil {
		return fmt.Errorf("server.auth.tokens_file %s: %w", f.path, err)
	}
	if f.synced && len(res.Added)+len(res.Changed)+len(res.Revoked) == 0 {
		return nil
	}
	f.synced = true
	f.logger.InfoContext(ctx, "API tokens synced from the tokens file", slog.String("file", f.path),
		slog.Any("added", res.Added), slog.Any("changed", res.Changed), slog.Any("revoked", res.Revoked),
		slog.Int("unchanged", res.Unchanged))
	return nil
}

// stableReadPause is how long read waits to see a file unchanged.
const stableReadPause = 50 * time.Millisecond

// read returns the file's content once two reads stableReadPause apart
// agree: a file rewritten in place (truncated, then written) must not be
// read half-written, which would revoke the tokens missing from the half.
func (f *tokensFile) read(ctx context.Context) ([]byte, error) {
	data, err := os.ReadFile(f.path)
	for range 20 {
		if err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(stableReadPause):
		}
		again, err2 := os.ReadFile(f.path)
		if err2 == nil && bytes.Equal(again, data) {
			return data, nil
		}
		data, err = again, err2
	}
	return nil, fmt.Errorf("%s kept changing for a second; not applied this time", f.path)
}

// watch syncs the file every interval until ctx ends. A file that became
// unreadable or bad is logged and the tokens synced before stay in force.
func (f *tokensFile) watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := f.sync(ctx); err != nil && ctx.Err() == nil {
				f.logger.ErrorContext(ctx, "Tokens file not applied; the tokens synced before stay in force", slog.Any("error", err))
			}
		}
	}
}
