package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/redact"
)

// FieldError is one problem with one configuration key. Field is the key's
// path in the file, such as "nims[1].customizer_configs.target".
type FieldError struct {
	Field string
	// Line is the line of the file the problem was found on, or 0.
	Line int
	Err  error
}

// Error returns "field: problem", with the line when known.
func (e *FieldError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s: %v (line %d)", e.Field, e.Err, e.Line)
	}
	return fmt.Sprintf("%s: %v", e.Field, e.Err)
}

// Unwrap returns the underlying problem.
func (e *FieldError) Unwrap() error { return e.Err }

// Sentinel problems a FieldError may wrap.
var (
	// ErrRequired marks a key that must be set.
	ErrRequired = errors.New("required")
)

// FieldErrors returns every *FieldError in err's tree, in order.
func FieldErrors(err error) []*FieldError {
	var out []*FieldError
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if fe, ok := e.(*FieldError); ok {
			out = append(out, fe)
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

// problems collects FieldErrors.
type problems struct{ errs []error }

func (p *problems) add(field, format string, args ...any) {
	p.errs = append(p.errs, &FieldError{Field: field, Err: fmt.Errorf(format, args...)})
}

func (p *problems) required(field, when string) {
	if when == "" {
		p.errs = append(p.errs, &FieldError{Field: field, Err: ErrRequired})
		return
	}
	p.errs = append(p.errs, &FieldError{Field: field, Err: fmt.Errorf("%w when %s", ErrRequired, when)})
}

func (p *problems) oneOf(field, v string, allowed ...string) {
	if !slices.Contains(allowed, v) {
		p.add(field, "must be one of %s (got %q)", strings.Join(allowed, ", "), v)
	}
}

func (p *problems) positive(field string, v int) {
	if v <= 0 {
		p.add(field, "must be greater than 0 (got %d)", v)
	}
}

func (p *problems) atMost(field string, v, max int) {
	if v > max {
		p.add(field, "must be at most %d (got %d)", max, v)
	}
}

func (p *problems) nonNegative(field string, v int) {
	if v < 0 {
		p.add(field, "must not be negative (got %d)", v)
	}
}

// httpURL checks that v, when set, is an absolute http or https URL.
func (p *problems) httpURL(field, v string) {
	if v == "" {
		return
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.add(field, "must be an http:// or https:// URL (got %q)", v)
	}
}

// Validate reports every problem of c at once: the error joins one
// *FieldError per problem, section by section. It returns nil for a valid
// config. It reads nothing but c (no files, no environment).
func (c *Config) Validate() error {
	var p problems
	c.validateNMP(&p)
	p.oneOf("logging_config.level", strings.ToUpper(c.Logging.Level), "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
	p.oneOf("logging_config.format", c.Logging.Format, LogFormatJSON, LogFormatText, LogFormatAuto)
	if c.MLflow.Enabled {
		if c.MLflow.TrackingURI == "" {
			p.required("mlflow_config.tracking_uri", "mlflow is enabled")
		}
		p.httpURL("mlflow_config.tracking_uri", c.MLflow.TrackingURI)
		if c.MLflow.ExperimentNamePrefix == "" {
			p.required("mlflow_config.experiment_name_prefix", "mlflow is enabled")
		}
	}
	c.validateJudge(&p)
	c.validateNIMs(&p)
	c.validateDataSplit(&p)
	c.validateICL(&p)
	c.validateTraining(&p)
	c.validateOwn(&p)
	c.validateLogs(&p)
	c.validateOnline(&p)
	c.validateCost(&p)
	return errors.Join(p.errs...)
}

func (c *Config) validateNMP(p *problems) {
	n := c.NMP
	if c.Platform.Name == PlatformNeMo {
		for _, u := range []struct{ field, v string }{
			{"nmp_config.nemo_base_url", n.NemoBaseURL},
			{"nmp_config.nim_base_url", n.NIMBaseURL},
			{"nmp_config.datastore_base_url", n.DatastoreBaseURL},
		} {
			if u.v == "" {
				p.required(u.field, "platform.name is nemo")
			}
		}
	}
	p.httpURL("nmp_config.nemo_base_url", n.NemoBaseURL)
	p.httpURL("nmp_config.nim_base_url", n.NIMBaseURL)
	p.httpURL("nmp_config.datastore_base_url", n.DatastoreBaseURL)
	if n.Namespace == "" {
		p.required("nmp_config.nmp_namespace", "")
	}
	p.httpURL("nmp_config.entity_store_url", n.EntityStoreURL)
	p.httpURL("nmp_config.customizer_url", n.CustomizerURL)
	p.httpURL("nmp_config.evaluator_url", n.EvaluatorURL)
	p.httpURL("nmp_config.deployment_url", n.DeploymentURL)
}

func (c *Config) validateJudge(p *problems) {
	j := c.Judge
	const f = "llm_judge_config"
	p.oneOf(f+".deployment_type", j.DeploymentType, flywheel.DeploymentTypeRemote, flywheel.DeploymentTypeLocal)
	switch j.DeploymentType {
	case flywheel.DeploymentTypeRemote:
		p.httpURL(f+".url", j.URL)
		if j.URL != "" && j.ModelName == "" {
			p.required(f+".model_name", "a remote judge url is set")
		}
	case flywheel.DeploymentTypeLocal:
		if j.ModelName == "" {
			p.required(f+".model_name", "deployment_type is local")
		}
	}
	p.nonNegative(f+".context_length", j.ContextLength)
	p.nonNegative(f+".gpus", j.GPUs)
}

func (c *Config) validateNIMs(p *problems) {
	if len(c.NIMs) == 0 {
		p.add("nims", "at least one candidate model is required")
	}
	first := make(map[string]int, len(c.NIMs))
	for i, n := range c.NIMs {
		f := fmt.Sprintf("nims[%d]", i)
		if n.ModelName == "" {
			p.required(f+".model_name", "")
		} else if j, dup := first[n.ModelName]; dup {
			p.add(f+".model_name", "duplicate of nims[%d] (%q)", j, n.ModelName)
		} else {
			first[n.ModelName] = i
		}
		p.oneOf(f+".model_type", n.ModelType, ModelTypeLLM, ModelTypeEmbedding)
		p.positive(f+".context_length", n.ContextLength)
		p.nonNegative(f+".gpus", n.GPUs)
		if n.PricePer1KTokens < 0 {
			p.add(f+".price_per_1k_tokens", "must not be negative (got %g)", n.PricePer1KTokens)
		}
		if n.PricePerGPUHour < 0 {
			p.add(f+".price_per_gpu_hour", "must not be negative (got %g)", n.PricePerGPUHour)
		}
		p.httpURL(f+".endpoint", n.Endpoint)
		if c.Platform.Name == PlatformNeMo && !c.NMP.ExternalDeployments && n.Tag == "" {
			// Found now, not at spin_up_nim hours into a run.
			p.required(f+".tag", "platform.name is nemo (the NIM image tag to deploy; not needed with nmp_config.external_deployments)")
		}
		if c.Platform.Name == PlatformEndpoint && n.Endpoint == "" {
			p.required(f+".endpoint", "platform.name is endpoint")
		}
		cc := n.CustomizerConfigs
		if n.CustomizationEnabled && cc == nil {
			p.required(f+".customizer_configs", "customization_enabled is true")
		}
		if cc == nil {
			continue
		}
		cf := f + ".customizer_configs"
		if n.CustomizationEnabled && cc.Target == "" {
			p.required(cf+".target", "customization_enabled is true")
		}
		if c.Platform.Name == PlatformNeMo && n.CustomizationEnabled {
			p.positive(cf+".gpus", cc.GPUs)
		} else {
			p.nonNegative(cf+".gpus", cc.GPUs)
		}
		p.nonNegative(cf+".num_nodes", cc.NumNodes)
		p.nonNegative(cf+".tensor_parallel_size", cc.TensorParallelSize)
		p.nonNegative(cf+".data_parallel_size", cc.DataParallelSize)
		p.nonNegative(cf+".micro_batch_size", cc.MicroBatchSize)
		p.nonNegative(cf+".max_seq_length", cc.MaxSeqLength)
	}
}

func (c *Config) validateDataSplit(p *problems) {
	d := c.DataSplit
	const f = "data_split_config"
	p.positive(f+".eval_size", d.EvalSize)
	p.atMost(f+".eval_size", d.EvalSize, flywheel.MaxRecordCount)
	if d.ValRatio < 0 || d.ValRatio >= 1 {
		p.add(f+".val_ratio", "must be at least 0 and less than 1 (got %g)", d.ValRatio)
	}
	p.positive(f+".min_total_records", d.MinTotalRecords)
	p.atMost(f+".min_total_records", d.MinTotalRecords, flywheel.MaxRecordCount)
	if d.Limit != nil {
		switch {
		case *d.Limit <= 0:
			p.add(f+".limit", "must be greater than 0, or null for no limit (got %d)", *d.Limit)
		case *d.Limit > flywheel.MaxRecordCount:
			p.add(f+".limit", "must be at most %d, or null for no limit (got %d)", flywheel.MaxRecordCount, *d.Limit)
		case *d.Limit < d.MinTotalRecords:
			p.add(f+".limit", "must be at least min_total_records (%d), got %d", d.MinTotalRecords, *d.Limit)
		}
	}
	p.nonNegative(f+".max_tool_properties", d.MaxToolProperties)
}

func (c *Config) validateICL(p *problems) {
	icl := c.ICL
	const f = "icl_config"
	p.positive(f+".max_context_length", icl.MaxContextLength)
	p.nonNegative(f+".reserved_tokens", icl.ReservedTokens)
	if icl.MaxContextLength > 0 && icl.ReservedTokens >= icl.MaxContextLength {
		p.add(f+".reserved_tokens", "must be less than max_context_length (%d), got %d", icl.MaxContextLength, icl.ReservedTokens)
	}
	p.positive(f+".max_examples", icl.MaxExamples)
	if c.DataSplit.EvalSize > 0 && icl.MaxExamples > c.DataSplit.EvalSize {
		p.add(f+".max_examples", "must not exceed data_split_config.eval_size (%d), got %d", c.DataSplit.EvalSize, icl.MaxExamples)
	}
	p.nonNegative(f+".min_examples", icl.MinExamples)
	if icl.MinExamples > icl.MaxExamples && icl.MaxExamples > 0 {
		p.add(f+".min_examples", "must not exceed max_examples (%d), got %d", icl.MaxExamples, icl.MinExamples)
	}
	p.oneOf(f+".example_selection", icl.ExampleSelection, flywheel.SelectionUniform, flywheel.SelectionSemantic)
	s := icl.SimilarityConfig
	semantic := icl.ExampleSelection == flywheel.SelectionSemantic
	const when = "example_selection is " + flywheel.SelectionSemantic
	if s == nil {
		if semantic {
			p.required(f+".similarity_config", when)
		}
		return
	}
	sf := f + ".similarity_config"
	if s.RelevanceRatio < 0 || s.RelevanceRatio > 1 {
		p.add(sf+".relevance_ratio", "must be between 0 and 1 (got %g)", s.RelevanceRatio)
	}
	e := s.EmbeddingNIMConfig
	if e == nil {
		if semantic {
			p.required(sf+".embedding_nim_config", when)
		}
		return
	}
	ef := sf + ".embedding_nim_config"
	p.oneOf(ef+".deployment_type", e.DeploymentType, flywheel.DeploymentTypeRemote, flywheel.DeploymentTypeLocal)
	if e.ModelName == "" {
		p.required(ef+".model_name", "")
	}
	if e.DeploymentType == flywheel.DeploymentTypeRemote && e.URL == "" {
		p.required(ef+".url", "deployment_type is remote")
	}
	p.httpURL(ef+".url", e.URL)
	p.nonNegative(ef+".context_length", e.ContextLength)
	p.nonNegative(ef+".gpus", e.GPUs)
}

func (c *Config) validateTraining(p *problems) {
	t := c.Training
	p.oneOf("training_config.training_type", t.TrainingType, TrainingTypeSFT)
	p.oneOf("training_config.finetuning_type", t.FinetuningType, FinetuningLoRA, FinetuningAllWeights)
	p.positive("training_config.epochs", t.Epochs)
	p.positive("training_config.batch_size", t.BatchSize)
	if t.LearningRate <= 0 {
		p.add("training_config.learning_rate", "must be greater than 0 (got %g)", t.LearningRate)
	}
	l := c.LoRA
	p.positive("lora_config.adapter_dim", l.AdapterDim)
	if l.AdapterDropout < 0 || l.AdapterDropout >= 1 {
		p.add("lora_config.adapter_dropout", "must be at least 0 and less than 1 (got %g)", l.AdapterDropout)
	}
	p.nonNegative("lora_config.alpha", l.Alpha)
}

func (c *Config) validateOwn(p *problems) {
	validateDatabaseURL(p, c.DatabaseURL)
	if c.DataDir == "" {
		p.add("data_dir", "%w: set data_dir or %s (or XDG_DATA_HOME or HOME)", ErrRequired, EnvDataDir)
	}
	if _, port, err := net.SplitHostPort(c.Server.Addr); err != nil {
		p.add("server.addr", "must be host:port (got %q)", c.Server.Addr)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.add("server.addr", "port must be a number from 0 to 65535 (got %q)", port)
	}
	c.validateServerLimits(p)
	c.validateServerAuth(p)

	p.oneOf("platform.name", c.Platform.Name, PlatformLocal, PlatformNeMo, PlatformEndpoint)
	if c.Platform.Name == PlatformLocal {
		// Empty paths are found at start (see docs/config.md).
		p.positive("platform.local.threads", c.Platform.Local.Threads)
		if b, ok := c.Platform.Local.Options["base"]; ok {
			p.oneOf("platform.local.options.base", b, "pretrained", "random")
		}
	}

	e := c.Engine
	p.positive("engine.max_concurrent_runs", e.MaxConcurrentRuns)
	p.positive("engine.max_parallel_deployments", e.MaxParallelDeployments)
	p.positive("engine.workers", e.Workers)
	known := StageNames()
	for _, name := range known {
		l, ok := e.StageLimits[name]
		f := "engine.stage_limits." + string(name)
		switch {
		case !ok:
			p.required(f, "")
		case l.Hard <= 0:
			p.add(f+".hard", "must be greater than 0 (got %s)", l.Hard)
		case l.Soft <= 0:
			p.add(f+".soft", "must be greater than 0 (got %s)", l.Soft)
		case l.Soft >= l.Hard:
			p.add(f+".soft", "must be less than hard (%s), got %s", l.Hard, l.Soft)
		}
	}
	var unknown []string
	for name := range e.StageLimits {
		if !slices.Contains(known, name) {
			unknown = append(unknown, string(name))
		}
	}
	slices.Sort(unknown)
	for _, name := range unknown {
		p.add("engine.stage_limits."+name, "unknown stage; stages are %s", stageList(known))
	}
	p.positive("engine.retry.max_attempts", e.Retry.MaxAttempts)
	if e.HeartbeatInterval > 0 && e.DeadAfter < 3*e.HeartbeatInterval {
		p.add("engine.dead_after", "must be at least 3 heartbeat intervals (%s), got %s", 3*e.HeartbeatInterval, e.DeadAfter)
	}
	if e.StrandedAfter > 0 && e.StrandedAfter < 12*time.Second {
		p.add("engine.stranded_after", "must be at least 12s (River gives up a fetch after 10s), got %s", e.StrandedAfter)
	}
	if e.Retry.InitialBackoff <= 0 {
		p.add("engine.retry.initial_backoff", "must be greater than 0 (got %s)", e.Retry.InitialBackoff)
	}
	if e.Retry.MaxBackoff < e.Retry.InitialBackoff {
		p.add("engine.retry.max_backoff", "must be at least initial_backoff (%s), got %s", e.Retry.InitialBackoff, e.Retry.MaxBackoff)
	}
	durations := []struct {
		field string
		v     time.Duration
	}{
		{"engine.poll_interval", e.PollInterval},
		{"engine.stall_timeout", e.StallTimeout},
		{"engine.lease_ttl", e.LeaseTTL},
		{"engine.rescue_after", e.RescueAfter},
		{"engine.heartbeat_interval", e.HeartbeatInterval},
		{"engine.dead_after", e.DeadAfter},
		{"engine.stranded_after", e.StrandedAfter},
		{"engine.liveness_interval", e.LivenessInterval},
		{"engine.schedule_interval", e.ScheduleInterval},
		{"eval.request_timeout", c.Eval.RequestTimeout},
	}
	for _, d := range durations {
		if d.v <= 0 {
			p.add(d.field, "must be greater than 0 (got %s)", d.v)
		}
	}

	ev := c.Eval
	p.positive("eval.concurrency", ev.Concurrency)
	p.nonNegative("eval.max_retries", ev.MaxRetries)
	p.nonNegative("eval.max_tokens", ev.MaxTokens)
	if ev.Backend != "" {
		p.oneOf("eval.backend", ev.Backend, EvalBackendInProcess, EvalBackendNeMo)
		if ev.Backend == EvalBackendNeMo && c.Platform.Name != PlatformNeMo {
			p.add("eval.backend", "nemo needs platform.name nemo (got %q)", c.Platform.Name)
		}
	}
	if ev.ToolCallChecker != "" {
		p.oneOf("eval.tool_call_checker", ev.ToolCallChecker, ToolCallCheckerFlywheel, ToolCallCheckerBFCL)
	}
	if ev.RecommendationMargin < 0 {
		p.add("eval.recommendation_margin", "must not be negative (got %g)", ev.RecommendationMargin)
	}
	if ev.RecommendationMetric.ToolCalling == "" {
		p.required("eval.recommendation_metric.tool_calling", "")
	}
	if ev.RecommendationMetric.Generic == "" {
		p.required("eval.recommendation_metric.generic", "")
	}

	es := c.Elasticsearch
	p.httpURL("elasticsearch.url", es.URL)
	if es.URL != "" && es.Index == "" {
		p.required("elasticsearch.index", "elasticsearch.url is set")
	}
	p.httpURL("capture.upstream_url", c.Capture.UpstreamURL)
	c.validatePromotion(p)
	if c.Capture.ForwardAuthorization && c.Server.AuthEnabled() {
		p.add("capture.forward_authorization", "cannot be used with authentication on: callers send their Flywheel token "+
			"in Authorization, which must not reach the upstream; set the upstream key (CAPTURE_UPSTREAM_API_KEY) instead")
	}
}

// validateServerLimits checks the server's timeouts and allowed hosts.
func (c *Config) validateServerLimits(p *problems) {
	s := c.Server
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"server.read_header_timeout", s.ReadHeaderTimeout},
		{"server.read_timeout", s.ReadTimeout},
		{"server.idle_timeout", s.IdleTimeout},
	} {
		if d.v <= 0 {
			p.add(d.field, "must be greater than 0 (got %s)", d.v)
		}
	}
	for i, h := range s.AllowedHosts {
		name := strings.TrimPrefix(h, "*.")
		if h != "*" && (name == "" || strings.ContainsAny(name, "/:@ \t*") || strings.Contains(name, "..")) {
			p.add(fmt.Sprintf("server.allowed_hosts[%d]", i),
				"must be a host name, *.domain or *, without scheme or port (got %q)", h)
		}
	}
}

func stageList(names []flywheel.StageName) string {
	s := make([]string, len(names))
	for i, n := range names {
		s[i] = string(n)
	}
	return strings.Join(s, ", ")
}

// validateDatabaseURL accepts sqlite:PATH (also sqlite://PATH) and
// postgres:// or postgresql:// URLs.
func validateDatabaseURL(p *problems, v string) {
	const f = "database_url"
	if v == "" {
		p.add(f, "%w: set database_url or %s", ErrRequired, EnvDatabaseURL)
		return
	}
	scheme, rest, ok := strings.Cut(v, ":")
	if !ok {
		p.add(f, "must start with sqlite:, postgres: or postgresql:")
		return
	}
	switch scheme {
	case "sqlite":
		if strings.TrimPrefix(rest, "//") == "" {
			p.add(f, "sqlite: needs a file path, as in sqlite:/var/lib/flywheel/flywheel.db")
		}
	case "postgres", "postgresql":
		// The URL may hold a password: never echo it.
		if _, err := url.Parse(v); err != nil {
			p.add(f, "is not a valid URL")
		}
	default:
		p.add(f, "must start with sqlite:, postgres: or postgresql:")
	}
}

// validateServerAuth checks server.auth and TLS, and refuses a listen
// address beyond loopback with authentication off unless that is asked
// for explicitly.
func (c *Config) validateServerAuth(p *problems) {
	s := c.Server
	if s.ExposedWithoutAuth() && !s.InsecureNoAuth {
		p.add("server.auth.enabled", "is false while server.addr %q listens beyond loopback: anyone who reaches it could "+
			"start, cancel and delete runs; turn auth on (remove server.auth.enabled: false), listen on 127.0.0.1, "+
			"or set server.insecure_no_auth: true to accept that", s.Addr)
	}
	if s.Auth.TokensFile != "" && !s.AuthEnabled() {
		p.add("server.auth.tokens_file", "is set while authentication is off (server.addr %q is loopback or server.auth.enabled "+
			"is false), so its tokens would never be asked for; set server.auth.enabled: true", s.Addr)
	}
	if s.Auth.SessionTTL < time.Minute {
		p.add("server.auth.session_ttl", "must be at least 1m (got %s)", s.Auth.SessionTTL)
	}
	if (s.TLSCertFile == "") != (s.TLSKeyFile == "") {
		field := "server.tls_key_file"
		if s.TLSCertFile == "" {
			field = "server.tls_cert_file"
		}
		p.add(field, "%w when the other of server.tls_cert_file and server.tls_key_file is set", ErrRequired)
	}
}

func (c *Config) validateLogs(p *problems) {
	if _, err := redact.New(c.Logs.Redaction); err != nil {
		p.add("logs.redaction", "%v", err)
	}
	p.nonNegative("logs.retention_days", c.Logs.RetentionDays)
	for w, d := range c.Logs.WorkloadRetentionDays {
		p.nonNegative("logs.workload_retention_days."+w, d)
	}
	if c.Logs.RetentionInterval < time.Minute {
		p.add("logs.retention_interval", "must be at least 1m, got %s", c.Logs.RetentionInterval)
	}
}
