package flywheel

// This file holds the settings a run is made from. The config package loads
// them from config.yaml (the blueprint's keys); a run keeps a copy (its Spec)
// so that later config changes never alter a run in flight.

// DataSplitConfig controls how records become eval, train and validation sets.
type DataSplitConfig struct {
	EvalSize               int     `yaml:"eval_size" json:"eval_size"`
	ValRatio               float64 `yaml:"val_ratio" json:"val_ratio"`
	MinTotalRecords        int     `yaml:"min_total_records" json:"min_total_records"`
	RandomSeed             *int64  `yaml:"random_seed" json:"random_seed"`
	Limit                  *int    `yaml:"limit" json:"limit"`
	ParseFunctionArguments bool    `yaml:"parse_function_arguments" json:"parse_function_arguments"`
	// MaxToolProperties drops records whose tools declare more parameters than
	// this (the blueprint hard-codes 8). Zero keeps every record.
	MaxToolProperties int `yaml:"max_tool_properties,omitempty" json:"max_tool_properties,omitempty"`
}

// DataSplitOverride is a per-request data_split_config: every field is
// optional and only the fields given replace the configured ones.
type DataSplitOverride struct {
	EvalSize               *int     `json:"eval_size,omitempty"`
	ValRatio               *float64 `json:"val_ratio,omitempty"`
	MinTotalRecords        *int     `json:"min_total_records,omitempty"`
	RandomSeed             *int64   `json:"random_seed,omitempty"`
	Limit                  *int     `json:"limit,omitempty"`
	ParseFunctionArguments *bool    `json:"parse_function_arguments,omitempty"`
}

// Merge returns base with every field set in o replaced, field by field.
func (o *DataSplitOverride) Merge(base DataSplitConfig) DataSplitConfig {
	if o == nil {
		return base
	}
	if o.EvalSize != nil {
		base.EvalSize = *o.EvalSize
	}
	if o.ValRatio != nil {
		base.ValRatio = *o.ValRatio
	}
	if o.MinTotalRecords != nil {
		base.MinTotalRecords = *o.MinTotalRecords
	}
	if o.RandomSeed != nil {
		v := *o.RandomSeed
		base.RandomSeed = &v
	}
	if o.Limit != nil {
		v := *o.Limit
		base.Limit = &v
	}
	if o.ParseFunctionArguments != nil {
		base.ParseFunctionArguments = *o.ParseFunctionArguments
	}
	return base
}

// ICLConfig controls the few-shot (in-context learning) evaluation set.
type ICLConfig struct {
	MaxContextLength int               `yaml:"max_context_length" json:"max_context_length"`
	ReservedTokens   int               `yaml:"reserved_tokens" json:"reserved_tokens"`
	MaxExamples      int               `yaml:"max_examples" json:"max_examples"`
	MinExamples      int               `yaml:"min_examples" json:"min_examples"`
	ExampleSelection string            `yaml:"example_selection" json:"example_selection"`
	SimilarityConfig *SimilarityConfig `yaml:"similarity_config,omitempty" json:"similarity_config,omitempty"`
}

// ICL example selection strategies.
const (
	SelectionUniform  = "uniform_distribution"
	SelectionSemantic = "semantic_similarity"
)

// SimilarityConfig configures semantic_similarity example selection.
type SimilarityConfig struct {
	RelevanceRatio     float64          `yaml:"relevance_ratio" json:"relevance_ratio"`
	EmbeddingNIMConfig *EmbeddingConfig `yaml:"embedding_nim_config,omitempty" json:"embedding_nim_config,omitempty"`
}

// EmbeddingConfig names the embedding model used for semantic selection.
type EmbeddingConfig struct {
	DeploymentType string `yaml:"deployment_type" json:"deployment_type"`
	URL            string `yaml:"url,omitempty" json:"url,omitempty"`
	ModelName      string `yaml:"model_name" json:"model_name"`
	ContextLength  int    `yaml:"context_length,omitempty" json:"context_length,omitempty"`
	GPUs           int    `yaml:"gpus,omitempty" json:"gpus,omitempty"`
	PVCSize        string `yaml:"pvc_size,omitempty" json:"pvc_size,omitempty"`
	Tag            string `yaml:"tag,omitempty" json:"tag,omitempty"`
	// APIKey comes from the environment (EMB_API_KEY, then NVIDIA_API_KEY), never from YAML.
	APIKey string `yaml:"-" json:"-"`
}

// TrainingConfig holds the fine-tuning hyper-parameters.
type TrainingConfig struct {
	TrainingType   string  `yaml:"training_type" json:"training_type"`
	FinetuningType string  `yaml:"finetuning_type" json:"finetuning_type"`
	Epochs         int     `yaml:"epochs" json:"epochs"`
	BatchSize      int     `yaml:"batch_size" json:"batch_size"`
	LearningRate   float64 `yaml:"learning_rate" json:"learning_rate"`
}

// LoRAConfig holds the LoRA adapter settings.
type LoRAConfig struct {
	AdapterDim     int      `yaml:"adapter_dim" json:"adapter_dim"`
	AdapterDropout float64  `yaml:"adapter_dropout" json:"adapter_dropout"`
	Alpha          int      `yaml:"alpha,omitempty" json:"alpha,omitempty"`
	TargetModules  []string `yaml:"target_modules,omitempty" json:"target_modules,omitempty"`
}

