// Package openaitest is an in-process fake OpenAI-compatible server for
// tests and benchmarks: scripted chat replies (a policy function per
// request), embeddings, a model list, streaming, failure injection (queued
// or random error statuses, Retry-After, latency) and request counting.
//
//	srv := openaitest.New(openaitest.Options{Chat: func(c openaitest.ChatCall) openaitest.Reply {
//		return openaitest.Reply{Message: openai.Message{Role: "assistant", Content: "hi"}}
//	}})
//	defer srv.Close()
//	client, _ := openai.New(openai.Config{BaseURL: srv.URL})
package openaitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flywheel-go/flywheel/internal/openai"
)

// StreamMode says when chat replies are streamed.
type StreamMode int

// Stream modes.
const (
	// StreamAuto streams when the request asks for it ("stream": true).
	StreamAuto StreamMode = iota
	// StreamAlways streams every chat reply.
	StreamAlways
	// StreamNever never streams.
	StreamNever
)

// ChatCall is one chat completion request as the fake received it.
type ChatCall struct {
	// N is the 1-based sequence number of the request among chat requests.
	N          int64
	Body       []byte
	Header     http.Header
	Model      string
	Messages   []openai.Message
	Tools      json.RawMessage
	ToolChoice json.RawMessage
	Stream     bool
}

// LastUserContent returns the content of the last user message.
func (c ChatCall) LastUserContent() string {
	for i := len(c.Messages) - 1; i >= 0; i-- {
		if c.Messages[i].Role == "user" {
			return c.Messages[i].Content
		}
	}
	return ""
}

// Reply is a scripted answer to a chat request.
type Reply struct {
	Message      openai.Message
	FinishReason string
	// Usage defaults to a count derived from the request and reply sizes.
	Usage *openai.Usage
	// Status, when not 2xx (and not zero), sends an error reply instead.
	Status int
	// RetryAfter is sent as the Retry-After header of an error reply.
	RetryAfter string
	// Body, when set, is sent verbatim as a 200 JSON reply.
	Body []byte
	// Delay is waited before replying (on top of Options.Latency).
	Delay time.Duration
	// Timings, when set, is sent as llama-server's compute-time report
	// of a reply that is not streamed.
	Timings *openai.Timings
}

// ChatFunc computes the reply to a chat request. It may be called
// concurrently.
type ChatFunc func(ChatCall) Reply

// EmbedFunc returns the vector of one input.
type EmbedFunc func(model, input string) []float32

// Options configures a Server.
type Options struct {
	// Chat answers chat requests; nil echoes the last user message.
	Chat ChatFunc
	// Embed answers embeddings; nil returns an 8-dimensional vector
	// derived from a hash of the input.
	Embed EmbedFunc
	// Models are listed by GET /v1/models (default "test-model").
	Models []string
	// Stream says when chat replies are streamed.
	Stream StreamMode
	// Latency is added to every reply.
	Latency time.Duration
	// ErrorRate is the probability that a request fails with ErrorStatus
	// (500 by default); Seed makes the draws repeatable.
	ErrorRate   float64
	ErrorStatus int
	Seed        uint64
	// APIKey, when set, is required as a Bearer token (401 otherwise).
	APIKey string
	// FixedReply, when set, is sent verbatim as the JSON reply to every chat
	// request without decoding the request: a fast mode for load tests.
	FixedReply []byte
}

// Server is a running fake. Its URL field is the base URL to give a client.
type Server struct {
	*httptest.Server

	mu       sync.Mutex
	opts     Options
	rng      *rand.Rand
	failNext []queuedFailure
	counts   map[string]int64
	chatN    atomic.Int64
	inFlight atomic.Int64
	maxIn    atomic.Int64
}

type queuedFailure struct {
	status     int
	retryAfter string
}

// New starts a fake server; call Close when done.
func New(opts Options) *Server {
	s := &Server{opts: opts, counts: map[string]int64{}, rng: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15))}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.handleChat)
	mux.HandleFunc("POST /v1/embeddings", s.handleEmbeddings)
	mux.HandleFunc("GET /v1/models", s.handleModels)
	s.Server = httptest.NewServer(s.wrap(mux))
	return s
}

// FailNext makes the next n requests fail with status, sending retryAfter
// (when not empty) as the Retry-After header.
func (s *Server) FailNext(n, status int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failNext = append(s.failNext, queuedFailure{status: status, retryAfter: retryAfter})
	}
}

