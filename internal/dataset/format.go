package dataset

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// File names inside the dataset directories, as the blueprint uploads them.
const (
	EvalFile  = "eval_data.jsonl"
	TrainFile = "training/train_data.jsonl"
	ValFile   = "validation/val_data.jsonl"
)

// Name returns a dataset's name, flywheel-{kind}-{workload}-{ts}, with
// every character of the workload id other than letters, digits, '.', '_'
// and '-' replaced by '-' so that the name is a safe file and repository
// name.
func Name(kind, workloadID string, ts int64) string {
	safe := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		}
		return '-'
	}, workloadID)
	return fmt.Sprintf("flywheel-%s-%s-%d", kind, safe, ts)
}

// evalLine is one record of an evaluation dataset: the log record, with
// tool-call arguments in the request's history turned back into JSON
// strings (as OpenAI servers expect them when the history is replayed)
// while the answer keeps them as objects (the ground truth).
func evalLine(r *Record, request json.RawMessage) ([]byte, error) {
	req, err := stringifyHistoryArguments(r, request)
	if err != nil {
		return nil, err
	}
	return json.Marshal(struct {
		WorkloadID string          `json:"workload_id"`
		ClientID   string          `json:"client_id"`
		Timestamp  int64           `json:"timestamp"`
		Request    json.RawMessage `json:"request"`
		Response   json.RawMessage `json:"response"`
	}{r.Log.WorkloadID, r.Log.ClientID, r.Log.Timestamp.Unix(), req, r.Log.Response})
}

// stringifyHistoryArguments rewrites request.messages[*].tool_calls[*]
// .function.arguments objects as JSON strings.
func stringifyHistoryArguments(r *Record, request json.RawMessage) (json.RawMessage, error) {
	has := false
	for _, m := range r.Messages {
		if present(m.ToolCalls) {
			has = true
			break
		}
	}
	if !has {
		return request, nil
	}
	var req map[string]any
	if err := unmarshalNumber(request, &req); err != nil {
		return nil, fmt.Errorf("decode request: %w", err)
	}
	msgs, _ := req["messages"].([]any)
	for _, m := range msgs {
		mm, _ := m.(map[string]any)
		calls, _ := mm["tool_calls"].([]any)
		for _, c := range calls {
			cm, _ := c.(map[string]any)
			fn, _ := cm["function"].(map[string]any)
			if args, ok := fn["arguments"]; ok {
				if _, isString := args.(string); !isString && args != nil {
					b, err := json.Marshal(args)
					if err != nil {
						return nil, fmt.Errorf("encode arguments: %w", err)
					}
					fn["arguments"] = string(b)
				}
			}
		}
	}
	out, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return out, nil
}

// trainLine is one record of a training dataset: the conversation with the
// answer appended ({"messages": [...]}), and for tool-calling workloads the
// offered tools ({"tools": [...]}) with the answer's content emptied.
// Assistant messages without content get "".
func trainLine(r *Record, workload flywheel.WorkloadType) ([]byte, error) {
	var req struct {
		Messages []map[string]any `json:"messages"`
		Tools    json.RawMessage  `json:"tools"`
	}
	if err := unmarshalNumber(r.Log.Request, &req); err != nil {
		return nil, fmt.Errorf("decode request: %w", err)
	}
	var resp struct {
		Choices []struct {
			Message map[string]any `json:"message"`
		} `json:"choices"`
	}
	if err := unmarshalNumber(r.Log.Response, &resp); err != nil || len(resp.Choices) == 0 {
		return nil, fmt.Errorf("decode response: %w", err)
	}
	answer := resp.Choices[0].Message
	msgs := append(req.Messages, answer)
	for _, m := range msgs {
		if m["role"] == roleAssistant && m["content"] == nil {
			m["content"] = ""
		}
	}
	out := struct {
		Messages []map[string]any `json:"messages"`
		Tools    json.RawMessage  `json:"tools,omitempty"`
	}{Messages: msgs}
	if workload == flywheel.WorkloadToolCalling {
		answer["content"] = ""
		if present(req.Tools) {
			out.Tools = req.Tools
		}
	}
	return json.Marshal(out)
}

// writeJSONL writes n lines to path atomically (through a temporary file).
// A disk without space (ENOSPC, EDQUOT) is an EUNAVAILABLE error with the
// reason "disk full" (see diskFull).
func writeJSONL(path string, n int, line func(i int) ([]byte, error)) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return diskFull(fmt.Errorf("create directory: %w", err))
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return diskFull(fmt.Errorf("create %s: %w", filepath.Base(path), err))
	}
	w := bufio.NewWriterSize(f, 256<<10)
	for i := range n {
		b, err := line(i)
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
			return fmt.Errorf("format record %d of %s: %w", i, filepath.Base(path), err)
		}
		w.Write(b)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		_ = f.Close()
		_ = os.Remove(tmp)
		return diskFull(fmt.Errorf("write %s: %w", filepath.Base(path), err))
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(tmp)
		return diskFull(fmt.Errorf("close %s: %w", filepath.Base(path), err))
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return diskFull(fmt.Errorf("rename %s: %w", filepath.Base(path), err))
	}
	return nil
}

// diskFullError is a write error of a disk without space. It keeps the
// system error in its chain (errors.Is(err, syscall.ENOSPC) holds) and adds
// the EUNAVAILABLE error users see: the write can succeed once space
// returns, so the stage is retried, and an API caller gets 503.
type diskFullError struct {
	err  error
	user *flywheel.Error
}

func (e *diskFullError) Error() string   { return e.err.Error() }
func (e *diskFullError) Unwrap() []error { return []error{e.user, e.err} }

// diskFull marks err as diskFullError when the disk had no space left.
func diskFull(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return &diskFullError{err: err, user: flywheel.Errorf(flywheel.EUNAVAILABLE, "Cannot write dataset files: disk full")}
	}
	return err
}
