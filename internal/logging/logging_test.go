package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/logging"
)

// minLevel is a wrapper like the engine's, which derives River's logger
// from the process logger's handler.
type minLevel struct {
	slog.Handler
}

func (h minLevel) WithAttrs(a []slog.Attr) slog.Handler { return minLevel{h.Handler.WithAttrs(a)} }

func TestOneComponent(t *testing.T) {
	var buf bytes.Buffer
	root := slog.New(logging.OneComponent(slog.NewJSONHandler(&buf, nil)))
	app := root.With("component", "nemo")
	for _, tc := range []struct {
		name   string
		log    func()
		want   string
		fields map[string]any
	}{
		{"set twice", func() { app.With("component", "nemo").Info("a") }, "nemo", nil},
		{"replaced", func() { app.With("component", "engine", "run_id", "r1").Info("a", "n", 1) }, "engine",
			map[string]any{"run_id": "r1", "n": float64(1)}},
		{"through another wrapper", func() {
			slog.New(minLevel{app.Handler()}).With("component", "river").Warn("a")
		}, "river", nil},
		{"record's own wins", func() { app.Info("a", "component", "x") }, "x", nil},
		{"root without component", func() { root.Info("a") }, "", nil},
		{"group keeps it at the top", func() {
			app.WithGroup("req").With("component", "inner", "path", "/p").Info("a")
		}, "nemo", map[string]any{"req": map[string]any{"component": "inner", "path": "/p"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buf.Reset()
			tc.log()
			line := strings.TrimSpace(buf.String())
			require.Equal(t, strings.Count(line, `"component"`) <= 1 || tc.fields["req"] != nil, true, line)
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(line), &m))
			if tc.want == "" {
				require.NotContains(t, m, "component")
			} else {
				require.Equal(t, tc.want, m["component"], line)
			}
			for k, v := range tc.fields {
				require.Equal(t, v, m[k], line)
			}
		})
	}
}

func TestOneComponentText(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(logging.OneComponent(slog.NewTextHandler(&buf, nil))).With("component", "app").With("component", "dataset")
	l.Info("hello", "k", "v")
	require.Equal(t, 1, strings.Count(buf.String(), "component="), buf.String())
	require.Contains(t, buf.String(), "component=dataset")
	require.True(t, logging.OneComponent(l.Handler()) == l.Handler(), "not wrapped twice")
	require.True(t, l.Handler().Enabled(context.Background(), slog.LevelInfo))
}