// NIMConfig describes one candidate model (an entry of nims[]).
type NIMConfig struct {
	ModelName            string            `yaml:"model_name" json:"model_name"`
	ModelType            string            `yaml:"model_type" json:"model_type"`
	ContextLength        int               `yaml:"context_length" json:"context_length"`
	GPUs                 int               `yaml:"gpus,omitempty" json:"gpus,omitempty"`
	PVCSize              string            `yaml:"pvc_size,omitempty" json:"pvc_size,omitempty"`
	Tag                  string            `yaml:"tag,omitempty" json:"tag,omitempty"`
	RegistryBase         string            `yaml:"registry_base,omitempty" json:"registry_base,omitempty"`
	CustomizationEnabled bool              `yaml:"customization_enabled" json:"customization_enabled"`
	CustomizerConfigs    *CustomizerConfig `yaml:"customizer_configs,omitempty" json:"customizer_configs,omitempty"`
	// Endpoint, when set, points at an already-running OpenAI-compatible
	// server for this model: deploy only checks that it is there.
	Endpoint string `yaml:"endpoint,omitempty" json:"endpoint,omitempty"`
	// Sampling overrides the logged requests' sampling parameters when this
	// candidate is evaluated.
	Sampling *SamplingConfig `yaml:"sampling,omitempty" json:"sampling,omitempty"`
	// PricePer1KTokens is the cost used in reports (input and output alike).
	PricePer1KTokens float64 `yaml:"price_per_1k_tokens,omitempty" json:"price_per_1k_tokens,omitempty"`
	// PricePerGPUHour prices a candidate by the hour of its deployment
	// instead (used when PricePer1KTokens is 0).
	PricePerGPUHour float64 `yaml:"price_per_gpu_hour,omitempty" json:"price_per_gpu_hour,omitempty"`
	// Extra holds platform-specific settings (for example the local
	// platform's model file or size).
	Extra map[string]any `yaml:"extra,omitempty" json:"extra,omitempty"`
}

// CustomizerConfig holds the per-candidate customization settings.
type CustomizerConfig struct {
	Target              string `yaml:"target" json:"target"`
	GPUs                int    `yaml:"gpus" json:"gpus"`
	NumNodes            int    `yaml:"num_nodes,omitempty" json:"num_nodes,omitempty"`
	TensorParallelSize  int    `yaml:"tensor_parallel_size,omitempty" json:"tensor_parallel_size,omitempty"`
	DataParallelSize    int    `yaml:"data_parallel_size,omitempty" json:"data_parallel_size,omitempty"`
	UseSequenceParallel bool   `yaml:"use_sequence_parallel,omitempty" json:"use_sequence_parallel,omitempty"`
	MicroBatchSize      int    `yaml:"micro_batch_size,omitempty" json:"micro_batch_size,omitempty"`
	TrainingPrecision   string `yaml:"training_precision,omitempty" json:"training_precision,omitempty"`
	MaxSeqLength        int    `yaml:"max_seq_length,omitempty" json:"max_seq_length,omitempty"`
}

// JudgeConfig configures the LLM judge (llm_judge_config).
type JudgeConfig struct {
	DeploymentType string `yaml:"deployment_type" json:"deployment_type"` // "remote" or "local"
	URL            string `yaml:"url,omitempty" json:"url,omitempty"`
	ModelName      string `yaml:"model_name" json:"model_name"`
	ContextLength  int    `yaml:"context_length,omitempty" json:"context_length,omitempty"`
	GPUs           int    `yaml:"gpus,omitempty" json:"gpus,omitempty"`
	PVCSize        string `yaml:"pvc_size,omitempty" json:"pvc_size,omitempty"`
	Tag            string `yaml:"tag,omitempty" json:"tag,omitempty"`
	// APIKey comes from the environment (LLM_JUDGE_API_KEY, then NVIDIA_API_KEY).
	APIKey string `yaml:"-" json:"-"`
}

// Judge deployment types.
const (
	DeploymentTypeRemote = "remote"
	DeploymentTypeLocal  = "local"
)

// RunSpec is everything a run needs from configuration, frozen at creation.
type RunSpec struct {
	Candidates []NIMConfig     `json:"candidates"`
	DataSplit  DataSplitConfig `json:"data_split_config"`
	ICL        ICLConfig       `json:"icl_config"`
	Training   TrainingConfig  `json:"training_config"`
	LoRA       LoRAConfig      `json:"lora_config"`
	Judge      JudgeConfig     `json:"llm_judge_config"`
	Namespace  string          `json:"nmp_namespace"`
	// Replay, for a run created from a manifest, pins its datasets to
	// the manifest's records.
	Replay *Replay `json:"replay,omitempty"`
}

// SamplingConfig overrides sampling parameters of replayed requests. Nil
// fields keep the logged values.
type SamplingConfig struct {
	Temperature *float64 `yaml:"temperature,omitempty" json:"temperature,omitempty"`
	TopP        *float64 `yaml:"top_p,omitempty" json:"top_p,omitempty"`
	MaxTokens   *int     `yaml:"max_tokens,omitempty" json:"max_tokens,omitempty"`
	Seed        *int64   `yaml:"seed,omitempty" json:"seed,omitempty"`
	// Stream asks for streamed replies (reassembled before scoring).
	Stream bool `yaml:"stream,omitempty" json:"stream,omitempty"`
}
