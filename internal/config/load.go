package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// Environment variables read by Load.
const (
	EnvDatabaseURL = "FLYWHEEL_DATABASE_URL"
	EnvDataDir     = "FLYWHEEL_DATA_DIR"
	EnvAddr        = "FLYWHEEL_ADDR"
	// EnvTokensFile sets server.auth.tokens_file.
	EnvTokensFile = "FLYWHEEL_TOKENS_FILE"
	// EnvLocalDir sets platform.local.install_dir; EnvCache is its older
	// name, still read.
	EnvLocalDir = "FLYWHEEL_LOCAL_DIR"
	EnvCache    = "FLYWHEEL_CACHE"
)

// Load returns the configuration: Default, overlaid with the YAML file at
// path (skipped when path is ""), then with the environment read through
// env (secrets, and the FLYWHEEL_* overrides), then with the derived
// defaults (data dir, database URL, per-service URLs). The result is
// validated. A nil env reads nothing.
//
// Every problem is reported at once: the error joins one *FieldError per
// unknown key, wrongly typed value and invalid setting (see FieldErrors).
func Load(path string, env func(string) string) (*Config, error) {
	if path == "" {
		return Parse(nil, env)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(data, env)
	if err != nil {
		return nil, fmt.Errorf("load config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse is Load for a YAML document already in memory; empty data means no file.
func Parse(data []byte, env func(string) string) (*Config, error) {
	if env == nil {
		env = func(string) string { return "" }
	}
	cfg := Default()
	var fileErrs []*FieldError
	if len(data) > 0 {
		if err := cfg.decode(data); err != nil {
			if fileErrs = FieldErrors(err); len(fileErrs) == 0 {
				return nil, err // not YAML at all
			}
		}
	}
	cfg.applyEnv(env)
	cfg.resolve(env)
	errs := make([]error, 0, len(fileErrs))
	for _, fe := range fileErrs {
		errs = append(errs, fe)
	}
	// A key the file got wrong is reported once, as the file's problem.
	for _, fe := range FieldErrors(cfg.Validate()) {
		if !slices.ContainsFunc(fileErrs, func(f *FieldError) bool { return within(fe.Field, f.Field) }) {
			errs = append(errs, fe)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return cfg, nil
}

// within reports whether field is the key path or lies below it.
func within(field, path string) bool {
	rest, ok := strings.CutPrefix(field, path)
	return ok && (rest == "" || rest[0] == '.' || rest[0] == '[')
}

// decode overlays the YAML document on c. Unknown keys and wrongly typed
// values come back as *FieldError, joined.
func (c *Config) decode(data []byte) error {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return fmt.Errorf("parse yaml: %w", err)
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return nil
	}
	doc := root.Content[0]
	if doc.Tag == "!!null" {
		return nil
	}
	var errs []error
	check(doc, typeOfConfig(), "", &errs)
	c.Platform.Name = ""
	// With errs, decode anyway (yaml.v3 goes on past a bad value) so that
	// Validate can still report the file's other problems.
	if err := doc.Decode(c); err != nil && len(errs) == 0 {
		return fmt.Errorf("decode yaml: %w", err)
	}
	if c.Platform.Name == "" {
		c.Platform.Name = PlatformLocal
		if c.NMP.NemoBaseURL != "" {
			c.Platform.Name = PlatformNeMo
		}
	}
	c.Training = trainingDefaults(doc, c.Training, TrainingDefaults(c.Platform.Name))
	c.NIMs = dedupNIMs(c.NIMs)
	defaults := StageLimitDefaults()
	for name, l := range c.Engine.StageLimits {
		if l.Hard == 0 {
			l.Hard = defaults[name].Hard
			if l.Soft == 0 {
				l.Soft = defaults[name].Soft
			}
		}
		if l.Soft == 0 {
			l.Soft = l.Hard - l.Hard/12
		}
		c.Engine.StageLimits[name] = l
	}
	return errors.Join(errs...)
}

// trainingDefaults returns t with every training_config key the document
// does not set taken from d, the platform's defaults: a key it sets is
// kept, zero included, for Validate to judge.
func trainingDefaults(doc *yaml.Node, t, d flywheel.TrainingConfig) flywheel.TrainingConfig {
	set := map[string]any{} // decoding follows aliases and merge keys
	if sec := mappingValue(doc, "training_config"); sec != nil {
		_ = sec.Decode(&set) // a section that is not a mapping was reported by check
	}
	has := func(k string) bool { _, ok := set[k]; return ok }
	if !has("training_type") {
		t.TrainingType = d.TrainingType
	}
	if !has("finetuning_type") {
		t.FinetuningType = d.FinetuningType
	}
	if !has("epochs") {
		t.Epochs = d.Epochs
	}
	if !has("batch_size") {
		t.BatchSize = d.BatchSize
	}
	if !has("learning_rate") {
		t.LearningRate = d.LearningRate
	}
	return t
}

// mappingValue returns the value node of key in the mapping m, or nil.
func mappingValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// dedupNIMs drops later entries whose model_name repeats an earlier one,
// as the blueprint does.
func dedupNIMs(nims []flywheel.NIMConfig) []flywheel.NIMConfig {
	seen := make(map[string]bool, len(nims))
	out := nims[:0]
	for _, n := range nims {
		if seen[n.ModelName] && n.ModelName != "" {
			continue
		}
		seen[n.ModelName] = true
		out = append(out, n)
	}
	return out
}

// applyEnv reads the secrets and the FLYWHEEL_* overrides.
func (c *Config) applyEnv(env func(string) string) {
	first := func(names ...string) string {
		for _, n := range names {
			if v := env(n); v != "" {
				return v
			}
		}
		return ""
	}
	c.NMP.NemoAPIKey = first("NEMO_API_KEY", "NVIDIA_API_KEY")
	c.NMP.NIMAPIKey = first("NIM_API_KEY", "NVIDIA_API_KEY")
	c.NMP.DatastoreAPIKey = first("DATASTORE_API_KEY", "NVIDIA_API_KEY")
	c.NMP.HFToken = env("HF_TOKEN")
	c.Judge.APIKey = first("LLM_JUDGE_API_KEY", "NVIDIA_API_KEY")
	if s := c.ICL.SimilarityConfig; s != nil && s.EmbeddingNIMConfig != nil {
		s.EmbeddingNIMConfig.APIKey = first("EMB_API_KEY", "NVIDIA_API_KEY")
	}
	if slices.Contains(splitList(env("COMPOSE_PROFILES")), "mlflow") {
		c.MLflow.Enabled = true
	}

	if v := env("ELASTICSEARCH_URL"); v != "" {
		c.Elasticsearch.URL = v
	}
	if v := env("ES_COLLECTION_NAME"); v != "" {
		c.Elasticsearch.Index = v
	}
	if v := env("ELASTICSEARCH_USERNAME"); v != "" {
		c.Elasticsearch.Username = v
	}
	c.Elasticsearch.Password = env("ELASTICSEARCH_PASSWORD")
	c.Elasticsearch.APIKey = env("ELASTICSEARCH_API_KEY")
	c.Capture.UpstreamAPIKey = first("CAPTURE_UPSTREAM_API_KEY", "OPENAI_API_KEY")

	if v := env(EnvDatabaseURL); v != "" {
		c.DatabaseURL = v
	}
	if v := env(EnvDataDir); v != "" {
		c.DataDir = v
	}
	if v := env(EnvAddr); v != "" {
		c.Server.Addr = v
	}
	if v := env(EnvTokensFile); v != "" {
		c.Server.Auth.TokensFile = v
	}
	if v := first(EnvLocalDir, EnvCache); v != "" {
		c.Platform.Local.InstallDir = v
	}
}

func splitList(s string) []string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
	}
	return parts
}

// DefaultDataDir returns the per-user data directory:
// $XDG_DATA_HOME/flywheel, else $HOME/.local/share/flywheel, else "".
func DefaultDataDir(env func(string) string) string {
	if x := env("XDG_DATA_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "flywheel")
	}
	if h := env("HOME"); h != "" {
		return filepath.Join(h, ".local", "share", "flywheel")
	}
	return ""
}

// resolve fills in the defaults that depend on other values.
func (c *Config) resolve(env func(string) string) {
	home := env("HOME")
	c.DataDir = expandHome(c.DataDir, home)
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir(env)
	}
	if c.DatabaseURL == "" && c.DataDir != "" {
		c.DatabaseURL = "sqlite:" + filepath.Join(c.DataDir, DatabaseFileName)
	}
	c.Platform.Local.ModelsDir = expandHome(c.Platform.Local.ModelsDir, home)
	c.Platform.Local.InstallDir = expandHome(c.Platform.Local.InstallDir, home)
	if c.Platform.Local.ModelsDir == "" && c.DataDir != "" {
		c.Platform.Local.ModelsDir = filepath.Join(c.DataDir, "models")
	}
	for _, u := range []*string{&c.NMP.EntityStoreURL, &c.NMP.CustomizerURL, &c.NMP.EvaluatorURL, &c.NMP.DeploymentURL} {
		if *u == "" {
			*u = c.NMP.NemoBaseURL
		}
	}
	c.Logging.Level = strings.ToUpper(c.Logging.Level)
	for i := range c.NIMs {
		fillNIMDefaults(&c.NIMs[i], c.Platform.Name)
	}
}

// fillNIMDefaults applies the blueprint's defaults of a nims entry.
func fillNIMDefaults(n *flywheel.NIMConfig, platform string) {
	if n.ModelType == "" {
		n.ModelType = ModelTypeLLM
	}
	if n.RegistryBase == "" && platform == PlatformNeMo {
		n.RegistryBase = RegistryBaseDefault
	}
	if cc := n.CustomizerConfigs; cc != nil {
		cc.NumNodes = orDefault(cc.NumNodes, 1)
		cc.TensorParallelSize = orDefault(cc.TensorParallelSize, 1)
		cc.DataParallelSize = orDefault(cc.DataParallelSize, 1)
		cc.MicroBatchSize = orDefault(cc.MicroBatchSize, 1)
		cc.MaxSeqLength = orDefault(cc.MaxSeqLength, 4096)
		if cc.TrainingPrecision == "" {
			cc.TrainingPrecision = TrainingPrecisionBF16M
		}
	}
}

// orDefault returns def when v is zero (negative values are kept so that
// Validate reports them).
func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func expandHome(p, home string) string {
	if home != "" && (p == "~" || strings.HasPrefix(p, "~/")) {
		return filepath.Join(home, strings.TrimPrefix(p, "~"))
	}
	return p
}
