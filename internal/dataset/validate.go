package dataset

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// Reasons a record is dropped; they are the keys of flywheel.DataStats.Reasons.
// Invalid records are counted under ReasonInvalidFormat + ":" + the field
// at fault, indexes removed (for example "invalid_format:request.messages[].role").
const (
	ReasonInvalidFormat         = "invalid_format"
	ReasonNoToolCalls           = "no_tool_calls"
	ReasonInvalidArguments      = "invalid_tool_call_arguments"
	ReasonTooManyToolProperties = "too_many_tool_properties"
	ReasonDuplicate             = "duplicate_user_messages"
)

const (
	toolNameNone   = "no_tool"
	toolNameOthers = "others"
	roleUser       = "user"
	roleAssistant  = "assistant"
	roleSystem     = "system"
)

// knownRoles are the chat roles OpenAI-compatible servers accept.
func knownRole(r string) bool {
	switch r {
	case "system", "developer", "user", "assistant", "tool", "function":
		return true
	}
	return false
}

// message is the view of one chat message the pipeline needs.
type message struct {
	Role      string
	Content   json.RawMessage
	ToolCalls json.RawMessage
}

// toolCall is the view of one tool call.
type toolCall struct {
	Name      string
	Arguments json.RawMessage
}

// Record is a validated log record with the parts the pipeline uses.
type Record struct {
	// Log is the record as stored, with tool-call arguments parsed to
	// objects when that was asked for.
	Log flywheel.LogRecord
	// Messages are the request's messages.
	Messages []message
	// Answer is the first choice's message.
	Answer message
	// Calls are the answer's tool calls.
	Calls []toolCall
	// MaxToolProperties is the largest parameter count of the offered tools.
	MaxToolProperties int
	// HasTools reports whether the request offered tools.
	HasTools bool
	// hash is RecordHash of the record as read, before any change.
	hash string
}

// ToolName is the record's class for stratification: its first tool call's
// function name, or "no_tool".
func (r *Record) ToolName() string {
	if len(r.Calls) > 0 {
		return r.Calls[0].Name
	}
	return toolNameNone
}

// UserQuery is the text of the last user message (text parts of
// multimodal content joined by spaces).
func (r *Record) UserQuery() string {
	for i := len(r.Messages) - 1; i >= 0; i-- {
		if r.Messages[i].Role == roleUser {
			return contentText(r.Messages[i].Content)
		}
	}
	return ""
}

// FormatError says why a record failed format validation.
type FormatError struct {
	// Field is the JSON path of the offending part.
	Field  string
	Reason string
}

// Error implements the error interface.
func (e *FormatError) Error() string { return e.Field + ": " + e.Reason }

