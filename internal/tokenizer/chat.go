package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// ChatTemplate is the Jinja chat template stored in every model made here.
// It is ChatML with a tool list in the system turn and Hermes-style tool
// calls, which llama-server (--jinja) recognises and parses back into
// OpenAI tool_calls. RenderChat must produce byte for byte what llama-server
// renders from it.
const ChatTemplate = `{%- if tools -%}
<|im_start|>system
{% if messages[0].role == 'system' %}{{ messages[0].content }}
{% endif %}Tools: {% for t in tools %}{{ t.function.name }}({% if t.function.parameters and t.function.parameters.properties %}{% for k, v in t.function.parameters.properties.items() %}{{ k }}{% if not loop.last %}, {% endif %}{% endfor %}{% endif %}){% if not loop.last %}; {% endif %}{% endfor %}<|im_end|>
{% elif messages[0].role == 'system' -%}
<|im_start|>system
{{ messages[0].content }}<|im_end|>
{% endif -%}
{%- for m in messages -%}
{%- if m.role == 'user' or (m.role == 'system' and not loop.first) -%}
<|im_start|>{{ m.role }}
{{ m.content }}<|im_end|>
{% elif m.role == 'assistant' -%}
<|im_start|>assistant
{% if m.content %}{{ m.content }}{% endif %}{% if m.tool_calls %}{% for tc in m.tool_calls %}{% if not loop.first %}
{% endif %}<tool_call>
{"name": "{{ tc.function.name }}", "arguments": {% if tc.function.arguments is string %}{{ tc.function.arguments }}{% else %}{{ tc.function.arguments | tojson }}{% endif %}}
</tool_call>{% endfor %}{% endif %}<|im_end|>
{% elif m.role == 'tool' -%}
<|im_start|>user
<tool_response>
{{ m.content }}
</tool_response><|im_end|>
{% endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
<|im_start|>assistant
{% endif -%}`

// Message is one chat message in OpenAI form.
type Message struct {
	Role      string          `json:"role"`
	Content   json.RawMessage `json:"content,omitempty"`
	ToolCalls []ToolCall      `json:"tool_calls,omitempty"`
}

// ToolCall is an assistant's call of a function.
type ToolCall struct {
	Function struct {
		Name string `json:"name"`
		// Arguments is a JSON string holding a JSON object (OpenAI's
		// form), or the object itself.
		Arguments json.RawMessage `json:"arguments"`
	} `json:"function"`
}

// Tool is a function offered to the model.
type Tool struct {
	Function struct {
		Name       string          `json:"name"`
		Parameters json.RawMessage `json:"parameters,omitempty"`
	} `json:"function"`
}

// RenderChat renders messages and tools with ChatTemplate. With
// addGenerationPrompt the text ends with the opening of an assistant turn.
func RenderChat(messages []Message, tools []Tool, addGenerationPrompt bool) (string, error) {
	var b strings.Builder
	if len(messages) == 0 {
		return "", fmt.Errorf("no messages")
	}
	first := messages[0]
	if len(tools) > 0 {
		b.WriteString("<|im_start|>system\n")
		if first.Role == "system" {
			c, err := contentText(first.Content)
			if err != nil {
				return "", fmt.Errorf("message 0: %w", err)
			}
			b.WriteString(c + "\n")
		}
		b.WriteString("Tools: ")
		for i, t := range tools {
			if i > 0 {
				b.WriteString("; ")
			}
			keys, err := propertyNames(t.Function.Parameters)
			if err != nil {
				return "", fmt.Errorf("tool %d (%s): %w", i, t.Function.Name, err)
			}
			b.WriteString(t.Function.Name + "(" + strings.Join(keys, ", ") + ")")
		}
		b.WriteString("<|im_end|>\n")
	} else if first.Role == "system" {
		c, err := contentText(first.Content)
		if err != nil {
			return "", fmt.Errorf("message 0: %w", err)
		}
		b.WriteString("<|im_start|>system\n" + c + "<|im_end|>\n")
	}
	for i, m := range messages {
		c, err := contentText(m.Content)
		if err != nil {
			return "", fmt.Errorf("message %d: %w", i, err)
		}
		switch {
		case m.Role == "user" || (m.Role == "system" && i > 0):
			b.WriteString("<|im_start|>" + m.Role + "\n" + c + "<|im_end|>\n")
		case m.Role == "assistant":
			b.WriteString("<|im_start|>assistant\n")
			s, err := RenderAssistant(c, m.ToolCalls)
			if err != nil {
				return "", fmt.Errorf("message %d: %w", i, err)
			}
			b.WriteString(s + "<|im_end|>\n")
		case m.Role == "tool":
			b.WriteString("<|im_start|>user\n<tool_response>\n" + c + "\n</tool_response><|im_end|>\n")
		}
	}
	if addGenerationPrompt {
		b.WriteString("<|im_start|>assistant\n")
	}
	return b.String(), nil
}

