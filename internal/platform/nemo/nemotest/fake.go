// Package nemotest is a stateful fake of the six NeMo microservices the
// flywheel talks to (Deployment Management, Customizer, Evaluator, Data
// Store, Entity Store and the NIM proxy), in one HTTP server.
//
// It is a test and development aid, never a platform to run models on:
// deployments move created → pending → ready on a timer, customization
// jobs advance through epochs and publish their output model to the fake
// NIM proxy, evaluation jobs score the fake NIM's answers, and the fake NIM
// answers chat completions from a configurable policy (the logged answer
// for a fraction of requests, a wrong tool otherwise). Failures can be
// injected: error rates per endpoint, lost responses, latency spikes,
// stuck jobs, failed deployments and NotEnoughResources.
//
// The NeMo services and the Data Store are served at the root; the NIM
// proxy is served under /nim (its GET /v1/models would clash with the
// Entity Store's).
package nemotest

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// NIMPrefix is the path prefix of the fake NIM proxy.
const NIMPrefix = "/nim"

// Defaults of the fast setting.
const (
	DeploymentPendingAfterDefault = 10 * time.Millisecond
	DeploymentReadyAfterDefault   = 30 * time.Millisecond
	ModelSyncDelayDefault         = 10 * time.Millisecond
	JobStartAfterDefault          = 10 * time.Millisecond
	EpochDurationDefault          = 20 * time.Millisecond
	StepsPerEpochDefault          = 10
	EvalDurationDefault           = 40 * time.Millisecond
	BaseAccuracyDefault           = 0.5
	CustomizedAccuracyDefault     = 0.9
	EmbeddingDimDefault           = 32
)