func formatErr(field, format string, args ...any) *FormatError {
	return &FormatError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Validate checks that a log record is an OpenAI chat completion exchange:
// request.messages is a non-empty array of messages with known roles and
// string, null or array content; request.tools, when given, is an array of
// function tools with names; response.choices is a non-empty array of
// objects each holding a message; the first message comes from the
// assistant, has content or tool calls, and its tool calls, when given, are
// function calls with names and string or object arguments. Keys match
// exactly (case-sensitively), as OpenAI-compatible servers read them. It
// never panics, whatever the input.
func Validate(rec flywheel.LogRecord) (*Record, *FormatError) {
	req, ok := fields(rec.Request)
	if !ok {
		return nil, formatErr("request", "want a JSON object")
	}
	out := &Record{Log: rec}
	rawMsgs, ok := array(req["messages"])
	if !ok || len(rawMsgs) == 0 {
		return nil, formatErr("request.messages", "want a non-empty array")
	}
	out.Messages = make([]message, len(rawMsgs))
	for i, raw := range rawMsgs {
		m, ferr := parseMessage(raw, fmt.Sprintf("request.messages[%d]", i))
		if ferr != nil {
			return nil, ferr
		}
		out.Messages[i] = m
	}
	if present(req["tools"]) {
		tools, ok := array(req["tools"])
		if !ok {
			return nil, formatErr("request.tools", "want an array")
		}
		for i, raw := range tools {
			field := fmt.Sprintf("request.tools[%d]", i)
			t, _ := fields(raw)
			fn, _ := fields(t["function"])
			if name, _ := str(fn["name"]); strings.TrimSpace(name) == "" {
				return nil, formatErr(field, "want a function tool with a name")
			}
			if present(fn["parameters"]) {
				params, ok := fields(fn["parameters"])
				if !ok {
					return nil, formatErr(field+".function.parameters", "want an object")
				}
				if present(params["properties"]) {
					props, ok := fields(params["properties"])
					if !ok {
						return nil, formatErr(field+".function.parameters.properties", "want an object")
					}
					out.MaxToolProperties = max(out.MaxToolProperties, len(props))
				}
			}
		}
		out.HasTools = len(tools) > 0
	}

	resp, ok := fields(rec.Response)
	if !ok {
		return nil, formatErr("response", "want a JSON object")
	}
	choices, ok := array(resp["choices"])
	if !ok || len(choices) == 0 {
		return nil, formatErr("response.choices", "want a non-empty array")
	}
	for i, raw := range choices {
		field := fmt.Sprintf("response.choices[%d]", i)
		c, ok := fields(raw)
		if !ok || !isObject(c["message"]) {
			return nil, formatErr(field, "want an object with a message")
		}
		if i > 0 {
			continue
		}
		m, ferr := parseMessage(c["message"], field+".message")
		if ferr != nil {
			return nil, ferr
		}
		if m.Role != roleAssistant {
			return nil, formatErr(field+".message.role", "want %q, got %q", roleAssistant, m.Role)
		}
		out.Answer = m
	}
	if present(out.Answer.ToolCalls) {
		calls, _ := array(out.Answer.ToolCalls) // an array: parseMessage checked
		out.Calls = make([]toolCall, len(calls))
		for i, raw := range calls {
			field := fmt.Sprintf("response.choices[0].message.tool_calls[%d]", i)
			c, ok := fields(raw)
			if !ok {
				return nil, formatErr(field, "want a tool call object")
			}
			if typ, _ := str(c["type"]); present(c["type"]) && typ != "function" {
				return nil, formatErr(field+".type", "want \"function\", got %s", clip(c["type"]))
			}
			fn, _ := fields(c["function"])
			name, _ := str(fn["name"])
			if strings.TrimSpace(name) == "" {
				return nil, formatErr(field+".function.name", "missing")
			}
			args := bytes.TrimSpace(fn["arguments"])
			if len(args) > 0 && args[0] != '"' && args[0] != '{' && !bytes.Equal(args, []byte("null")) {
				return nil, formatErr(field+".function.arguments", "want a JSON string or object")
			}
			out.Calls[i] = toolCall{Name: name, Arguments: args}
		}
	}
	if !present(out.Answer.Content) && len(out.Calls) == 0 {
		return nil, formatErr("response.choices[0].message", "has neither content nor tool calls")
	}
	return out, nil
}

// parseMessage checks one chat message.
func parseMessage(raw json.RawMessage, field string) (message, *FormatError) {
	f, ok := fields(raw)
	if !ok {
		return message{}, formatErr(field, "want a message object")
	}
	role, _ := str(f["role"])
	if !knownRole(role) {
		return message{}, formatErr(field+".role", "unknown role %s", clip(f["role"]))
	}
	m := message{Role: role, Content: f["content"], ToolCalls: f["tool_calls"]}
	if c := bytes.TrimSpace(m.Content); len(c) > 0 && c[0] != '"' && c[0] != '[' && !bytes.Equal(c, []byte("null")) {
		return m, formatErr(field+".content", "want a string, an array of parts or null")
	}
	if present(m.ToolCalls) && !isArray(m.ToolCalls) {
		return m, formatErr(field+".tool_calls", "want an array")
	}
	return m, nil
}

// fields decodes a JSON object into its members (keys match exactly).
func fields(raw json.RawMessage) (map[string]json.RawMessage, bool) {
	if !isObject(raw) {
		return nil, false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil, false
	}
	return m, true
}

// array decodes a JSON array into its elements.
func array(raw json.RawMessage) ([]json.RawMessage, bool) {
	if !isArray(raw) {
		return nil, false
	}
	var a []json.RawMessage
	if json.Unmarshal(raw, &a) != nil {
		return nil, false
	}
	return a, true
}

// str decodes a JSON string.
func str(raw json.RawMessage) (string, bool) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// clip quotes raw JSON for messages, shortened.
func clip(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "nothing"
	}
	r := []rune(string(raw))
	if len(r) > 40 {
		return string(r[:40]) + "…"
	}
	return string(r)
}

// parseArguments turns every string tool-call argument of the record's
// answer into a JSON object, rewriting Log.Response. It fails when a string
// is not a JSON object.
func (r *Record) parseArguments() error {
	changed := false
	for i, c := range r.Calls {
		a := bytes.TrimSpace(c.Arguments)
		if len(a) == 0 || a[0] != '"' {
			continue
		}
		var s string
		if err := json.Unmarshal(a, &s); err != nil {
			return fmt.Errorf("tool_calls[%d].function.arguments: %w", i, err)
		}
		s = strings.TrimSpace(s)
		if s == "" {
			s = "{}"
		}
		if !isObject([]byte(s)) || !json.Valid([]byte(s)) {
			return fmt.Errorf("tool_calls[%d].function.arguments: not a JSON object", i)
		}
		r.Calls[i].Arguments = json.RawMessage(s)
		changed = true
	}
	if !changed {
		return nil
	}
	var resp map[string]any
	if err := unmarshalNumber(r.Log.Response, &resp); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	choices, _ := resp["choices"].([]any)
	if len(choices) == 0 {
		return errors.New("response has no choices")
	}
	first, _ := choices[0].(map[string]any)
	msg, _ := first["message"].(map[string]any)
	calls, _ := msg["tool_calls"].([]any)
	for i, c := range calls {
		cm, _ := c.(map[string]any)
		fn, _ := cm["function"].(map[string]any)
		if fn != nil && i < len(r.Calls) {
			fn["arguments"] = r.Calls[i].Arguments
		}
	}
	b, err := json.Marshal(resp)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	r.Log.Response = b
	if r.Answer.ToolCalls, err = json.Marshal(calls); err != nil {
		return fmt.Errorf("encode tool calls: %w", err)
	}
	return nil
}

// unmarshalNumber decodes keeping numbers as written.
func unmarshalNumber(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

// contentText returns the text of a message content: the string itself, or
// the text parts of an array joined by spaces.
func contentText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		_ = json.Unmarshal(raw, &s)
		return s
	case '[':
		var parts []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}
		_ = json.Unmarshal(raw, &parts)
		var texts []string
		for _, p := range parts {
			if p.Text != "" {
				texts = append(texts, p.Text)
			}
		}
		return strings.Join(texts, " ")
	}
	return ""
}

func present(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && !bytes.Equal(raw, []byte("null"))
}

func isObject(raw []byte) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{'
}

func isArray(raw []byte) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '['
}
