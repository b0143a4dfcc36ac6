// Package ingest reads production chat-completion logs from JSONL and hands
// them to a flywheel.LogIngester.
//
// Two line formats are accepted, detected line by line:
//
//   - The log format of the Data Flywheel Blueprint:
//     {"workload_id", "client_id", "timestamp", "request", "response"}, where
//     request is an OpenAI chat request and response an OpenAI chat
//     completion. Other top-level keys are ignored. Request and response
//     are stored in canonical form (see Canonical).
//   - The conversation format: {"messages": [...], "tools"?: [...]}. The last
//     message must come from the assistant and becomes the response; the
//     earlier messages become the request.
//
// A line that cannot be used is rejected with its line number, the field at
// fault and the reason; every other line is kept. Lines may be many
// megabytes long (up to Options.MaxLineBytes).
//
// Timestamps may be RFC 3339 strings, unix seconds or unix milliseconds
// (numbers or numeric strings; values of 1e11 and more are read as
// milliseconds), or absent, in which case the injected clock gives the time.
//
// Hash gives the content hash stores use to skip records loaded twice.
package ingest
