package capture

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"slices"
	"strings"
)

// ResponsesPath is the route of OpenAI's Responses API. Its exchanges are
// recorded in the blueprint's log format (a chat completion request and
// answer): see responsesRequestToChat and responsesToChatCompletion.
const ResponsesPath = "/v1/responses"

// maxOutputIndex bounds the item and choice indexes a stream may use.
const maxOutputIndex = 1024

// chatToolCall is a tool call of a chat completion message.
type chatToolCall struct {
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type"`
	Function chatFunction `json:"function"`
}

type chatFunction struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// chatMessage is a message of a chat completion request.
type chatMessage struct {
	Role       string         `json:"role"`
	Content    any            `json:"content"` // string, []map[string]any or nil
	ToolCalls  []chatToolCall `json:"tool_calls,omitempty"`
	ToolCallID string         `json:"tool_call_id,omitempty"`
}

// respContentPart is a content part of a Responses API message.
type respContentPart struct {
	Type     string `json:"type"`
	Text     string `json:"text,omitempty"`
	Refusal  string `json:"refusal,omitempty"`
	ImageURL string `json:"image_url,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// respItem is an input or output item of the Responses API: a message
// (type "message", or no type with a role), a function call, a function
// call's output, or a reasoning item. Other item types have no chat
// equivalent and are left out of the record.
type respItem struct {
	Type      string          `json:"type,omitempty"`
	ID        string          `json:"id,omitempty"`
	Role      string          `json:"role,omitempty"`
	Status    string          `json:"status,omitempty"`
	Content   json.RawMessage `json:"content,omitempty"` // string or []respContentPart
	CallID    string          `json:"call_id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Arguments string          `json:"arguments,omitempty"`
	Output    json.RawMessage `json:"output,omitempty"` // string or []respContentPart
	Summary   []struct {
		Text string `json:"text"`
	} `json:"summary,omitempty"`
}

