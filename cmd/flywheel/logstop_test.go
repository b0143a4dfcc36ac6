package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLogStopRacesTheEnd ends the context on another goroutine and waits
// for the line as soon as Done closes, as serve does when it sees the
// signal before the context's after-funcs run: the line is written every
// time, once.
func TestLogStopRacesTheEnd(t *testing.T) {
	t.Parallel()
	for i := range 2000 {
		var b bytes.Buffer
		logger := slog.New(slog.NewTextHandler(&b, nil))
		ctx, cancel := context.WithCancelCause(context.Background())
		logged := logStop(ctx, logger, "stopping")
		go cancel(errors.New("terminated signal received")) // as the signal's goroutine does
		<-ctx.Done()
		logged()
		require.Equal(t, 1, bytes.Count(b.Bytes(), []byte(`msg=stopping reason="terminated signal received"`)), "try %d: %q", i, b.String())
	}

	// A context that has not ended logs nothing.
	var b bytes.Buffer
	logged := logStop(context.Background(), slog.New(slog.NewTextHandler(&b, nil)), "stopping")
	logged()
	require.Empty(t, b.String())
}
