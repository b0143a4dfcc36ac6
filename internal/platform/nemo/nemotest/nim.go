package nemotest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"hash/fnv"
	"math"
	"net/http"
	"strings"
)

// requestKey identifies a request by its messages, canonically encoded.
func requestKey(messages json.RawMessage) string {
	var v any
	if json.Unmarshal(messages, &v) != nil {
		return string(messages)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// learn records the logged answer of a request.
func (s *Server) learn(request, response json.RawMessage) {
	var req struct {
		Messages json.RawMessage `json:"messages"`
	}
	var resp struct {
		Choices []struct {
			Message json.RawMessage `json:"message"`
		} `json:"choices"`
	}
	if json.Unmarshal(request, &req) != nil || req.Messages == nil ||
		json.Unmarshal(response, &resp) != nil || len(resp.Choices) == 0 {
		return
	}
	s.answers[requestKey(req.Messages)] = resp.Choices[0].Message
}

// learnJSONL records the answers of every logged record in a JSONL file.
func (s *Server) learnJSONL(b []byte) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var row evalRow
		if json.Unmarshal(sc.Bytes(), &row) == nil && row.Request != nil && row.Response != nil {
			s.learn(row.Request, row.Response)
		}
	}
}

// accuracy returns the fraction of requests model answers correctly.
func (s *Server) accuracy(model string) float64 {
	if v, ok := s.opts.Accuracy[model]; ok {
		return v
	}
	if strings.Contains(model, "@cust-") {
		return s.opts.CustomizedAccuracy
	}
	return s.opts.BaseAccuracy
}

// answerFor is the chat policy: the logged answer for a deterministic
// fraction of requests, a wrong tool (or a wrong text) otherwise. The
// caller holds s.mu.
func (s *Server) answerFor(model string, request json.RawMessage) map[string]any {
	var req struct {
		Messages json.RawMessage `json:"messages"`
		Tools    []struct {
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		} `json:"tools"`
	}
	_ = json.Unmarshal(request, &req)
	key := requestKey(req.Messages)
	logged, known := s.answers[key]
	h := fnv.New64a()
	_, _ = h.Write([]byte(model + "\x00" + key))
	dice := float64(h.Sum64()>>11) / float64(1<<53)
	if known && dice < s.accuracy(model) {
		var msg map[string]any
		if json.Unmarshal(logged, &msg) == nil {
			msg["role"] = "assistant"
			return msg
		}
	}
	if len(req.Tools) == 0 {
		return map[string]any{"role": "assistant", "content": "I am the NeMo fake and I am not sure."}
	}
	// A wrong tool: one the logged answer does not call.
	var ref map[string]any
	_ = json.Unmarshal(logged, &ref)
	used := map[string]bool{}
	for _, c := range toolCalls(ref) {
		used[c.name] = true
	}
	wrong := "no_such_tool"
	for _, t := range req.Tools {
		if !used[t.Function.Name] {
			wrong = t.Function.Name
			break
		}
	}
	return map[string]any{"role": "assistant", "content": "", "tool_calls": []any{map[string]any{
		"id": "call_fake", "type": "function",
		"function": map[string]any{"name": wrong, "arguments": "{}"},
	}}}
}

func (s *Server) nimRoutes() {
	s.handle(EndpointNIMModels, func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.advance()
		now := s.opts.Now()
		var data []map[string]any
		for _, id := range s.served(now) {
			data = append(data, map[string]any{"id": id, "object": "model", "created": now.Unix(), "owned_by": "nemotest"})
		}
		if data == nil {
			data = []map[string]any{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
	})
	s.handle(EndpointChatCompletions, func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if !decode(w, r, &body) {
			return
		}
		model, _ := body["model"].(string)
		if body["messages"] == nil {
			missingField(w, "messages")
			return
		}
		if stream, _ := body["stream"].(bool); stream {
			detail(w, http.StatusBadRequest, "streaming is not supported by nemotest")
			return
		}
		raw, _ := json.Marshal(body)
		s.mu.Lock()
		s.advance()
		now := s.opts.Now()
		if !s.isServed(model, now) {
			s.mu.Unlock()
			detail(w, http.StatusNotFound, "model %s not found", model)
			return
		}
		msg := s.answerFor(model, raw)
		id := s.newID("chatcmpl")
		s.mu.Unlock()
		out, _ := json.Marshal(msg)
		msgs, _ := json.Marshal(body["messages"])
		finish := "stop"
		if msg["tool_calls"] != nil {
			finish = "tool_calls"
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"id": id, "object": "chat.completion", "created": now.Unix(), "model": model,
			"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": finish}},
			"usage": map[string]any{"prompt_tokens": len(msgs)/4 + 1, "completion_tokens": len(out)/4 + 1,
				"total_tokens": len(msgs)/4 + len(out)/4 + 2},
		})
	})
	s.handle("POST "+NIMPrefix+"/v1/embeddings", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Model string `json:"model"`
			Input any    `json:"input"`
		}
		if !decode(w, r, &body) {
			return
		}
		var inputs []string
		switch v := body.Input.(type) {
		case string:
			inputs = []string{v}
		case []any:
			for _, x := range v {
				s, _ := x.(string)
				inputs = append(inputs, s)
			}
		default:
			missingField(w, "input")
			return
		}
		data := make([]map[string]any, 0, len(inputs))
		total := 0
		for i, in := range inputs {
			data = append(data, map[string]any{"object": "embedding", "index": i, "embedding": embed(in)})
			total += len(in)/4 + 1
		}
		writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data, "model": body.Model,
			"usage": map[string]any{"prompt_tokens": total, "total_tokens": total}})
	})
}

// embed returns a deterministic unit vector for text, built from its
// words so that texts sharing words are close.
func embed(text string) []float64 {
	v := make([]float64, EmbeddingDimDefault)
	for _, word := range strings.Fields(strings.ToLower(text)) {
		sum := sha256.Sum256([]byte(word))
		for i := range v {
			b := binary.LittleEndian.Uint16(sum[(2*i)%len(sum):])
			v[i] += float64(b)/65535 - 0.5
		}
	}
	var norm float64
	for _, x := range v {
		norm += x * x
	}
	norm = math.Sqrt(norm)
	if norm == 0 {
		v[0], norm = 1, 1
	}
	for i := range v {
		v[i] /= norm
	}
	return v
}
