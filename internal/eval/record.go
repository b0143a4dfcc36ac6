package eval

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/flywheel-go/flywheel/internal/openai"
)

// parsedRecord is what scoring needs from one evaluation record, a line
// in the blueprint's log format {request, response, workload_id,
// client_id, timestamp}. The logged response is the reference.
type parsedRecord struct {
	// req holds the request's top-level members (sub-slices of the line).
	req []member
	// responseID is the logged response's id (it keys acceptable-value
	// answers).
	responseID string
	ref        openai.Message
	// refUsage is the usage the logged response reported, if any.
	refUsage *openai.Usage
	refCalls []Call
	tools    Tools
}

// toolsCache shares parsed tool schemas between records that offer the
// same tools (production workloads usually do). Its size is bounded.
type toolsCache struct {
	mu sync.Mutex
	m  map[string]Tools
}

// toolsCacheMax bounds the entries of a toolsCache.
const toolsCacheMax = 1024

// parse returns the tools of raw, which must be valid JSON.
func (c *toolsCache) parse(raw []byte) (Tools, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	c.mu.Lock()
	t, ok := c.m[string(raw)]
	c.mu.Unlock()
	if ok {
		return t, nil
	}
	t, err := parseToolsValid(raw)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]Tools{}
	}
	if len(c.m) < toolsCacheMax {
		c.m[string(raw)] = t
	}
	c.mu.Unlock()
	return t, nil
}

// parseRecord decodes one dataset line. Its errors say which field is
// wrong.
func parseRecord(line []byte, cache *toolsCache) (*parsedRecord, error) {
	if !json.Valid(line) {
		var v any
		err := json.Unmarshal(line, &v)
		return nil, fmt.Errorf("decode record: %w", err)
	}
	top, err := splitObject(line)
	if err != nil {
		return nil, fmt.Errorf("decode record: %w", err)
	}
	reqRaw := get(top, "request")
	if reqRaw == nil || string(reqRaw) == "null" {
		return nil, errors.New("record has no request")
	}
	p := &parsedRecord{}
	if p.req, err = splitObject(reqRaw); err != nil {
		return nil, fmt.Errorf("decode request: %w", err)
	}
	msgs := get(p.req, "messages")
	if len(msgs) < 2 || msgs[0] != '[' || len(bytes.TrimSpace(msgs[1:len(msgs)-1])) == 0 {
		return nil, errors.New("request.messages is missing or empty")
	}
	resp := &openai.ChatResponse{}
	if respRaw := get(top, "response"); respRaw != nil && string(respRaw) != "null" {
		if resp, err = openai.DecodeChatResponse(respRaw); err != nil {
			return nil, fmt.Errorf("decode response: %w", err)
		}
	}
	if len(resp.Choices) == 0 {
		return nil, errors.New("response.choices is missing or empty")
	}
	p.responseID = resp.ID
	p.ref = resp.Choices[0].Message
	p.refUsage = resp.Usage
	p.refCalls = ParseCalls(p.ref.ToolCalls)
	for _, c := range p.refCalls {
		if c.ArgsErr != nil {
			return nil, fmt.Errorf("response tool call %s: %w", c.Name, c.ArgsErr)
		}
	}
	if p.tools, err = cache.parse(get(p.req, "tools")); err != nil {
		return nil, fmt.Errorf("request.tools: %w", err)
	}
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
