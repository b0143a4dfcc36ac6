package config

import (
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// blueprintConfig is the project's own config file in the blueprint's
// format: the blueprint's keys only, with the values of its example file.
const blueprintConfig = "testdata/blueprint.yaml"

// envOf returns an env lookup over m.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// testEnv is a minimal environment: a home directory and nothing else.
func testEnv() func(string) string {
	return envOf(map[string]string{"HOME": "/home/test"})
}

// fieldsOf returns the Field of every FieldError in err.
func fieldsOf(err error) []string {
	var out []string
	for _, fe := range FieldErrors(err) {
		out = append(out, fe.Field)
	}
	return out
}

func TestLoadBlueprintFile(t *testing.T) {
	t.Parallel()

	cfg, err := Load(blueprintConfig, testEnv())
	require.NoError(t, err)

	require.Equal(t, PlatformNeMo, cfg.Platform.Name, "a file with nmp_config and no platform is a nemo file")
	require.Equal(t, NMPConfig{
		NemoBaseURL:      "http://nemo.test",
		NIMBaseURL:       "http://nim.test",
		DatastoreBaseURL: "http://data-store.test",
		Namespace:        "dfwbp",
		EntityStoreURL:   "http://nemo.test",
		CustomizerURL:    "http://nemo.test",
		EvaluatorURL:     "http://nemo.test",
		DeploymentURL:    "http://nemo.test",
	}, cfg.NMP)
	require.Equal(t, LoggingConfig{Level: "INFO", Format: LogFormatAuto}, cfg.Logging)
	require.Equal(t, MLflowConfig{
		TrackingURI:          "http://0.0.0.0:5000",
		ExperimentNamePrefix: "data-flywheel",
		ArtifactLocation:     "./mlruns",
	}, cfg.MLflow)
	require.Equal(t, flywheel.JudgeConfig{
		DeploymentType: flywheel.DeploymentTypeLocal,
		ModelName:      "meta/llama-3.3-70b-instruct",
		ContextLength:  32768,
		GPUs:           4,
		PVCSize:        "25Gi",
		Tag:            "1.8.5",
	}, cfg.Judge)
	require.True(t, cfg.HasJudge())

	require.Equal(t, []flywheel.NIMConfig{{
		ModelName:            "meta/llama-3.2-1b-instruct",
		ModelType:            "llm",
		ContextLength:        8192,
		GPUs:                 1,
		PVCSize:              "25Gi",
		Tag:                  "1.8.3",
		RegistryBase:         RegistryBaseDefault,
		CustomizationEnabled: true,
		CustomizerConfigs: &flywheel.CustomizerConfig{
			Target:             "meta/llama-3.2-1b-instruct@2.0",
			GPUs:               1,
			MaxSeqLength:       8192,
			NumNodes:           1,
			TensorParallelSize: 1,
			DataParallelSize:   1,
			MicroBatchSize:     1,
			TrainingPrecision:  "bf16-mixed",
		},
	}}, cfg.NIMs)

	limit := 1000
	require.Equal(t, flywheel.DataSplitConfig{
		EvalSize:               100,
		ValRatio:               0.1,
		MinTotalRecords:        50,
		RandomSeed:             nil,
		Limit:                  &limit,
		ParseFunctionArguments: true,
	}, cfg.DataSplit)

	require.Equal(t, flywheel.ICLConfig{
		MaxContextLength: 32768,
		ReservedTokens:   4096,
		MaxExamples:      3,
		MinExamples:      1,
		ExampleSelection: flywheel.SelectionSemantic,
		SimilarityConfig: &flywheel.SimilarityConfig{
			RelevanceRatio: 0.7,
			EmbeddingNIMConfig: &flywheel.EmbeddingConfig{
				DeploymentType: flywheel.DeploymentTypeLocal,
				ModelName:      "nvidia/llama-3.2-nv-embedqa-1b-v2",
				ContextLength:  32768,
				GPUs:           1,
				PVCSize:        "25Gi",
				Tag:            "1.9.0",
			},
		},
	}, cfg.ICL)
	require.Equal(t, flywheel.TrainingConfig{
		TrainingType: "sft", FinetuningType: "lora", Epochs: 2, BatchSize: 16, LearningRate: 0.0001,
	}, cfg.Training)
	require.Equal(t, flywheel.LoRAConfig{AdapterDim: 32, AdapterDropout: 0.1}, cfg.LoRA)
}

// TestLoadBlueprintReference loads the blueprint's own config.yaml from the
// folder FLYWHEEL_BLUEPRINT_DIR names and requires the same configuration as
// testdata/blueprint.yaml, which is written to mean the same.
func TestLoadBlueprintReference(t *testing.T) {
	t.Parallel()
	dir := os.Getenv("FLYWHEEL_BLUEPRINT_DIR")
	if dir == "" {
		t.Skip("FLYWHEEL_BLUEPRINT_DIR is not set: no blueprint reference files to compare with")
	}
	theirs, err := Load(filepath.Join(dir, "config.yaml"), testEnv())
	require.NoError(t, err)
	ours, err := Load(blueprintConfig, testEnv())
	require.NoError(t, err)
	require.Equal(t, ours, theirs)
}

func TestLoadGoodFiles(t *testing.T) {
	t.Parallel()

	tests := []struct {
		file  string
		check func(t *testing.T, cfg *Config)
	}{
		{"empty.good.yaml", func(t *testing.T, cfg *Config) {
			t.Helper()
			want, err := Load("", testEnv())
			require.NoError(t, err)
			require.Equal(t, want, cfg)
		}},
		{"local.good.yaml", func(t *testing.T, cfg *Config) {
			t.Helper()
			require.Equal(t, "sqlite:/srv/flywheel/state.db", cfg.DatabaseURL)
			require.Equal(t, "/srv/flywheel", cfg.DataDir)
			require.Equal(t, "0.0.0.0:9000", cfg.Server.Addr)
			require.Equal(t, LocalConfig{
				LlamaServerPath: "/opt/llama/bin/llama-server",
				PythonPath:      "/usr/bin/python3",
				Threads:         2,
				ModelsDir:       "/srv/models",
				Options:         map[string]string{"base_port": "18080"},
			}, cfg.Platform.Local)
			require.Equal(t, "DEBUG", cfg.Logging.Level)
			require.Equal(t, slog.LevelDebug, cfg.Logging.SlogLevel())
			require.Equal(t, LogFormatJSON, cfg.Logging.Format)

			e := cfg.Engine
			require.Equal(t, 2, e.MaxConcurrentRuns)
			require.Equal(t, 2, e.MaxParallelDeployments)
			require.Equal(t, 3, e.Workers)
			require.Equal(t, StageLimit{Hard: 90 * time.Minute, Soft: 80 * time.Minute}, e.Limit(flywheel.StageStartCustomization))
			require.Equal(t, StageLimit{Hard: 24 * time.Minute, Soft: 22 * time.Minute}, e.Limit(flywheel.StageCreateDatasets),
				"soft defaults to hard - hard/12")
			require.Equal(t, StageLimitDefaults()[flywheel.StageFinalize], e.Limit(flywheel.StageFinalize),
				"stages the file leaves out keep their defaults")
			require.Len(t, e.StageLimits, len(StageNames()))
			require.Equal(t, RetryConfig{MaxAttempts: 3, InitialBackoff: 500 * time.Millisecond, MaxBackoff: 10 * time.Second}, e.Retry)
			require.Equal(t, 2*time.Second, e.PollInterval)
			require.Equal(t, 10*time.Minute, e.StallTimeout)
			require.Equal(t, 30*time.Second, e.LeaseTTL)
			require.Equal(t, 5*time.Minute, e.RescueAfter)

			require.Equal(t, EvalConfig{
				Backend:              EvalBackendInProcess,
				ToolCallChecker:      ToolCallCheckerBFCL,
				Concurrency:          2,
				RequestTimeout:       30 * time.Second,
				MaxRetries:           0,
				RecommendationMargin: 0.1,
				RecommendationMetric: RecommendationMetric{ToolCalling: "function_name", Generic: "rouge_l"},
			}, cfg.Eval)
			require.Equal(t, ElasticsearchConfig{
				URL: "https://es.example.com:9200", Index: "logs", Username: "reader", CACert: "/etc/flywheel/es-ca.pem",
			}, cfg.Elasticsearch)
			require.Equal(t, "https://llm.example.com/v1", cfg.Capture.UpstreamURL)
			require.True(t, cfg.HasJudge())

			require.Len(t, cfg.NIMs, 1, "the repeated model_name is dropped")
			n := cfg.NIMs[0]
			require.Equal(t, 2048, n.ContextLength, "the first entry wins")
			require.InDelta(t, 0.002, n.PricePer1KTokens, 1e-12)
			require.Equal(t, map[string]any{"size": "s", "layers": []any{1, 2}}, n.Extra)
			require.Equal(t, 1024, n.CustomizerConfigs.MaxSeqLength)
			require.Empty(t, n.RegistryBase, "registry_base is a nemo default only")

			require.Nil(t, cfg.DataSplit.Limit, "limit: null means no limit")
			require.Equal(t, int64(42), *cfg.DataSplit.RandomSeed)
			require.Equal(t, 20, cfg.DataSplit.EvalSize)
			require.Equal(t, 50, cfg.DataSplit.MinTotalRecords, "keys left out keep their defaults")
			require.Equal(t, flywheel.LoRAConfig{AdapterDim: 16, Alpha: 32, TargetModules: []string{"q_proj", "v_proj"}}, cfg.LoRA)
		}},
		{"nemo.good.yaml", func(t *testing.T, cfg *Config) {
			t.Helper()
			require.Equal(t, PlatformNeMo, cfg.Platform.Name)
			require.Equal(t, "team-a", cfg.NMP.Namespace)
			require.Equal(t, "http://customizer.example.com", cfg.NMP.CustomizerURL)
			require.Equal(t, "http://nemo.example.com", cfg.NMP.EvaluatorURL)
			require.Equal(t, "http://nemo.example.com", cfg.NMP.EntityStoreURL)
			require.Equal(t, "http://nemo.example.com", cfg.NMP.DeploymentURL)
			require.Equal(t, "http://judge.example.com/v1/chat/completions", cfg.Judge.URL)
			require.Empty(t, cfg.Judge.APIKey, "api_key_env is ignored, and the environment is empty")
			require.Len(t, cfg.NIMs, 2)
			require.Equal(t, &flywheel.CustomizerConfig{
				Target: "meta/llama-3.2-1b-instruct@2.0", GPUs: 2, NumNodes: 1, TensorParallelSize: 2,
				DataParallelSize: 1, MicroBatchSize: 1, TrainingPrecision: "bf16", MaxSeqLength: 4096,
			}, cfg.NIMs[0].CustomizerConfigs)
			require.Equal(t, RegistryBaseDefault, cfg.NIMs[0].RegistryBase)
			require.Equal(t, "registry.example.com/nim", cfg.NIMs[1].RegistryBase)
			require.Nil(t, cfg.NIMs[1].CustomizerConfigs)
			emb := cfg.ICL.SimilarityConfig.EmbeddingNIMConfig
			require.Equal(t, "http://embed.example.com/v1/embeddings", emb.URL)
			require.InDelta(t, 0.5, cfg.ICL.SimilarityConfig.RelevanceRatio, 1e-12)
			require.Equal(t, FinetuningAllWeights, cfg.Training.FinetuningType)
			require.Equal(t, 1, cfg.Training.Epochs)
			require.Equal(t, 16, cfg.Training.BatchSize)
			require.True(t, cfg.MLflow.Enabled)
		}},
		{"endpoint.good.yaml", func(t *testing.T, cfg *Config) {
			t.Helper()
			require.Equal(t, PlatformEndpoint, cfg.Platform.Name)
			require.Equal(t, "postgres://flywheel@db.example.com:5432/flywheel?sslmode=disable", cfg.DatabaseURL)
			require.Equal(t, "http://127.0.0.1:8082/v1", cfg.NIMs[1].Endpoint)
			require.False(t, cfg.NIMs[0].CustomizationEnabled)
			require.Equal(t, 5, cfg.ICL.MaxExamples)
			require.Zero(t, cfg.ICL.MinExamples)
			require.False(t, cfg.HasJudge())
		}},
	}
	files, err := filepath.Glob("testdata/*.good.yaml")
	require.NoError(t, err)
	require.Len(t, files, len(tests), "every good file has a test case")

	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".good.yaml"), func(t *testing.T) {
			t.Parallel()
			cfg, err := Load(filepath.Join("testdata", tt.file), testEnv())
			require.NoError(t, err)
			require.NoError(t, cfg.Validate())
			tt.check(t, cfg)
		})
	}
}

