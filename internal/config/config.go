package config

import (
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/redact"
)

// Config is the whole configuration of a flywheel process. The blueprint's
// keys (nmp_config, logging_config, mlflow_config, llm_judge_config, nims,
// data_split_config, icl_config, training_config, lora_config) keep their
// names and meaning; the other sections are ours. Fields tagged yaml:"-"
// are secrets: they come from the environment only.
type Config struct {
	NMP       NMPConfig                `yaml:"nmp_config"`
	Logging   LoggingConfig            `yaml:"logging_config"`
	MLflow    MLflowConfig             `yaml:"mlflow_config"`
	Judge     flywheel.JudgeConfig     `yaml:"llm_judge_config"`
	NIMs      []flywheel.NIMConfig     `yaml:"nims"`
	DataSplit flywheel.DataSplitConfig `yaml:"data_split_config"`
	ICL       flywheel.ICLConfig       `yaml:"icl_config"`
	Training  flywheel.TrainingConfig  `yaml:"training_config"`
	LoRA      flywheel.LoRAConfig      `yaml:"lora_config"`

	// DatabaseURL is "sqlite:PATH" or a "postgres://" / "postgresql://"
	// URL. Empty in Default; Load makes it sqlite:<data_dir>/flywheel.db.
	DatabaseURL string `yaml:"database_url"`
	// DataDir holds the SQLite database, dataset files and local models.
	// Empty in Default; Load resolves it from the environment.
	DataDir       string              `yaml:"data_dir"`
	Server        ServerConfig        `yaml:"server"`
	Platform      PlatformConfig      `yaml:"platform"`
	Engine        EngineConfig        `yaml:"engine"`
	Eval          EvalConfig          `yaml:"eval"`
	Elasticsearch ElasticsearchConfig `yaml:"elasticsearch"`
	Capture       CaptureConfig       `yaml:"capture"`
	Logs          LogsConfig          `yaml:"logs"`
	Online        OnlineConfig        `yaml:"online"`
	Cost          CostConfig          `yaml:"cost"`
}

// LogsConfig governs the stored production traffic (logs): redaction at
// ingest and retention.
type LogsConfig struct {
	// Redaction selects the detectors run on every record before it is
	// stored (flywheel load, POST /api/logs, the capture proxy) or read
	// (Elasticsearch). Secrets and payment cards are on by default.
	Redaction redact.Config `yaml:"redaction"`
	// RetentionDays deletes stored records older than this many days
	// (0 keeps them forever).
	RetentionDays int `yaml:"retention_days"`
	// WorkloadRetentionDays overrides RetentionDays per workload id (0
	// keeps that workload's records forever).
	WorkloadRetentionDays map[string]int `yaml:"workload_retention_days,omitempty"`
	// RetentionInterval is how often the retention job runs.
	RetentionInterval time.Duration `yaml:"retention_interval"`
}

// RetentionIntervalDefault is how often the retention job runs by default.
const RetentionIntervalDefault = time.Hour

// NMPConfig locates the NeMo Microservices Platform (nmp_config).
type NMPConfig struct {
	NemoBaseURL      string `yaml:"nemo_base_url"`
	NIMBaseURL       string `yaml:"nim_base_url"`
	DatastoreBaseURL string `yaml:"datastore_base_url"`
	Namespace        string `yaml:"nmp_namespace"`
	// The per-service URLs default to NemoBaseURL (Load fills them in).
	EntityStoreURL string `yaml:"entity_store_url"`
	CustomizerURL  string `yaml:"customizer_url"`
	EvaluatorURL   string `yaml:"evaluator_url"`
	DeploymentURL  string `yaml:"deployment_url"`
	// ExternalDeployments is for NIMs deployed by someone else (the NIM
	// operator): nothing is created or deleted through Deployment
	// Management; a candidate is ready once the NIM proxy lists it.
	ExternalDeployments bool `yaml:"external_deployments"`

	// NemoAPIKey is sent to the NeMo services (NEMO_API_KEY, then NVIDIA_API_KEY).
	NemoAPIKey string `yaml:"-"`
	// NIMAPIKey is sent to the NIM proxy (NIM_API_KEY, then NVIDIA_API_KEY).
	NIMAPIKey string `yaml:"-"`
	// DatastoreAPIKey is sent to the data store (DATASTORE_API_KEY, then NVIDIA_API_KEY).
	DatastoreAPIKey string `yaml:"-"`
	// HFToken is the Hugging Face token the data store's HF API expects (HF_TOKEN).
	HFToken string `yaml:"-"`
}

