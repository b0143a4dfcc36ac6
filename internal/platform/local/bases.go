package local

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flywheel-go/flywheel/internal/dataset"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/gguf"
	"github.com/flywheel-go/flywheel/internal/tokenizer"
	"github.com/flywheel-go/flywheel/internal/toolcorpus"
	"github.com/flywheel-go/flywheel/tools"
)

// A base is the model a local candidate starts from: a tiny
// llama-architecture model that Flywheel pre-trains itself, once, on a
// generated tool-calling corpus, so that it already writes tool calls in
// the chat template's format, picks the offered tool a request names and
// copies argument values from the request. Building one is deterministic
// (seeded, one thread) and cached: the file's name carries a key over the
// recipe, the size, the tokenizer and the trainer, so a change to any of
// them builds a new base and an unchanged one is found again.

// Base kinds for Options.Base.
const (
	// BasePretrained (the default) starts candidates from a pre-trained
	// base, building it on first use when none is installed.
	BasePretrained = "pretrained"
	// BaseRandom starts candidates from random weights (for tests of the
	// plumbing; such a model answers nothing useful before fine-tuning).
	BaseRandom = "random"
)

// GGUF metadata keys of a base.
const (
	KeyBaseKey    = "flywheel.base.key"
	KeyBaseRecipe = "flywheel.base.recipe"
)

// BaseRecipe is how a base is pre-trained.
type BaseRecipe struct {
	// Version changes when the corpus generators change in a way the other
	// fields do not show.
	Version int `json:"version"`
	// Drills is the number of copy drills (toolcorpus.EachDrill) and Corpus
	// the number of broad tool-corpus records (toolcorpus.Each, its default
	// mix: every JSON type, single, choice, parallel and no-tool answers).
	Drills int `json:"drills"`
	Corpus int `json:"corpus"`
	// Exclude lists tool names no pre-training record offers, so that
	// evaluations on them measure what the base learned in general (the
	// demo's tools by default).
	Exclude      []string `json:"exclude"`
	Steps        int      `json:"steps"`
	BatchSize    int      `json:"batch_size"`
	LearningRate float64  `json:"learning_rate"`
	Seed         uint64   `json:"seed"`
	// FewShot, when set, continues training the base the recipe describes
	// without it (built first, or found) on drills in few-shot prompts.
	FewShot *FewShotPhase `json:"few_shot,omitempty"`
}

// FewShotPhase is a second pre-training phase that teaches a base the
// prompts of icl-eval: a system message holding examples of earlier
// requests and their answers (dataset.FewShotRequest), which a base
// trained on single requests alone reads as noise (in the demo its
// tool-name accuracy fell from about 0.5 to 0.28 with two examples).
type FewShotPhase struct {
	// Drills is the number of few-shot drills (toolcorpus.EachFewShotDrill:
	// one to MaxExamples examples on the same tools, each calling any of
	// them); Plain drills and Corpus broad-corpus records are mixed in so
	// that the base keeps what the first phase taught.
	Drills      int `json:"drills"`
	MaxExamples int `json:"max_examples"`
	Plain       int `json:"plain"`
	Corpus      int `json:"corpus"`
	Steps       int `json:"steps"`
	// MaxLen is the trainer's longest sequence in tokens (few-shot prompts
	// run to several hundred; a longer one loses its start).
	MaxLen       int     `json:"max_len"`
	LearningRate float64 `json:"learning_rate"`
}