// TestLoadBadFiles loads every testdata/*.bad.yaml and compares the errors
// with the file's "# want: " lines: every problem, and nothing else.
func TestLoadBadFiles(t *testing.T) {
	t.Parallel()

	files, err := filepath.Glob("testdata/*.bad.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)

	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".bad.yaml"), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(file)
			require.NoError(t, err)
			var want []string
			for line := range strings.Lines(string(data)) {
				if w, ok := strings.CutPrefix(strings.TrimRight(line, "\n"), "# want: "); ok {
					want = append(want, w)
				}
			}
			require.NotEmpty(t, want, "a bad file lists its expected errors")

			cfg, err := Load(file, testEnv())
			require.Error(t, err)
			require.Nil(t, cfg)
			require.Contains(t, err.Error(), file)
			var got []string
			for _, fe := range FieldErrors(err) {
				got = append(got, fe.Error())
			}
			require.ElementsMatch(t, want, got)
		})
	}
}

func TestLoadEnvironment(t *testing.T) {
	t.Parallel()

	t.Run("SecretsFallBackToNVIDIAAPIKey", func(t *testing.T) {
		t.Parallel()
		cfg, err := Load(blueprintConfig, envOf(map[string]string{"HOME": "/h", "NVIDIA_API_KEY": "nv"}))
		require.NoError(t, err)
		require.Equal(t, "nv", cfg.NMP.NemoAPIKey)
		require.Equal(t, "nv", cfg.NMP.NIMAPIKey)
		require.Equal(t, "nv", cfg.NMP.DatastoreAPIKey)
		require.Equal(t, "nv", cfg.Judge.APIKey)
		require.Equal(t, "nv", cfg.ICL.SimilarityConfig.EmbeddingNIMConfig.APIKey)
		require.Empty(t, cfg.NMP.HFToken)
		require.Empty(t, cfg.Capture.UpstreamAPIKey)
	})

	t.Run("SpecificSecretsWin", func(t *testing.T) {
		t.Parallel()
		cfg, err := Load(blueprintConfig, envOf(map[string]string{
			"HOME":                     "/h",
			"NVIDIA_API_KEY":           "nv",
			"NEMO_API_KEY":             "nemo",
			"NIM_API_KEY":              "nim",
			"DATASTORE_API_KEY":        "ds",
			"HF_TOKEN":                 "hf",
			"LLM_JUDGE_API_KEY":        "judge",
			"EMB_API_KEY":              "emb",
			"ELASTICSEARCH_PASSWORD":   "pw",
			"ELASTICSEARCH_API_KEY":    "esk",
			"ELASTICSEARCH_USERNAME":   "elastic",
			"ELASTICSEARCH_URL":        "http://es:9200",
			"ES_COLLECTION_NAME":       "logs",
			"CAPTURE_UPSTREAM_API_KEY": "up",
			"OPENAI_API_KEY":           "oa",
		}))
		require.NoError(t, err)
		require.Equal(t, "nemo", cfg.NMP.NemoAPIKey)
		require.Equal(t, "nim", cfg.NMP.NIMAPIKey)
		require.Equal(t, "ds", cfg.NMP.DatastoreAPIKey)
		require.Equal(t, "hf", cfg.NMP.HFToken)
		require.Equal(t, "judge", cfg.Judge.APIKey)
		require.Equal(t, "emb", cfg.ICL.SimilarityConfig.EmbeddingNIMConfig.APIKey)
		require.Equal(t, ElasticsearchConfig{
			URL: "http://es:9200", Index: "logs", Username: "elastic", Password: "pw", APIKey: "esk",
		}, cfg.Elasticsearch)
		require.Equal(t, "up", cfg.Capture.UpstreamAPIKey)
	})

	t.Run("CaptureKeyFallsBackToOpenAI", func(t *testing.T) {
		t.Parallel()
		cfg, err := Load("", envOf(map[string]string{"HOME": "/h", "OPENAI_API_KEY": "oa"}))
		require.NoError(t, err)
		require.Equal(t, "oa", cfg.Capture.UpstreamAPIKey)
	})

	t.Run("DataDirFromXDGThenHome", func(t *testing.T) {
		t.Parallel()
		cfg, err := Load("", envOf(map[string]string{"HOME": "/h", "XDG_DATA_HOME": "/xdg"}))
		require.NoError(t, err)
		require.Equal(t, "/xdg/flywheel", cfg.DataDir)
		require.Equal(t, "sqlite:/xdg/flywheel/flywheel.db", cfg.DatabaseURL)
		require.Equal(t, "/xdg/flywheel/models", cfg.Platform.Local.ModelsDir)

		cfg, err = Load("", envOf(map[string]string{"HOME": "/h", "XDG_DATA_HOME": "relative"}))
		require.NoError(t, err)
		require.Equal(t, "/h/.local/share/flywheel", cfg.DataDir, "a relative XDG_DATA_HOME is ignored, as the spec says")
	})

	t.Run("FlywheelOverridesBeatTheFile", func(t *testing.T) {
		t.Parallel()
		cfg, err := Load("testdata/local.good.yaml", envOf(map[string]string{
			EnvDataDir:     "/var/fw",
			EnvDatabaseURL: "postgresql://fw@db/fw",
			EnvAddr:        "127.0.0.1:0",
		}))
		require.NoError(t, err)
		require.Equal(t, "/var/fw", cfg.DataDir)
		require.Equal(t, "postgresql://fw@db/fw", cfg.DatabaseURL)
		require.Equal(t, "127.0.0.1:0", cfg.Server.Addr)
		require.Equal(t, "/srv/models", cfg.Platform.Local.ModelsDir, "an explicit models_dir stays")
	})

	t.Run("DataDirOverrideMovesDerivedPaths", func(t *testing.T) {
		t.Parallel()
		cfg, err := Load("", envOf(map[string]string{"HOME": "/h", EnvDataDir: "~/fw"}))
		require.NoError(t, err)
		require.Equal(t, "/h/fw", cfg.DataDir)
		require.Equal(t, "sqlite:/h/fw/flywheel.db", cfg.DatabaseURL)
		require.Equal(t, "/h/fw/models", cfg.Platform.Local.ModelsDir)
	})

	t.Run("NoHomeMeansNoDataDir", func(t *testing.T) {
		t.Parallel()
		_, err := Load("", nil)
		require.Error(t, err)
		require.ErrorIs(t, err, ErrRequired)
		require.Equal(t, []string{"database_url", "data_dir"}, fieldsOf(err))
	})

	t.Run("ComposeProfilesEnablesMLflow", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			profiles string
			want     bool
		}{
			{"", false},
			{"mlflow", true},
			{"gpu, mlflow", true},
			{"mlflowx,nomlflow", false},
		}
		for _, tt := range tests {
			cfg, err := Load("", envOf(map[string]string{"HOME": "/h", "COMPOSE_PROFILES": tt.profiles}))
			require.NoError(t, err)
			require.Equal(t, tt.want, cfg.MLflow.Enabled, "COMPOSE_PROFILES=%q", tt.profiles)
		}
	})
}