// SetFailure sets the random error rate and status.
func (s *Server) SetFailure(rate float64, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.ErrorRate, s.opts.ErrorStatus = rate, status
}

// SetLatency sets the latency added to every reply.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.Latency = d
}

// SetStream sets the stream mode.
func (s *Server) SetStream(m StreamMode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.Stream = m
}

// SetChat replaces the chat policy.
func (s *Server) SetChat(f ChatFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.Chat = f
}

// Count returns how many requests reached path (for example
// "/v1/chat/completions"), failed ones included.
func (s *Server) Count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.counts[path])
}

// MaxInFlight returns the largest number of requests handled at once.
func (s *Server) MaxInFlight() int { return int(s.maxIn.Load()) }

// wrap counts requests, checks the API key and injects failures and latency.
func (s *Server) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		for {
			m := s.maxIn.Load()
			if n <= m || s.maxIn.CompareAndSwap(m, n) {
				break
			}
		}
		s.mu.Lock()
		s.counts[r.URL.Path]++
		opts := s.opts
		var fail *queuedFailure
		if len(s.failNext) > 0 {
			f := s.failNext[0]
			s.failNext = s.failNext[1:]
			fail = &f
		} else if opts.ErrorRate > 0 && s.rng.Float64() < opts.ErrorRate {
			fail = &queuedFailure{status: cmpInt(opts.ErrorStatus, http.StatusInternalServerError)}
		}
		s.mu.Unlock()
		if opts.APIKey != "" && r.Header.Get("Authorization") != "Bearer "+opts.APIKey {
			writeError(w, http.StatusUnauthorized, "", "invalid api key")
			return
		}
		// Read the body first: the server notices a client that went away
		// only once the body is consumed.
		body, err := readBody(r)
		if err != nil {
			writeError(w, http.StatusBadRequest, "", "read body: "+err.Error())
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if !sleep(r, opts.Latency) {
			return
		}
		if fail != nil {
			writeError(w, fail.status, fail.retryAfter, "injected failure")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	if s.opts.FixedReply != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		s.chatN.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(s.opts.FixedReply)
		return
	}
	var req struct {
		Model      string           `json:"model"`
		Messages   []openai.Message `json:"messages"`
		Tools      json.RawMessage  `json:"tools"`
		ToolChoice json.RawMessage  `json:"tool_choice"`
		Stream     bool             `json:"stream"`
	}
	body, err := readBody(r)
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "", "invalid JSON body: "+err.Error())
		return
	}
	if len(req.Messages) == 0 {
		writeError(w, http.StatusBadRequest, "", "messages must not be empty")
		return
	}
	call := ChatCall{N: s.chatN.Add(1), Body: body, Header: r.Header, Model: req.Model, Messages: req.Messages,
		Tools: req.Tools, ToolChoice: req.ToolChoice, Stream: req.Stream}
	s.mu.Lock()
	chat, mode := s.opts.Chat, s.opts.Stream
	s.mu.Unlock()
	var rep Reply
	if chat != nil {
		rep = chat(call)
	} else {
		rep = Reply{Message: openai.Message{Role: "assistant", Content: call.LastUserContent()}}
	}
	if !sleep(r, rep.Delay) {
		return
	}
	if rep.Status != 0 && (rep.Status < 200 || rep.Status > 299) {
		writeError(w, rep.Status, rep.RetryAfter, "scripted failure")
		return
	}
	if rep.Body != nil {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(rep.Body)
		return
	}
	if rep.Message.Role == "" {
		rep.Message.Role = "assistant"
	}
	if rep.FinishReason == "" {
		rep.FinishReason = "stop"
		if len(rep.Message.ToolCalls) > 0 {
			rep.FinishReason = "tool_calls"
		}
	}
	usage := rep.Usage
	if usage == nil {
		out := len(rep.Message.Content)
		for _, tc := range rep.Message.ToolCalls {
			out += len(tc.Function.Name) + len(tc.Function.Arguments)
		}
		usage = &openai.Usage{PromptTokens: len(body) / 4, CompletionTokens: out/4 + 1}
		usage.TotalTokens = usage.PromptTokens + usage.CompletionTokens
	}
	id := "chatcmpl-" + strconv.FormatInt(call.N, 10)
	stream := mode == StreamAlways || (mode == StreamAuto && req.Stream)
	if stream {
		writeStream(w, id, req.Model, rep, usage)
		return
	}
	resp := openai.ChatResponse{ID: id, Object: "chat.completion", Created: time.Now().Unix(), Model: req.Model,
		Choices: []openai.Choice{{Message: rep.Message, FinishReason: rep.FinishReason}}, Usage: usage, Timings: rep.Timings}
	b, err := json.Marshal(resp)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// writeStream sends rep as server-sent chunks: the role, the content in