// LoggingConfig configures the process logger (logging_config).
type LoggingConfig struct {
	// Level is DEBUG, INFO, WARNING, ERROR or CRITICAL (any case).
	Level string `yaml:"level"`
	// Format is json, text, or auto (text on a terminal, json otherwise).
	Format string `yaml:"format"`
}

// Log formats.
const (
	LogFormatJSON = "json"
	LogFormatText = "text"
	LogFormatAuto = "auto"
)

// SlogLevelCritical is the slog level used for the blueprint's CRITICAL.
const SlogLevelCritical = slog.LevelError + 4

// SlogLevel returns the slog level of Level; an unknown level gives
// slog.LevelInfo (Validate rejects unknown levels).
func (l LoggingConfig) SlogLevel() slog.Level {
	switch strings.ToUpper(l.Level) {
	case "DEBUG":
		return slog.LevelDebug
	case "WARNING", "WARN":
		return slog.LevelWarn
	case "ERROR":
		return slog.LevelError
	case "CRITICAL":
		return SlogLevelCritical
	default:
		return slog.LevelInfo
	}
}

// MLflowConfig configures the optional MLflow export (mlflow_config).
type MLflowConfig struct {
	// Enabled is true when set in the file or when COMPOSE_PROFILES names "mlflow".
	Enabled              bool   `yaml:"enabled"`
	TrackingURI          string `yaml:"tracking_uri"`
	ExperimentNamePrefix string `yaml:"experiment_name_prefix"`
	ArtifactLocation     string `yaml:"artifact_location"`
}

// ServerConfig configures the HTTP server (server).
type ServerConfig struct {
	// Addr is the host:port the API listens on.
	Addr string `yaml:"addr"`
	// AllowedHosts are the host names, besides localhost and IP addresses,
	// the server answers to (the Host header): exact names, "*.suffix" for
	// every subdomain, or "*" for any. Others get 421, which defeats DNS
	// rebinding. The host of Addr is allowed too.
	AllowedHosts []string `yaml:"allowed_hosts,omitempty"`
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading a request's body, from its first byte
	// read to its end; answers are not bounded (streams may last long).
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// IdleTimeout bounds how long a kept-alive connection waits for its
	// next request.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// Auth configures API tokens and the dashboard login (server.auth).
	Auth AuthConfig `yaml:"auth"`
	// InsecureNoAuth lets the server listen beyond loopback without
	// authentication (it warns loudly at start). Without it, serve refuses.
	InsecureNoAuth bool `yaml:"insecure_no_auth"`
	// TLSCertFile and TLSKeyFile, both set, make the server speak HTTPS.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// BlueprintJobList makes GET /api/jobs without limit or cursor answer
	// every run, oldest first, as the blueprint does (default: pages of
	// 100, newest first).
	BlueprintJobList bool `yaml:"blueprint_job_list"`
}

// AuthConfig configures authentication (server.auth).
type AuthConfig struct {
	// Enabled turns authentication on or off; unset (nil), it is on when
	// the server listens beyond loopback and off on loopback.
	Enabled *bool `yaml:"enabled"`
	// MetricsPublic serves /metrics without a token when auth is on.
	MetricsPublic bool `yaml:"metrics_public"`
	// SessionTTL is how long a dashboard login lasts.
	SessionTTL time.Duration `yaml:"session_ttl"`
	// TokensFile names a file of managed API tokens ("NAME SCOPE SECRET"
	// lines, such as a mounted Kubernetes Secret), synced to the database
	// at every start of serve and worker; see flywheel.ParseTokensFile.
	TokensFile string `yaml:"tokens_file"`
}

