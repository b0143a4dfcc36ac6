package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// RequestIDHeader carries the id of a request; a sane id sent by the client
// is kept, otherwise one is made. Every log line of the request carries it.
const RequestIDHeader = "X-Request-ID"

// httpMetrics are the server's Prometheus collectors.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

func newHTTPMetrics(reg *prometheus.Registry) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flywheel_http_requests_total",
			Help: "HTTP requests served, by method, route and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flywheel_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by method and route.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flywheel_http_requests_in_flight",
			Help: "HTTP requests being served.",
		}),
	}
	m.requests = registerOrReuse(reg, m.requests)
	m.duration = registerOrReuse(reg, m.duration)
	m.inFlight = registerOrReuse(reg, m.inFlight)
	return m
}

// registerOrReuse registers c, or returns the collector already registered
// under its name (two servers sharing one registry share the metrics).
func registerOrReuse[C prometheus.Collector](reg *prometheus.Registry, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(fmt.Sprintf("register metric: %v", err))
	}
	return c
}

// recorder remembers the status and size of a response.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (rec *recorder) WriteHeader(status int) {
	if rec.status == 0 {
		rec.status = status
	}
	rec.ResponseWriter.WriteHeader(status)
}

func (rec *recorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	n, err := rec.ResponseWriter.Write(b)
	rec.bytes += int64(n)
	return n, err
}

// Flush lets streaming handlers (the capture proxy) flush through.
func (rec *recorder) Flush() {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	_ = http.NewResponseController(rec.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the underlying writer.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// observe logs every request and records its metrics.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.opts.Now()
		id := r.Header.Get(RequestIDHeader)
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set(RequestIDHeader, id)
		rec := &recorder{ResponseWriter: w}
		s.metrics.inFlight.Inc()
		defer s.metrics.inFlight.Dec()

		next.ServeHTTP(rec, r)

		elapsed := s.opts.Now().Sub(start)
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		// The mux writes the matched pattern into r; unmatched requests share
		// one label so that scanners cannot blow up the series count.
		rt := r.Pattern
		if rt == "" || rt == "/" {
			rt = "other"
		}
		s.metrics.requests.WithLabelValues(r.Method, rt, strconv.Itoa(status)).Inc()
		s.metrics.duration.WithLabelValues(r.Method, rt).Observe(elapsed.Seconds())

		level := slog.LevelInfo
		switch {
		case status >= 500:
			level = slog.LevelError
		case r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == "/metrics":
			level = slog.LevelDebug
		}
		s.logger.LogAttrs(r.Context(), level, "HTTP request",
			slog.String("request_id", id),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.String("route", rt),
			slog.Int("status", status),
			slog.Int64("bytes", rec.bytes),
			slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
			slog.String("remote_addr", r.RemoteAddr),
		)
	})
}

// recoverPanics turns a panic into 500 {"detail":"Internal error"} and logs
// it with its stack; the client never sees the stack.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec, _ := w.(*recorder)
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { //nolint:errorlint // sentinel compared as net/http does
				panic(v)
			}
			s.logger.ErrorContext(r.Context(), "Handler panicked",
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.String("request_id", w.Header().Get(RequestIDHeader)),
				slog.Any("panic", v),
				slog.String("stack", string(debug.Stack())),
			)
			if rec != nil && rec.status != 0 {
				// Too late for a clean answer: cut the connection.
				panic(http.ErrAbortHandler)
			}
			writeDetail(w, http.StatusInternalServerError, "Internal error")
		}()
		next.ServeHTTP(w, r)
	})
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range []byte(id) {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
