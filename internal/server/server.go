// Package server is the REST API of the flywheel service: the blueprint's
// /api/jobs endpoints with our additions, health and readiness checks,
// Prometheus metrics, the OpenAPI document, and the mount points of the
// dashboard, River's UI and the capture proxy.
//
// It is the one place that turns a flywheel error code into an HTTP status
// and a FastAPI-shaped body ({"detail": ...}).
package server

import (
	"cmp"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/redact"
)

// Limits and defaults of the API.
const (
	// MaxJobBodyBytes caps the body of POST /api/jobs (a run's manifest
	// lists every record of its datasets: about 80 bytes each).
	MaxJobBodyBytes = 32 << 20
	// MaxLogBodyBytesDefault caps the body of POST /api/logs.
	MaxLogBodyBytesDefault = 32 << 20
	// LogBatchSizeDefault is how many records POST /api/logs stores at once.
	LogBatchSizeDefault = 1000
	// LogBatchBytesDefault caps the lines of one POST /api/logs batch: a
	// batch is stored before more of the body is read.
	LogBatchBytesDefault = 1 << 20
	// MaxLogLineBytesDefault is the longest POST /api/logs line accepted;
	// longer lines are rejected with their number.
	MaxLogLineBytesDefault = 8 << 20
	// MaxConcurrentIngestDefault is how many POST /api/logs requests are
	// read and stored at once; others wait for a slot before their body
	// is read.
	MaxConcurrentIngestDefault = 4
	// MaxLogErrors caps the rejected lines listed in a LogsResponse.
	MaxLogErrors = 100
	// ListLimitMax is the largest page size of GET /api/jobs.
	ListLimitMax = 1000
	// ItemsLimitDefault and ItemsLimitMax are the page sizes of
	// GET /api/evaluations/{id}/items.
	ItemsLimitDefault = 50
	ItemsLimitMax     = 1000
	// ReadyTimeoutDefault bounds the readiness check.
	ReadyTimeoutDefault = 5 * time.Second
	// MaxIdempotencyKeyLen is the longest Idempotency-Key accepted.
	MaxIdempotencyKeyLen = 255
)

// LogParseFunc turns one line of a POST /api/logs body into a record, or
// says why the line cannot be used. lineNo is 1-based. A nil LogParseFunc
// selects the ingest package's parser (the blueprint's log format and the
// conversation format).
type LogParseFunc func(line []byte, lineNo int) (flywheel.LogRecord, *api.LogLineError)

// Options configures a Server. Jobs is required; every other field is optional.
type Options struct {
	// Jobs serves the /api/jobs and /api/evaluations endpoints and /readyz.
	Jobs flywheel.JobService
	// Manifests serves GET /api/jobs/{job_id}/manifest; without it the
	// endpoint answers 503.
	Manifests flywheel.ManifestReader
	// Logs stores the records of POST /api/logs; without it the endpoint
	// answers 503.
	Logs flywheel.LogIngester
	// Audit, when set, records who created, cancelled and deleted runs,
	// ingested and deleted logs, and serves GET /api/audit.
	Audit flywheel.AuditLog
	// LogDeleter serves DELETE /api/logs; without it the endpoint answers 503.
	LogDeleter flywheel.LogDeleter
	// Schedules serves /api/schedules; without it those endpoints answer
	// 503.
	Schedules flywheel.ScheduleService
	// History serves GET /api/workloads, a workload's history and GET
	// /api/jobs/compare; without it they answer 503.
	History flywheel.HistoryService
	// Promotions serves POST /api/jobs/{job_id}/promote and
	// /api/promotions; without it they answer 503.
	Promotions flywheel.PromotionService
	// Online serves GET /api/workloads/{workload_id}/online; without it
	// that endpoint answers 503.
	Online flywheel.OnlineReporter
	// Redactor, when set, redacts the records of POST /api/logs before
	// they are stored.
	Redactor *redact.Redactor
	// LogParser parses POST /api/logs lines (nil: the built-in parser).
	LogParser LogParseFunc
	// MaxLogBodyBytes caps POST /api/logs bodies (0: MaxLogBodyBytesDefault).
	MaxLogBodyBytes int64
	// MaxLogLineBytes caps one line of a POST /api/logs body (0:
	// MaxLogLineBytesDefault).
	MaxLogLineBytes int
	// MaxConcurrentIngest caps the POST /api/logs requests served at once
	// (0: MaxConcurrentIngestDefault).
	MaxConcurrentIngest int
	// Registry receives the HTTP metrics and is served at /metrics. When nil
	// the server makes its own.
	Registry *prometheus.Registry
	// RiverUI, when set, is mounted at /ui/river/ (build it with that prefix).
	RiverUI http.Handler
	// Capture, when set, is mounted at /v1/ (the OpenAI-compatible capture proxy).
	Capture http.Handler
	// UI, when set, is mounted at /ui/ (the dashboard); / redirects to it.
	UI http.Handler
	// Logger receives one line per request and every internal error. When
	// nil nothing is logged.
	Logger *slog.Logger
	// Version is shown by /healthz.
	Version string
	// BlueprintJobList makes GET /api/jobs answer as the blueprint does
	// when no limit or cursor is given: every run, oldest first, in one
	// answer. Otherwise it answers pages (100 runs unless limit says
	// otherwise), newest first unless order=oldest.
	BlueprintJobList bool
	// AllowedHosts are the host names the server answers to besides the
	// defaults (see HostPolicy); ListenAddr is the address it listens on,
	// whose host is allowed too.
	AllowedHosts []string
	ListenAddr   string
	// Auth, when enabled, requires a token on every route that needs one
	// (see accessRules) and a login on the dashboard and River's UI.
	Auth flywheel.Authenticator
	// MetricsPublic serves /metrics without a token when Auth is enabled.
	MetricsPublic bool
	// ReadyTimeout bounds JobService.Ready (0: ReadyTimeoutDefault).
	ReadyTimeout time.Duration
	// Now is the clock used for request durations (nil: time.Now).
	Now flywheel.Clock
}

