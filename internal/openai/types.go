package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Message is one chat message. Content holds the text; a reply whose
// content is null or an array of parts decodes into the concatenated text
// parts.
type Message struct {
	Role       string     `json:"role"`
	Content    string     `json:"content"`
	Name       string     `json:"name,omitempty"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
}

// UnmarshalJSON accepts content as a string, null, or an array of parts.
func (m *Message) UnmarshalJSON(b []byte) error {
	var w wireMessage
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	msg, err := w.message()
	if err != nil {
		return err
	}
	*m = msg
	return nil
}

// contentText returns the text of a message content value.
func contentText(c json.RawMessage) (string, error) {
	c = bytes.TrimSpace(c)
	if len(c) == 0 || string(c) == "null" {
		return "", nil
	}
	switch c[0] {
	case '"':
		if s, ok := plainString(c); ok {
			return s, nil
		}
		var s string
		if err := json.Unmarshal(c, &s); err != nil {
			return "", fmt.Errorf("decode content: %w", err)
		}
		return s, nil
	case '[':
		var parts []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}
		if err := json.Unmarshal(c, &parts); err != nil {
			return "", fmt.Errorf("decode content parts: %w", err)
		}
		var sb strings.Builder
		for _, p := range parts {
			sb.WriteString(p.Text)
		}
		return sb.String(), nil
	}
	return "", fmt.Errorf("decode content: unexpected JSON %.20q", c)
}

// ToolCall is one function call made by the model. Arguments is the JSON
// text of the arguments as the model wrote it (servers send a string; an
// object is kept as its JSON text).
type ToolCall struct {
	Index    *int         `json:"index,omitempty"`
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type"`
	Function FunctionCall `json:"function"`
}

// FunctionCall is the function part of a ToolCall.
type FunctionCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// UnmarshalJSON accepts arguments as a JSON string or as a JSON value.
func (f *FunctionCall) UnmarshalJSON(b []byte) error {
	var raw struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	f.Name = raw.Name
	return f.setArguments(raw.Arguments)
}

// setArguments sets Arguments from its raw JSON: a string's text, or the
// JSON text of any other value.
func (f *FunctionCall) setArguments(raw json.RawMessage) error {
	a := bytes.TrimSpace(raw)
	switch {
	case len(a) == 0 || string(a) == "null":
		f.Arguments = ""
	case a[0] == '"':
		if s, ok := plainString(a); ok {
			f.Arguments = s
			return nil
		}
		if err := json.Unmarshal(a, &f.Arguments); err != nil {
			return fmt.Errorf("decode arguments: %w", err)
		}
	default:
		f.Arguments = string(a)
	}
	return nil
}

// Tool is a tool offered to the model.
type Tool struct {
	Type     string      `json:"type"`
	Function FunctionDef `json:"function"`
}

// FunctionDef declares a function: its name, description and JSON-schema
// parameters.
type FunctionDef struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

// ChatRequest is a typed chat completion request. Extra fields are merged
// into the JSON body as given (they override typed fields of the same
// name).
type ChatRequest struct {
	Model       string          `json:"model"`
	Messages    []Message       `json:"messages"`
	Tools       []Tool          `json:"tools,omitempty"`
	ToolChoice  json.RawMessage `json:"tool_choice,omitempty"`
	Temperature *float64        `json:"temperature,omitempty"`
	TopP        *float64        `json:"top_p,omitempty"`
	MaxTokens   *int            `json:"max_tokens,omitempty"`
	Seed        *int64          `json:"seed,omitempty"`
	Stop        []string        `json:"stop,omitempty"`
	Stream      bool            `json:"stream,omitempty"`
	// Extra holds any other body fields (for example "nvext").
	Extra map[string]json.RawMessage `json:"-"`
}