// Options configures the fake. Zero values take the fast defaults, which
// let a whole flywheel run finish in seconds.
type Options struct {
	// Timing.
	DeploymentPendingAfter time.Duration
	DeploymentReadyAfter   time.Duration
	// ModelSyncDelay is how long a ready deployment or a finished
	// customization waits before the NIM proxy lists its model.
	ModelSyncDelay time.Duration
	// JobStartAfter is how long customization and evaluation jobs stay
	// "created" (and then "pending" for as long again).
	JobStartAfter time.Duration
	EpochDuration time.Duration
	StepsPerEpoch int
	// EvalDuration is how long an evaluation job runs.
	EvalDuration time.Duration

	// Chat policy: the fraction of chat requests answered with the logged
	// answer, for base models and for customized (@cust-…) models;
	// Accuracy overrides both per model id. Negative means 0.
	BaseAccuracy       float64
	CustomizedAccuracy float64
	Accuracy           map[string]float64
	// Records are logged records (blueprint log format) the fake NIM can
	// answer from, besides every evaluation row uploaded to its data store.
	Records []flywheel.LogRecord
	// Models are always listed by the NIM proxy (for example a judge).
	Models []string

	// Failure injection. ErrorRate applies to every endpoint; ErrorRates
	// to the endpoints a key names, and wins over ErrorRate. A key is an
	// endpoint's pattern (see Endpoint… constants), else a class (see
	// Class… constants), else a method ("GET", "POST", "PATCH", "DELETE");
	// the most specific key that matches applies. A failed request is
	// answered 503 before the fake touches its state.
	ErrorRate  float64
	ErrorRates map[string]float64
	// LostResponseRate is the fraction of POST requests whose effect
	// happens but whose answer is lost on the way back, which tests that
	// clients look before they retry. The lost answer is replaced by a 502,
	// or, with CutLostResponses, the connection is closed without an
	// answer.
	LostResponseRate float64
	CutLostResponses bool
	// Latency is added to every request; SpikeRate of requests wait Spike
	// more.
	Latency   time.Duration
	SpikeRate float64
	Spike     time.Duration
	// StuckCustomizations keep running without progress; StuckEvaluations
	// keep running at their first progress value.
	StuckCustomizations bool
	StuckEvaluations    bool
	// NotEnoughResources keeps customization jobs pending with a
	// NotEnoughResources status log.
	NotEnoughResources bool
	// FailDeployments makes deployments go created → pending → failed.
	FailDeployments bool
	// FailCustomizations makes jobs fail after their first epoch.
	FailCustomizations bool

	// Seed seeds the injection dice (0 means a fixed default seed).
	Seed uint64
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	o.DeploymentPendingAfter = cmp.Or(o.DeploymentPendingAfter, DeploymentPendingAfterDefault)
	o.DeploymentReadyAfter = cmp.Or(o.DeploymentReadyAfter, DeploymentReadyAfterDefault)
	if o.DeploymentReadyAfter < o.DeploymentPendingAfter {
		o.DeploymentReadyAfter = o.DeploymentPendingAfter
	}
	o.ModelSyncDelay = cmp.Or(o.ModelSyncDelay, ModelSyncDelayDefault)
	o.JobStartAfter = cmp.Or(o.JobStartAfter, JobStartAfterDefault)
	o.EpochDuration = cmp.Or(o.EpochDuration, EpochDurationDefault)
	o.StepsPerEpoch = cmp.Or(o.StepsPerEpoch, StepsPerEpochDefault)
	o.EvalDuration = cmp.Or(o.EvalDuration, EvalDurationDefault)
	o.BaseAccuracy = cmp.Or(o.BaseAccuracy, BaseAccuracyDefault)
	o.CustomizedAccuracy = cmp.Or(o.CustomizedAccuracy, CustomizedAccuracyDefault)
	o.Seed = cmp.Or(o.Seed, 1)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Endpoint names (the server's route patterns) for ErrorRates and Counts.
const (
	EndpointDeploymentCreate    = "POST /v1/deployment/model-deployments"
	EndpointDeploymentGet       = "GET /v1/deployment/model-deployments/{ns}/{name}"
	EndpointDeploymentDelete    = "DELETE /v1/deployment/model-deployments/{ns}/{name}"
	EndpointConfigCreate        = "POST /v1/customization/configs"
	EndpointCustomizationCreate = "POST /v1/customization/jobs"
	EndpointCustomizationList   = "GET /v1/customization/jobs"
	EndpointCustomizationStatus = "GET /v1/customization/jobs/{id}/status"
	EndpointCustomizationCancel = "POST /v1/customization/jobs/{id}/cancel"
	EndpointEvaluationCreate    = "POST /v1/evaluation/jobs"
	EndpointEvaluationList      = "GET /v1/evaluation/jobs"
	EndpointEvaluationGet       = "GET /v1/evaluation/jobs/{id}"
	EndpointEvaluationResults   = "GET /v1/evaluation/jobs/{id}/results"
	EndpointEvaluationCancel    = "POST /v1/evaluation/jobs/{id}/cancel"
	EndpointEvaluationDelete    = "DELETE /v1/evaluation/jobs/{id}"
	EndpointRepoCreate          = "POST /v1/hf/api/repos/create"
	EndpointPreupload           = "POST /v1/hf/api/datasets/{ns}/{name}/preupload/{rev}"
	EndpointCommit              = "POST /v1/hf/api/datasets/{ns}/{name}/commit/{rev}"
	EndpointDatasetRegister     = "POST /v1/datasets"
	EndpointNIMModels           = "GET " + NIMPrefix + "/v1/models"
	EndpointChatCompletions     = "POST " + NIMPrefix + "/v1/chat/completions"
)

// Endpoint classes: keys of ErrorRates that name every endpoint of one
// service.
const (
	ClassDeployment    = "deployment"
	ClassCustomization = "customization"
	ClassEvaluation    = "evaluation"
	ClassDataStore     = "datastore"
	ClassEntityStore   = "entitystore"
	ClassNIM           = "nim"
)

// Classes lists the endpoint classes.
var Classes = []string{ClassDeployment, ClassCustomization, ClassEvaluation, ClassDataStore, ClassEntityStore, ClassNIM}

// EndpointClass returns the class of an endpoint pattern ("" for the
// fake's own endpoints).
func EndpointClass(pattern string) string {
	_, path, _ := strings.Cut(pattern, " ")
	switch {
	case strings.HasPrefix(path, NIMPrefix+"/"):
		return ClassNIM
	case strings.HasPrefix(path, "/v1/deployment/"):
		return ClassDeployment
	case strings.HasPrefix(path, "/v1/customization/"):
		return ClassCustomization
	case strings.HasPrefix(path, "/v1/evaluation/"):
		return ClassEvaluation
	case strings.HasPrefix(path, "/v1/hf/"), strings.HasPrefix(path, "/v1/datastore/"):
		return ClassDataStore
	case strings.HasPrefix(path, "/v1/"):
		return ClassEntityStore
	}
	return ""
}

// CountersPath is the fake's own endpoint that answers its Counters as
// JSON. Failures are never injected into it.
const CountersPath = "/_fake/counters"

// Resource kinds counted by Counts.
const (
	KindNamespace     = "namespace"
	KindRepo          = "repo"
	KindDataset       = "dataset"
	KindDeployment    = "deployment"
	KindConfig        = "customization_config"
	KindCustomization = "customization"
	KindEvaluation    = "evaluation"
	KindModel         = "model"
)

// Server is the fake. It implements http.Handler; New also starts it on a
// loopback port. It is safe for concurrent use.
type Server struct {
	// URL is the base URL of the NeMo services and the Data Store when the
	// server listens (New); NIMURL is the NIM proxy's.
	URL    string
	NIMURL string

	hs     *httptest.Server
	mux    *http.ServeMux
	logger *slog.Logger
	// endpoints are the patterns of the fake's services.
	endpoints []string

	mu   sync.Mutex
	opts Options
	rng  *rand.Rand
	seq  int

	// Entity Store.
	namespaces map[string]time.Time
	datasets   map[string]map[string]any
	models     map[string]*modelEntity
	// Data Store.
	dsNamespaces map[string]bool
	repos        map[string]*repo
	// DMS.
	deployments map[string]*deployment
	// Customizer.
	configs map[string]map[string]any
	custs   map[string]*customization
	// Evaluator.
	evals map[string]*evaluation
	// NIM: logged answers by request key.
	answers map[string]json.RawMessage
	// published lists customized models and when the proxy lists them.
	published map[string]time.Time

	created    map[string]int
	deleted    map[string]int
	cancelled  map[string]int
	duplicates map[string]int
	requests   map[string]int
	injected   int
	lost       int
	spiked     int
}

// NewHandler returns the fake without starting a listener.
func NewHandler(opts Options) *Server {
	opts = opts.withDefaults()
	s := &Server{
		mux:          http.NewServeMux(),
		logger:       opts.Logger.With(slog.String("component", "nemo-fake")),
		opts:         opts,
		rng:          rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)), //nolint:gosec // test dice
		namespaces:   map[string]time.Time{},
		datasets:     map[string]map[string]any{},
		models:       map[string]*modelEntity{},
		dsNamespaces: map[string]bool{},
		repos:        map[string]*repo{},
		deployments:  map[string]*deployment{},
		configs:      map[string]map[string]any{},
		custs:        map[string]*customization{},
		evals:        map[string]*evaluation{},
		answers:      map[string]json.RawMessage{},
		published:    map[string]time.Time{},
		created:      map[string]int{},
		deleted:      map[string]int{},
		cancelled:    map[string]int{},
		duplicates:   map[string]int{},
		requests:     map[string]int{},
	}
	for _, r := range opts.Records {
		s.learn(r.Request, r.Response)
	}
	s.routes()
	return s
}

