// Package app wires the flywheel's parts into a process: the store, the
// model platform, the dataset builder, the evaluator, the engine and the
// HTTP server. The flywheel command and the end-to-end tests use it.
package app

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/flywheel-go/flywheel/internal/capture"
	"github.com/flywheel-go/flywheel/internal/config"
	"github.com/flywheel-go/flywheel/internal/dataset"
	"github.com/flywheel-go/flywheel/internal/elasticsearch"
	"github.com/flywheel-go/flywheel/internal/engine"
	"github.com/flywheel-go/flywheel/internal/eval"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/history"
	"github.com/flywheel-go/flywheel/internal/mlflow"
	"github.com/flywheel-go/flywheel/internal/openai"
	"github.com/flywheel-go/flywheel/internal/platform/endpoint"
	"github.com/flywheel-go/flywheel/internal/platform/nemo"
	"github.com/flywheel-go/flywheel/internal/promote"
	"github.com/flywheel-go/flywheel/internal/server"
	"github.com/flywheel-go/flywheel/internal/stage"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/ui"
)

// Version is the flywheel's version, shown by /healthz and --version.
const Version = "0.1.0"

// Options says what the process runs.
type Options struct {
	// Workers runs stages in this process (serve and worker do).
	Workers bool
	// API serves the REST API (serve does).
	API bool
	// Platform, when set, replaces the configured platform (tests).
	Platform flywheel.Platform
	// Getenv reads the environment (default os.Getenv).
	Getenv func(string) string
	// TokensFileInterval is how often serve re-reads
	// server.auth.tokens_file (0: TokensFileIntervalDefault).
	TokensFileInterval time.Duration
}

// App is a running flywheel process.
type App struct {
	Config   *config.Config
	Logger   *slog.Logger
	Store    *store.Store
	Engine   *engine.Engine
	Platform flywheel.Platform
	Registry *prometheus.Registry
	Handler  http.Handler

	lock     *os.File
	bgCancel context.CancelFunc
	bgDone   chan struct{}
	// tokensDone closes when the tokens file's watch has stopped.
	tokensDone chan struct{}
	capture    *capture.Proxy
	// Promotions promotes candidates and rolls them back (API processes).
	Promotions *promote.Service
	// recorder, when set before the gateway is built, receives the
	// requests both production and a promoted candidate answered.
	recorder flywheel.OnlineRecorder
	online   onlineParts
	tls      *tls.Config // nil: plain HTTP
}