func TestDefault(t *testing.T) {
	t.Parallel()

	t.Run("IsTheLocalSetup", func(t *testing.T) {
		t.Parallel()
		cfg := Default()
		require.Equal(t, PlatformLocal, cfg.Platform.Name)
		require.Equal(t, []string{LocalTinySmall, LocalTinyMedium}, []string{cfg.NIMs[0].ModelName, cfg.NIMs[1].ModelName})
		for _, n := range cfg.NIMs {
			require.True(t, n.CustomizationEnabled)
			require.Equal(t, n.ModelName, n.CustomizerConfigs.Target)
		}
		require.False(t, cfg.HasJudge())
		require.Equal(t, 1000, *cfg.DataSplit.Limit)
		require.Equal(t, flywheel.SelectionUniform, cfg.ICL.ExampleSelection)
		require.Equal(t, 1, cfg.Platform.Local.Threads)
		require.Equal(t, AddrDefault, cfg.Server.Addr)
		require.Empty(t, cfg.DataDir, "Default reads no environment")
	})

	t.Run("OnlyLacksTheDataDir", func(t *testing.T) {
		t.Parallel()
		cfg := Default()
		require.Equal(t, []string{"database_url", "data_dir"}, fieldsOf(cfg.Validate()))

		cfg.DataDir = "/d"
		cfg.DatabaseURL = "sqlite:/d/flywheel.db"
		require.NoError(t, cfg.Validate())
	})

	t.Run("ReturnsFreshValues", func(t *testing.T) {
		t.Parallel()
		a, b := Default(), Default()
		*a.DataSplit.Limit = 1
		a.NIMs[0].CustomizerConfigs.Target = "x"
		a.Engine.StageLimits[flywheel.StageFinalize] = StageLimit{}
		require.Equal(t, 1000, *b.DataSplit.Limit)
		require.Equal(t, LocalTinySmall, b.NIMs[0].CustomizerConfigs.Target)
		require.NotZero(t, b.Engine.Limit(flywheel.StageFinalize).Hard)
	})

	t.Run("EveryStageHasALimit", func(t *testing.T) {
		t.Parallel()
		limits := StageLimitDefaults()
		require.Len(t, limits, len(StageNames()))
		for _, name := range StageNames() {
			l, ok := limits[name]
			require.True(t, ok, "stage %s", name)
			require.Less(t, l.Soft, l.Hard, "stage %s", name)
		}
	})
}