// New starts the fake on a loopback port; Close stops it.
func New(opts Options) *Server {
	s := NewHandler(opts)
	s.hs = httptest.NewServer(s)
	s.URL = s.hs.URL
	s.NIMURL = s.hs.URL + NIMPrefix
	return s
}

// Close stops a server started by New.
func (s *Server) Close() {
	if s.hs != nil {
		s.hs.Close()
	}
}

// ListenAndServe serves the fake on addr until ctx ends. It logs the URLs
// to use as nmp_config's nemo_base_url, datastore_base_url and nim_base_url.
func ListenAndServe(ctx context.Context, addr string, opts Options, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts.Logger = cmp.Or(opts.Logger, logger)
	s := NewHandler(opts)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	base := "http://" + ln.Addr().String()
	s.URL, s.NIMURL = base, base+NIMPrefix
	logger.InfoContext(ctx, "NeMo fake listening: a test and development aid, not a model platform",
		slog.String("nemo_base_url", base), slog.String("datastore_base_url", base),
		slog.String("nim_base_url", s.NIMURL))
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve nemo fake: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down nemo fake: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve nemo fake: %w", err)
	}
	return nil
}

// Update changes the options of a running fake (for example to start or
// stop injecting failures).
func (s *Server) Update(f func(*Options)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.opts)
	s.opts = s.opts.withDefaults()
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Fake", "nemotest: a test and development aid")
	s.mux.ServeHTTP(w, r)
}

