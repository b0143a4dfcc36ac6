// Package eval evaluates candidate models on a run's evaluation set: it
// replays each logged request against an OpenAI-compatible endpoint, scores
// the reply against the logged production answer, and aggregates the scores
// with their uncertainty, latency, tokens and cost.
//
// # Runner
//
// Runner implements flywheel.Evaluator. It streams the dataset file (a
// directory holding eval_data.jsonl, or the file), keeps a bounded number
// of requests in flight, retries through the openai client, reports
// progress, stops within a second of its context being cancelled, and keeps
// only compact per-item results (or hands them to Options.ItemSink, so that
// memory does not grow with the dataset).
//
// # Scores
//
// Tool-calling workloads report the blueprint's keys function_name and
// function_name_and_args_accuracy, tool_calling_correctness when a judge is
// configured, and ours: tool_call_{precision,recall,f1} over whole calls,
// tool_arg_{precision,recall,f1} over (function, argument, value) triples,
// and ast_accuracy from the BFCL-style checker. Generic workloads report
// exact_match, token_f1 and rouge_l, and the blueprint's similarity (1–10)
// when a judge is configured. Judge scores are absent, never zero, without
// a judge. Arguments are compared after JSON normalisation (key order,
// white space and number spelling do not matter) and parallel calls in any
// order.
//
// # The AST checker
//
// CheckCalls follows BFCL's AST checker (count, name, required arguments,
// unexpected arguments, JSON-schema types, acceptable values with BFCL's
// string normalisation, order-free parallel calls) and names the first
// failing check as the item's error class. Where BFCL's own data
// contradicts its schemas, the acceptable-value answer wins: an argument the
// answer lists is never unexpected, a value the answer lists is never a
// type error, and a required argument the answer allows to omit may be
// omitted. Parallel calls are matched with a full bipartite matching rather
// than BFCL's greedy one. Without an answer file, each reference call is its
// own answer (AnswerFromCalls).
//
// CheckCallsBFCL is the bfcl mode (ToolCallChecker, the config key
// eval.tool_call_checker): it reproduces the verdicts and error types of
// BFCL's checker exactly, quirks included, decoding arguments with Python's
// JSON semantics (pyLoads) and comparing them with Python's equality. The
// deviations of the default mode are listed in docs/evaluation.md.
//
// # Statistics and recommendation
//
// Every score comes with its sample count, standard error and a 95%
// bootstrap interval (exact for 0/1 scores, seeded resampling otherwise).
// Compare pairs two candidates item by item; CompareToProduction pairs a
// candidate with the production model, whose logged answers are the
// references and so score the maximum on every item. Recommend picks the
// cheapest candidate whose paired difference from production has a 95%
// interval above −margin.
package eval
