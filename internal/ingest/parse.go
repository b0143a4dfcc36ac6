package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/redact"
)

// ModelDefault is the model name written into requests built from
// conversation-format lines when Options.Model is empty.
const ModelDefault = "unknown"

// millisThreshold separates unix seconds from unix milliseconds: 1e11 seconds
// is in the year 5138, 1e11 milliseconds in 1973.
const millisThreshold = 1e11

// Options controls how lines become records.
type Options struct {
	// WorkloadID and ClientID, when set, replace the ids of every record
	// (the --workload-id and --client-id flags). When empty, each record
	// must carry its own.
	WorkloadID string
	ClientID   string
	// Model is the model name of requests built from conversation-format
	// lines (default ModelDefault).
	Model string
	// Now gives the timestamp of records without one (default time.Now).
	Now flywheel.Clock
	// BatchSize is how many records Load hands to the ingester at once
	// (default BatchSizeDefault).
	BatchSize int
	// MaxRejections caps the rejections kept in a Summary; all are counted
	// (default MaxRejectionsDefault; negative keeps none).
	MaxRejections int
	// MaxLineBytes is the longest line accepted; longer lines are rejected
	// (default MaxLineBytesDefault).
	MaxLineBytes int
	// Redactor, when set, redacts every record Load stores (see package
	// redact); Summary.Redacted counts what it replaced.
	Redactor *redact.Redactor
}

// Defaults of Options.
const (
	BatchSizeDefault     = 1000
	MaxRejectionsDefault = 1000
	MaxLineBytesDefault  = 64 << 20
)

// WithDefaults returns a copy of o with every unset field given its default.
func (o Options) WithDefaults() Options {
	if o.Model == "" {
		o.Model = ModelDefault
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.BatchSize <= 0 {
		o.BatchSize = BatchSizeDefault
	}
	if o.MaxRejections == 0 {
		o.MaxRejections = MaxRejectionsDefault
	}
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = MaxLineBytesDefault
	}
	return o
}

// Rejection says why one input line was not loaded.
type Rejection struct {
	// Line is the 1-based line number in the input.
	Line int `json:"line"`
	// Field is the JSON field at fault ("" when the whole line is).
	Field string `json:"field,omitempty"`
	// Reason says what is wrong.
	Reason string `json:"reason"`
}

// Error implements the error interface.
func (r *Rejection) Error() string {
	if r.Field == "" {
		return fmt.Sprintf("line %d: %s", r.Line, r.Reason)
	}
	return fmt.Sprintf("line %d: field %s: %s", r.Line, r.Field, r.Reason)
}

// line is the union of both line formats.
type line struct {
	WorkloadID json.RawMessage `json:"workload_id"`
	ClientID   json.RawMessage `json:"client_id"`
	Timestamp  json.RawMessage `json:"timestamp"`
	Request    json.RawMessage `json:"request"`
	Response   json.RawMessage `json:"response"`
	Messages   json.RawMessage `json:"messages"`
	Tools      json.RawMessage `json:"tools"`
}

// ParseLine turns one JSONL line into a record. lineNo is only used in the
// rejection. opts should have its defaults applied (Options.WithDefaults).
// A blank line is rejected with the reason "empty line"; Reader skips them
// before calling ParseLine.
func ParseLine(data []byte, lineNo int, opts Options) (flywheel.LogRecord, *Rejection) {
	reject := func(field, format string, args ...any) (flywheel.LogRecord, *Rejection) {
		return flywheel.LogRecord{}, &Rejection{Line: lineNo, Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	data = bytes.TrimSpace(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))) // a UTF-8 byte order mark
	if len(data) == 0 {
		return reject("", "empty line")
	}
	if data[0] != '{' {
		return reject("", "not a JSON object")
	}
	var l line
	if err := json.Unmarshal(data, &l); err != nil {
		return reject("", "invalid JSON: %v", err)
	}
	if opts.Now == nil {
		opts = opts.WithDefaults()
	}

	var rec flywheel.LogRecord
	var ok bool
	var rej *Rejection
	if rec.WorkloadID, rej = stringField(l.WorkloadID, "workload_id", opts.WorkloadID, lineNo); rej != nil {
		return flywheel.LogRecord{}, rej
	}
	if rec.ClientID, rej = stringField(l.ClientID, "client_id", opts.ClientID, lineNo); rej != nil {
		return flywheel.LogRecord{}, rej
	}
	if rec.Timestamp, ok = parseTimestamp(l.Timestamp, opts.Now); !ok {
		return reject("timestamp", "want RFC 3339 text or unix seconds or milliseconds, got %s", clip(l.Timestamp))
	}

	switch {
	case present(l.Request) || present(l.Response):
		if !isObject(l.Request) {
			return reject("request", "want a JSON object (an OpenAI chat request), got %s", kind(l.Request))
		}
		if !isObject(l.Response) {
			return reject("response", "want a JSON object (an OpenAI chat completion), got %s", kind(l.Response))
		}
		rec.Request = Canonical(l.Request)
		rec.Response = Canonical(l.Response)
	case present(l.Messages):
		req, resp, field, reason := fromConversation(l.Messages, l.Tools, rec.Timestamp, opts.Model)
		if reason != "" {
			return reject(field, "%s", reason)
		}
		rec.Request, rec.Response = req, resp
	default:
		return reject("", "neither the log format (request, response) nor the conversation format (messages)")
	}
	// Both databases must be able to store it: reject here, with the line,
	// what one of them would refuse.
	if field, reason := flywheel.CheckRecord(rec); reason != "" {
		return reject(field, "%s", reason)
	}
	// Request and response are canonical here, so the domain hash is the
	// ingest hash; computing it now keeps it off the store's path.
	rec.ContentHash = rec.HashCompact()
	return rec, nil
}