// SessionTTLDefault is how long a dashboard login lasts by default.
const SessionTTLDefault = 12 * time.Hour

// LoopbackAddr reports whether addr (host:port) listens on loopback only:
// "localhost" or a loopback IP. An empty host (all interfaces) or any
// other name is not loopback.
func LoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// AuthEnabled reports whether requests need a token: server.auth.enabled
// when set, otherwise whenever the server listens beyond loopback.
func (s ServerConfig) AuthEnabled() bool {
	if s.Auth.Enabled != nil {
		return *s.Auth.Enabled
	}
	return !LoopbackAddr(s.Addr)
}

// ExposedWithoutAuth reports whether the server would listen beyond
// loopback with authentication off; serve refuses that unless
// InsecureNoAuth is set.
func (s ServerConfig) ExposedWithoutAuth() bool {
	return !s.AuthEnabled() && !LoopbackAddr(s.Addr)
}

// TLS reports whether the server speaks HTTPS.
func (s ServerConfig) TLS() bool { return s.TLSCertFile != "" && s.TLSKeyFile != "" }

// Platform names.
const (
	PlatformLocal    = "local"
	PlatformNeMo     = "nemo"
	PlatformEndpoint = "endpoint"
)

// PlatformConfig chooses where models are deployed and fine-tuned (platform).
type PlatformConfig struct {
	// Name is local, nemo or endpoint. When the file names no platform but
	// sets nmp_config.nemo_base_url (a blueprint file), Load picks nemo.
	Name  string      `yaml:"name"`
	Local LocalConfig `yaml:"local"`
}

// LocalConfig configures the local platform (platform.local).
type LocalConfig struct {
	// LlamaServerPath is the llama-server binary (a name looked up on PATH, or a path).
	LlamaServerPath string `yaml:"llama_server_path"`
	// PythonPath is the Python interpreter that has PyTorch, for fine-tuning.
	PythonPath string `yaml:"python_path"`
	// Threads is the CPU threads each server or trainer process may use.
	Threads int `yaml:"threads"`
	// ModelsDir holds model files; Load defaults it to <data_dir>/models.
	ModelsDir string `yaml:"models_dir"`
	// InstallDir is where scripts/install-local.sh installed llama-server
	// and models (env FLYWHEEL_LOCAL_DIR); empty: found in the system-wide
	// directory, then the user's cache.
	InstallDir string `yaml:"install_dir"`
	// Options holds any further local-platform settings, as strings.
	Options map[string]string `yaml:"options,omitempty"`
}

// EngineConfig configures the run engine (engine).
type EngineConfig struct {
	// MaxConcurrentRuns is how many runs make progress at once.
	MaxConcurrentRuns int `yaml:"max_concurrent_runs"`
	// MaxParallelDeployments is how many candidates of one process are
	// deployed at the same time.
	MaxParallelDeployments int `yaml:"max_parallel_deployments"`
	// Workers is the number of stage jobs a process executes at once.
	Workers int `yaml:"workers"`
	// StageLimits holds the time limits of every stage.
	StageLimits map[flywheel.StageName]StageLimit `yaml:"stage_limits"`
	Retry       RetryConfig                       `yaml:"retry"`
	// PollInterval is the wait between two polls of long remote work.
	PollInterval time.Duration `yaml:"poll_interval"`
	// StallTimeout fails remote work whose progress has not grown for this long.
	StallTimeout time.Duration `yaml:"stall_timeout"`
	// LeaseTTL is how long a worker's lease on a resource lasts without renewal.
	LeaseTTL time.Duration `yaml:"lease_ttl"`
	// RescueAfter is River's own rescuer's horizon: a backstop for jobs
	// other than stages (a stage of a dead process is handed back after
	// DeadAfter).
	RescueAfter time.Duration `yaml:"rescue_after"`
	// HeartbeatInterval is how often a process records that it is alive and
	// which stage jobs it holds.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	// DeadAfter is how long a process may go without a heartbeat before its
	// running stages are handed to other processes.
	DeadAfter time.Duration `yaml:"dead_after"`
	// StrandedAfter is how long after a stage job was fetched for a live
	// process that process's heartbeat must list it; otherwise the job is
	// handed back (a fetch lost in a database stall).
	StrandedAfter time.Duration `yaml:"stranded_after"`
	// LivenessInterval is how often the leader runs the liveness check.
	LivenessInterval time.Duration `yaml:"liveness_interval"`
	// ScheduleInterval is how often the leader checks the schedules (a
	// cron time that comes sooner is checked at that time).
	ScheduleInterval time.Duration `yaml:"schedule_interval"`
}