func TestParse(t *testing.T) {
	t.Parallel()

	t.Run("NotYAML", func(t *testing.T) {
		t.Parallel()
		_, err := Parse([]byte("nims: [\n"), testEnv())
		require.Error(t, err)
		require.Empty(t, FieldErrors(err))
		require.Contains(t, err.Error(), "parse yaml")
	})

	t.Run("TopLevelNotAMapping", func(t *testing.T) {
		t.Parallel()
		_, err := Parse([]byte("- a\n- b\n"), testEnv())
		require.Error(t, err)
		require.Equal(t, "want a mapping of keys, got a list", FieldErrors(err)[0].Err.Error())
	})

	t.Run("MissingFile", func(t *testing.T) {
		t.Parallel()
		_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), testEnv())
		require.ErrorIs(t, err, os.ErrNotExist)
	})

	t.Run("SectionsMergeIntoDefaults", func(t *testing.T) {
		t.Parallel()
		cfg, err := Parse([]byte("engine:\n  workers: 2\neval: {concurrency: 1}\n"), testEnv())
		require.NoError(t, err)
		require.Equal(t, 2, cfg.Engine.Workers)
		require.Equal(t, MaxConcurrentRunsDefault, cfg.Engine.MaxConcurrentRuns)
		require.Equal(t, 1, cfg.Eval.Concurrency)
		require.Equal(t, EvalRequestTimeoutDefault, cfg.Eval.RequestTimeout)
		require.Equal(t, ToolCallCheckerFlywheel, cfg.Eval.ToolCallChecker)
		require.Len(t, cfg.NIMs, 2, "nims not in the file: the default candidates")
	})

	t.Run("NimsReplaceTheDefaults", func(t *testing.T) {
		t.Parallel()
		cfg, err := Parse([]byte("nims:\n - {model_name: m, context_length: 10}\n"), testEnv())
		require.NoError(t, err)
		require.Len(t, cfg.NIMs, 1)
		require.Equal(t, "m", cfg.NIMs[0].ModelName)
	})

	t.Run("AliasesAreFollowed", func(t *testing.T) {
		t.Parallel()
		cfg, err := Parse([]byte("x-limits: &l {hard: 3h}\n"), testEnv())
		require.Error(t, err, "an unknown top-level key is still an error")
		require.Nil(t, cfg)

		cfg, err = Parse([]byte("engine:\n  stage_limits:\n    run_base_eval: &l {hard: 6h}\n    run_icl_eval: *l\n"), testEnv())
		require.NoError(t, err)
		require.Equal(t, 6*time.Hour, cfg.Engine.Limit(flywheel.StageRunICLEval).Hard)

		cfg, err = Parse([]byte("nims:\n - &a {model_name: a, context_length: 8}\n - {<<: *a, model_name: b}\n"), testEnv())
		require.NoError(t, err)
		require.Equal(t, "b", cfg.NIMs[1].ModelName)
		require.Equal(t, 8, cfg.NIMs[1].ContextLength)
		_, err = Parse([]byte("nims:\n - &a {model_name: a, context_length: 8, bogus: 1}\n - {<<: *a, model_name: b}\n"), testEnv())
		require.Equal(t, []string{"nims[0].bogus", "nims[1].bogus"}, fieldsOf(err), "a merged key is checked where it lands")
	})

	t.Run("PlatformFromFileWins", func(t *testing.T) {
		t.Parallel()
		cfg, err := Parse([]byte("platform: {name: local}\nnmp_config: {nemo_base_url: 'http://n'}\n"), testEnv())
		require.NoError(t, err)
		require.Equal(t, PlatformLocal, cfg.Platform.Name)
	})

	t.Run("TrainingDefaultsFollowThePlatform", func(t *testing.T) {
		t.Parallel()
		ep := "platform: {name: endpoint}\nnims: [{model_name: m, context_length: 8, endpoint: 'http://e'}]\n"
		for _, tc := range []struct {
			name, file string
			want       flywheel.TrainingConfig
		}{
			{"local, no file", "", TrainingDefaults(PlatformLocal)},
			{"local, epochs set", "training_config: {epochs: 3}\n",
				flywheel.TrainingConfig{TrainingType: "sft", FinetuningType: "all_weights", Epochs: 3, BatchSize: 16, LearningRate: 1e-3}},
			{"local, merged key", "training_config: {<<: {learning_rate: 0.01}}\n",
				flywheel.TrainingConfig{TrainingType: "sft", FinetuningType: "all_weights", Epochs: 10, BatchSize: 16, LearningRate: 0.01}},
			{"endpoint, no section", ep, TrainingDefaults(PlatformNeMo)},
			{"endpoint, finetuning_type set", ep + "training_config: {finetuning_type: all_weights}\n",
				flywheel.TrainingConfig{TrainingType: "sft", FinetuningType: "all_weights", Epochs: 2, BatchSize: 16, LearningRate: 1e-4}},
		} {
			cfg, err := Parse([]byte(tc.file), testEnv())
			require.NoError(t, err, tc.name)
			require.Equal(t, tc.want, cfg.Training, tc.name)
		}
		require.Equal(t, flywheel.TrainingConfig{TrainingType: "sft", FinetuningType: "lora", Epochs: 2, BatchSize: 16, LearningRate: 1e-4},
			TrainingDefaults(PlatformNeMo), "NeMo keeps the blueprint's defaults")
		require.Equal(t, TrainingDefaults(PlatformLocal), Default().Training)
	})

	t.Run("ValidationRunsDespiteTypeErrors", func(t *testing.T) {
		t.Parallel()
		_, err := Parse([]byte("engine: {workers: many}\ntraining_config: {epochs: 0}\n"), testEnv())
		require.Equal(t, []string{"engine.workers", "training_config.epochs"}, fieldsOf(err))
	})
}

