package local

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/gguf"
	"github.com/flywheel-go/flywheel/internal/tokenizer"
	"github.com/flywheel-go/flywheel/tools"
)

const jobPrefix = "ft-"

// JobData is what a customization job's ledger data and state file hold.
type JobData struct {
	ID         string `json:"id"`
	Key        string `json:"key"`
	BaseModel  string `json:"base_model"`
	BaseFile   string `json:"base_file"`
	OutputName string `json:"output_name"`
	procIdentity
	StartedAt time.Time `json:"started_at"`
	// Mode is "full" or "lora".
	Mode string `json:"mode"`
	// Output is the file the trainer writes: a GGUF model or adapter.
	Output   string       `json:"output"`
	Args     []string     `json:"args"`
	Prepared PrepareStats `json:"prepared"`
	// Cancelled is set by CancelCustomization.
	Cancelled bool `json:"cancelled,omitempty"`
	// Restarts counts relaunches of a trainer that died without a word
	// (killed with the process that ran it).
	Restarts int `json:"restarts,omitempty"`
}

// maxTrainerRestarts bounds relaunches of a trainer that died silently.
const maxTrainerRestarts = 2

const diedSilently = "trainer exited without finishing"

// jobOutputInfo is the trained output of a completed job.
type jobOutputInfo struct {
	Path string
	// Kind is "model" (a full model file) or "lora" (an adapter).
	Kind string
}

func (p *Platform) jobDir(id string) string {
	return filepath.Join(p.opts.DataDir, "customizations", id)
}

