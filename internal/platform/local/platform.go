// Package local is Flywheel's embedded platform: candidates are tiny
// llama-architecture models the package creates itself, deployments are
// llama-server processes on loopback ports speaking the OpenAI API, and
// customization is a real PyTorch training run (tools/trainer.py) on the
// CPU. Everything a deployment or a job needs to be found again after a
// restart (pid, port, process start time) is kept in a state file under
// the data directory and in the ledger data.
package local

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/tokenizer"
)

// Name is the platform's name in the ledger.
const Name = "local"

// Defaults of Options.
const (
	ThreadsDefault      = 1
	ContextSizeDefault  = 2048
	ParallelDefault     = 1
	PythonDefault       = "/usr/bin/python3"
	StopGraceDefault    = 5 * time.Second
	SeedDefault         = 1
	LearningRateDefault = 3e-3
)

// Options configures a Platform.
type Options struct {
	// DataDir holds deployments/, customizations/ and models/ (required).
	DataDir string
	// ModelsDir is where candidate model files are found or created
	// (default DataDir/models). A candidate "local/tiny-s" is the file
	// tiny-s.gguf; a candidate's extra.model_file names any other file.
	ModelsDir string
	// LlamaServer is the llama-server binary, a path or a name on PATH
	// (default: found by LocateLlamaServer in InstallDir).
	LlamaServer string
	// InstallDir is where scripts/install-local.sh installed llama-server
	// and models (default: found, see InstallDirs). Model files missing
	// from ModelsDir are looked up in its models/ directory.
	InstallDir string
	// Getenv reads the environment (LLAMA_SERVER, FLYWHEEL_LOCAL_DIR, HOME,
	// PATH); default os.Getenv.
	Getenv func(string) string
	// Python runs the trainer (default /usr/bin/python3, Debian's python
	// with python3-torch).
	Python string
	// Trainer is the trainer script (default: the embedded tools/trainer.py,
	// written to DataDir/bin).
	Trainer string
	// Threads is the number of CPU threads per llama-server and per
	// training run (default 1: oversubscribed cores stall ggml).
	Threads int
	// ContextSize is llama-server's context size (default 2048, or the
	// candidate's context_length when set).
	ContextSize int
	// Parallel is llama-server's number of slots (concurrent requests).
	Parallel int
	// Seed makes created models deterministic.
	Seed uint64
	// LearningRate, when set, replaces the requested learning rate (tiny
	// models trained from scratch need ~1e-3, not the blueprint's 1e-4).
	LearningRate float64
	// MinEpochs raises the requested number of epochs (0: as requested).
	MinEpochs int
	// Augment is the number of copy-augmented variants of each training
	// record the trainer sees besides the record (see Augment; 0: none).
	// An epoch is still one pass's worth of records, so variants replace
	// repetitions of the records rather than add steps.
	Augment int
	// Base is where candidates start from: BasePretrained (the default)
	// or BaseRandom.
	Base string
	// MaxTrainSeconds bounds a training run (0: no bound).
	MaxTrainSeconds float64
	// StopGrace is how long a process gets between SIGTERM and SIGKILL.
	StopGrace time.Duration
	// HTTPClient checks deployments' health (default: 2 s timeout).
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// Platform implements flywheel.Platform and flywheel.ResourceReleaser with
// local processes. It is safe for concurrent use.
type Platform struct {
	opts   Options
	log    *slog.Logger
	client *http.Client

	mu       sync.Mutex
	children map[int]*exec.Cmd // processes this instance started, by pid
	tok      *tokenizer.Tokenizer
	// modelDirs are searched in order for a model file.
	modelDirs []string
	// missing is why llama-server was not found, when it was not.
	missing error
	idLocks map[string]*sync.Mutex
	// versions and digests cache the answers of Provenancer.
	versions map[string]string
	digests  map[digestKey]string
}

var (
	_ flywheel.Platform         = (*Platform)(nil)
	_ flywheel.ResourceReleaser = (*Platform)(nil)
	_ flywheel.ModelPreparer    = (*Platform)(nil)
)

// ErrNotInstalled is returned when llama-server or the trainer's Python
// cannot be found.
var ErrNotInstalled = errors.New("local platform dependencies are not installed; run scripts/install-local.sh")

// New returns a Platform. It fails when DataDir is missing or llama-server
// cannot be found.
func New(opts Options) (*Platform, error) {
	if opts.DataDir == "" {
		return nil, flywheel.Errorf(flywheel.EINVALID, "local platform: data directory is required")
	}
	opts.ModelsDir = cmp.Or(opts.ModelsDir, filepath.Join(opts.DataDir, "models"))
	opts.Python = cmp.Or(opts.Python, PythonDefault)
	opts.Threads = cmp.Or(opts.Threads, ThreadsDefault)
	opts.ContextSize = cmp.Or(opts.ContextSize, ContextSizeDefault)
	opts.Parallel = cmp.Or(opts.Parallel, ParallelDefault)
	opts.Seed = cmp.Or(opts.Seed, SeedDefault)
	opts.StopGrace = cmp.Or(opts.StopGrace, StopGraceDefault)
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	var missing error
	if opts.LlamaServer == "" {
		// A missing llama-server does not stop the process from starting
		// (the API, the dashboard and other work go on); deployments fail
		// at once with a message that says how to install it.
		path, err := LocateLlamaServer("", opts.InstallDir, opts.Getenv)
		missing = err
		opts.LlamaServer = path
	}
	for _, d := range []string{opts.DataDir, opts.ModelsDir, filepath.Join(opts.DataDir, "deployments"), filepath.Join(opts.DataDir, "customizations")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	p := &Platform{
		opts:      opts,
		log:       opts.Logger,
		client:    opts.HTTPClient,
		children:  map[int]*exec.Cmd{},
		idLocks:   map[string]*sync.Mutex{},
		modelDirs: modelDirs(opts.ModelsDir, opts.InstallDir, opts.Getenv),
		missing:   missing,
	}
	if p.log == nil {
		p.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if missing != nil {
		p.log.Warn("llama-server not found: local deployments will fail until scripts/install-local.sh is run", "error", missing)
	}
	if p.client == nil {
		p.client = &http.Client{Timeout: 2 * time.Second}
	}
	return p, nil
}

// ModelsDir is where candidates' models and bases built on first use go.
func (p *Platform) ModelsDir() string { return p.opts.ModelsDir }

// Name returns "local".
func (p *Platform) Name() string { return Name }

// lockID serialises the operations on one deployment or job.
func (p *Platform) lockID(id string) func() {
	p.mu.Lock()
	l, ok := p.idLocks[id]
	if !ok {
		l = &sync.Mutex{}
		p.idLocks[id] = l
	}
	p.mu.Unlock()
	l.Lock()
	return l.Unlock
}

func (p *Platform) tokenizer() *tokenizer.Tokenizer {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tok == nil {
		p.tok = DefaultTokenizer()
	}
	return p.tok
}

func idFor(prefix, key string) string {
	h := sha256.Sum256([]byte(key))
	return prefix + hex.EncodeToString(h[:8])
}

// validID rejects ids that could escape the data directory.
func validID(id, prefix string) bool {
	if !strings.HasPrefix(id, prefix) || len(id) != len(prefix)+16 {
		return false
	}
	_, err := hex.DecodeString(id[len(prefix):])
	return err == nil
}

// ModelPath returns the model file a candidate starts from: the file its
// extra.model_file names, else its size's pre-trained base (built on first
// use when none is installed, which takes minutes; see EnsureBase), else,
// with Options.Base "random", a seeded random model created in the models
// directory.
func (p *Platform) ModelPath(ctx context.Context, m flywheel.NIMConfig) (string, error) {
	return p.modelPath(ctx, m, nil)
}

// modelPath is ModelPath, reporting a base build's share of steps done to
// progress (nil: to the log alone).
func (p *Platform) modelPath(ctx context.Context, m flywheel.NIMConfig, progress func(percent float64)) (string, error) {
	if f, ok := m.Extra["model_file"].(string); ok && f != "" {
		if _, err := os.Stat(f); err != nil {
			return "", flywheel.Permanent(fmt.Errorf("candidate %s: model file: %w", m.ModelName, err))
		}
		return f, nil
	}
	size, err := SizeFor(m.ModelName)
	if err != nil {
		return "", flywheel.Permanent(err)
	}
	if p.opts.Base != BaseRandom {
		return p.EnsureBase(ctx, size, p.logBaseProgress(m.ModelName, progress))
	}
	path := filepath.Join(p.opts.ModelsDir, size.Name+".gguf")
	unlock := p.lockID("model:" + path)
	defer unlock()
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	f, err := NewModel(m.ModelName, size, p.tokenizer(), p.opts.Seed)
	if err != nil {
		return "", flywheel.Permanent(err)
	}
	if err := f.WriteFile(path); err != nil {
		return "", fmt.Errorf("create model %s: %w", m.ModelName, err)
	}
	p.log.Info("created random model", "model", m.ModelName, "path", path, "params", size.Params(p.tokenizer().VocabSize()))
	return path, nil
}

// logBaseProgress logs a base build's progress every tenth of the way.
func (p *Platform) logBaseProgress(model string, report func(percent float64)) func(BaseProgress) {
	next := 0.0
	return func(bp BaseProgress) {
		if bp.Phase != "train" || bp.Total == 0 {
			return
		}
		f := float64(bp.Step) / float64(bp.Total)
		if report != nil {
			report(100 * f)
		}
		if f >= next {
			p.log.Warn("pre-training base", "model", model, "step", bp.Step, "of", bp.Total, "loss", bp.Loss)
			next += 0.1
		}
	}
}

// PrepareModel implements flywheel.ModelPreparer: it makes the model file
// the candidate starts from (ModelPath), pre-training its base when none
// is built yet and reporting the share of training steps done.
func (p *Platform) PrepareModel(ctx context.Context, m flywheel.NIMConfig, progress func(percent float64)) error {
	_, err := p.modelPath(ctx, m, progress)
	return err
}

// start launches a child process in its own process group with output to
// logPath, and reaps it when it exits.
func (p *Platform) start(name string, args, env []string, stdout, stderr io.Writer, extraFiles ...*os.File) (*exec.Cmd, error) {
	cmd := exec.Command(name, args...)
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	cmd.Stdin = nil
	cmd.SysProcAttr = sysProcAttr()
	cmd.Env = env
	if err := cmd.Start(); err != nil {
		err = fmt.Errorf("start %s: %w", filepath.Base(name), err)
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
			// Retrying cannot install a missing program.
			return nil, flywheel.Permanent(fmt.Errorf("%w (%w)", err, ErrNotInstalled))
		}
		return nil, err
	}
	p.mu.Lock()
	p.children[cmd.Process.Pid] = cmd
	p.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		for _, f := range extraFiles {
			f.Close()
		}
		p.mu.Lock()
		delete(p.children, cmd.Process.Pid)
		p.mu.Unlock()
	}()
	return cmd, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(path), err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func readJSONFile(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return flywheel.ErrNotFound
		}
		return fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// tail returns the last n bytes of a file, for error messages.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(0, st.Size()-n)
	b := make([]byte, st.Size()-off)
	_, _ = f.ReadAt(b, off)
	return strings.TrimSpace(string(b))
}

// Release stops or deletes one ledger resource this platform created:
// deployments are stopped, customizations cancelled, customized models
// deleted. Other kinds have nothing local to release.
func (p *Platform) Release(ctx context.Context, r flywheel.Resource) error {
	switch r.Kind {
	case flywheel.ResourceDeployment:
		return p.undeploy(ctx, r.RemoteID, r.Data)
	case flywheel.ResourceCustomization:
		return p.CancelCustomization(ctx, r.RemoteID)
	case flywheel.ResourceModel:
		return p.deleteOutput(r.RemoteID)
	}
	return nil
}

// Close stops every process this instance started (deployments and
// training runs). Processes of earlier instances are left to Undeploy.
func (p *Platform) Close() error {
	p.mu.Lock()
	var cmds []*exec.Cmd
	for _, c := range p.children {
		cmds = append(cmds, c)
	}
	p.mu.Unlock()
	var errs []error
	for _, c := range cmds {
		id, err := identify(c.Process.Pid, "")
		if err != nil {
			continue
		}
		errs = append(errs, id.stop(context.Background(), p.opts.StopGrace))
	}
	return errors.Join(errs...)
}