// handle registers a route with the injection middleware.
func (s *Server) handle(pattern string, h func(w http.ResponseWriter, r *http.Request)) {
	s.endpoints = append(s.endpoints, pattern)
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests[pattern]++
		rate := s.errorRate(pattern, r.Method)
		fail := rate > 0 && s.rng.Float64() < rate
		lost := !fail && r.Method == http.MethodPost && s.opts.LostResponseRate > 0 &&
			s.rng.Float64() < s.opts.LostResponseRate
		cut := lost && s.opts.CutLostResponses
		delay := s.opts.Latency
		if s.opts.SpikeRate > 0 && s.rng.Float64() < s.opts.SpikeRate {
			delay += s.opts.Spike
			s.spiked++
		}
		if fail {
			s.injected++
		}
		if lost {
			s.lost++
		}
		s.mu.Unlock()
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-r.Context().Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if fail {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"detail": "injected failure (nemotest)"})
			return
		}
		if lost {
			h(httptest.NewRecorder(), r)
			if cut && cutConnection(w) {
				return
			}
			writeJSON(w, http.StatusBadGateway, map[string]string{"detail": "injected lost response (nemotest)"})
			return
		}
		h(w, r)
	})
}

// Endpoints returns the patterns of every endpoint of the fake's services,
// sorted (the keys ErrorRates and Counts.Requests use).
func (s *Server) Endpoints() []string {
	return slices.Sorted(slices.Values(s.endpoints))
}

// errorRate returns the injected failure rate of an endpoint: the most
// specific key of ErrorRates that names it, else ErrorRate. Callers hold
// s.mu.
func (s *Server) errorRate(pattern, method string) float64 {
	if v, ok := s.opts.ErrorRates[pattern]; ok {
		return v
	}
	if v, ok := s.opts.ErrorRates[EndpointClass(pattern)]; ok {
		return v
	}
	if v, ok := s.opts.ErrorRates[method]; ok {
		return v
	}
	return s.opts.ErrorRate
}

// cutConnection closes the client's connection without an answer. It
// reports false when w cannot give up its connection (HTTP/2).
func cutConnection(w http.ResponseWriter) bool {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

func (s *Server) routes() {
	s.mux.HandleFunc("GET "+CountersPath, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Counters())
	})
	s.entityRoutes()
	s.dataStoreRoutes()
	s.dmsRoutes()
	s.customizerRoutes()
	s.evaluatorRoutes()
	s.nimRoutes()
}