func TestValidate(t *testing.T) {
	t.Parallel()

	valid := func(t *testing.T) *Config {
		t.Helper()
		cfg, err := Load("", testEnv())
		require.NoError(t, err)
		return cfg
	}

	tests := []struct {
		name   string
		modify func(c *Config)
		want   []string
	}{
		{"DuplicateCandidates", func(c *Config) { c.NIMs[1].ModelName = c.NIMs[0].ModelName },
			[]string{`nims[1].model_name: duplicate of nims[0] ("local/tiny-s")`}},
		{"MissingModelName", func(c *Config) { c.NIMs[0].ModelName = "" },
			[]string{"nims[0].model_name: required"}},
		{"SemanticWithoutEmbedding", func(c *Config) {
			c.ICL.ExampleSelection = flywheel.SelectionSemantic
			c.ICL.SimilarityConfig = &flywheel.SimilarityConfig{RelevanceRatio: 0.7}
		}, []string{"icl_config.similarity_config.embedding_nim_config: required when example_selection is semantic_similarity"}},
		{"EmbeddingNeedsModel", func(c *Config) {
			c.ICL.SimilarityConfig = &flywheel.SimilarityConfig{EmbeddingNIMConfig: &flywheel.EmbeddingConfig{DeploymentType: "cloud"}}
		}, []string{
			`icl_config.similarity_config.embedding_nim_config.deployment_type: must be one of remote, local (got "cloud")`,
			"icl_config.similarity_config.embedding_nim_config.model_name: required",
		}},
		{"MissingStageLimit", func(c *Config) { delete(c.Engine.StageLimits, flywheel.StageCleanup) },
			[]string{"engine.stage_limits.cleanup: required"}},
		{"ZeroHardLimit", func(c *Config) { c.Engine.StageLimits[flywheel.StageFinalize] = StageLimit{} },
			[]string{"engine.stage_limits.finalize.hard: must be greater than 0 (got 0s)"}},
		{"SqliteWithoutPath", func(c *Config) { c.DatabaseURL = "sqlite:" },
			[]string{"database_url: sqlite: needs a file path, as in sqlite:/var/lib/flywheel/flywheel.db"}},
		{"DatabaseURLIsNotEchoed", func(c *Config) { c.DatabaseURL = "postgres//user:secret@db" },
			[]string{"database_url: must start with sqlite:, postgres: or postgresql:"}},
		{"BadPort", func(c *Config) { c.Server.Addr = "127.0.0.1:http" },
			[]string{`server.addr: port must be a number from 0 to 65535 (got "http")`}},
		{"LocalPlatformNeedsThreads", func(c *Config) { c.Platform.Local = LocalConfig{} },
			[]string{
				"platform.local.threads: must be greater than 0 (got 0)",
			}},
		{"MLflowEnabledNeedsURI", func(c *Config) { c.MLflow = MLflowConfig{Enabled: true} },
			[]string{
				"mlflow_config.tracking_uri: required when mlflow is enabled",
				"mlflow_config.experiment_name_prefix: required when mlflow is enabled",
			}},
		{"NegativeLimit", func(c *Config) { l := -1; c.DataSplit.Limit = &l },
			[]string{"data_split_config.limit: must be greater than 0, or null for no limit (got -1)"}},
		{"CustomizerNumbers", func(c *Config) { c.NIMs[0].CustomizerConfigs.NumNodes = -2 },
			[]string{"nims[0].customizer_configs.num_nodes: must not be negative (got -2)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := valid(t)
			tt.modify(cfg)
			err := cfg.Validate()
			var got []string
			for _, fe := range FieldErrors(err) {
				got = append(got, fe.Error())
			}
			require.Equal(t, tt.want, got)
			require.NotContains(t, err.Error(), "secret")
		})
	}

	t.Run("FieldErrorWrapsItsProblem", func(t *testing.T) {
		t.Parallel()
		cfg := valid(t)
		cfg.NIMs[0].CustomizerConfigs = nil
		err := cfg.Validate()
		require.ErrorIs(t, err, ErrRequired)
		var fe *FieldError
		require.True(t, errors.As(err, &fe))
		require.Equal(t, "nims[0].customizer_configs", fe.Field)
	})
}