// StageLimit is a stage's time limits. Hard is the overall limit, measured
// from the stage's first start; Soft is the earlier deadline the stage's
// context gets so that it can clean up. A file that gives Hard only gets
// Soft = Hard - Hard/12.
type StageLimit struct {
	Hard time.Duration `yaml:"hard"`
	Soft time.Duration `yaml:"soft"`
}

// Limit returns the stage's limits, or a zero StageLimit when none is set.
func (e EngineConfig) Limit(stage flywheel.StageName) StageLimit {
	return e.StageLimits[stage]
}

// RetryConfig is the retry policy of transient stage failures (engine.retry).
type RetryConfig struct {
	MaxAttempts    int           `yaml:"max_attempts"`
	InitialBackoff time.Duration `yaml:"initial_backoff"`
	MaxBackoff     time.Duration `yaml:"max_backoff"`
}

// EvalConfig configures our in-process evaluator (eval).
type EvalConfig struct {
	// Backend is who evaluates: inprocess (our runner, any platform) or
	// nemo (NeMo Evaluator jobs, the blueprint's path; platform nemo only).
	Backend string `yaml:"backend"`
	// Concurrency is the number of requests in flight per evaluation.
	Concurrency int `yaml:"concurrency"`
	// RequestTimeout bounds one request to a candidate or the judge.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// MaxRetries is the retries of a failed request (transient errors only).
	MaxRetries int `yaml:"max_retries"`
	// MaxTokens caps the completion of every replayed request (0: keep the
	// logged request's own max_tokens).
	MaxTokens int `yaml:"max_tokens"`
	// RecommendationMargin is how far below the reference score a candidate
	// may be and still be recommended (same scale as the metric).
	RecommendationMargin float64 `yaml:"recommendation_margin"`
	// RecommendationMetric is the score the recommendation compares.
	RecommendationMetric RecommendationMetric `yaml:"recommendation_metric"`
	// ToolCallChecker is the mode of the tool-call AST checker (ast_accuracy):
	// flywheel (BFCL's checks with documented deviations) or bfcl (BFCL's
	// verdicts and error types exactly).
	ToolCallChecker string `yaml:"tool_call_checker"`
}

// RecommendationMetric names the score compared per workload type.
type RecommendationMetric struct {
	ToolCalling string `yaml:"tool_calling"`
	Generic     string `yaml:"generic"`
}

// For returns the metric used for workload type w.
func (m RecommendationMetric) For(w flywheel.WorkloadType) string {
	if w == flywheel.WorkloadToolCalling {
		return m.ToolCalling
	}
	return m.Generic
}

