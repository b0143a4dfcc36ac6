// Package openai is a small client for OpenAI-compatible HTTP servers: chat
// completions (tools, tool_choice, streamed replies reassembled from
// server-sent events), embeddings in batches, and the model list. NIM
// proxies, llama-server, vLLM and the LLM judge all speak this protocol.
//
// # Why not the official openai-go SDK
//
// The flywheel replays logged production requests verbatim: the request
// body is whatever JSON the application sent, including fields the SDK
// does not model (nvext, vendor sampling knobs, multimodal parts). The SDK
// would force every request through its typed params and back, dropping
// or reshaping unknown fields. It also owns its retry loop and timing, so
// the latency we report would include SDK work and retry waits we cannot
// separate. This client instead:
//
//   - sends raw request bytes untouched (ChatRaw) or a typed ChatRequest,
//     whose Extra fields are merged into the body;
//   - measures the latency of the attempt that succeeded, from writing the
//     request to reading the last byte, and the time to the first streamed
//     token;
//   - retries 408, 429, 5xx and connection failures with capped exponential
//     backoff and jitter, honouring Retry-After, with a per-attempt timeout;
//   - uses a pooled transport sized for high concurrency and decodes only
//     the fields the flywheel needs, so it adds little per request.
//
// A Client is safe for concurrent use. Every call takes a context and
// returns promptly once it is cancelled.
//
// Errors: an *APIError describes a non-2xx reply; those that retrying
// cannot fix (4xx other than 408 and 429) also satisfy
// errors.Is(err, flywheel.ErrPermanent).
package openai