// Open connects to the database, migrates it, and builds every part. Call
// Start to run the workers.
func Open(ctx context.Context, cfg *config.Config, logger *slog.Logger, opts Options) (*App, error) {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	a := &App{Config: cfg, Logger: logger, Registry: prometheus.NewRegistry(), bgCancel: func() {}}
	a.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	redactor, err := NewRedactor(cfg, a.Registry)
	if err != nil {
		return nil, err
	}
	dialect, dsn, err := store.ParseURL(cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	embedded := dialect == store.SQLite
	if embedded && opts.Workers {
		// One process owns an embedded database's workers: it may then
		// resume stages a crashed predecessor left running.
		if a.lock, err = lockFile(dsn + ".lock"); err != nil {
			return nil, err
		}
	}
	a.Store, err = store.Open(ctx, cfg.DatabaseURL, store.Options{Logger: logger})
	if err != nil {
		a.Close()
		return nil, err
	}
	if _, err := engine.Migrate(ctx, a.Store); err != nil {
		a.Close()
		return nil, fmt.Errorf("migrate database: %w", err)
	}
	var tokens *tokensFile
	if cfg.Server.Auth.TokensFile != "" && (opts.API || opts.Workers) {
		// serve and worker: the tokens of the file are synced at start.
		tokens = &tokensFile{path: cfg.Server.Auth.TokensFile, store: a.Store, logger: logger.With("component", "auth")}
		if err := tokens.sync(ctx); err != nil {
			a.Close()
			return nil, err
		}
	}
	if opts.Platform != nil {
		a.Platform = opts.Platform
	} else if a.Platform, err = NewPlatform(cfg, logger, opts.Getenv); err != nil {
		a.Close()
		return nil, err
	}
	evaluator, err := a.evaluator(cfg, logger)
	if err != nil {
		a.Close()
		return nil, err
	}
	var source flywheel.RecordSource = a.Store
	if es := cfg.Elasticsearch; es.URL != "" {
		if source, err = elasticsearch.New(elasticsearch.Config{Addresses: []string{es.URL}, Index: es.Index, Username: es.Username,
			Password: es.Password, APIKey: es.APIKey, CACertFile: es.CACert, InsecureSkipVerify: es.InsecureSkipVerify,
			Logger: logger.With("component", "elasticsearch"), Redactor: redactor}); err != nil {
			a.Close()
			return nil, fmt.Errorf("elasticsearch record source: %w", err)
		}
	}
	runner := &stage.Runner{
		Store:       a.Store,
		Platform:    a.Platform,
		Datasets:    &dataset.Builder{Source: source, Embedder: embedder(cfg), Logger: logger.With("component", "dataset")},
		Evaluator:   evaluator,
		Recommender: &recommender{store: a.Store, cfg: cfg},
		Logger:      logger.With("component", "stage"),
		Settings: stage.Settings{PollInterval: cfg.Engine.PollInterval, StallTimeout: cfg.Engine.StallTimeout,
			MaxConcurrentRuns: cfg.Engine.MaxConcurrentRuns, DataDir: cfg.DataDir, JudgeAPIKey: cfg.Judge.APIKey,
			Version: Version},
	}
	if cfg.MLflow.Enabled {
		exp, err := mlflow.New(mlflow.Options{TrackingURI: cfg.MLflow.TrackingURI, ExperimentPrefix: cfg.MLflow.ExperimentNamePrefix,
			Logger: logger.With("component", "mlflow")})
		if err != nil {
			a.Close()
			return nil, fmt.Errorf("mlflow: %w", err)
		}
		runner.Exporter = exp
	}
	if err := a.newOnline(cfg, logger); err != nil {
		a.Close()
		return nil, err
	}
	limits := map[flywheel.StageName]engine.Limit{}
	for name, l := range cfg.Engine.StageLimits {
		limits[name] = engine.Limit{Hard: l.Hard, Soft: l.Soft}
	}
	workers := 0
	if opts.Workers {
		workers = cfg.Engine.Workers
	}
	a.Engine, err = engine.New(engine.Options{
		Store: a.Store, Runner: runner, Logger: logger, Registry: a.Registry, Spec: cfg.RunSpec(),
		Retention:         store.Retention{Days: cfg.Logs.RetentionDays, Workloads: cfg.Logs.WorkloadRetentionDays},
		RetentionInterval: cfg.Logs.RetentionInterval,
		Workers:           workers,
		DeploymentBudget:  cfg.Engine.MaxParallelDeployments, Limits: limits,
		Retry: engine.RetryPolicy{MaxAttempts: cfg.Engine.Retry.MaxAttempts, InitialBackoff: cfg.Engine.Retry.InitialBackoff,
			MaxBackoff: cfg.Engine.Retry.MaxBackoff},
		RescueAfter: cfg.Engine.RescueAfter, LeaseTTL: cfg.Engine.LeaseTTL, Embedded: embedded && opts.Workers,
		HeartbeatInterval: cfg.Engine.HeartbeatInterval, DeadAfter: cfg.Engine.DeadAfter,
		StrandedAfter: cfg.Engine.StrandedAfter, LivenessInterval: cfg.Engine.LivenessInterval,
		ScheduleInterval: cfg.Engine.ScheduleInterval,
		Agreement:        a.online.reader, Online: a.online.monitor, OnlineCheckInterval: cfg.Online.CheckInterval,
	})
	if err != nil {
		a.Close()
		return nil, err
	}
	if opts.API && cfg.Server.TLS() {
		// Read at start, so that a bad certificate stops the process
		// before any worker runs.
		cert, err := tls.LoadX509KeyPair(cfg.Server.TLSCertFile, cfg.Server.TLSKeyFile)
		if err != nil {
			a.Close()
			return nil, fmt.Errorf("server.tls_cert_file / server.tls_key_file: %w", err)
		}
		a.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if opts.API {
		bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
		a.bgCancel = cancel
		riverUI, err := a.Engine.RiverUI(bg, "/ui/river")
		if err != nil {
			a.Close()
			return nil, err
		}
		a.startRecorder(bg, cfg, logger)
		a.Promotions = a.newPromotions(cfg, logger)
		var captureHandler http.Handler
		if cfg.Capture.UpstreamURL != "" {
			cc := capture.Config{UpstreamURL: cfg.Capture.UpstreamURL, APIKey: cfg.Capture.UpstreamAPIKey,
				ForwardAuthorization: cfg.Capture.ForwardAuthorization, Ingester: a.Store, Registerer: a.Registry, Redactor: redactor,
				Logger: logger.With("component", "capture")}
			a.gatewayRouting(cfg, opts.Getenv, &cc)
			a.capture, err = capture.New(cc)
			if err != nil {
				a.Close()
				return nil, fmt.Errorf("capture proxy: %w", err)
			}
			captureHandler = a.capture
			a.bgDone = make(chan struct{})
			go func() {
				defer close(a.bgDone)
				_ = a.capture.Run(bg)
			}()
		}
		if err := a.Promotions.Start(bg); err != nil {
			logger.WarnContext(ctx, "Active promotions not resumed", slog.Any("error", err))
		}
		if tokens != nil {
			a.tokensDone = make(chan struct{})
			go func() {
				defer close(a.tokensDone)
				tokens.watch(bg, cmp.Or(opts.TokensFileInterval, TokensFileIntervalDefault))
			}()
		}
		authn := server.NewAuth(server.AuthOptions{Store: a.Store, Enabled: cfg.Server.AuthEnabled(),
			SessionTTL: cfg.Server.Auth.SessionTTL, Logger: logger.With("component", "auth")})
		jobs := auditedJobs{JobService: promotedJobs{JobService: a.Engine, store: a.Store}, audit: a.Store, logger: logger}
		hist := &history.Service{Store: a.Store}
		a.Handler = server.New(server.Options{
			Jobs: jobs, Manifests: a.Engine, Schedules: a.Engine, Logs: a.Store, Redactor: redactor, Audit: a.Store, LogDeleter: a.Store,
			Registry: a.Registry, RiverUI: riverUI, Capture: captureHandler,
			AllowedHosts: cfg.Server.AllowedHosts, ListenAddr: cfg.Server.Addr,
			UI: ui.New(ui.Options{Jobs: jobs, Audit: a.Store, Schedules: a.Engine, History: hist, Logger: logger.With("component", "ui"), Prefix: "/ui", Auth: authn,
				Online: a.online.reader, Promotions: a.Promotions}),
			Logger: logger, Version: Version, Auth: authn, MetricsPublic: cfg.Server.Auth.MetricsPublic,
			BlueprintJobList: cfg.Server.BlueprintJobList, Promotions: a.Promotions,
			History: hist, Online: a.online.reader,
		})
	}
	return a, nil
}

func embedder(cfg *config.Config) dataset.Embedder {
	sc := cfg.ICL.SimilarityConfig
	if cfg.ICL.ExampleSelection != flywheel.SelectionSemantic || sc == nil || sc.EmbeddingNIMConfig == nil {
		return nil
	}
	e := sc.EmbeddingNIMConfig
	base := e.URL
	if e.DeploymentType == flywheel.DeploymentTypeLocal || base == "" {
		base = cfg.NMP.NIMBaseURL
	}
	if base == "" {
		return nil
	}
	client, err := openai.New(openai.Config{BaseURL: flywheel.BaseURL(base), APIKey: e.APIKey})
	if err != nil {
		return nil
	}
	return &dataset.OpenAIEmbedder{Client: client, Model: e.ModelName, SendInputType: true}
}

func (a *App) evaluator(cfg *config.Config, logger *slog.Logger) (flywheel.Evaluator, error) {
	if cfg.Eval.Backend == config.EvalBackendNeMo {
		ev, ok := a.Platform.(flywheel.Evaluator)
		if !ok {
			return nil, fmt.Errorf("eval.backend nemo needs the nemo platform, not %s", a.Platform.Name())
		}
		return ev, nil
	}
	opts := eval.Options{
		Concurrency: cfg.Eval.Concurrency, Timeout: cfg.Eval.RequestTimeout, MaxRetries: cfg.Eval.MaxRetries,
		ToolCallChecker: eval.ToolCallChecker(cfg.Eval.ToolCallChecker),
		Logger:          logger.With("component", "eval"),
		Prices: eval.Prices{CPUHourUSD: cfg.Cost.CPUHourUSD, CPUThreads: cfg.Platform.Local.Threads,
			ProductionInputUSDPerMTok: cfg.Cost.ProductionInputUSDPerMTok, ProductionOutputUSDPerMTok: cfg.Cost.ProductionOutputUSDPerMTok},
	}
	if cfg.Eval.MaxTokens > 0 {
		n := cfg.Eval.MaxTokens
		opts.Sampling.MaxTokens = &n
	}
	return eval.NewRunner(opts), nil
}

// NewPlatform builds the configured model platform.
func NewPlatform(cfg *config.Config, logger *slog.Logger, getenv func(string) string) (flywheel.Platform, error) {
	switch cfg.Platform.Name {
	case config.PlatformNeMo:
		n := cfg.NMP
		p, err := nemo.New(nemo.Config{
			NeMo: nemo.Service{BaseURL: n.NemoBaseURL, Token: n.NemoAPIKey}, NIM: nemo.Service{BaseURL: n.NIMBaseURL, Token: n.NIMAPIKey},
			DataStore:   nemo.Service{BaseURL: n.DatastoreBaseURL, Token: n.DatastoreAPIKey},
			EntityStore: nemo.Service{BaseURL: n.EntityStoreURL}, Customizer: nemo.Service{BaseURL: n.CustomizerURL},
			Evaluator: nemo.Service{BaseURL: n.EvaluatorURL}, Deployment: nemo.Service{BaseURL: n.DeploymentURL},
			Namespace: n.Namespace, ExternalDeployments: n.ExternalDeployments, Logger: logger.With("component", "nemo"),
			EvalPollInterval: cfg.Engine.PollInterval, EvalStallTimeout: cfg.Engine.StallTimeout,
		})
		if err != nil {
			return nil, fmt.Errorf("nemo platform: %w", err)
		}
		return p, nil
	case config.PlatformEndpoint:
		return &endpoint.Platform{APIKey: getenv("OPENAI_API_KEY")}, nil
	case config.PlatformLocal:
		return newLocalPlatform(cfg, logger)
	}
	return nil, fmt.Errorf("unknown platform %q", cfg.Platform.Name)
}

// Start starts the engine's workers and heartbeat.
func (a *App) Start(ctx context.Context) error { return a.Engine.Start(ctx) }

// Serve serves the API on ln until ctx ends, then shuts down gracefully:
// running stages are handed back, never cancelled. With
// server.tls_cert_file and server.tls_key_file set it speaks HTTPS.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	// No WriteTimeout: it would cut streamed capture-proxy answers and long
	// requests. The body deadline counts from the handler's first read, so
	// an upload waiting for an ingest slot is not penalised.
	srv := &http.Server{
		Handler:           server.BodyReadTimeout(a.Handler, a.Config.Server.ReadTimeout),
		ReadHeaderTimeout: a.Config.Server.ReadHeaderTimeout,
		IdleTimeout:       a.Config.Server.IdleTimeout,
	}
	sc := a.Config.Server
	if a.tls != nil {
		srv.TLSConfig = a.tls
	}
	errc := make(chan error, 1)
	go func() {
		if a.tls != nil {
			errc <- srv.ServeTLS(ln, "", "")
			return
		}
		errc <- srv.Serve(ln)
	}()
	a.Logger.InfoContext(ctx, "Serving", "addr", ln.Addr().String(), "tls", sc.TLS(), "auth", sc.AuthEnabled())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutCtx)
}