func TestRunSpec(t *testing.T) {
	t.Parallel()

	cfg, err := Load(blueprintConfig, envOf(map[string]string{"HOME": "/h", "NVIDIA_API_KEY": "secret-key"}))
	require.NoError(t, err)
	seed := int64(7)
	cfg.DataSplit.RandomSeed = &seed
	cfg.NIMs[0].Extra = map[string]any{"nested": map[string]any{"k": []any{"v"}}}
	cfg.LoRA.TargetModules = []string{"q"}

	spec := cfg.RunSpec()
	require.Equal(t, "dfwbp", spec.Namespace)
	require.Equal(t, cfg.NIMs[0].ModelName, spec.Candidates[0].ModelName)
	require.Equal(t, 1000, *spec.DataSplit.Limit)
	require.Equal(t, int64(7), *spec.DataSplit.RandomSeed)
	require.Equal(t, cfg.Judge.ModelName, spec.Judge.ModelName)
	require.Empty(t, spec.Judge.APIKey, "secrets stay out of the stored spec")
	require.Empty(t, spec.ICL.SimilarityConfig.EmbeddingNIMConfig.APIKey)
	require.Equal(t, "secret-key", cfg.Judge.APIKey, "the config keeps its secrets")

	// Changing the config afterwards leaves the spec alone.
	*cfg.DataSplit.Limit = 5
	*cfg.DataSplit.RandomSeed = 8
	cfg.NIMs[0].CustomizerConfigs.Target = "changed"
	cfg.NIMs[0].Extra["nested"].(map[string]any)["k"].([]any)[0] = "changed"
	cfg.ICL.SimilarityConfig.RelevanceRatio = 0.1
	cfg.ICL.SimilarityConfig.EmbeddingNIMConfig.ModelName = "changed"
	cfg.LoRA.TargetModules[0] = "changed"
	require.Equal(t, 1000, *spec.DataSplit.Limit)
	require.Equal(t, int64(7), *spec.DataSplit.RandomSeed)
	require.Equal(t, "meta/llama-3.2-1b-instruct@2.0", spec.Candidates[0].CustomizerConfigs.Target)
	require.Equal(t, "v", spec.Candidates[0].Extra["nested"].(map[string]any)["k"].([]any)[0])
	require.InDelta(t, 0.7, spec.ICL.SimilarityConfig.RelevanceRatio, 1e-12)
	require.Equal(t, "nvidia/llama-3.2-nv-embedqa-1b-v2", spec.ICL.SimilarityConfig.EmbeddingNIMConfig.ModelName)
	require.Equal(t, []string{"q"}, spec.LoRA.TargetModules)

	data, err := json.Marshal(spec)
	require.NoError(t, err)
	require.NotContains(t, string(data), "secret-key")
	var back flywheel.RunSpec
	require.NoError(t, json.Unmarshal(data, &back))
	require.Equal(t, spec.Candidates[0].CustomizerConfigs, back.Candidates[0].CustomizerConfigs)
}