// pieces, each tool call's name and then its arguments in two halves, the
// finish reason, the usage, and [DONE].
func writeStream(w http.ResponseWriter, id, model string, rep Reply, usage *openai.Usage) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	fl, _ := w.(http.Flusher)
	send := func(delta map[string]any, finish *string, u *openai.Usage) {
		ch := map[string]any{"id": id, "object": "chat.completion.chunk", "model": model}
		choices := []map[string]any{}
		if delta != nil || finish != nil {
			c := map[string]any{"index": 0, "delta": delta, "finish_reason": finish}
			if delta == nil {
				c["delta"] = map[string]any{}
			}
			choices = append(choices, c)
		}
		ch["choices"] = choices
		if u != nil {
			ch["usage"] = u
		}
		b, _ := json.Marshal(ch)
		_, _ = fmt.Fprintf(w, "data: %s\n\n", b)
		if fl != nil {
			fl.Flush()
		}
	}
	send(map[string]any{"role": "assistant", "content": ""}, nil, nil)
	content := []rune(rep.Message.Content)
	for i := 0; i < len(content); i += 8 {
		send(map[string]any{"content": string(content[i:min(i+8, len(content))])}, nil, nil)
	}
	for i, tc := range rep.Message.ToolCalls {
		args := tc.Function.Arguments
		half := len(args) / 2
		send(map[string]any{"tool_calls": []map[string]any{{"index": i, "id": tc.ID, "type": "function",
			"function": map[string]any{"name": tc.Function.Name, "arguments": args[:half]}}}}, nil, nil)
		send(map[string]any{"tool_calls": []map[string]any{{"index": i,
			"function": map[string]any{"arguments": args[half:]}}}}, nil, nil)
	}
	finish := rep.FinishReason
	send(nil, &finish, nil)
	send(nil, nil, usage)
	_, _ = fmt.Fprint(w, "data: [DONE]\n\n")
}

func (s *Server) handleEmbeddings(w http.ResponseWriter, r *http.Request) {
	var req openai.EmbeddingRequest
	body, err := readBody(r)
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "", "invalid JSON body")
		return
	}
	s.mu.Lock()
	embed := s.opts.Embed
	s.mu.Unlock()
	if embed == nil {
		embed = hashVector
	}
	resp := openai.EmbeddingResponse{Model: req.Model}
	// Reply in reverse order so that clients must sort by index.
	for i := len(req.Input) - 1; i >= 0; i-- {
		resp.Data = append(resp.Data, openai.Embedding{Index: i, Embedding: embed(req.Model, req.Input[i])})
	}
	writeJSON(w, resp)
}

func (s *Server) handleModels(w http.ResponseWriter, _ *http.Request) {
	models := s.opts.Models
	if len(models) == 0 {
		models = []string{"test-model"}
	}
	out := struct {
		Object string         `json:"object"`
		Data   []openai.Model `json:"data"`
	}{Object: "list"}
	for _, m := range models {
		out.Data = append(out.Data, openai.Model{ID: m, Object: "model", OwnedBy: "openaitest"})
	}
	writeJSON(w, out)
}

// hashVector derives an 8-dimensional vector from a hash of the input.
func hashVector(_, input string) []float32 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(input))
	r := rand.New(rand.NewPCG(h.Sum64(), 1))
	v := make([]float32, 8)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func readBody(r *http.Request) ([]byte, error) {
	defer r.Body.Close()
	return io.ReadAll(r.Body)
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, status int, retryAfter, msg string) {
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg, "type": "fake_error", "code": status}})
	_, _ = w.Write(b)
}

// sleep waits d unless the request is cancelled first; it reports whether
// the request is still live.
func sleep(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.Context().Done():
		return false
	case <-t.C:
		return true
	}
}

func cmpInt(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}