// Server is the HTTP handler of the whole API.
type Server struct {
	opts    Options
	logger  *slog.Logger
	mux     *http.ServeMux
	access  *http.ServeMux // matches a request to its access rule
	handler http.Handler
	metrics *httpMetrics
	openapi []byte
	// ingestSlots holds one token per POST /api/logs being served.
	ingestSlots chan struct{}
}

// route is one endpoint the server registers; the table drives both the
// mux and the test that checks the OpenAPI document covers every route.
type route struct {
	method  string
	path    string
	handler http.HandlerFunc
}

// mount is a handler served under a path prefix.
type mount struct {
	prefix  string
	handler http.Handler
}

// New returns a Server. It panics only on a programming error: Options.Jobs nil.
func New(opts Options) *Server {
	if opts.Jobs == nil {
		panic("server.New: Options.Jobs is nil")
	}
	opts.MaxLogBodyBytes = cmp.Or(opts.MaxLogBodyBytes, MaxLogBodyBytesDefault)
	opts.MaxLogLineBytes = cmp.Or(opts.MaxLogLineBytes, MaxLogLineBytesDefault)
	opts.MaxConcurrentIngest = cmp.Or(opts.MaxConcurrentIngest, MaxConcurrentIngestDefault)
	opts.ReadyTimeout = cmp.Or(opts.ReadyTimeout, ReadyTimeoutDefault)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.LogParser == nil {
		opts.LogParser = ingestParser(opts.Now)
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		opts:        opts,
		logger:      logger.With(slog.String("component", "server")),
		mux:         http.NewServeMux(),
		metrics:     newHTTPMetrics(opts.Registry),
		ingestSlots: make(chan struct{}, opts.MaxConcurrentIngest),
	}
	doc, err := api.DocumentJSON()
	if err != nil {
		// The document is embedded and checked by tests; a failure here is
		// a build defect, reported on every request for it.
		s.logger.Error("OpenAPI document unreadable", slog.Any("error", err))
	}
	s.openapi = doc

	allowed := map[string][]string{}
	var order []string
	for _, rt := range s.routes() {
		s.mux.HandleFunc(rt.method+" "+rt.path, rt.handler)
		if _, ok := allowed[rt.path]; !ok {
			order = append(order, rt.path)
		}
		allowed[rt.path] = append(allowed[rt.path], rt.method)
	}
	for _, path := range order {
		// One 405 pattern per other method, not one without a method: a
		// literal path beside a wildcard one (GET /api/jobs/compare and
		// GET /api/jobs/{job_id}) cannot take a pattern of every method.
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
			http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace} {
			if slices.Contains(allowed[path], m) || (m == http.MethodHead && slices.Contains(allowed[path], http.MethodGet)) {
				continue
			}
			s.mux.Handle(m+" "+path, methodNotAllowed(allowed[path]))
		}
	}
	for _, m := range s.mounts() {
		s.mux.Handle(m.prefix, m.handler)
		s.mux.Handle(strings.TrimSuffix(m.prefix, "/"), http.RedirectHandler(m.prefix, http.StatusMovedPermanently))
	}
	if opts.UI != nil {
		s.mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeDetail(w, http.StatusNotFound, "Not Found")
	})
	s.access = s.newAccessMux()
	s.handler = s.observe(s.recoverPanics(s.guard(s.authenticate(s.mux))))
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

