// Package logging holds the process logger's handler wrapper: one
// "component" attribute per line, whichever layer set it last.
package logging

import (
	"context"
	"log/slog"
)

// ComponentKey is the attribute naming the part of the process a line
// comes from ("engine", "server", "nemo", ...).
const ComponentKey = "component"

// OneComponent wraps h so that a line carries at most one ComponentKey
// attribute: a logger derived with With("component", x) from one that
// already names a component replaces it instead of adding a second key
// (JSON logs would otherwise repeat "component"). Other attributes pass
// through unchanged; a component set inside a group stays in that group.
func OneComponent(h slog.Handler) slog.Handler {
	if _, ok := h.(*componentHandler); ok {
		return h
	}
	return &componentHandler{inner: h}
}

type componentHandler struct {
	inner     slog.Handler
	component *slog.Attr // the latest component, written at Handle
}

// Enabled reports whether the wrapped handler handles level l.
func (h *componentHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

// WithAttrs keeps the last component of attrs (replacing any earlier one)
// and passes the other attributes to the wrapped handler.
func (h *componentHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	out := &componentHandler{inner: h.inner, component: h.component}
	rest := make([]slog.Attr, 0, len(attrs))
	for _, a := range attrs {
		if a.Key == ComponentKey {
			c := a
			out.component = &c
			continue
		}
		rest = append(rest, a)
	}
	if len(rest) > 0 {
		out.inner = h.inner.WithAttrs(rest)
	}
	return out
}

// WithGroup writes the pending component before the group opens, so that
// it stays at the top level.
func (h *componentHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	inner := h.inner
	if h.component != nil {
		inner = inner.WithAttrs([]slog.Attr{*h.component})
	}
	return &componentHandler{inner: inner.WithGroup(name)}
}

// Handle writes r with the component first among its own attributes; a
// component attribute of the record itself wins over the logger's.
func (h *componentHandler) Handle(ctx context.Context, r slog.Record) error {
	if h.component == nil {
		return h.inner.Handle(ctx, r)
	}
	own := false
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == ComponentKey {
			own = true
			return false
		}
		return true
	})
	if own {
		return h.inner.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	out.AddAttrs(*h.component)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(a)
		return true
	})
	return h.inner.Handle(ctx, out)
}
