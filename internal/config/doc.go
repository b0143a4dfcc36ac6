// Package config loads the flywheel's configuration: the blueprint's
// config.yaml keys (nmp_config, llm_judge_config, nims, data_split_config,
// icl_config, training_config, lora_config, logging_config, mlflow_config)
// with their meaning unchanged, plus our own sections (database_url,
// data_dir, server, platform, engine, eval, elasticsearch, capture).
//
// Load starts from Default, overlays a YAML file, then the environment
// (secrets only ever come from there), and validates the result, reporting
// every problem at once as *FieldError values. The main package calls it
// once and hands each subsystem its own section; nothing else reads the
// environment. docs/config.md is the reference of every key.
package config
