package local

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/flywheel-go/flywheel/internal/tokenizer"
)

// PrepareStats counts what PrepareTrainingData did.
type PrepareStats struct {
	Records int `json:"records"`
	Written int `json:"written"`
	// Skipped lists the records left out, by line, with the reason.
	Skipped []string `json:"skipped,omitempty"`
	Tokens  int      `json:"tokens"`
	// Variants counts the copy-augmented variants written besides the
	// records (see Augment).
	Variants int `json:"variants,omitempty"`
}

// PrepareOptions tunes PrepareTrainingDataWith.
type PrepareOptions struct {
	// Augment is the number of copy-augmented variants written after
	// each record (see Augment); 0 writes the records alone.
	Augment int
	// Seed makes the variants reproducible.
	Seed uint64
}

// maxLineBytes bounds one record of a dataset file.
const maxLineBytes = 16 << 20

// PrepareTrainingData reads chat records (JSON lines of {"messages": [...],
// "tools": [...]}, the last message being the assistant's answer), renders
// them with the chat template, tokenizes them with tok and writes one
// {"ids": [...], "n_prompt": k} line per record to w: the trainer's input,
// with the loss on the tokens after the prompt. Records that cannot be
// used are listed in the stats and left out; the others are kept.
func PrepareTrainingData(r io.Reader, w io.Writer, tok *tokenizer.Tokenizer) (PrepareStats, error) {
	return PrepareTrainingDataWith(r, w, tok, PrepareOptions{})
}

// PrepareTrainingDataWith is PrepareTrainingData with options: with
// opts.Augment > 0, each usable record is followed by that many variants
// with fresh argument values (Augment).
func PrepareTrainingDataWith(r io.Reader, w io.Writer, tok *tokenizer.Tokenizer, opts PrepareOptions) (PrepareStats, error) {
	var st PrepareStats
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLineBytes)
	bw := bufio.NewWriter(w)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		st.Records++
		ids, nPrompt, err := TokenizeRecord([]byte(text), tok)
		if err != nil {
			st.Skipped = append(st.Skipped, fmt.Sprintf("line %d: %v", line, err))
			continue
		}
		if err := writeTokens(bw, ids, nPrompt); err != nil {
			return st, fmt.Errorf("line %d: %w", line, err)
		}
		st.Written++
		st.Tokens += len(ids)
		if opts.Augment <= 0 {
			continue
		}
		var rec Record
		if json.Unmarshal([]byte(text), &rec) != nil {
			continue
		}
		for _, v := range Augment(rec, opts.Augment, opts.Seed) {
			b, err := json.Marshal(v)
			if err != nil {
				continue
			}
			ids, nPrompt, err := TokenizeRecord(b, tok)
			if err != nil {
				continue
			}
			if err := writeTokens(bw, ids, nPrompt); err != nil {
				return st, fmt.Errorf("line %d: %w", line, err)
			}
			st.Variants++
			st.Tokens += len(ids)
		}
	}
	if err := sc.Err(); err != nil {
		return st, fmt.Errorf("read line %d: %w", line+1, err)
	}
	if err := bw.Flush(); err != nil {
		return st, fmt.Errorf("write training tokens: %w", err)
	}
	return st, nil
}

func writeTokens(w *bufio.Writer, ids []int, nPrompt int) error {
	b, err := json.Marshal(struct {
		IDs     []int `json:"ids"`
		NPrompt int   `json:"n_prompt"`
	}{ids, nPrompt})
	if err != nil {
		return fmt.Errorf("encode tokens: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write training tokens: %w", err)
	}
	return nil
}

// TokenizeRecord renders one chat record and returns its tokens and the
// number of prompt tokens (everything before the final assistant answer).
func TokenizeRecord(data []byte, tok *tokenizer.Tokenizer) ([]int, int, error) {
	var rec Record
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, 0, fmt.Errorf("invalid JSON: %w", err)
	}
	n := len(rec.Messages)
	if n < 2 {
		return nil, 0, fmt.Errorf("need a prompt and an answer, got %d messages", n)
	}
	last := rec.Messages[n-1]
	if last.Role != "assistant" {
		return nil, 0, fmt.Errorf("last message has role %q, want assistant", last.Role)
	}
	prompt, err := tokenizer.RenderChat(rec.Messages[:n-1], rec.Tools, true)
	if err != nil {
		return nil, 0, fmt.Errorf("render prompt: %w", err)
	}
	var content string
	if len(last.Content) > 0 && string(last.Content) != "null" {
		if err := json.Unmarshal(last.Content, &content); err != nil {
			return nil, 0, fmt.Errorf("assistant content is not a string")
		}
	}
	if content == "" && len(last.ToolCalls) == 0 {
		return nil, 0, fmt.Errorf("assistant answer is empty")
	}
	answer, err := tokenizer.RenderAssistant(content, last.ToolCalls)
	if err != nil {
		return nil, 0, fmt.Errorf("render answer: %w", err)
	}
	p := tok.Encode(prompt)
	a := tok.Encode(answer + tokenizer.ImEnd)
	return append(p, a...), len(p), nil
}