// MarshalJSON encodes the request with Extra merged in.
func (r ChatRequest) MarshalJSON() ([]byte, error) {
	type plain ChatRequest
	b, err := json.Marshal(plain(r))
	if err != nil || len(r.Extra) == 0 {
		return b, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for k, v := range r.Extra {
		m[k] = v
	}
	return json.Marshal(m)
}

// Usage is the token accounting of a reply.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// Timings is llama-server's report of the time it spent on one reply:
// evaluating the prompt and generating the completion.
type Timings struct {
	PromptN     int     `json:"prompt_n"`
	PromptMS    float64 `json:"prompt_ms"`
	PredictedN  int     `json:"predicted_n"`
	PredictedMS float64 `json:"predicted_ms"`
}

// ComputeMS returns the server's compute time for the reply: prompt
// evaluation plus generation, in milliseconds.
func (t Timings) ComputeMS() float64 {
	return t.PromptMS + t.PredictedMS
}

// Choice is one alternative of a chat completion.
type Choice struct {
	Index        int     `json:"index"`
	Message      Message `json:"message"`
	FinishReason string  `json:"finish_reason"`
}

// ChatResponse is a chat completion. For a streamed reply it is
// reassembled from the chunks. The fields without JSON names describe the
// call, not the reply.
type ChatResponse struct {
	ID      string   `json:"id"`
	Object  string   `json:"object"`
	Created int64    `json:"created"`
	Model   string   `json:"model"`
	Choices []Choice `json:"choices"`
	Usage   *Usage   `json:"usage,omitempty"`
	// Timings is the server's own account of its compute time, which
	// llama-server adds to its replies (nil from other servers).
	Timings *Timings `json:"timings,omitempty"`

	// Latency is the duration of the attempt that succeeded, from sending
	// the request to reading the last byte of the reply.
	Latency time.Duration `json:"-"`
	// TimeToFirstToken is, for a streamed reply, the time from sending the
	// request to the first chunk carrying content or a tool call.
	TimeToFirstToken time.Duration `json:"-"`
	// Attempts is how many HTTP attempts the call took (1 without retries).
	Attempts int `json:"-"`
	// Streamed reports whether the reply came as server-sent events.
	Streamed bool `json:"-"`
}

// FirstMessage returns the message of the first choice, or a zero Message
// when there are no choices.
func (r *ChatResponse) FirstMessage() Message {
	if r == nil || len(r.Choices) == 0 {
		return Message{}
	}
	return r.Choices[0].Message
}

// EmbeddingRequest asks for the embeddings of Input. InputType and
// Truncate are NVIDIA extensions ("query"/"passage", "END"/"NONE").
type EmbeddingRequest struct {
	Model          string   `json:"model"`
	Input          []string `json:"input"`
	InputType      string   `json:"input_type,omitempty"`
	EncodingFormat string   `json:"encoding_format,omitempty"`
	Dimensions     int      `json:"dimensions,omitempty"`
	Truncate       string   `json:"truncate,omitempty"`
}

// Embedding is one embedding vector and the position of its input.
type Embedding struct {
	Index     int       `json:"index"`
	Embedding []float32 `json:"embedding"`
}

// EmbeddingResponse is the reply to an embeddings request.
type EmbeddingResponse struct {
	Model string      `json:"model"`
	Data  []Embedding `json:"data"`
	Usage *Usage      `json:"usage,omitempty"`
}

// Model is one entry of GET /v1/models.
type Model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// plainString returns the text of a JSON string literal that has no escapes
// and only printable ASCII, without a decoder pass; ok is false otherwise.
func plainString(b []byte) (string, bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", false
	}
	for _, c := range b[1 : len(b)-1] {
		if c == '\\' || c == '"' || c < 0x20 || c >= 0x80 {
			return "", false
		}
	}
	return string(b[1 : len(b)-1]), true
}

// wireMessage and wireToolCall mirror Message and ToolCall with raw
// content and arguments, so that a reply is decoded in one pass.
type wireMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	Name       string          `json:"name"`
	ToolCalls  []wireToolCall  `json:"tool_calls"`
	ToolCallID string          `json:"tool_call_id"`
}

type wireToolCall struct {
	Index    *int   `json:"index"`
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	} `json:"function"`
}

