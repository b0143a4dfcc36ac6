package config_test

import (
	"fmt"

	"github.com/flywheel-go/flywheel/internal/config"
)

func ExampleParse() {
	env := map[string]string{"HOME": "/home/ada", "NVIDIA_API_KEY": "nvapi-example"}
	cfg, err := config.Parse([]byte(`
nmp_config:
  nemo_base_url: http://nemo.example.com
  nim_base_url: http://nim.example.com
  datastore_base_url: http://datastore.example.com
llm_judge_config:
  deployment_type: remote
  url: http://judge.example.com/v1/chat/completions
  model_name: meta/llama-3.3-70b-instruct
nims:
  - model_name: meta/llama-3.2-1b-instruct
    context_length: 8192
    tag: "1.8.3"
data_split_config:
  limit: null
engine:
  stage_limits:
    start_customization: {hard: 6h}
`), func(k string) string { return env[k] })
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("platform:", cfg.Platform.Name)
	fmt.Println("database:", cfg.DatabaseURL)
	fmt.Println("customizer:", cfg.NMP.CustomizerURL)
	fmt.Println("judge key set:", cfg.Judge.APIKey != "")
	fmt.Println("limit:", cfg.DataSplit.Limit)
	fmt.Println("customization limit:", cfg.Engine.StageLimits["start_customization"])
	// Output:
	// platform: nemo
	// database: sqlite:/home/ada/.local/share/flywheel/flywheel.db
	// customizer: http://nemo.example.com
	// judge key set: true
	// limit: <nil>
	// customization limit: {6h0m0s 5h30m0s}
}

func ExampleFieldErrors() {
	_, err := config.Parse([]byte(`
nims:
  - model_name: my-model
    context_length: 4096
    customization_enabled: true
data_split_config:
  eval_size: 2
  val_ratio: 1.5
engine:
  workerz: 4
`), func(k string) string { return map[string]string{"HOME": "/home/ada"}[k] })
	for _, fe := range config.FieldErrors(err) {
		fmt.Println(fe)
	}
	// Output:
	// engine.workerz: unknown key; did you mean "workers"? (line 10)
	// nims[0].customizer_configs: required when customization_enabled is true
	// data_split_config.val_ratio: must be at least 0 and less than 1 (got 1.5)
	// icl_config.max_examples: must not exceed data_split_config.eval_size (2), got 3
}