// RenderAssistant renders the body of an assistant turn (without the turn
// markers): its text, then each tool call.
func RenderAssistant(content string, calls []ToolCall) (string, error) {
	var b strings.Builder
	b.WriteString(content)
	for j, tc := range calls {
		if j > 0 {
			b.WriteString("\n")
		}
		args, err := argumentsJSON(tc.Function.Arguments)
		if err != nil {
			return "", fmt.Errorf("tool call %d (%s): %w", j, tc.Function.Name, err)
		}
		b.WriteString(ToolCallOpen + "\n{\"name\": \"" + tc.Function.Name + "\", \"arguments\": " + args + "}\n" + ToolCallClose)
	}
	return b.String(), nil
}

// contentText returns a message's content: a string, null, or a list of
// {"type":"text","text":...} parts.
func contentText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", fmt.Errorf("content is neither a string nor a list of parts")
	}
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

// propertyNames returns the keys of parameters.properties in order.
func propertyNames(params json.RawMessage) ([]string, error) {
	if len(bytes.TrimSpace(params)) == 0 || string(bytes.TrimSpace(params)) == "null" {
		return nil, nil
	}
	var p struct {
		Properties json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, fmt.Errorf("parameters: %w", err)
	}
	if len(p.Properties) == 0 || string(p.Properties) == "null" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(p.Properties))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("parameters.properties is not an object")
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("parameters.properties: %w", err)
		}
		keys = append(keys, k.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, fmt.Errorf("parameters.properties.%s: %w", k, err)
		}
	}
	return keys, nil
}

// argumentsJSON renders tool call arguments as the template's tojson does:
// keys in their order, ", " and ": " separators.
func argumentsJSON(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("arguments: %w", err)
		}
		raw = []byte(s)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = []byte("{}")
	}
	var b strings.Builder
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := writeJSON(&b, dec); err != nil {
		return "", fmt.Errorf("arguments: %w", err)
	}
	if dec.More() {
		return "", fmt.Errorf("arguments: trailing data after the JSON value")
	}
	return b.String(), nil
}

func writeJSON(b *strings.Builder, dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch v := tok.(type) {
	case json.Delim:
		closing := map[json.Delim]string{'{': "}", '[': "]"}[v]
		b.WriteString(v.String())
		for i := 0; dec.More(); i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			if v == '{' {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				if err := marshalTo(b, k); err != nil {
					return err
				}
				b.WriteString(": ")
			}
			if err := writeJSON(b, dec); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return err
		}
		b.WriteString(closing)
	case nil:
		b.WriteString("null")
	default:
		if err := marshalTo(b, v); err != nil {
			return err
		}
	}
	return nil
}

// marshalTo writes v as JSON without HTML escaping (as tojson does).
func marshalTo(b *strings.Builder, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	b.Write(bytes.TrimRight(buf.Bytes(), "\n"))
	return nil
}