// ElasticsearchConfig configures the optional Elasticsearch record source
// (elasticsearch). An empty URL means it is not used.
type ElasticsearchConfig struct {
	URL      string `yaml:"url"`
	Index    string `yaml:"index"`
	Username string `yaml:"username"`
	// Password comes from ELASTICSEARCH_PASSWORD only.
	Password string `yaml:"-"`
	// APIKey comes from ELASTICSEARCH_API_KEY only.
	APIKey string `yaml:"-"`
	// CACert is a PEM file of the CA that signs the server's certificate.
	CACert             string `yaml:"ca_cert"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// CaptureConfig configures the OpenAI-compatible capture proxy (capture).
// An empty UpstreamURL means the proxy is off.
type CaptureConfig struct {
	UpstreamURL string `yaml:"upstream_url"`
	// ForwardAuthorization passes the caller's Authorization header
	// upstream when no upstream key is set. Refused with auth on, where
	// that header carries the caller's Flywheel token.
	ForwardAuthorization bool `yaml:"forward_authorization"`
	// UpstreamAPIKey comes from CAPTURE_UPSTREAM_API_KEY, then OPENAI_API_KEY.
	UpstreamAPIKey string `yaml:"-"`
	// Promotion tunes the routing of promoted workloads.
	Promotion PromotionRouting `yaml:"promotion"`
}

// Defaults of our own keys.
const (
	NamespaceDefault              = "dfwbp"
	AddrDefault                   = "127.0.0.1:8000"
	ReadHeaderTimeoutDefault      = 10 * time.Second
	ReadTimeoutDefault            = 5 * time.Minute
	IdleTimeoutDefault            = 2 * time.Minute
	LogLevelDefault               = "INFO"
	MaxConcurrentRunsDefault      = 4
	MaxParallelDeploymentsDefault = 1
	WorkersDefault                = 8
	RetryMaxAttemptsDefault       = 5
	RetryInitialBackoffDefault    = time.Second
	RetryMaxBackoffDefault        = time.Minute
	PollIntervalDefault           = 5 * time.Second
	StallTimeoutDefault           = 30 * time.Minute
	LeaseTTLDefault               = time.Minute
	RescueAfterDefault            = 15 * time.Minute
	HeartbeatIntervalDefault      = 5 * time.Second
	DeadAfterDefault              = 30 * time.Second
	StrandedAfterDefault          = 20 * time.Second
	LivenessIntervalDefault       = 5 * time.Second
	ScheduleIntervalDefault       = 30 * time.Second
	EvalConcurrencyDefault        = 8
	EvalRequestTimeoutDefault     = 60 * time.Second
	EvalMaxRetriesDefault         = 3
	RecommendationMarginDefault   = 0.05
	ElasticsearchIndexDefault     = "flywheel"
	LocalThreadsDefault           = 1
	// RegistryBaseDefault is the image prefix of NIMs on the nemo platform.
	RegistryBaseDefault = "nvcr.io/nim"
	// DatabaseFileName is the SQLite file Load puts in the data dir.
	DatabaseFileName = "flywheel.db"
)

// Default candidates of the local platform.
const (
	LocalTinySmall  = "local/tiny-s"
	LocalTinyMedium = "local/tiny-m"
)

// StageLimitDefaults returns the default time limits of every stage.
func StageLimitDefaults() map[flywheel.StageName]StageLimit {
	return map[flywheel.StageName]StageLimit{
		flywheel.StageInitialize:           {Hard: 10 * time.Minute, Soft: 9 * time.Minute},
		flywheel.StageCreateDatasets:       {Hard: time.Hour, Soft: 55 * time.Minute},
		flywheel.StageWaitForJudge:         {Hard: 2 * time.Hour, Soft: 110 * time.Minute},
		flywheel.StageSpinUpNIM:            {Hard: 2 * time.Hour, Soft: 110 * time.Minute},
		flywheel.StageRunBaseEval:          {Hard: 3 * time.Hour, Soft: 170 * time.Minute},
		flywheel.StageRunICLEval:           {Hard: 3 * time.Hour, Soft: 170 * time.Minute},
		flywheel.StageStartCustomization:   {Hard: 24 * time.Hour, Soft: 23*time.Hour + 30*time.Minute},
		flywheel.StageRunCustomizationEval: {Hard: 4 * time.Hour, Soft: 230 * time.Minute},
		flywheel.StageShutdownDeployment:   {Hard: 30 * time.Minute, Soft: 25 * time.Minute},
		flywheel.StageFinalize:             {Hard: 10 * time.Minute, Soft: 9 * time.Minute},
		flywheel.StageCleanup:              {Hard: time.Hour, Soft: 55 * time.Minute},
	}
}

// StageNames returns every stage name, in DAG order (cleanup last).
func StageNames() []flywheel.StageName {
	return []flywheel.StageName{
		flywheel.StageInitialize,
		flywheel.StageCreateDatasets,
		flywheel.StageWaitForJudge,
		flywheel.StageSpinUpNIM,
		flywheel.StageRunBaseEval,
		flywheel.StageRunICLEval,
		flywheel.StageStartCustomization,
		flywheel.StageRunCustomizationEval,
		flywheel.StageShutdownDeployment,
		flywheel.StageFinalize,
		flywheel.StageCleanup,
	}
}

// Default returns the configuration used when there is no file: the local
// platform with two tiny candidates, no judge, and the blueprint's
// config.yaml values for data splitting, ICL, training and LoRA. It reads
// nothing from the environment, so DataDir, DatabaseURL and
// Platform.Local.ModelsDir are left empty; Load fills them in.
func Default() *Config {
	limit := 1000
	return &Config{
		NMP:     NMPConfig{Namespace: NamespaceDefault},
		Logging: LoggingConfig{Level: LogLevelDefault, Format: LogFormatAuto},
		MLflow: MLflowConfig{
			TrackingURI:          "http://0.0.0.0:5000",
			ExperimentNamePrefix: "data-flywheel",
			ArtifactLocation:     "./mlruns",
		},
		// A remote judge with no URL means "no judge": judge metrics are
		// reported as not run.
		Judge: flywheel.JudgeConfig{DeploymentType: flywheel.DeploymentTypeRemote},
		NIMs: []flywheel.NIMConfig{
			localCandidate(LocalTinySmall),
			localCandidate(LocalTinyMedium),
		},
		DataSplit: flywheel.DataSplitConfig{
			EvalSize:               100,
			ValRatio:               0.1,
			MinTotalRecords:        50,
			Limit:                  &limit,
			ParseFunctionArguments: true,
		},
		ICL: flywheel.ICLConfig{
			MaxContextLength: 32768,
			ReservedTokens:   4096,
			MaxExamples:      3,
			MinExamples:      1,
			ExampleSelection: flywheel.SelectionUniform,
		},
		Training: TrainingDefaults(PlatformLocal),
		LoRA:     flywheel.LoRAConfig{AdapterDim: 32, AdapterDropout: 0.1},
		Logs:     LogsConfig{RetentionInterval: RetentionIntervalDefault},
		Online:   OnlineDefault(),
		Server: ServerConfig{Addr: AddrDefault, Auth: AuthConfig{SessionTTL: SessionTTLDefault},
			ReadHeaderTimeout: ReadHeaderTimeoutDefault, ReadTimeout: ReadTimeoutDefault, IdleTimeout: IdleTimeoutDefault},
		Platform: PlatformConfig{
			Name: PlatformLocal,
			Local: LocalConfig{
				LlamaServerPath: "",
				PythonPath:      "",
				Threads:         LocalThreadsDefault,
			},
		},
		Engine: EngineConfig{
			MaxConcurrentRuns:      MaxConcurrentRunsDefault,
			MaxParallelDeployments: MaxParallelDeploymentsDefault,
			Workers:                WorkersDefault,
			StageLimits:            StageLimitDefaults(),
			Retry: RetryConfig{
				MaxAttempts:    RetryMaxAttemptsDefault,
				InitialBackoff: RetryInitialBackoffDefault,
				MaxBackoff:     RetryMaxBackoffDefault,
			},
			PollInterval: PollIntervalDefault,
			StallTimeout: StallTimeoutDefault,
			LeaseTTL:     LeaseTTLDefault,
			RescueAfter:  RescueAfterDefault,
			// Liveness: a dead process's stages are handed back within
			// about DeadAfter + LivenessInterval.
			HeartbeatInterval: HeartbeatIntervalDefault,
			DeadAfter:         DeadAfterDefault,
			StrandedAfter:     StrandedAfterDefault,
			LivenessInterval:  LivenessIntervalDefault,
			ScheduleInterval:  ScheduleIntervalDefault,
		},
		Eval: EvalConfig{
			Backend:              EvalBackendInProcess,
			ToolCallChecker:      ToolCallCheckerFlywheel,
			Concurrency:          EvalConcurrencyDefault,
			RequestTimeout:       EvalRequestTimeoutDefault,
			MaxRetries:           EvalMaxRetriesDefault,
			RecommendationMargin: RecommendationMarginDefault,
			RecommendationMetric: RecommendationMetric{
				ToolCalling: flywheel.ScoreFunctionNameAndArgs,
				Generic:     flywheel.ScoreSimilarity,
			},
		},
		Elasticsearch: ElasticsearchConfig{Index: ElasticsearchIndexDefault},
		Cost:          CostDefaults(),
	}
}

// TrainingDefaults returns training_config's defaults on platform. NeMo
// and endpoint platforms get the blueprint's (LoRA, 2 epochs at 1e-4);
// the local platform gets what teaches its tiny pre-trained candidates a
// workload in a minute or two on a CPU (full fine-tuning, 10 epochs at
// 1e-3: docs/local-models.md), since the blueprint's settings barely move
// them. A field the file sets is kept; an absent or zero one takes its
// platform's default.
func TrainingDefaults(platform string) flywheel.TrainingConfig {
	if platform == PlatformLocal {
		return flywheel.TrainingConfig{
			TrainingType:   TrainingTypeSFT,
			FinetuningType: FinetuningAllWeights,
			Epochs:         10,
			BatchSize:      16,
			LearningRate:   1e-3,
		}
	}
	return flywheel.TrainingConfig{
		TrainingType:   TrainingTypeSFT,
		FinetuningType: FinetuningLoRA,
		Epochs:         2,
		BatchSize:      16,
		LearningRate:   1e-4,
	}
}

func localCandidate(name string) flywheel.NIMConfig {
	n := flywheel.NIMConfig{
		ModelName:            name,
		ModelType:            ModelTypeLLM,
		ContextLength:        4096,
		CustomizationEnabled: true,
		CustomizerConfigs:    &flywheel.CustomizerConfig{Target: name, MaxSeqLength: 2048},
	}
	fillNIMDefaults(&n, PlatformLocal)
	return n
}

// Model types of nims[].model_type.
const (
	ModelTypeLLM       = "llm"
	ModelTypeEmbedding = "embedding"
)

// Training and fine-tuning types.
const (
	TrainingTypeSFT = "sft"
	// Evaluation backends (eval.backend).
	EvalBackendInProcess = "inprocess"
	EvalBackendNeMo      = "nemo"

	// ToolCallCheckerFlywheel and ToolCallCheckerBFCL are the modes of
	// eval.tool_call_checker.
	ToolCallCheckerFlywheel = "flywheel"
	ToolCallCheckerBFCL     = "bfcl"

	FinetuningLoRA         = "lora"
	FinetuningAllWeights   = "all_weights"
	TrainingPrecisionBF16M = "bf16-mixed"
)

// HasJudge reports whether an LLM judge is configured: a local judge, or a
// remote one with a URL.
func (c *Config) HasJudge() bool {
	return c.Judge.DeploymentType == flywheel.DeploymentTypeLocal || c.Judge.URL != ""
}

// Candidate returns the nims entry named model, and whether there is one.
func (c *Config) Candidate(model string) (flywheel.NIMConfig, bool) {
	i := slices.IndexFunc(c.NIMs, func(n flywheel.NIMConfig) bool { return n.ModelName == model })
	if i < 0 {
		return flywheel.NIMConfig{}, false
	}
	return cloneNIM(c.NIMs[i]), true
}