// DefaultBaseRecipe returns the recipe of the default bases of size.
func DefaultBaseRecipe(size ModelSize) BaseRecipe {
	r := BaseRecipe{
		Version: 2, Drills: 33000, Corpus: 6000,
		Exclude: []string{"get_weather", "get_stock_price", "schedule_meeting"},
		Steps:   2400, BatchSize: 16, LearningRate: 3e-3, Seed: 1,
	}
	if size.Embd > 128 {
		// A larger model learns more per step and takes longer for each.
		r.LearningRate, r.Steps = 2e-3, 2400
	}
	// Then a few-shot phase: without it icl-eval's prompts confuse the
	// base (docs/local-models.md). Its prompts are six times as long as
	// the first phase's, so its 300 steps cost about three quarters of the first
	// phase's 2,400 (measured for tiny-s on an idle 2-core machine: 449 s
	// against 612 s; before the trainer's malloc settings, on a busy one,
	// 2,939 s against 1,382 s).
	r.FewShot = &FewShotPhase{Drills: 4800, MaxExamples: 3, Plain: 1600, Corpus: 800, Steps: 300, MaxLen: 1024, LearningRate: 1e-3}
	return r
}

// first returns the recipe of the first phase: r without FewShot.
func (r BaseRecipe) first() BaseRecipe {
	r.FewShot = nil
	return r
}

func (r BaseRecipe) validate() error {
	switch {
	case r.Steps <= 0:
		return fmt.Errorf("base recipe: steps %d, want > 0", r.Steps)
	case r.BatchSize <= 0:
		return fmt.Errorf("base recipe: batch size %d, want > 0", r.BatchSize)
	case r.Drills < 0 || r.Corpus < 0 || r.Drills+r.Corpus == 0:
		return fmt.Errorf("base recipe: %d drills and %d corpus records, want some", r.Drills, r.Corpus)
	case r.LearningRate <= 0:
		return fmt.Errorf("base recipe: learning rate %g, want > 0", r.LearningRate)
	}
	if f := r.FewShot; f != nil {
		switch {
		case f.Drills <= 0 || f.MaxExamples <= 0 || f.Plain < 0 || f.Corpus < 0:
			return fmt.Errorf("base recipe: few-shot phase of %d drills with up to %d examples, %d plain drills and %d corpus records, want drills and examples", f.Drills, f.MaxExamples, f.Plain, f.Corpus)
		case f.Steps <= 0 || f.LearningRate <= 0 || f.MaxLen <= 0:
			return fmt.Errorf("base recipe: few-shot phase of %d steps at %g, longest %d tokens, want all > 0", f.Steps, f.LearningRate, f.MaxLen)
		}
	}
	return nil
}

// BaseInfo describes a built base.
type BaseInfo struct {
	Size    string     `json:"size"`
	Path    string     `json:"path"`
	Key     string     `json:"key"`
	Recipe  BaseRecipe `json:"recipe"`
	Params  int        `json:"params"`
	Bytes   int64      `json:"bytes"`
	Records int        `json:"records"`
	Tokens  int        `json:"tokens"`
	// Steps, Seconds and FinalLoss are the training run's.
	Steps     int     `json:"steps"`
	Seconds   float64 `json:"seconds"`
	FinalLoss float64 `json:"final_loss"`
	BuiltAt   string  `json:"built_at"`
	// From is the first phase's base a few-shot phase continued (its
	// Records, Tokens, Steps and Seconds are the few-shot phase's).
	From string `json:"from,omitempty"`
}

// BaseProgress is one progress report of BuildBase.
type BaseProgress struct {
	Size  string
	Phase string // "corpus" or "train"
	Step  int
	Total int
	Loss  float64
}

// baseKey identifies a base by everything that decides its weights.
func (p *Platform) baseKey(size ModelSize, r BaseRecipe) string {
	return BaseKey(size, r, p.opts.Seed, p.tokenizer())
}

// BaseKey identifies the base of size built with recipe r, model seed
// seed and tokenizer tok by everything that decides its weights, the
// trainer included.
func BaseKey(size ModelSize, r BaseRecipe, seed uint64, tok *tokenizer.Tokenizer) string {
	h := sha256.New()
	b, _ := json.Marshal(struct {
		Size   ModelSize  `json:"size"`
		Recipe BaseRecipe `json:"recipe"`
		Seed   uint64     `json:"seed"`
	}{size, r, seed})
	h.Write(b)
	fmt.Fprintf(h, "\x00vocab %d merges %d\x00", tok.VocabSize(), tok.NumMerges())
	h.Write([]byte(tools.Trainer()))
	return hex.EncodeToString(h.Sum(nil)[:6])
}