// responsesRequestToChat converts a Responses API request to the chat
// completion request the log format holds: instructions become the first
// (system) message, input (a string, or a list of items) the messages,
// function tools (flat {type, name, description, parameters, strict}) the
// chat shape {type: "function", function: {...}}; tool_choice, sampling
// settings, max_output_tokens (as max_tokens), parallel_tool_calls,
// stream and text.format (as response_format) are kept. Tools other than
// functions (web search, file search, …) and items without a chat
// equivalent are left out.
func responsesRequestToChat(body []byte) ([]byte, error) {
	var req struct {
		Model        string          `json:"model"`
		Instructions json.RawMessage `json:"instructions"`
		Input        json.RawMessage `json:"input"`
		Tools        []struct {
			Type        string          `json:"type"`
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Parameters  json.RawMessage `json:"parameters"`
			Strict      *bool           `json:"strict"`
		} `json:"tools"`
		ToolChoice        json.RawMessage `json:"tool_choice"`
		Temperature       json.RawMessage `json:"temperature"`
		TopP              json.RawMessage `json:"top_p"`
		MaxOutputTokens   json.RawMessage `json:"max_output_tokens"`
		ParallelToolCalls json.RawMessage `json:"parallel_tool_calls"`
		Stream            json.RawMessage `json:"stream"`
		Text              struct {
			Format json.RawMessage `json:"format"`
		} `json:"text"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	if req.Model == "" {
		return nil, errors.New("responses request: no model")
	}
	var msgs []chatMessage
	var instructions string
	if isJSONString(req.Instructions) {
		_ = json.Unmarshal(req.Instructions, &instructions)
	}
	if instructions != "" {
		msgs = append(msgs, chatMessage{Role: "system", Content: instructions})
	}
	in, err := inputMessages(req.Input)
	if err != nil {
		return nil, err
	}
	msgs = append(msgs, in...)
	if len(msgs) == 0 {
		return nil, errors.New("responses request: no input")
	}

	out := map[string]any{"model": req.Model, "messages": msgs}
	var tools []map[string]any
	for _, t := range req.Tools {
		if t.Type != "function" || t.Name == "" {
			continue
		}
		fn := map[string]any{"name": t.Name}
		if t.Description != "" {
			fn["description"] = t.Description
		}
		if len(t.Parameters) > 0 && string(t.Parameters) != "null" {
			fn["parameters"] = t.Parameters
		}
		if t.Strict != nil {
			fn["strict"] = *t.Strict
		}
		tools = append(tools, map[string]any{"type": "function", "function": fn})
	}
	if len(tools) > 0 {
		out["tools"] = tools
	}
	if tc := toolChoiceToChat(req.ToolChoice); tc != nil {
		out["tool_choice"] = tc
	}
	if rf := formatToChat(req.Text.Format); rf != nil {
		out["response_format"] = rf
	}
	for k, v := range map[string]json.RawMessage{"temperature": req.Temperature, "top_p": req.TopP,
		"max_tokens": req.MaxOutputTokens, "parallel_tool_calls": req.ParallelToolCalls, "stream": req.Stream} {
		if len(v) > 0 && string(v) != "null" {
			out[k] = v
		}
	}
	return json.Marshal(out)
}

// inputMessages converts a Responses API input to chat messages.
// Consecutive function calls (and a function call right after an
// assistant message) form one assistant message with tool calls.
func inputMessages(raw json.RawMessage) ([]chatMessage, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if isJSONString(raw) {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return []chatMessage{{Role: "user", Content: s}}, nil
	}
	var items []respItem
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, errors.New("responses request: input is neither a string nor a list of items")
	}
	var msgs []chatMessage
	for _, it := range items {
		switch {
		case it.Type == "function_call":
			call := chatToolCall{ID: it.CallID, Type: "function", Function: chatFunction{Name: it.Name, Arguments: it.Arguments}}
			if n := len(msgs); n > 0 && msgs[n-1].Role == "assistant" && msgs[n-1].ToolCallID == "" {
				msgs[n-1].ToolCalls = append(msgs[n-1].ToolCalls, call)
			} else {
				msgs = append(msgs, chatMessage{Role: "assistant", ToolCalls: []chatToolCall{call}})
			}
		case it.Type == "function_call_output":
			msgs = append(msgs, chatMessage{Role: "tool", ToolCallID: it.CallID, Content: contentToChat(it.Output)})
		case (it.Type == "" || it.Type == "message") && it.Role != "":
			msgs = append(msgs, chatMessage{Role: it.Role, Content: contentToChat(it.Content)})
		}
	}
	return msgs, nil
}

// contentToChat converts a Responses content (a string or a list of
// parts) to chat content: the string; one text part as a string; else a
// list of chat parts (text, image_url). Parts with no chat equivalent
// (files, audio) are left out.
func contentToChat(raw json.RawMessage) any {
	if v, ok := nullOrString(raw); ok {
		return v
	}
	var parts []respContentPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return nil
	}
	var out []map[string]any
	for _, p := range parts {
		switch p.Type {
		case "input_text", "output_text", "text":
			out = append(out, map[string]any{"type": "text", "text": p.Text})
		case "refusal":
			out = append(out, map[string]any{"type": "text", "text": p.Refusal})
		case "input_image":
			if p.ImageURL != "" {
				img := map[string]any{"url": p.ImageURL}
				if p.Detail != "" {
					img["detail"] = p.Detail
				}
				out = append(out, map[string]any{"type": "image_url", "image_url": img})
			}
		}
	}
	if len(out) == 1 && out[0]["type"] == "text" {
		return out[0]["text"]
	}
	if len(out) == 0 {
		return ""
	}
	return out
}

// toolChoiceToChat converts tool_choice: the strings as they are, a
// function choice {type: "function", name} to {type: "function",
// function: {name}}; others (built-in tools, allowed_tools) are dropped.
func toolChoiceToChat(raw json.RawMessage) any {
	if v, ok := nullOrString(raw); ok {
		return v
	}
	var tc struct {
		Type string `json:"type"`
		Name string `json:"name"`
	}
	if json.Unmarshal(raw, &tc) != nil || tc.Type != "function" || tc.Name == "" {
		return nil
	}
	return map[string]any{"type": "function", "function": map[string]any{"name": tc.Name}}
}

// formatToChat converts text.format to response_format: json_schema
// (flat name, schema, strict, description) to the nested chat shape,
// json_object as it is; text (the default) is dropped.
func formatToChat(raw json.RawMessage) any {
	var f map[string]json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &f) != nil {
		return nil
	}
	var typ string
	_ = json.Unmarshal(f["type"], &typ)
	switch typ {
	case "json_object":
		return map[string]any{"type": "json_object"}
	case "json_schema":
		schema := map[string]json.RawMessage{}
		for _, k := range []string{"name", "schema", "strict", "description"} {
			if v, ok := f[k]; ok {
				schema[k] = v
			}
		}
		return map[string]any{"type": "json_schema", "json_schema": schema}
	}
	return nil
}

// respObject is a Responses API response object.
type respObject struct {
	ID                string          `json:"id"`
	CreatedAt         float64         `json:"created_at"`
	Model             string          `json:"model"`
	Status            string          `json:"status"`
	IncompleteDetails json.RawMessage `json:"incomplete_details"`
	Output            []respItem      `json:"output"`
	Usage             *struct {
		InputTokens         int             `json:"input_tokens"`
		OutputTokens        int             `json:"output_tokens"`
		TotalTokens         int             `json:"total_tokens"`
		InputTokensDetails  json.RawMessage `json:"input_tokens_details"`
		OutputTokensDetails json.RawMessage `json:"output_tokens_details"`
	} `json:"usage"`
}

// responsesToChatCompletion converts a Responses API response object to
// the chat.completion the log format holds: one choice whose message has
// the text of the output message items (output_text parts), their
// refusals, the reasoning summaries (reasoning_content) and one tool call
// per function_call item (id = call_id); finish_reason is tool_calls when
// there are calls, length or content_filter for an incomplete response
// cut for that reason, else stop; usage input/output tokens become
// prompt/completion tokens. Only completed (or incomplete) responses
// convert: a failed, cancelled, queued or in-progress one is an error.
func responsesToChatCompletion(raw []byte) ([]byte, error) {
	var r respObject
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, err
	}
	switch r.Status {
	case "completed", "incomplete", "":
	default:
		return nil, errors.New("responses answer: status " + r.Status)
	}
	var text, refusal, reasoning strings.Builder
	hasText := false
	var calls []chatToolCall
	for _, it := range r.Output {
		switch it.Type {
		case "message":
			var parts []respContentPart
			if isJSONString(it.Content) {
				var s string
				_ = json.Unmarshal(it.Content, &s)
				parts = []respContentPart{{Type: "output_text", Text: s}}
			} else if len(it.Content) > 0 {
				if err := json.Unmarshal(it.Content, &parts); err != nil {
					return nil, err
				}
			}
			for _, p := range parts {
				switch p.Type {
				case "output_text", "text":
					text.WriteString(p.Text)
					hasText = true
				case "refusal":
					refusal.WriteString(p.Refusal)
				}
			}
		case "function_call":
			calls = append(calls, chatToolCall{ID: it.CallID, Type: "function", Function: chatFunction{Name: it.Name, Arguments: it.Arguments}})
		case "reasoning":
			for _, s := range it.Summary {
				reasoning.WriteString(s.Text)
			}
		}
	}
	if !hasText && len(calls) == 0 && refusal.Len() == 0 {
		return nil, errors.New("responses answer: no message or function call in output")
	}
	finish := "stop"
	switch {
	case len(calls) > 0:
		finish = "tool_calls"
	case r.Status == "incomplete":
		var d struct {
			Reason string `json:"reason"`
		}
		_ = json.Unmarshal(r.IncompleteDetails, &d)
		switch d.Reason {
		case "max_output_tokens":
			finish = "length"
		case "content_filter":
			finish = "content_filter"
		}
	}
	type message struct {
		Role             string         `json:"role"`
		Content          *string        `json:"content"`
		ReasoningContent string         `json:"reasoning_content,omitempty"`
		Refusal          string         `json:"refusal,omitempty"`
		ToolCalls        []chatToolCall `json:"tool_calls,omitempty"`
	}
	m := message{Role: "assistant", ReasoningContent: reasoning.String(), Refusal: refusal.String(), ToolCalls: calls}
	if hasText {
		s := text.String()
		m.Content = &s
	}
	out := map[string]any{
		"id": r.ID, "object": "chat.completion", "created": int64(r.CreatedAt), "model": r.Model,
		"choices": []map[string]any{{"index": 0, "message": m, "finish_reason": finish}},
	}
	if r.Usage != nil {
		u := map[string]any{"prompt_tokens": r.Usage.InputTokens, "completion_tokens": r.Usage.OutputTokens,
			"total_tokens": cmp.Or(r.Usage.TotalTokens, r.Usage.InputTokens+r.Usage.OutputTokens)}
		if len(r.Usage.InputTokensDetails) > 0 && string(r.Usage.InputTokensDetails) != "null" {
			u["prompt_tokens_details"] = r.Usage.InputTokensDetails
		}
		if len(r.Usage.OutputTokensDetails) > 0 && string(r.Usage.OutputTokensDetails) != "null" {
			u["completion_tokens_details"] = r.Usage.OutputTokensDetails
		}
		out["usage"] = u
	}
	return json.Marshal(out)
}

// responsesStream rebuilds the final response object of a streamed
// Responses API answer. The terminal event (response.completed or
// response.incomplete) carries the whole response; when a server sends it
// with an empty output, the output is rebuilt from the output_item events
// and the text and argument deltas. A stream that fails
// (response.failed, error) or ends without a terminal event is not
// recorded.
type responsesStream struct {
	final  json.RawMessage
	failed bool
	items  map[int]*respItem
	text   map[int]*strings.Builder
	args   map[int]*strings.Builder
}

func newResponsesStream() *responsesStream {
	return &responsesStream{items: map[int]*respItem{}, text: map[int]*strings.Builder{}, args: map[int]*strings.Builder{}}
}

// add folds one event's data in; false when it cannot be read.
func (s *responsesStream) add(data []byte) bool {
	if string(data) == "[DONE]" {
		return true
	}
	var ev struct {
		Type        string          `json:"type"`
		Response    json.RawMessage `json:"response"`
		OutputIndex int             `json:"output_index"`
		Item        *respItem       `json:"item"`
		Delta       string          `json:"delta"`
		Text        *string         `json:"text"`
		Arguments   *string         `json:"arguments"`
	}
	if err := json.Unmarshal(data, &ev); err != nil {
		return false
	}
	if ev.OutputIndex < 0 || ev.OutputIndex > maxOutputIndex {
		return false
	}
	builder := func(m map[int]*strings.Builder) *strings.Builder {
		b := m[ev.OutputIndex]
		if b == nil {
			b = &strings.Builder{}
			m[ev.OutputIndex] = b
		}
		return b
	}
	switch ev.Type {
	case "response.completed", "response.incomplete":
		s.final = ev.Response
	case "response.failed", "error":
		s.failed = true
	case "response.output_item.added", "response.output_item.done":
		if ev.Item != nil {
			s.items[ev.OutputIndex] = ev.Item
		}
	case "response.output_text.delta":
		builder(s.text).WriteString(ev.Delta)
	case "response.output_text.done":
		if ev.Text != nil {
			b := builder(s.text)
			b.Reset()
			b.WriteString(*ev.Text)
		}
	case "response.function_call_arguments.delta":
		builder(s.args).WriteString(ev.Delta)
	case "response.function_call_arguments.done":
		if ev.Arguments != nil {
			b := builder(s.args)
			b.Reset()
			b.WriteString(*ev.Arguments)
		}
	}
	return true
}

// result returns the final response object, its output rebuilt from the
// stream's events when the terminal event had none.
func (s *responsesStream) result() (json.RawMessage, bool) {
	if s.failed || !isObject(s.final) {
		return nil, false
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(s.final, &fields); err != nil {
		return nil, false
	}
	if out := bytes.TrimSpace(fields["output"]); len(out) > 0 && string(out) != "null" && string(out) != "[]" {
		return s.final, true
	}
	idx := make([]int, 0, len(s.items))
	for i := range s.items {
		idx = append(idx, i)
	}
	for i := range s.text {
		if s.items[i] == nil {
			idx = append(idx, i)
		}
	}
	slices.Sort(idx)
	output := make([]respItem, 0, len(idx))
	for _, i := range idx {
		it := s.items[i]
		if it == nil {
			it = &respItem{Type: "message", Role: "assistant"}
		}
		switch it.Type {
		case "message":
			if b := s.text[i]; b != nil && (len(it.Content) == 0 || string(it.Content) == "[]") {
				it.Content, _ = json.Marshal([]respContentPart{{Type: "output_text", Text: b.String()}})
			}
		case "function_call":
			if b := s.args[i]; b != nil && it.Arguments == "" {
				it.Arguments = b.String()
			}
		}
		output = append(output, *it)
	}
	raw, err := json.Marshal(output)
	if err != nil {
		return nil, false
	}
	fields["output"] = raw
	full, err := json.Marshal(fields)
	if err != nil {
		return nil, false
	}
	return full, true
}

// nullOrString returns nil and true for an absent or null raw, the string
// and true for a JSON string, and false for anything else.
func nullOrString(raw json.RawMessage) (any, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, true
	}
	if isJSONString(raw) {
		var s string
		_ = json.Unmarshal(raw, &s)
		return s, true
	}
	return nil, false
}

func isJSONString(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '"'
}