func (s *Server) routes() []route {
	return []route{
		{http.MethodPost, "/api/jobs", s.createJob},
		{http.MethodGet, "/api/jobs", s.listJobs},
		{http.MethodGet, "/api/jobs/compare", s.compareJobs},
		{http.MethodGet, "/api/jobs/{job_id}", s.getJob},
		{http.MethodDelete, "/api/jobs/{job_id}", s.deleteJob},
		{http.MethodPost, "/api/jobs/{job_id}/cancel", s.cancelJob},
		{http.MethodGet, "/api/jobs/{job_id}/manifest", s.getManifest},
		{http.MethodPost, "/api/jobs/{job_id}/promote", s.promoteJob},
		{http.MethodGet, "/api/promotions", s.listPromotions},
		{http.MethodGet, "/api/promotions/{promotion_id}", s.getPromotion},
		{http.MethodPost, "/api/promotions/{promotion_id}/rollback", s.rollbackPromotion},
		{http.MethodGet, "/api/evaluations/{evaluation_id}/items", s.listItems},
		{http.MethodGet, "/api/workloads", s.listWorkloads},
		{http.MethodGet, "/api/workloads/{workload_id}/history", s.workloadHistory},
		{http.MethodGet, "/api/workloads/{workload_id}/online", s.workloadOnline},
		{http.MethodPost, "/api/logs", s.ingestLogs},
		{http.MethodDelete, "/api/logs", s.deleteLogs},
		{http.MethodGet, "/api/audit", s.listAudit},
		{http.MethodGet, "/api/schedules", s.listSchedules},
		{http.MethodPost, "/api/schedules", s.createSchedule},
		{http.MethodGet, "/api/schedules/{schedule_id}", s.getSchedule},
		{http.MethodDelete, "/api/schedules/{schedule_id}", s.deleteSchedule},
		{http.MethodGet, "/healthz", s.healthz},
		{http.MethodGet, "/readyz", s.readyz},
		{http.MethodGet, "/metrics", promhttp.HandlerFor(s.opts.Registry, promhttp.HandlerOpts{}).ServeHTTP},
		{http.MethodGet, "/openapi.json", s.openapiJSON},
		{http.MethodGet, "/openapi.yaml", s.openapiYAML},
	}
}

func (s *Server) mounts() []mount {
	var ms []mount
	if s.opts.RiverUI != nil {
		ms = append(ms, mount{"/ui/river/", s.opts.RiverUI})
	}
	if s.opts.UI != nil {
		ms = append(ms, mount{"/ui/", s.opts.UI})
	}
	if s.opts.Capture != nil {
		ms = append(ms, mount{"/v1/", s.opts.Capture})
	}
	return ms
}

func methodNotAllowed(methods []string) http.Handler {
	allow := strings.Join(methods, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Allow", allow)
		writeDetail(w, http.StatusMethodNotAllowed, "Method Not Allowed")
	})
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, api.HealthResponse{Status: "ok", Version: s.opts.Version})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := contextWithTimeout(r, s.opts.ReadyTimeout)
	defer cancel()
	if err := s.opts.Jobs.Ready(ctx); err != nil {
		s.logger.WarnContext(ctx, "Not ready", slog.Any("error", err))
		msg := "Not ready"
		if m := flywheel.ErrorMessage(err); m != "Internal error" {
			msg = "Not ready: " + m
		}
		writeDetail(w, http.StatusServiceUnavailable, msg)
		return
	}
	writeJSON(w, http.StatusOK, api.HealthResponse{Status: "ready", Version: s.opts.Version})
}

func (s *Server) openapiJSON(w http.ResponseWriter, r *http.Request) {
	if s.openapi == nil {
		s.writeError(w, r, flywheel.Errorf(flywheel.EINTERNAL, "Internal error"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(s.openapi)
}

func (s *Server) openapiYAML(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(api.DocumentYAML())
}