// DecodeChatResponse decodes a (non-streamed) chat completion. It is
// equivalent to json.Unmarshal into a ChatResponse, but walks the JSON
// once without reflection, which matters when replaying many requests.
func DecodeChatResponse(b []byte) (*ChatResponse, error) {
	if !json.Valid(b) {
		var v any
		return nil, json.Unmarshal(b, &v)
	}
	out := &ChatResponse{}
	err := forEachMember(b, func(k, v []byte) error {
		var err error
		switch {
		case keyIs(k, "id"):
			out.ID, err = decodeString(v)
		case keyIs(k, "object"):
			out.Object, err = decodeString(v)
		case keyIs(k, "model"):
			out.Model, err = decodeString(v)
		case keyIs(k, "created"):
			out.Created, err = decodeInt(v)
		case keyIs(k, "usage"):
			if !isNull(v) {
				out.Usage = &Usage{}
				err = json.Unmarshal(v, out.Usage)
			}
		case keyIs(k, "timings"):
			if !isNull(v) {
				out.Timings = &Timings{}
				err = json.Unmarshal(v, out.Timings)
			}
		case keyIs(k, "choices"):
			out.Choices, err = decodeChoices(v)
		}
		if err != nil {
			return fmt.Errorf("decode %s: %w", k, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func decodeChoices(b []byte) ([]Choice, error) {
	if isNull(b) {
		return nil, nil
	}
	elems, err := splitArray(b)
	if err != nil {
		return nil, err
	}
	out := make([]Choice, len(elems))
	for i, e := range elems {
		c := &out[i]
		if isNull(e) {
			continue
		}
		err := forEachMember(e, func(k, v []byte) error {
			var err error
			switch {
			case keyIs(k, "index"):
				var n int64
				n, err = decodeInt(v)
				c.Index = int(n)
			case keyIs(k, "finish_reason"):
				c.FinishReason, err = decodeString(v)
			case keyIs(k, "message"):
				c.Message, err = decodeMessage(v)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("choice %d: %w", i, err)
		}
	}
	return out, nil
}

func decodeMessage(b []byte) (Message, error) {
	var m Message
	if isNull(b) {
		return m, nil
	}
	err := forEachMember(b, func(k, v []byte) error {
		var err error
		switch {
		case keyIs(k, "role"):
			m.Role, err = decodeString(v)
		case keyIs(k, "content"):
			m.Content, err = contentText(v)
		case keyIs(k, "name"):
			m.Name, err = decodeString(v)
		case keyIs(k, "tool_call_id"):
			m.ToolCallID, err = decodeString(v)
		case keyIs(k, "tool_calls"):
			m.ToolCalls, err = decodeToolCalls(v)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		return nil
	})
	return m, err
}

func decodeToolCalls(b []byte) ([]ToolCall, error) {
	if isNull(b) {
		return nil, nil
	}
	elems, err := splitArray(b)
	if err != nil || len(elems) == 0 {
		return nil, err
	}
	out := make([]ToolCall, len(elems))
	for i, e := range elems {
		tc := &out[i]
		if isNull(e) {
			continue
		}
		err := forEachMember(e, func(k, v []byte) error {
			var err error
			switch {
			case keyIs(k, "id"):
				tc.ID, err = decodeString(v)
			case keyIs(k, "type"):
				tc.Type, err = decodeString(v)
			case keyIs(k, "index"):
				if !isNull(v) {
					var n int64
					n, err = decodeInt(v)
					idx := int(n)
					tc.Index = &idx
				}
			case keyIs(k, "function"):
				if isNull(v) {
					return nil
				}
				err = forEachMember(v, func(fk, fv []byte) error {
					switch {
					case keyIs(fk, "name"):
						var err error
						tc.Function.Name, err = decodeString(fv)
						return err
					case keyIs(fk, "arguments"):
						return tc.Function.setArguments(fv)
					}
					return nil
				})
			}
			if err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("tool call %d: %w", i, err)
		}
	}
	return out, nil
}

// decodeString decodes a JSON string or null.
func decodeString(b []byte) (string, error) {
	if isNull(b) {
		return "", nil
	}
	if s, ok := plainString(b); ok {
		return s, nil
	}
	var s string
	err := json.Unmarshal(b, &s)
	return s, err
}

// decodeInt decodes a JSON integer or null.
func decodeInt(b []byte) (int64, error) {
	if isNull(b) {
		return 0, nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		var f float64
		if json.Unmarshal(b, &f) == nil {
			return int64(f), nil
		}
		return 0, fmt.Errorf("not an integer: %s", b)
	}
	return n, nil
}

func isNull(b []byte) bool { return len(b) == 0 || string(b) == "null" }

func (w *wireMessage) message() (Message, error) {
	text, err := contentText(w.Content)
	if err != nil {
		return Message{}, err
	}
	m := Message{Role: w.Role, Content: text, Name: w.Name, ToolCallID: w.ToolCallID}
	if len(w.ToolCalls) > 0 {
		m.ToolCalls = make([]ToolCall, len(w.ToolCalls))
		for i, tc := range w.ToolCalls {
			m.ToolCalls[i] = ToolCall{Index: tc.Index, ID: tc.ID, Type: tc.Type, Function: FunctionCall{Name: tc.Function.Name}}
			if err := m.ToolCalls[i].Function.setArguments(tc.Function.Arguments); err != nil {
				return Message{}, fmt.Errorf("tool call %d: %w", i, err)
			}
		}
	}
	return m, nil
}