func TestClone(t *testing.T) {
	t.Parallel()

	cfg, err := Load("testdata/local.good.yaml", envOf(map[string]string{"LLM_JUDGE_API_KEY": "k"}))
	require.NoError(t, err)
	c := cfg.Clone()
	require.Equal(t, cfg, c)

	c.Engine.StageLimits[flywheel.StageFinalize] = StageLimit{}
	c.Platform.Local.Options["base_port"] = "1"
	c.NIMs[0].CustomizerConfigs.Target = "x"
	require.NotZero(t, cfg.Engine.Limit(flywheel.StageFinalize).Hard)
	require.Equal(t, "18080", cfg.Platform.Local.Options["base_port"])
	require.Equal(t, "local/tiny-s", cfg.NIMs[0].CustomizerConfigs.Target)
	require.Equal(t, "k", c.Judge.APIKey)
}

func TestHelpers(t *testing.T) {
	t.Parallel()

	t.Run("SlogLevel", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			level string
			want  slog.Level
		}{
			{"DEBUG", slog.LevelDebug},
			{"info", slog.LevelInfo},
			{"WARNING", slog.LevelWarn},
			{"ERROR", slog.LevelError},
			{"CRITICAL", SlogLevelCritical},
		}
		for _, tt := range tests {
			require.Equal(t, tt.want, LoggingConfig{Level: tt.level}.SlogLevel(), tt.level)
		}
	})

	t.Run("RecommendationMetricFor", func(t *testing.T) {
		t.Parallel()
		m := Default().Eval.RecommendationMetric
		require.Equal(t, flywheel.ScoreFunctionNameAndArgs, m.For(flywheel.WorkloadToolCalling))
		require.Equal(t, flywheel.ScoreSimilarity, m.For(flywheel.WorkloadGeneric))
	})

	t.Run("Candidate", func(t *testing.T) {
		t.Parallel()
		cfg := Default()
		n, ok := cfg.Candidate(LocalTinyMedium)
		require.True(t, ok)
		n.CustomizerConfigs.Target = "x"
		require.Equal(t, LocalTinyMedium, cfg.NIMs[1].CustomizerConfigs.Target, "Candidate returns a copy")
		_, ok = cfg.Candidate("nope")
		require.False(t, ok)
	})
}

// TestMarshalRoundTrip checks that yaml.Marshal of a loaded config is a
// file that loads back to the same config (secrets excepted: they are
// never written).
func TestMarshalRoundTrip(t *testing.T) {
	t.Parallel()

	files, err := filepath.Glob("testdata/*.good.yaml")
	require.NoError(t, err)
	files = append(files, blueprintConfig)
	env := envOf(map[string]string{"HOME": "/h", "NVIDIA_API_KEY": "secret-key"})
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			cfg, err := Load(file, env)
			require.NoError(t, err)
			data, err := yaml.Marshal(cfg)
			require.NoError(t, err)
			require.NotContains(t, string(data), "secret-key")
			back, err := Parse(data, env)
			require.NoError(t, err, "%s", data)
			require.Equal(t, cfg, back)
		})
	}
}

func BenchmarkParseBlueprint(b *testing.B) {
	data, err := os.ReadFile(blueprintConfig)
	require.NoError(b, err)
	env := testEnv()
	for b.Loop() {
		if _, err := Parse(data, env); err != nil {
			b.Fatal(err)
		}
	}
}