// BaseFileName is the file name of size's base built with r.
func (p *Platform) BaseFileName(size ModelSize, r BaseRecipe) string {
	return baseFileName(size, p.baseKey(size, r))
}

// buildDirPrefix starts the name of a build's work directory, followed by
// the building process's pid.
const buildDirPrefix = ".base-build-"

// sweepStaleBuilds removes the work directories in dir of builds whose
// process is gone (killed before its deferred clean-up ran).
func sweepStaleBuilds(dir string, log *slog.Logger) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), buildDirPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		path := filepath.Join(dir, e.Name())
		pidText, _, withPid := strings.Cut(rest, "-")
		if !withPid {
			// An older version's name, without the builder's pid: it may
			// still be building; remove it only when a day old.
			if fi, err := e.Info(); err != nil || time.Since(fi.ModTime()) < 24*time.Hour {
				continue
			}
		} else if pid, err := strconv.Atoi(pidText); err == nil && pid > 0 && processAlive(pid) {
			continue
		}
		if err := os.RemoveAll(path); err != nil {
			log.Warn("remove a stale base build directory", "path", path, "err", err)
			continue
		}
		log.Info("removed the work directory of an interrupted base build", "path", path)
	}
}

// baseFileName is the file name of size's base whose key is key.
func baseFileName(size ModelSize, key string) string {
	return fmt.Sprintf("%s-base-%s.gguf", size.Name, key)
}

// BaseDirs are the directories searched for bases, in order: the models
// directory, then the installed models directories.
func (p *Platform) BaseDirs() []string { return slices.Clone(p.modelDirs) }

// InstallModelsDir is the models directory of the install directory the
// platform uses ("" when none is found).
func (p *Platform) InstallModelsDir() string {
	dirs := InstallDirs(p.opts.InstallDir, p.opts.Getenv)
	if len(dirs) == 0 {
		return ""
	}
	return ModelsIn(dirs[0])
}

// FindBase returns the path of size's default base when one is built.
func (p *Platform) FindBase(size ModelSize) (string, bool) {
	f := findFile(p.modelDirs, p.BaseFileName(size, DefaultBaseRecipe(size)))
	return f, f != ""
}

// BaseInfoOf reads the description written beside a base.
func BaseInfoOf(path string) (BaseInfo, error) {
	var bi BaseInfo
	b, err := os.ReadFile(path + ".json")
	if err != nil {
		return bi, err
	}
	if err := json.Unmarshal(b, &bi); err != nil {
		return bi, fmt.Errorf("read %s.json: %w", path, err)
	}
	bi.Path = path
	return bi, nil
}

// EnsureBase returns size's default base, building it into the models
// directory when no built one is found.
func (p *Platform) EnsureBase(ctx context.Context, size ModelSize, progress func(BaseProgress)) (string, error) {
	unlock := p.lockID("base:" + size.Name)
	defer unlock()
	if f, ok := p.FindBase(size); ok {
		return f, nil
	}
	p.log.Warn("pre-training the local base model on first use (once; `flywheel bases build` does it ahead of time)",
		"size", size.Name, "steps", DefaultBaseRecipe(size).Steps)
	bi, err := p.BuildBase(ctx, size, DefaultBaseRecipe(size), p.opts.ModelsDir, progress)
	if err != nil {
		return "", err
	}
	return bi.Path, nil
}

