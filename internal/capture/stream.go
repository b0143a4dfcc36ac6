package capture

import (
	"cmp"
	"encoding/json"
	"errors"
	"slices"
	"strings"
)

// assembler rebuilds a chat.completion from chat.completion.chunk events.
type assembler struct {
	id, model, fingerprint string
	created                int64
	choices                map[int]*choiceAsm
	usage                  json.RawMessage
	sawChunk               bool
}

type choiceAsm struct {
	role      string
	content   strings.Builder
	reasoning strings.Builder
	refusal   strings.Builder
	hasText   bool
	calls     map[int]*callAsm
	finish    string
}

type callAsm struct {
	id, typ, name string
	args          strings.Builder
}

func newAssembler() *assembler { return &assembler{choices: map[int]*choiceAsm{}} }

// chunk is one streamed event.
type chunk struct {
	ID                string          `json:"id"`
	Model             string          `json:"model"`
	Created           int64           `json:"created"`
	SystemFingerprint string          `json:"system_fingerprint"`
	Usage             json.RawMessage `json:"usage"`
	Choices           []struct {
		Index int `json:"index"`
		Delta struct {
			Role             string  `json:"role"`
			Content          *string `json:"content"`
			ReasoningContent *string `json:"reasoning_content"`
			Refusal          *string `json:"refusal"`
			ToolCalls        []struct {
				Index    int    `json:"index"`
				ID       string `json:"id"`
				Type     string `json:"type"`
				Function struct {
					Name      string `json:"name"`
					Arguments string `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
}

// add folds one event's data in; false when it is not a chunk.
func (a *assembler) add(data []byte) bool {
	var c chunk
	if err := json.Unmarshal(data, &c); err != nil {
		return false
	}
	a.sawChunk = true
	if a.id == "" {
		a.id = c.ID
	}
	if a.model == "" {
		a.model = c.Model
	}
	if a.created == 0 {
		a.created = c.Created
	}
	if a.fingerprint == "" {
		a.fingerprint = c.SystemFingerprint
	}
	if len(c.Usage) > 0 && string(c.Usage) != "null" {
		a.usage = c.Usage
	}
	for _, ch := range c.Choices {
		if ch.Index < 0 || ch.Index > 1024 {
			return false
		}
		st := a.choices[ch.Index]
		if st == nil {
			st = &choiceAsm{calls: map[int]*callAsm{}}
			a.choices[ch.Index] = st
		}
		d := ch.Delta
		if d.Role != "" {
			st.role = d.Role
		}
		if d.Content != nil {
			st.content.WriteString(*d.Content)
			st.hasText = true
		}
		if d.ReasoningContent != nil {
			st.reasoning.WriteString(*d.ReasoningContent)
		}
		if d.Refusal != nil {
			st.refusal.WriteString(*d.Refusal)
		}
		for _, tc := range d.ToolCalls {
			if tc.Index < 0 || tc.Index > 1024 {
				return false
			}
			call := st.calls[tc.Index]
			if call == nil {
				call = &callAsm{}
				st.calls[tc.Index] = call
			}
			if tc.ID != "" {
				call.id = tc.ID
			}
			if tc.Type != "" {
				call.typ = tc.Type
			}
			if tc.Function.Name != "" && call.name != tc.Function.Name {
				call.name += tc.Function.Name
			}
			call.args.WriteString(tc.Function.Arguments)
		}
		if ch.FinishReason != nil && *ch.FinishReason != "" {
			st.finish = *ch.FinishReason
		}
	}
	return true
}

// finished reports whether every choice has a finish reason (servers that
// end the stream without "data: [DONE]").
func (a *assembler) finished() bool {
	if len(a.choices) == 0 {
		return false
	}
	for _, c := range a.choices {
		if c.finish == "" {
			return false
		}
	}
	return true
}

// completion returns the reassembled chat.completion object.
func (a *assembler) completion() (json.RawMessage, error) {
	if !a.sawChunk || len(a.choices) == 0 {
		return nil, errors.New("no chunks")
	}
	type function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	}
	type toolCall struct {
		ID       string   `json:"id,omitempty"`
		Type     string   `json:"type"`
		Function function `json:"function"`
	}
	type message struct {
		Role             string     `json:"role"`
		Content          *string    `json:"content"`
		ReasoningContent string     `json:"reasoning_content,omitempty"`
		Refusal          string     `json:"refusal,omitempty"`
		ToolCalls        []toolCall `json:"tool_calls,omitempty"`
	}
	type choice struct {
		Index        int     `json:"index"`
		Message      message `json:"message"`
		FinishReason *string `json:"finish_reason"`
	}
	out := struct {
		ID                string          `json:"id"`
		Object            string          `json:"object"`
		Created           int64           `json:"created"`
		Model             string          `json:"model"`
		SystemFingerprint string          `json:"system_fingerprint,omitempty"`
		Choices           []choice        `json:"choices"`
		Usage             json.RawMessage `json:"usage,omitempty"`
	}{ID: a.id, Object: "chat.completion", Created: a.created, Model: a.model, SystemFingerprint: a.fingerprint, Usage: a.usage}
	indexes := make([]int, 0, len(a.choices))
	for i := range a.choices {
		indexes = append(indexes, i)
	}
	slices.Sort(indexes)
	for _, i := range indexes {
		st := a.choices[i]
		m := message{Role: st.role, ReasoningContent: st.reasoning.String(), Refusal: st.refusal.String()}
		if m.Role == "" {
			m.Role = "assistant"
		}
		if st.hasText && (st.content.Len() > 0 || len(st.calls) == 0) {
			s := st.content.String()
			m.Content = &s
		}
		callIdx := make([]int, 0, len(st.calls))
		for j := range st.calls {
			callIdx = append(callIdx, j)
		}
		slices.Sort(callIdx)
		for _, j := range callIdx {
			c := st.calls[j]
			m.ToolCalls = append(m.ToolCalls, toolCall{ID: c.id, Type: cmp.Or(c.typ, "function"), Function: function{Name: c.name, Arguments: c.args.String()}})
		}
		ch := choice{Index: i, Message: m}
		if st.finish != "" {
			f := st.finish
			ch.FinishReason = &f
		}
		out.Choices = append(out.Choices, ch)
	}
	return json.Marshal(out)
}