// trainerPath returns the trainer script, writing the embedded one under
// the data directory when no other is configured.
func (p *Platform) trainerPath() (string, error) {
	if p.opts.Trainer != "" {
		return p.opts.Trainer, nil
	}
	dir := filepath.Join(p.opts.DataDir, "bin")
	path := filepath.Join(dir, "trainer.py")
	src := tools.Trainer()
	if b, err := os.ReadFile(path); err == nil && string(b) == src {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.WriteFile(path+".tmp", []byte(src), 0o755); err != nil {
		return "", fmt.Errorf("write trainer: %w", err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return "", fmt.Errorf("write trainer: %w", err)
	}
	return path, nil
}

// datasetFiles finds the training and validation files of a dataset: its
// Path is a JSON lines file, or a directory holding
// training/train_data.jsonl and validation/val_data.jsonl.
func datasetFiles(ds flywheel.Dataset) (train, val string, err error) {
	if ds.Path == "" {
		return "", "", flywheel.Permanent(fmt.Errorf("dataset %s has no local path", ds.Name))
	}
	st, err := os.Stat(ds.Path)
	if err != nil {
		return "", "", flywheel.Permanent(fmt.Errorf("dataset %s: %w", ds.Name, err))
	}
	if !st.IsDir() {
		return ds.Path, "", nil
	}
	train = filepath.Join(ds.Path, "training", "train_data.jsonl")
	if _, err := os.Stat(train); err != nil {
		return "", "", flywheel.Permanent(fmt.Errorf("dataset %s: no training/train_data.jsonl in %s", ds.Name, ds.Path))
	}
	val = filepath.Join(ds.Path, "validation", "val_data.jsonl")
	if _, err := os.Stat(val); err != nil {
		val = ""
	}
	return train, val, nil
}

// loraTargets maps lora_config.target_modules names (llama.cpp's, Hugging
// Face's or short ones) to the trainer's names.
func loraTargets(names []string) (string, error) {
	if len(names) == 0 {
		return "q,k,v,o,gate,up,down", nil
	}
	table := map[string]string{
		"q": "q", "q_proj": "q", "attn_q": "q",
		"k": "k", "k_proj": "k", "attn_k": "k",
		"v": "v", "v_proj": "v", "attn_v": "v",
		"o": "o", "o_proj": "o", "attn_output": "o",
		"gate": "gate", "gate_proj": "gate", "ffn_gate": "gate",
		"up": "up", "up_proj": "up", "ffn_up": "up",
		"down": "down", "down_proj": "down", "ffn_down": "down",
	}
	var out []string
	seen := map[string]bool{}
	for _, n := range names {
		if n == "all-linear" || n == "all_linear" {
			return "q,k,v,o,gate,up,down", nil
		}
		t, ok := table[strings.ToLower(n)]
		if !ok {
			return "", flywheel.Permanent(flywheel.Errorf(flywheel.EINVALID, "lora_config.target_modules: unknown module %q", n))
		}
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return strings.Join(out, ","), nil
}

// StartCustomization tokenizes the training split with the base model's
// tokenizer and starts the trainer. A second call with the same Key
// returns the existing job.
func (p *Platform) StartCustomization(ctx context.Context, req flywheel.CustomizationRequest) (flywheel.CustomizationJob, error) {
	if req.Key == "" {
		return flywheel.CustomizationJob{}, flywheel.Permanent(flywheel.Errorf(flywheel.EINVALID, "customization: key is required"))
	}
	id := idFor(jobPrefix, req.Key)
	unlock := p.lockID(id)
	defer unlock()
	dir := p.jobDir(id)
	statePath := filepath.Join(dir, "state.json")
	var st JobData
	if err := readJSONFile(statePath, &st); err == nil {
		return p.job(st), nil
	} else if !errors.Is(err, flywheel.ErrNotFound) {
		return flywheel.CustomizationJob{}, err
	}

	base, err := p.ModelPath(ctx, req.Model)
	if err != nil {
		return flywheel.CustomizationJob{}, err
	}
	trainFile, valFile, err := datasetFiles(req.TrainDataset)
	if err != nil {
		return flywheel.CustomizationJob{}, err
	}
	trainer, err := p.trainerPath()
	if err != nil {
		return flywheel.CustomizationJob{}, err
	}
	if _, err := os.Stat(p.opts.Python); err != nil {
		return flywheel.CustomizationJob{}, fmt.Errorf("python %s: %w", p.opts.Python, ErrNotInstalled)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return flywheel.CustomizationJob{}, fmt.Errorf("create job directory: %w", err)
	}
	tok, err := p.modelTokenizer(base)
	if err != nil {
		return flywheel.CustomizationJob{}, err
	}
	prep, err := prepareFile(trainFile, filepath.Join(dir, "train.tok.jsonl"), tok,
		PrepareOptions{Augment: max(p.opts.Augment, 0), Seed: p.opts.Seed})
	if err != nil {
		return flywheel.CustomizationJob{}, err
	}
	if prep.Written == 0 {
		return flywheel.CustomizationJob{}, flywheel.Permanent(fmt.Errorf("training set %s: none of %d records is usable: %s",
			trainFile, prep.Records, strings.Join(prep.Skipped[:min(3, len(prep.Skipped))], "; ")))
	}

	tc := req.Training
	mode := "full"
	if strings.EqualFold(tc.FinetuningType, "lora") {
		mode = "lora"
	}
	lr := tc.LearningRate
	if p.opts.LearningRate > 0 || lr <= 0 {
		lr = cmp0(p.opts.LearningRate, LearningRateDefault)
	}
	epochs := max(tc.Epochs, p.opts.MinEpochs, 1)
	out := filepath.Join(dir, "model.gguf")
	if mode == "lora" {
		out = filepath.Join(dir, "adapter.gguf")
	}
	args := []string{trainer,
		"--base", base, "--train", filepath.Join(dir, "train.tok.jsonl"), "--out", out,
		"--mode", mode, "--epochs", strconv.Itoa(epochs), "--epoch-size", strconv.Itoa(prep.Written),
		"--batch-size", strconv.Itoa(max(tc.BatchSize, 1)),
		"--lr", strconv.FormatFloat(lr, 'g', -1, 64),
		"--threads", strconv.Itoa(p.opts.Threads),
		"--seed", strconv.FormatUint(p.opts.Seed, 10),
	}
	if valFile != "" {
		if vp, err := prepareFile(valFile, filepath.Join(dir, "val.tok.jsonl"), tok, PrepareOptions{}); err == nil && vp.Written > 0 {
			args = append(args, "--val", filepath.Join(dir, "val.tok.jsonl"))
		}
	}
	if cc := req.Model.CustomizerConfigs; cc != nil && cc.MaxSeqLength > 0 {
		// The trainer keeps the end of a longer record (the answer) and
		// cuts its start; 512 by default.
		args = append(args, "--max-len", strconv.Itoa(cc.MaxSeqLength))
	}
	if p.opts.MaxTrainSeconds > 0 {
		args = append(args, "--max-seconds", strconv.FormatFloat(p.opts.MaxTrainSeconds, 'g', -1, 64))
	}
	if mode == "lora" {
		targets, err := loraTargets(req.LoRA.TargetModules)
		if err != nil {
			return flywheel.CustomizationJob{}, err
		}
		rank := max(req.LoRA.AdapterDim, 1)
		alpha := req.LoRA.Alpha
		if alpha <= 0 {
			alpha = 2 * rank
		}
		args = append(args, "--rank", strconv.Itoa(rank), "--alpha", strconv.Itoa(alpha),
			"--dropout", strconv.FormatFloat(req.LoRA.AdapterDropout, 'g', -1, 64), "--targets", targets)
	}

	progress, err := os.Create(filepath.Join(dir, "progress.jsonl"))
	if err != nil {
		return flywheel.CustomizationJob{}, fmt.Errorf("create progress file: %w", err)
	}
	errLog, err := os.Create(filepath.Join(dir, "trainer.log"))
	if err != nil {
		progress.Close()
		return flywheel.CustomizationJob{}, fmt.Errorf("create trainer log: %w", err)
	}
	cmd, err := p.start(p.opts.Python, args, trainerEnv(p.opts.Threads), progress, errLog, progress, errLog)
	if err != nil {
		progress.Close()
		errLog.Close()
		return flywheel.CustomizationJob{}, err
	}
	ident, err := identify(cmd.Process.Pid, "")
	if err != nil {
		// It exited at once: the state file records it as gone and the
		// progress file says why.
		ident = procIdentity{PID: cmd.Process.Pid}
	}
	ident.Program = filepath.Base(trainer)
	st = JobData{
		ID: id, Key: req.Key, BaseModel: req.Model.ModelName, BaseFile: base, OutputName: req.OutputName,
		procIdentity: ident, StartedAt: time.Now().UTC(), Mode: mode, Output: out, Args: args, Prepared: prep,
	}
	if err := writeJSONFile(statePath, st); err != nil {
		_ = ident.stop(ctx, p.opts.StopGrace)
		return flywheel.CustomizationJob{}, err
	}
	p.log.Info("started trainer", "job", id, "model", req.Model.ModelName, "mode", mode, "pid", ident.PID,
		"records", prep.Written, "variants", prep.Variants, "skipped", len(prep.Skipped))
	return p.job(st), nil
}

func cmp0(a, b float64) float64 {
	if a > 0 {
		return a
	}
	return b
}

// modelTokenizer loads the tokenizer stored in a model file.
func (p *Platform) modelTokenizer(path string) (*tokenizer.Tokenizer, error) {
	f, err := gguf.ReadFile(path)
	if err != nil {
		return nil, flywheel.Permanent(err)
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		return nil, flywheel.Permanent(fmt.Errorf("model %s: %w", path, err))
	}
	return tok, nil
}

func prepareFile(in, out string, tok *tokenizer.Tokenizer, opts PrepareOptions) (PrepareStats, error) {
	r, err := os.Open(in)
	if err != nil {
		return PrepareStats{}, flywheel.Permanent(fmt.Errorf("open training data: %w", err))
	}
	defer r.Close()
	w, err := os.Create(out)
	if err != nil {
		return PrepareStats{}, fmt.Errorf("create %s: %w", out, err)
	}
	st, err := PrepareTrainingDataWith(r, w, tok, opts)
	if cerr := w.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("write %s: %w", out, cerr)
	}
	if err != nil {
		return st, fmt.Errorf("prepare %s: %w", in, err)
	}
	return st, nil
}

// Customization reports a job's progress from the trainer's output.
func (p *Platform) Customization(ctx context.Context, id string) (flywheel.CustomizationJob, error) {
	if !validID(id, jobPrefix) {
		return flywheel.CustomizationJob{}, fmt.Errorf("customization %q: %w", id, flywheel.ErrNotFound)
	}
	var st JobData
	if err := readJSONFile(filepath.Join(p.jobDir(id), "state.json"), &st); err != nil {
		if errors.Is(err, flywheel.ErrNotFound) {
			return flywheel.CustomizationJob{}, fmt.Errorf("customization %s: %w", id, flywheel.ErrNotFound)
		}
		return flywheel.CustomizationJob{}, err
	}
	j := p.job(st)
	if j.Status == flywheel.JobFailed && strings.HasPrefix(j.Message, diedSilently) && st.Restarts < maxTrainerRestarts {
		// The trainer was killed without a chance to report (for example
		// with a Flywheel process that crashed): train again from the start.
		return p.relaunch(ctx, st)
	}
	return j, nil
}

// relaunch starts a job's trainer again with the same arguments.
func (p *Platform) relaunch(ctx context.Context, st JobData) (flywheel.CustomizationJob, error) {
	unlock := p.lockID(st.ID)
	defer unlock()
	dir := p.jobDir(st.ID)
	progress, err := os.Create(filepath.Join(dir, "progress.jsonl"))
	if err != nil {
		return flywheel.CustomizationJob{}, fmt.Errorf("create progress file: %w", err)
	}
	errLog, err := os.OpenFile(filepath.Join(dir, "trainer.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		progress.Close()
		return flywheel.CustomizationJob{}, fmt.Errorf("open trainer log: %w", err)
	}
	fmt.Fprintf(errLog, "# %s relaunch %d after the trainer died without finishing\n", time.Now().UTC().Format(time.RFC3339), st.Restarts+1)
	cmd, err := p.start(p.opts.Python, st.Args, trainerEnv(p.opts.Threads), progress, errLog, progress, errLog)
	if err != nil {
		progress.Close()
		errLog.Close()
		return flywheel.CustomizationJob{}, err
	}
	ident, err := identify(cmd.Process.Pid, "")
	if err != nil {
		ident = procIdentity{PID: cmd.Process.Pid}
	}
	ident.Program = st.procIdentity.Program
	st.procIdentity, st.Restarts = ident, st.Restarts+1
	if err := writeJSONFile(filepath.Join(dir, "state.json"), st); err != nil {
		_ = ident.stop(ctx, p.opts.StopGrace)
		return flywheel.CustomizationJob{}, err
	}
	p.log.Warn("relaunched trainer that died without finishing", "job", st.ID, "pid", ident.PID, "restart", st.Restarts)
	return p.job(st), nil
}

// trainerEvent is one JSON line of the trainer's output.
type trainerEvent struct {
	Event      string   `json:"event"`
	Step       int      `json:"step"`
	Epoch      float64  `json:"epoch"`
	Epochs     float64  `json:"epochs"`
	Loss       float64  `json:"loss"`
	Progress   float64  `json:"progress"`
	TotalSteps int      `json:"total_steps"`
	ValLoss    *float64 `json:"val_loss"`
	Output     string   `json:"output"`
	Kind       string   `json:"kind"`
	Message    string   `json:"message"`
}

// maxLosses caps the loss curve kept in a job's view.
const maxLosses = 200

func (p *Platform) job(st JobData) flywheel.CustomizationJob {
	j := flywheel.CustomizationJob{ID: st.ID, Status: flywheel.JobRunning}
	var losses []float64
	var last string
	done, cancelled := false, false
	var doneEv trainerEvent
	if f, err := os.Open(filepath.Join(p.jobDir(st.ID), "progress.jsonl")); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var ev trainerEvent
			if json.Unmarshal(sc.Bytes(), &ev) != nil {
				continue
			}
			switch ev.Event {
			case "step":
				j.StepsCompleted = ev.Step
				j.EpochsCompleted = int(ev.Epoch)
				j.Progress = 100 * ev.Progress
				losses = append(losses, ev.Loss)
			case "done":
				done, doneEv = true, ev
			case "cancelled":
				cancelled = true
			case "error":
				last = ev.Message
			}
		}
		f.Close()
	}
	if n := len(losses); n > maxLosses {
		// Keep an evenly spaced subset of the curve, always with the last.
		kept := make([]float64, 0, maxLosses)
		for i := 0; i < maxLosses; i++ {
			kept = append(kept, losses[i*(n-1)/(maxLosses-1)])
		}
		losses = kept
	}
	j.Losses = losses
	alive := st.alive()
	switch {
	case done && !alive:
		j.Status = flywheel.JobCompleted
		j.Progress = 100
		j.EpochsCompleted = int(doneEv.Epochs + 1e-9)
		j.OutputModel = st.OutputName
		if j.OutputModel == "" {
			j.OutputModel = st.BaseModel + "-" + st.ID
		}
		j.URI = doneEv.Output
		if doneEv.ValLoss != nil {
			j.Message = fmt.Sprintf("validation loss %.4f", *doneEv.ValLoss)
		}
	case st.Cancelled || cancelled:
		if alive {
			j.Status = flywheel.JobRunning
			j.Message = "cancelling"
		} else {
			j.Status = flywheel.JobCancelled
		}
	case alive:
		if j.StepsCompleted == 0 {
			j.Status = flywheel.JobPending
		}
	default:
		j.Status = flywheel.JobFailed
		j.Message = cmpStr(last, diedSilently+": "+tail(filepath.Join(p.jobDir(st.ID), "trainer.log"), 400))
	}
	data, _ := json.Marshal(st)
	j.Data = data
	return j
}

func cmpStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// jobOutput returns the trained file of a completed customization.
func (p *Platform) jobOutput(job flywheel.CustomizationJob) (jobOutputInfo, error) {
	var st JobData
	if err := readJSONFile(filepath.Join(p.jobDir(job.ID), "state.json"), &st); err != nil {
		if len(job.Data) == 0 || json.Unmarshal(job.Data, &st) != nil {
			return jobOutputInfo{}, flywheel.Permanent(fmt.Errorf("customization %s: %w", job.ID, err))
		}
	}
	if _, err := os.Stat(st.Output); err != nil {
		return jobOutputInfo{}, flywheel.Permanent(fmt.Errorf("customization %s has no output: %w", job.ID, err))
	}
	kind := "model"
	if st.Mode == "lora" {
		kind = "lora"
	}
	return jobOutputInfo{Path: st.Output, Kind: kind}, nil
}

// CancelCustomization stops a running trainer (SIGTERM, then SIGKILL after
// the grace period). Cancelling a finished or unknown job is not an error.
func (p *Platform) CancelCustomization(ctx context.Context, id string) error {
	if !validID(id, jobPrefix) {
		return nil
	}
	unlock := p.lockID(id)
	defer unlock()
	path := filepath.Join(p.jobDir(id), "state.json")
	var st JobData
	if err := readJSONFile(path, &st); err != nil {
		if errors.Is(err, flywheel.ErrNotFound) {
			return nil
		}
		return err
	}
	if !st.alive() {
		return nil
	}
	st.Cancelled = true
	if err := writeJSONFile(path, st); err != nil {
		return err
	}
	if err := st.stop(ctx, p.opts.StopGrace); err != nil {
		return fmt.Errorf("cancel customization %s: %w", id, err)
	}
	p.log.Info("cancelled trainer", "job", id, "pid", st.PID)
	return nil
}

// deleteOutput removes a customization's trained files (the ledger's
// "model" resource, named by the job id).
func (p *Platform) deleteOutput(id string) error {
	if !validID(id, jobPrefix) {
		return nil
	}
	for _, name := range []string{"model.gguf", "adapter.gguf"} {
		if err := os.Remove(filepath.Join(p.jobDir(id), name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("delete customized model: %w", err)
		}
	}
	return nil
}