// BuildBase pre-trains a base of size with recipe r into dir and returns
// its description. It blocks for the whole training run (minutes); ctx
// cancels it. The result is written atomically: an interrupted build
// leaves nothing that FindBase would take.
func (p *Platform) BuildBase(ctx context.Context, size ModelSize, r BaseRecipe, dir string, progress func(BaseProgress)) (BaseInfo, error) {
	if err := r.validate(); err != nil {
		return BaseInfo{}, flywheel.Permanent(err)
	}
	if progress == nil {
		progress = func(BaseProgress) {}
	}
	if _, err := os.Stat(p.opts.Python); err != nil {
		return BaseInfo{}, flywheel.Permanent(fmt.Errorf("python %s: %w", p.opts.Python, ErrNotInstalled))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return BaseInfo{}, fmt.Errorf("create %s: %w", dir, err)
	}
	sweepStaleBuilds(dir, p.log)
	work, err := os.MkdirTemp(dir, fmt.Sprintf("%s%d-", buildDirPrefix, os.Getpid()))
	if err != nil {
		return BaseInfo{}, fmt.Errorf("create build directory: %w", err)
	}
	defer os.RemoveAll(work)

	key := p.baseKey(size, r)
	tok := p.tokenizer()
	var (
		m    *gguf.File
		from string
		chat bytes.Buffer
	)
	steps, lr, maxLen, report := r.Steps, r.LearningRate, 0, progress
	if fs := r.FewShot; fs != nil {
		first := r.first()
		all := first.Steps + fs.Steps
		from = findFile(append(p.BaseDirs(), dir), p.BaseFileName(size, first))
		if from == "" {
			bi, err := p.BuildBase(ctx, size, first, dir, func(bp BaseProgress) {
				if bp.Phase == "train" {
					bp.Total = all
				}
				progress(bp)
			})
			if err != nil {
				return BaseInfo{}, err
			}
			from = bi.Path
		}
		if m, err = gguf.ReadFile(from); err != nil {
			return BaseInfo{}, fmt.Errorf("read the first phase's base: %w", err)
		}
		report = func(bp BaseProgress) {
			if bp.Phase == "train" {
				bp.Step, bp.Total = bp.Step+first.Steps, all
			}
			progress(bp)
		}
		progress(BaseProgress{Size: size.Name, Phase: "corpus", Total: fs.Drills + fs.Plain + fs.Corpus})
		if err := fewShotCorpus(&chat, r, tok); err != nil {
			return BaseInfo{}, err
		}
		steps, lr, maxLen = fs.Steps, fs.LearningRate, fs.MaxLen
	} else {
		if m, err = NewModel("local/"+size.Name, size, tok, p.opts.Seed); err != nil {
			return BaseInfo{}, flywheel.Permanent(err)
		}
		progress(BaseProgress{Size: size.Name, Phase: "corpus", Total: r.Drills + r.Corpus})
		if err := baseCorpus(&chat, r, tok); err != nil {
			return BaseInfo{}, err
		}
	}
	recipe, err := json.Marshal(r)
	if err != nil {
		return BaseInfo{}, err
	}
	m.Set(KeyBaseKey, key)
	m.Set(KeyBaseRecipe, string(recipe))
	init := filepath.Join(work, "init.gguf")
	if err := m.WriteFile(init); err != nil {
		return BaseInfo{}, fmt.Errorf("write initial model: %w", err)
	}
	tokPath := filepath.Join(work, "corpus.tok.jsonl")
	w, err := os.Create(tokPath)
	if err != nil {
		return BaseInfo{}, fmt.Errorf("create corpus tokens: %w", err)
	}
	st, err := PrepareTrainingData(&chat, w, tok)
	if cerr := w.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return BaseInfo{}, fmt.Errorf("tokenize pre-training corpus: %w", err)
	}
	trainer, err := p.trainerPath()
	if err != nil {
		return BaseInfo{}, err
	}
	out := filepath.Join(work, "base.gguf")
	args := []string{trainer,
		"--base", init, "--train", tokPath, "--out", out, "--mode", "full",
		"--epochs", "1", "--max-steps", strconv.Itoa(steps),
		"--batch-size", strconv.Itoa(r.BatchSize),
		"--lr", strconv.FormatFloat(lr, 'g', -1, 64),
		"--threads", "1", "--seed", strconv.FormatUint(r.Seed, 10)}
	if maxLen > 0 {
		args = append(args, "--max-len", strconv.Itoa(maxLen))
	}
	cmd := exec.CommandContext(ctx, p.opts.Python, args...)
	cmd.SysProcAttr = sysProcAttr()
	cmd.Env = trainerEnv(1)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return BaseInfo{}, err
	}
	if err := cmd.Start(); err != nil {
		return BaseInfo{}, flywheel.Permanent(fmt.Errorf("start trainer: %w (%w)", err, ErrNotInstalled))
	}
	var done, last trainerEvent
	var seconds, loss float64
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	total := steps
	for sc.Scan() {
		var ev struct {
			trainerEvent
			Seconds float64 `json:"seconds"`
		}
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			continue
		}
		switch ev.Event {
		case "start":
			total = ev.TotalSteps
		case "step":
			loss = ev.Loss
			report(BaseProgress{Size: size.Name, Phase: "train", Step: ev.Step, Total: total, Loss: ev.Loss})
		case "done":
			done, seconds = ev.trainerEvent, ev.Seconds
		}
		last = ev.trainerEvent
	}
	_, _ = io.Copy(io.Discard, stdout)
	werr := cmd.Wait()
	if ctx.Err() != nil {
		return BaseInfo{}, ctx.Err()
	}
	if werr != nil || done.Event != "done" {
		msg := strings.TrimSpace(stderr.String())
		if last.Message != "" {
			msg = last.Message
		}
		return BaseInfo{}, fmt.Errorf("pre-train %s: trainer failed: %v: %s", size.Name, werr, lastLines(msg, 3))
	}

	final := filepath.Join(dir, baseFileName(size, key))
	fi, err := os.Stat(out)
	if err != nil {
		return BaseInfo{}, fmt.Errorf("pre-train %s: %w", size.Name, err)
	}
	bi := BaseInfo{
		Size: size.Name, Path: final, Key: key, Recipe: r, Params: size.Params(tok.VocabSize()), Bytes: fi.Size(),
		Records: st.Written, Tokens: st.Tokens, Steps: done.Step, Seconds: seconds, FinalLoss: loss,
		BuiltAt: time.Now().UTC().Format(time.RFC3339), From: from,
	}
	if done.Step == 0 {
		bi.Steps = total
	}
	meta, err := json.MarshalIndent(bi, "", "  ")
	if err != nil {
		return BaseInfo{}, err
	}
	if err := os.WriteFile(final+".json.tmp", append(meta, '\n'), 0o644); err != nil {
		return BaseInfo{}, fmt.Errorf("write %s.json: %w", final, err)
	}
	if err := os.Rename(final+".json.tmp", final+".json"); err != nil {
		return BaseInfo{}, err
	}
	if err := os.Rename(out, final); err != nil {
		return BaseInfo{}, fmt.Errorf("install base %s: %w", final, err)
	}
	p.log.Info("pre-trained base", "size", size.Name, "path", final, "steps", bi.Steps, "seconds", seconds)
	return bi, nil
}