// Close stops the engine (gracefully, within 30 s), drains the capture
// proxy's queue and closes the database.
func (a *App) Close() {
	a.bgCancel()
	if a.Promotions != nil {
		a.Promotions.Close()
	}
	if a.bgDone != nil {
		<-a.bgDone
	}
	a.waitRecorder()
	a.online.promoter.close()
	if a.tokensDone != nil {
		<-a.tokensDone
	}
	if a.Engine != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := a.Engine.Stop(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			a.Logger.Warn("Engine stop", "error", err)
		}
		cancel()
	}
	// Processes a local platform started (model servers, trainers) stop with
	// the process; a run resumed later starts them again.
	if c, ok := a.Platform.(interface{ Close() error }); ok {
		_ = c.Close()
	}
	if a.Store != nil {
		_ = a.Store.Close()
	}
	if a.lock != nil {
		_ = a.lock.Close()
	}
}

func lockFile(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("another flywheel process runs workers on this embedded database (%s is locked); stop it or use Postgres to run several", path)
	}
	return f, nil
}

// Migrate applies the database migrations of cfg's database.
func Migrate(ctx context.Context, cfg *config.Config) ([]string, error) {
	s, err := store.Open(ctx, cfg.DatabaseURL, store.Options{})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return engine.Migrate(ctx, s)
}
