package server

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"
)

// BodyReadTimeout bounds reading each request body to d, counted from the
// handler's first read of it to its end: a body trickled in slowly fails
// with os.ErrDeadlineExceeded instead of holding its connection for ever,
// and time spent waiting before reading (an ingest slot) does not count.
// Answers are not bounded, so streamed answers and long requests are not
// cut. Requests without a body pass untouched. Wrap the outermost handler
// of an http.Server with it (it sets the connection's read deadline).
func BodyReadTimeout(next http.Handler, d time.Duration) http.Handler {
	if d <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
			r.Body = &deadlineBody{ReadCloser: r.Body, rc: http.NewResponseController(w), d: d}
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody sets the connection's read deadline at its first read and
// clears it at its end.
type deadlineBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	d       time.Duration
	started bool
	ended   bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if !b.started {
		b.started = true
		_ = b.rc.SetReadDeadline(time.Now().Add(b.d))
	}
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) && !b.ended {
		b.ended = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// bodyTimedOut reports whether err is a body read that ran out of time.
func bodyTimedOut(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