// stringField reads an id: the override wins, else a non-empty JSON string.
func stringField(raw json.RawMessage, name, override string, lineNo int) (string, *Rejection) {
	if override != "" {
		return override, nil
	}
	if !present(raw) {
		return "", &Rejection{Line: lineNo, Field: name, Reason: "missing; give it in the record or as an option"}
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", &Rejection{Line: lineNo, Field: name, Reason: fmt.Sprintf("want a string, got %s", kind(raw))}
	}
	// The decoder turns invalid UTF-8 into U+FFFD; an id is refused rather
	// than silently changed.
	if _, reason := flywheel.CheckJSON(raw); reason != "" {
		return "", &Rejection{Line: lineNo, Field: name, Reason: reason}
	}
	if strings.TrimSpace(s) == "" {
		return "", &Rejection{Line: lineNo, Field: name, Reason: "empty; give it in the record or as an option"}
	}
	return s, nil
}

// ParseTimestamp reads a record's timestamp: RFC 3339 text, or unix seconds
// or milliseconds as a number or numeric text (values of 1e11 and more are
// milliseconds). Absent or null gives now(). ok is false for anything else.
func ParseTimestamp(raw json.RawMessage, now flywheel.Clock) (t time.Time, ok bool) {
	return parseTimestamp(raw, now)
}

// parseTimestamp reads a timestamp; absent or null gives now().
func parseTimestamp(raw json.RawMessage, now flywheel.Clock) (time.Time, bool) {
	if !present(raw) {
		return now().UTC(), true
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return time.Time{}, false
		}
		s = strings.TrimSpace(s)
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t.UTC(), true
		}
		return parseUnix(s)
	}
	return parseUnix(string(raw))
}

// parseUnix reads unix seconds or milliseconds, integer or fractional.
func parseUnix(s string) (time.Time, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e16 {
		return time.Time{}, false
	}
	if f >= millisThreshold {
		ms := int64(f)
		return time.UnixMilli(ms).UTC(), true
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC(), true
}

// message is the part of a chat message the conversation format needs.
type message struct {
	Role      string          `json:"role"`
	Content   json.RawMessage `json:"content"`
	ToolCalls json.RawMessage `json:"tool_calls"`
}

// fromConversation builds a request and a response from a conversation.
func fromConversation(msgs, tools json.RawMessage, ts time.Time, model string) (req, resp json.RawMessage, field, reason string) {
	var raw []json.RawMessage
	if err := json.Unmarshal(msgs, &raw); err != nil {
		return nil, nil, "messages", fmt.Sprintf("want an array of messages, got %s", kind(msgs))
	}
	if len(raw) < 2 {
		return nil, nil, "messages", fmt.Sprintf("want at least 2 messages (a request and the assistant's answer), got %d", len(raw))
	}
	for i, m := range raw {
		var msg message
		if !isObject(m) || json.Unmarshal(m, &msg) != nil {
			return nil, nil, fmt.Sprintf("messages[%d]", i), "want a message object"
		}
		if msg.Role == "" {
			return nil, nil, fmt.Sprintf("messages[%d].role", i), "missing"
		}
	}
	last := raw[len(raw)-1]
	var lm message
	_ = json.Unmarshal(last, &lm) // checked above
	if lm.Role != "assistant" {
		return nil, nil, fmt.Sprintf("messages[%d].role", len(raw)-1), fmt.Sprintf("the last message must be the assistant's answer, got role %q", lm.Role)
	}
	hasCalls := present(lm.ToolCalls) && string(lm.ToolCalls) != "[]"
	if !present(lm.Content) && !hasCalls {
		return nil, nil, fmt.Sprintf("messages[%d]", len(raw)-1), "the assistant's answer has neither content nor tool_calls"
	}
	if present(tools) && !bytes.HasPrefix(bytes.TrimSpace(tools), []byte("[")) {
		return nil, nil, "tools", fmt.Sprintf("want an array of tools, got %s", kind(tools))
	}

	request := struct {
		Model    string            `json:"model"`
		Messages []json.RawMessage `json:"messages"`
		Tools    json.RawMessage   `json:"tools,omitempty"`
	}{Model: model, Messages: raw[:len(raw)-1]}
	if present(tools) {
		request.Tools = tools
	}
	finish := "stop"
	if hasCalls {
		finish = "tool_calls"
	}
	type choice struct {
		Index        int             `json:"index"`
		Message      json.RawMessage `json:"message"`
		FinishReason string          `json:"finish_reason"`
	}
	response := struct {
		ID      string   `json:"id"`
		Object  string   `json:"object"`
		Created int64    `json:"created"`
		Model   string   `json:"model"`
		Choices []choice `json:"choices"`
	}{
		ID:      fmt.Sprintf("chatcmpl-%d", ts.UnixNano()),
		Object:  "chat.completion",
		Created: ts.Unix(),
		Model:   model,
		Choices: []choice{{Index: 0, Message: last, FinishReason: finish}},
	}
	reqJSON, err := json.Marshal(request)
	if err != nil {
		return nil, nil, "messages", fmt.Sprintf("encode request: %v", err)
	}
	respJSON, err := json.Marshal(response)
	if err != nil {
		return nil, nil, "messages", fmt.Sprintf("encode response: %v", err)
	}
	return reqJSON, respJSON, "", ""
}

// present reports whether a field was given and is not null.
func present(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && !bytes.Equal(raw, []byte("null"))
}

// isObject reports whether raw is a JSON object.
func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{'
}

// kind names the JSON type of raw, for messages.
func kind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// clip quotes raw, shortened for messages.
func clip(raw json.RawMessage) string {
	const max = 40
	s := string(raw)
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}