// baseCorpus writes the pre-training corpus of r as chat records: the
// drills and the broad corpus, without any record that offers a tool of
// r.Exclude.
func baseCorpus(dst *bytes.Buffer, r BaseRecipe, tok *tokenizer.Tokenizer) error {
	add := corpusWriter(dst, r.Exclude)
	if err := toolcorpus.EachDrill(toolcorpus.DrillConfig{N: r.Drills, Seed: r.Seed, Words: wholeWords(tok)}, add); err != nil {
		return fmt.Errorf("generate drills: %w", err)
	}
	err := toolcorpus.Each(toolcorpus.Config{N: r.Corpus, Seed: r.Seed}, func(ex toolcorpus.Example) error {
		return add(ex.Record)
	})
	if err != nil {
		return fmt.Errorf("generate corpus: %w", err)
	}
	return nil
}

// corpusWriter returns a function that writes a logged record to dst as a
// chat record, skipping one whose request or answer names a tool of exclude
// (a few-shot request holds its examples' answers).
func corpusWriter(dst *bytes.Buffer, exclude []string) func(flywheel.LogRecord) error {
	return func(rec flywheel.LogRecord) error {
		for _, name := range exclude {
			for _, part := range []json.RawMessage{rec.Request, rec.Response} {
				if bytes.Contains(part, []byte(`"name":"`+name+`"`)) || bytes.Contains(part, []byte(`\"name\": \"`+name+`\"`)) {
					return nil
				}
			}
		}
		c, err := chatRecordOf(rec.Request, rec.Response)
		if err != nil {
			return err
		}
		dst.Write(append(c, '\n'))
		return nil
	}
}