// Counts are what a test inspects after a run.
type Counts struct {
	// Created counts resources created, per kind.
	Created map[string]int
	// Duplicates counts creations of a resource that already existed
	// (same deployment name, same customization job name, same
	// evaluation id): each is a client that retried without looking.
	Duplicates map[string]int
	// Deleted counts resources deleted, per kind; Cancelled counts jobs
	// cancelled while they ran (customizations and evaluations).
	Deleted   map[string]int
	Cancelled map[string]int
	// Requests counts requests per endpoint pattern.
	Requests map[string]int
	// Injected counts injected failures; Lost counts lost responses;
	// Spiked counts requests delayed by a latency spike.
	Injected int
	Lost     int
	Spiked   int
}

// Counts returns a snapshot of the counters.
func (s *Server) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Counts{Created: maps.Clone(s.created), Deleted: maps.Clone(s.deleted), Cancelled: maps.Clone(s.cancelled),
		Duplicates: maps.Clone(s.duplicates), Requests: maps.Clone(s.requests),
		Injected: s.injected, Lost: s.lost, Spiked: s.spiked}
}

// Counters is what GET /_fake/counters answers: the counts and what is
// live, for anyone reproducing a fault test against `flywheel dev
// nemo-fake` from outside.
type Counters struct {
	// Requests is the number of requests served (the counters' own
	// excluded); RequestsByEndpoint splits it by endpoint pattern.
	Requests           int            `json:"requests"`
	RequestsByEndpoint map[string]int `json:"requests_by_endpoint"`
	// Created, Deleted, Cancelled and Duplicates count per resource kind
	// (see Kind… constants).
	Created    map[string]int `json:"created"`
	Deleted    map[string]int `json:"deleted"`
	Cancelled  map[string]int `json:"cancelled"`
	Duplicates map[string]int `json:"duplicates"`
	// DuplicatesTotal sums Duplicates.
	DuplicatesTotal int `json:"duplicates_total"`
	// Stored counts the resources that exist now, per kind.
	Stored map[string]int `json:"stored"`
	// Live lists what still runs or is deployed; LiveTotal counts it.
	Live      LiveJSON `json:"live"`
	LiveTotal int      `json:"live_total"`
	// Faults counts injected faults by kind: "error_5xx",
	// "lost_response" and "latency_spike".
	Faults map[string]int `json:"faults"`
}

