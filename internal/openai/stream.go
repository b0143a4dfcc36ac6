package openai

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// chunk is one streamed chat completion chunk.
type chunk struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Role      string          `json:"role"`
			Content   json.RawMessage `json:"content"`
			ToolCalls []ToolCall      `json:"tool_calls"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage   *Usage   `json:"usage"`
	Timings *Timings `json:"timings"`
}

// streamChoice accumulates one choice of a streamed reply.
type streamChoice struct {
	role    string
	content strings.Builder
	calls   []ToolCall
	args    []strings.Builder
	finish  string
}

// readStream reassembles server-sent chat completion chunks into one
// ChatResponse: content deltas are concatenated, tool-call deltas are
// merged by their index (id and name from the first delta, arguments
// concatenated), and the last usage and timings seen are kept.
func readStream(r io.Reader, start time.Time) (*ChatResponse, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	out := &ChatResponse{Object: "chat.completion", Streamed: true}
	var choices []*streamChoice
	done := false
	var data bytes.Buffer
	flush := func() error {
		if data.Len() == 0 {
			return nil
		}
		defer data.Reset()
		payload := bytes.TrimSpace(data.Bytes())
		if string(payload) == "[DONE]" {
			done = true
			return nil
		}
		var ch chunk
		if err := json.Unmarshal(payload, &ch); err != nil {
			return flywheel.Permanent(fmt.Errorf("decode stream chunk: %w", err))
		}
		if errObj := errorInChunk(payload); errObj != "" {
			return fmt.Errorf("stream error: %s", errObj)
		}
		out.ID = cmpStr(out.ID, ch.ID)
		out.Model = cmpStr(out.Model, ch.Model)
		if out.Created == 0 {
			out.Created = ch.Created
		}
		if ch.Usage != nil {
			out.Usage = ch.Usage
		}
		if ch.Timings != nil {
			out.Timings = ch.Timings
		}
		for _, c := range ch.Choices {
			if c.Index < 0 || c.Index > 1024 {
				return fmt.Errorf("stream chunk: bad choice index %d", c.Index)
			}
			for len(choices) <= c.Index {
				choices = append(choices, &streamChoice{})
			}
			sc := choices[c.Index]
			if c.Delta.Role != "" {
				sc.role = c.Delta.Role
			}
			text, err := contentText(c.Delta.Content)
			if err != nil {
				return err
			}
			if text != "" || len(c.Delta.ToolCalls) > 0 {
				if out.TimeToFirstToken == 0 {
					out.TimeToFirstToken = time.Since(start)
				}
			}
			sc.content.WriteString(text)
			for _, tc := range c.Delta.ToolCalls {
				i := len(sc.calls)
				if tc.Index != nil {
					i = *tc.Index
				} else if tc.ID == "" && len(sc.calls) > 0 {
					i = len(sc.calls) - 1 // continuation without an index
				}
				if i < 0 || i > 1024 {
					return fmt.Errorf("stream chunk: bad tool call index %d", i)
				}
				for len(sc.calls) <= i {
					sc.calls = append(sc.calls, ToolCall{Type: "function"})
					sc.args = append(sc.args, strings.Builder{})
				}
				call := &sc.calls[i]
				if tc.ID != "" {
					call.ID = tc.ID
				}
				if tc.Type != "" {
					call.Type = tc.Type
				}
				if tc.Function.Name != "" {
					call.Function.Name += tc.Function.Name
				}
				sc.args[i].WriteString(tc.Function.Arguments)
			}
			if c.FinishReason != nil && *c.FinishReason != "" {
				sc.finish = *c.FinishReason
			}
		}
		return nil
	}
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if err := flush(); err != nil {
				return nil, err
			}
		case bytes.HasPrefix(line, []byte("data:")):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.Write(bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("data:")), []byte(" ")))
		}
		if done {
			break
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read stream: %w", err)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if !done && len(choices) == 0 {
		return nil, fmt.Errorf("read stream: ended without any chunk")
	}
	for i, c := range choices {
		msg := Message{Role: cmpStr(c.role, "assistant"), Content: c.content.String()}
		for j := range c.calls {
			call := c.calls[j]
			call.Function.Arguments = c.args[j].String()
			msg.ToolCalls = append(msg.ToolCalls, call)
		}
		out.Choices = append(out.Choices, Choice{Index: i, Message: msg, FinishReason: c.finish})
	}
	return out, nil
}

// errorInChunk returns the message of an {"error": …} chunk, or "".
func errorInChunk(payload []byte) string {
	if !bytes.Contains(payload, []byte(`"error"`)) {
		return ""
	}
	var e struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(payload, &e) != nil || len(e.Error) == 0 || string(e.Error) == "null" {
		return ""
	}
	return string(e.Error)
}

// cmpStr returns a if it is not empty, else b.
func cmpStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
