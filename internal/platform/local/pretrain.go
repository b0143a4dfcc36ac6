package local

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/tokenizer"
)

// PretrainOptions configures PretrainModel.
type PretrainOptions struct {
	// Seconds bounds the training time (default 120).
	Seconds float64
	// Records is the number of built-in corpus records (default 3000).
	Records int
	// Files are extra tool-calling corpora: JSON lines of chat records
	// ({"messages", "tools"}) or of logged requests ({"request",
	// "response"}, the blueprint's log format).
	Files []string
	// Epochs over the corpus (default 3); Seconds usually ends it first.
	Epochs int
}

// PretrainModel gives a candidate a base that already knows the tool-call
// format: it trains the candidate's model file (created first if needed)
// on the built-in corpus and opts.Files, and replaces the file with the
// result. It blocks until training ends (about opts.Seconds); run it
// before deploying, for example while installing.
func (p *Platform) PretrainModel(ctx context.Context, m flywheel.NIMConfig, opts PretrainOptions) (string, error) {
	path, err := p.ModelPath(m)
	if err != nil {
		return "", err
	}
	if opts.Seconds <= 0 {
		opts.Seconds = 120
	}
	opts.Records = max(opts.Records, 0)
	if opts.Records == 0 {
		opts.Records = 3000
	}
	opts.Epochs = max(opts.Epochs, 3)
	tok, err := p.modelTokenizer(path)
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(p.opts.DataDir, "pretrain-")
	if err != nil {
		return "", fmt.Errorf("create pretraining directory: %w", err)
	}
	defer os.RemoveAll(dir)

	var corpus bytes.Buffer
	for _, r := range Corpus(opts.Records, 2) {
		b, err := json.Marshal(r)
		if err != nil {
			return "", fmt.Errorf("encode corpus: %w", err)
		}
		corpus.Write(append(b, '\n'))
	}
	for _, f := range opts.Files {
		if err := appendChatRecords(&corpus, f); err != nil {
			return "", err
		}
	}
	tokPath := filepath.Join(dir, "corpus.tok.jsonl")
	w, err := os.Create(tokPath)
	if err != nil {
		return "", fmt.Errorf("create corpus tokens: %w", err)
	}
	st, err := PrepareTrainingData(&corpus, w, tok)
	if cerr := w.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("tokenize pretraining corpus: %w", err)
	}
	trainer, err := p.trainerPath()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "model.gguf")
	cmd := exec.CommandContext(ctx, p.opts.Python, trainer,
		"--base", path, "--train", tokPath, "--out", out, "--mode", "full",
		"--epochs", strconv.Itoa(opts.Epochs), "--batch-size", "16", "--lr", "3e-3",
		"--max-seconds", strconv.FormatFloat(opts.Seconds, 'g', -1, 64),
		"--threads", strconv.Itoa(p.opts.Threads), "--seed", strconv.FormatUint(p.opts.Seed, 10))
	cmd.SysProcAttr = sysProcAttr()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("pretrain %s: %w: %s%s", m.ModelName, err, lastLine(stdout), stderr.String())
	}
	if !bytes.Contains(stdout, []byte(`"event": "done"`)) {
		return "", fmt.Errorf("pretrain %s: trainer did not finish: %s", m.ModelName, lastLine(stdout))
	}
	if err := os.Rename(out, path); err != nil {
		return "", fmt.Errorf("replace %s: %w", path, err)
	}
	p.log.Info("pretrained model", "model", m.ModelName, "records", st.Written, "skipped", len(st.Skipped), "result", lastLine(stdout))
	return path, nil
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// appendChatRecords converts a JSON lines file of chat records or logged
// requests into chat records; lines that are neither are left out.
func appendChatRecords(dst *bytes.Buffer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open corpus: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), maxLineBytes)
	for sc.Scan() {
		var rec struct {
			Messages []tokenizer.Message `json:"messages"`
			Tools    []tokenizer.Tool    `json:"tools"`
			Request  *struct {
				Messages []tokenizer.Message `json:"messages"`
				Tools    []tokenizer.Tool    `json:"tools"`
			} `json:"request"`
			Response *struct {
				Choices []struct {
					Message tokenizer.Message `json:"message"`
				} `json:"choices"`
			} `json:"response"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			continue
		}
		out := Record{Messages: rec.Messages, Tools: rec.Tools}
		if rec.Request != nil && rec.Response != nil && len(rec.Response.Choices) > 0 {
			out = Record{Messages: append(rec.Request.Messages, rec.Response.Choices[0].Message), Tools: rec.Request.Tools}
		}
		if len(out.Messages) == 0 {
			continue
		}
		b, err := json.Marshal(out)
		if err != nil {
			continue
		}
		dst.Write(append(b, '\n'))
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read corpus %s: %w", path, err)
	}
	return nil
}