// LiveJSON is Live with JSON names and empty lists instead of nulls.
type LiveJSON struct {
	Deployments    []string `json:"deployments"`
	Customizations []string `json:"customizations"`
	Evaluations    []string `json:"evaluations"`
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Fault kinds of Counters.Faults.
const (
	FaultError5xx     = "error_5xx"
	FaultLostResponse = "lost_response"
	FaultLatencySpike = "latency_spike"
)

// Counters returns a snapshot of the counters and the live resources.
func (s *Server) Counters() Counters {
	c := s.Counts()
	live := s.Live()
	s.mu.Lock()
	stored := map[string]int{
		KindNamespace: len(s.namespaces), KindRepo: len(s.repos), KindDataset: len(s.datasets),
		KindDeployment: len(s.deployments), KindConfig: len(s.configs), KindCustomization: len(s.custs),
		KindEvaluation: len(s.evals), KindModel: len(s.models),
	}
	s.mu.Unlock()
	total := 0
	for _, v := range c.Requests {
		total += v
	}
	lj := LiveJSON{Deployments: nonNil(live.Deployments), Customizations: nonNil(live.Customizations),
		Evaluations: nonNil(live.Evaluations)}
	return Counters{
		Requests: total, RequestsByEndpoint: c.Requests,
		Created: c.Created, Deleted: c.Deleted, Cancelled: c.Cancelled, Duplicates: c.Duplicates,
		DuplicatesTotal: c.TotalDuplicates(), Stored: stored,
		Live: lj, LiveTotal: len(lj.Deployments) + len(lj.Customizations) + len(lj.Evaluations),
		Faults: map[string]int{FaultError5xx: c.Injected, FaultLostResponse: c.Lost, FaultLatencySpike: c.Spiked},
	}
}

// TotalDuplicates returns the number of duplicate creations of any kind.
func (c Counts) TotalDuplicates() int {
	n := 0
	for _, v := range c.Duplicates {
		n += v
	}
	return n
}

// Live lists what is still running or deployed.
type Live struct {
	Deployments    []string
	Customizations []string
	Evaluations    []string
}

// Empty reports whether nothing is left running.
func (l Live) Empty() bool {
	return len(l.Deployments) == 0 && len(l.Customizations) == 0 && len(l.Evaluations) == 0
}

// Live returns the deployments that exist and the jobs not yet finished.
func (s *Server) Live() Live {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	var l Live
	for k := range s.deployments {
		l.Deployments = append(l.Deployments, k)
	}
	for id, c := range s.custs {
		if !terminal(c.status(now, s.opts)) {
			l.Customizations = append(l.Customizations, id)
		}
	}
	for id, e := range s.evals {
		if !terminal(s.evalStatus(e, now)) {
			l.Evaluations = append(l.Evaluations, id)
		}
	}
	sort.Strings(l.Deployments)
	sort.Strings(l.Customizations)
	sort.Strings(l.Evaluations)
	return l
}

// Repo returns the files of a dataset repo, or nil.
func (s *Server) Repo(ns, name string) map[string][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[ns+"/"+name]
	if r == nil {
		return nil
	}
	out := make(map[string][]byte, len(r.files))
	for k, v := range r.files {
		out[k] = append([]byte(nil), v...)
	}
	return out
}

// CustomizationStatus returns a job's current status ("" when unknown).
func (s *Server) CustomizationStatus(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.custs[id]
	if c == nil {
		return ""
	}
	return c.status(s.opts.Now(), s.opts)
}

// EvaluationStatus returns a job's current status ("" when unknown).
func (s *Server) EvaluationStatus(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.evals[id]
	if e == nil {
		return ""
	}
	return s.evalStatus(e, s.opts.Now())
}

func terminal(status string) bool {
	switch status {
	case "completed", "failed", "cancelled":
		return true
	}
	return false
}

// newID returns "<prefix>-<22 base58 chars>", deterministic per server.
func (s *Server) newID(prefix string) string {
	const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	s.seq++
	h := fnv.New64a()
	_ = binary.Write(h, binary.LittleEndian, uint64(s.seq)^s.opts.Seed)
	x := h.Sum64()
	var b strings.Builder
	b.WriteString(prefix + "-")
	for range 22 {
		b.WriteByte(alphabet[x%58])
		x = x*6364136223846793005 + 1442695040888963407
	}
	return b.String()
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func detail(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, map[string]string{"detail": fmt.Sprintf(format, args...)})
}

// decode reads a JSON body into v, answering 422 on failure.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"detail": []map[string]any{{
			"loc": []string{"body"}, "msg": "invalid JSON: " + err.Error(), "type": "value_error.json",
		}}})
		return false
	}
	return true
}

func missingField(w http.ResponseWriter, field string) {
	writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"detail": []map[string]any{{
		"loc": []string{"body", field}, "msg": "field required", "type": "value_error.missing",
	}}})
}

func timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000") }

// listPage writes a list envelope of items (newest first) for the page
// and page_size query parameters.
func listPage(w http.ResponseWriter, r *http.Request, items []any) {
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	size, _ := strconv.Atoi(r.URL.Query().Get("page_size"))
	page = max(page, 1)
	if size <= 0 {
		size = 10
	}
	total := len(items)
	pages := (total + size - 1) / size
	lo := min((page-1)*size, total)
	hi := min(lo+size, total)
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "list",
		"data":   items[lo:hi],
		"pagination": map[string]any{"page": page, "page_size": size, "current_page_size": hi - lo,
			"total_pages": pages, "total_results": total},
	})
}
