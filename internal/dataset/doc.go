// Package dataset turns logged production records into a run's datasets:
// the evaluation set, the few-shot (ICL) evaluation set and the training
// set with its validation part. It is the create_datasets stage's logic,
// free of I/O other than reading records from a flywheel.RecordSource,
// asking an Embedder for vectors, and writing JSONL files.
//
// The pipeline follows the Data Flywheel Blueprint, with its bugs fixed:
//
//  1. Fetch the newest 2×limit records of the workload and client.
//  2. Validate the OpenAI chat format (Validate): request messages with
//     known roles and valid content, tools with names, a response with
//     choices and messages, well-formed tool calls.
//  3. Classify the workload: tool_calling when any valid record's answer
//     has tool calls, generic otherwise.
//  4. Tool-calling workloads keep only records with tool calls; tool-call
//     arguments given as JSON strings are parsed to objects when
//     DataSplitConfig.ParseFunctionArguments is set (records whose
//     arguments are not a JSON object are dropped); records whose tools
//     declare more than DataSplitConfig.MaxToolProperties parameters are
//     dropped when it is above zero.
//  5. Deduplicate by the user messages' contents (text and multimodal
//     alike); the newest record wins; records without user messages stay.
//  6. Sample DataSplitConfig.Limit records with a seeded generator
//     (RandomSeed; when it is nil the seed comes from the clock).
//  7. Split into eval, train and validation sets, stratified by tool name
//     (Split), with fallbacks instead of failures.
//  8. Build ICL records: each evaluation record with few-shot examples
//     from the training set in its system message (see icl.go).
//  9. Write the files: flywheel-eval-{workload}-{ts}/eval_data.jsonl,
//     flywheel-icl-{workload}-{ts}/eval_data.jsonl and
//     flywheel-train-{workload}-{ts}/{training/train_data.jsonl,
//     validation/val_data.jsonl}.
//
// Every step's count goes into flywheel.DataStats; too little data is an
// error wrapping flywheel.ErrPermanent whose message names those counts.
package dataset
