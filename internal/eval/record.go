package eval

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/flywheel-go/flywheel/internal/openai"
)

// Record is one evaluation record in the blueprint's log format:
// {request, response, workload_id, client_id, timestamp}. The logged
// response is the reference the candidate is scored against.
type Record struct {
	Request    json.RawMessage `json:"request"`
	Response   json.RawMessage `json:"response"`
	WorkloadID string          `json:"workload_id"`
	ClientID   string          `json:"client_id"`
}

// parsedRecord is what scoring needs from a Record.
type parsedRecord struct {
	req map[string]json.RawMessage
	// responseID is the logged response's id (it keys acceptable-value
	// answers).
	responseID string
	ref        openai.Message
	refCalls   []Call
	tools      Tools
}

// parseRecord decodes one dataset line. Its errors say which field is
// wrong.
func parseRecord(line []byte) (*parsedRecord, error) {
	var rec Record
	if err := json.Unmarshal(line, &rec); err != nil {
		return nil, fmt.Errorf("decode record: %w", err)
	}
	if len(bytes.TrimSpace(rec.Request)) == 0 || string(rec.Request) == "null" {
		return nil, errors.New("record has no request")
	}
	p := &parsedRecord{}
	if err := json.Unmarshal(rec.Request, &p.req); err != nil {
		return nil, fmt.Errorf("decode request: %w", err)
	}
	var msgs []json.RawMessage
	if err := json.Unmarshal(p.req["messages"], &msgs); err != nil || len(msgs) == 0 {
		return nil, errors.New("request.messages is missing or empty")
	}
	var resp openai.ChatResponse
	if err := json.Unmarshal(rec.Response, &resp); err != nil {
		return nil, fmt.Errorf("decode response: %w", err)
	}
	if len(resp.Choices) == 0 {
		return nil, errors.New("response.choices is missing or empty")
	}
	p.responseID = resp.ID
	p.ref = resp.Choices[0].Message
	p.refCalls = ParseCalls(p.ref.ToolCalls)
	for _, c := range p.refCalls {
		if c.ArgsErr != nil {
			return nil, fmt.Errorf("response tool call %s: %w", c.Name, c.ArgsErr)
		}
	}
	tools, err := ParseTools(p.req["tools"])
	if err != nil {
		return nil, fmt.Errorf("request.tools: %w", err)
	}
	p.tools = tools
	return p, nil
}

// toolName is the blueprint's tool label of a record: the first reference
// call's function name, or "no_tool".
func (p *parsedRecord) toolName() string {
	if len(p.refCalls) == 0 {
		return "no_tool"
	}
	return p.refCalls[0].Name
}