// fewShotCorpus writes the few-shot phase's corpus of r as chat records:
// few-shot drills with their examples in the system message, rendered as
// icl-eval renders them, then plain drills and broad-corpus records (seeded
// apart from the first phase's), without any record that offers a tool of
// r.Exclude.
func fewShotCorpus(dst *bytes.Buffer, r BaseRecipe, tok *tokenizer.Tokenizer) error {
	fs := r.FewShot
	words := wholeWords(tok)
	add := corpusWriter(dst, r.Exclude)
	err := toolcorpus.EachFewShotDrill(toolcorpus.DrillConfig{N: fs.Drills, Seed: r.Seed, Words: words}, fs.MaxExamples,
		func(d toolcorpus.FewShotDrill) error {
			req, err := dataset.FewShotRequest(d.Record.Request, d.Examples)
			if err != nil {
				return err
			}
			d.Record.Request = req
			return add(d.Record)
		})
	if err != nil {
		return fmt.Errorf("generate few-shot drills: %w", err)
	}
	if err := toolcorpus.EachDrill(toolcorpus.DrillConfig{N: fs.Plain, Seed: r.Seed + 1, Words: words}, add); err != nil {
		return fmt.Errorf("generate drills: %w", err)
	}
	err = toolcorpus.Each(toolcorpus.Config{N: fs.Corpus, Seed: r.Seed + 1}, func(ex toolcorpus.Example) error {
		return add(ex.Record)
	})
	if err != nil {
		return fmt.Errorf("generate corpus: %w", err)
	}
	return nil
}

// wholeWords returns the words of three or more letters that tok encodes
// as one token, in vocabulary order.
func wholeWords(tok *tokenizer.Tokenizer) []string {
	var out []string
	for id := range tok.VocabSize() {
		w := tok.Decode([]int{id})
		if len(w) < 3 {
			continue
		}
		ok := true
		for _, c := range w {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
				ok = false
				break
			}
		}
		if enc := tok.Encode(w); ok && len(enc) == 1 && enc[0] == id {
			out = append(out, w)
		}
	}
	return out
}

// chatRecordOf turns a logged request and response into a chat record.
func chatRecordOf(request, response json.RawMessage) ([]byte, error) {
	var req struct {
		Messages []json.RawMessage `json:"messages"`
		Tools    json.RawMessage   `json:"tools"`
	}
	var resp struct {
		Choices []struct {
			Message json.RawMessage `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(request, &req); err != nil {
		return nil, fmt.Errorf("corpus request: %w", err)
	}
	if err := json.Unmarshal(response, &resp); err != nil {
		return nil, fmt.Errorf("corpus response: %w", err)
	}
	if len(resp.Choices) == 0 {
		return nil, errors.New("corpus response without choices")
	}
	return json.Marshal(map[string]any{"messages": append(req.Messages, resp.Choices[0].Message), "tools": req.Tools})
}
