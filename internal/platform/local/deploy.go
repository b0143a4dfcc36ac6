package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

const deploymentPrefix = "llama-"

// DeploymentData is what a deployment's ledger data and state file hold.
type DeploymentData struct {
	ID      string `json:"id"`
	Key     string `json:"key"`
	Model   string `json:"model"`
	Port    int    `json:"port"`
	BaseURL string `json:"base_url"`
	procIdentity
	StartedAt time.Time `json:"started_at"`
	ModelPath string    `json:"model_path"`
	// Adapter is the LoRA adapter served on top of the model, if any.
	Adapter string `json:"adapter,omitempty"`
	LogPath string `json:"log_path"`
	// Stopped is set once Undeploy has stopped the process.
	Stopped bool `json:"stopped,omitempty"`
}

func (p *Platform) deploymentDir(id string) string {
	return filepath.Join(p.opts.DataDir, "deployments", id)
}

// Deploy starts a llama-server for the candidate (and its customization's
// output, when req.Adapter is set) on a free loopback port. It returns
// without waiting for the model to load; a second Deploy with the same Key
// returns the running deployment.
func (p *Platform) Deploy(ctx context.Context, req flywheel.DeployRequest) (flywheel.Deployment, error) {
	if req.Key == "" {
		return flywheel.Deployment{}, flywheel.Permanent(flywheel.Errorf(flywheel.EINVALID, "deploy: key is required"))
	}
	id := idFor(deploymentPrefix, req.Key)
	unlock := p.lockID(id)
	defer unlock()

	var st DeploymentData
	err := readJSONFile(filepath.Join(p.deploymentDir(id), "state.json"), &st)
	switch {
	case err == nil && !st.Stopped && st.alive():
		return p.status(ctx, st), nil
	case err != nil && !errors.Is(err, flywheel.ErrNotFound):
		return flywheel.Deployment{}, err
	}

	if p.opts.LlamaServer == "" {
		// Checked before the model: building a base on first use takes
		// minutes and serves nothing without llama-server.
		missing := p.missing
		if missing == nil {
			missing = fmt.Errorf("find llama-server: %w", ErrNotInstalled)
		}
		// The error says where it looked; flywheel doctor says what to run.
		return flywheel.Deployment{}, flywheel.Permanent(fmt.Errorf("%w (flywheel doctor prints the fix)", missing))
	}
	modelPath, adapter, err := p.servedFiles(ctx, req)
	if err != nil {
		return flywheel.Deployment{}, err
	}
	dir := p.deploymentDir(id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return flywheel.Deployment{}, fmt.Errorf("create deployment directory: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return flywheel.Deployment{}, err
	}
	ctxSize := p.opts.ContextSize
	if req.Model.ContextLength > 0 {
		ctxSize = req.Model.ContextLength
	}
	args := []string{
		"-m", modelPath,
		"--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"-t", strconv.Itoa(p.opts.Threads), "-tb", strconv.Itoa(p.opts.Threads),
		"-c", strconv.Itoa(ctxSize * p.opts.Parallel), "-np", strconv.Itoa(p.opts.Parallel),
		"--jinja", "--alias", req.Model.ModelName, "--no-webui", "--offline", "--log-colors", "off",
	}
	if adapter != "" {
		args = append(args, "--lora", adapter)
	}
	logPath := filepath.Join(dir, "server.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return flywheel.Deployment{}, fmt.Errorf("open server log: %w", err)
	}
	fmt.Fprintf(logFile, "# %s %s %v\n", time.Now().UTC().Format(time.RFC3339), p.opts.LlamaServer, args)
	cmd, err := p.start(p.opts.LlamaServer, args, threadEnv(p.opts.Threads), logFile, logFile, logFile)
	if err != nil {
		logFile.Close()
		return flywheel.Deployment{}, err
	}
	ident, err := identify(cmd.Process.Pid, filepath.Base(p.opts.LlamaServer))
	if err != nil {
		return flywheel.Deployment{}, fmt.Errorf("llama-server exited at once: %s", tail(logPath, 500))
	}
	st = DeploymentData{
		ID: id, Key: req.Key, Model: req.Model.ModelName, Port: port,
		BaseURL:      fmt.Sprintf("http://127.0.0.1:%d", port),
		procIdentity: ident, StartedAt: time.Now().UTC(),
		ModelPath: modelPath, Adapter: adapter, LogPath: logPath,
	}
	if err := writeJSONFile(filepath.Join(dir, "state.json"), st); err != nil {
		_ = ident.stop(ctx, p.opts.StopGrace)
		return flywheel.Deployment{}, err
	}
	p.log.Info("started llama-server", "deployment", id, "model", st.Model, "pid", st.PID, "port", port, "adapter", adapter)
	d := p.deployment(st, flywheel.DeploymentPending, "")
	return d, nil
}

// servedFiles returns the model file to serve and the LoRA adapter, if any.
func (p *Platform) servedFiles(ctx context.Context, req flywheel.DeployRequest) (model, adapter string, err error) {
	base, err := p.ModelPath(ctx, req.Model)
	if err != nil {
		return "", "", err
	}
	if req.Adapter == nil {
		return base, "", nil
	}
	out, err := p.jobOutput(*req.Adapter)
	if err != nil {
		return "", "", err
	}
	if out.Kind == "lora" {
		return base, out.Path, nil
	}
	return out.Path, "", nil
}

func (p *Platform) deployment(st DeploymentData, status flywheel.DeploymentStatus, msg string) flywheel.Deployment {
	data, _ := json.Marshal(st)
	return flywheel.Deployment{
		ID:       st.ID,
		Status:   status,
		Endpoint: flywheel.Endpoint{BaseURL: st.BaseURL, Model: st.Model},
		Message:  msg,
		Data:     data,
	}
}

// Deployment reports a deployment's state: Ready once llama-server answers
// /health and lists the model, Pending while it loads, Failed when the
// process has gone, Cancelled once undeployed.
func (p *Platform) Deployment(ctx context.Context, id string) (flywheel.Deployment, error) {
	if !validID(id, deploymentPrefix) {
		return flywheel.Deployment{}, fmt.Errorf("deployment %q: %w", id, flywheel.ErrNotFound)
	}
	var st DeploymentData
	if err := readJSONFile(filepath.Join(p.deploymentDir(id), "state.json"), &st); err != nil {
		if errors.Is(err, flywheel.ErrNotFound) {
			return flywheel.Deployment{}, fmt.Errorf("deployment %s: %w", id, flywheel.ErrNotFound)
		}
		return flywheel.Deployment{}, err
	}
	return p.status(ctx, st), nil
}

func (p *Platform) status(ctx context.Context, st DeploymentData) flywheel.Deployment {
	if st.Stopped {
		return p.deployment(st, flywheel.DeploymentCancelled, "stopped")
	}
	if !st.alive() {
		return p.deployment(st, flywheel.DeploymentFailed, "llama-server exited: "+tail(st.LogPath, 400))
	}
	ok, msg := p.ready(ctx, st)
	if !ok {
		return p.deployment(st, flywheel.DeploymentPending, msg)
	}
	return p.deployment(st, flywheel.DeploymentReady, "")
}

// ready checks /health and that /v1/models lists the model.
func (p *Platform) ready(ctx context.Context, st DeploymentData) (bool, string) {
	get := func(path string, v any) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, st.BaseURL+path, nil)
		if err != nil {
			return 0, err
		}
		resp, err := p.client.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		if v != nil && resp.StatusCode == http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
				return resp.StatusCode, fmt.Errorf("decode %s: %w", path, err)
			}
		}
		return resp.StatusCode, nil
	}
	code, err := get("/health", nil)
	if err != nil {
		return false, "waiting for llama-server: " + err.Error()
	}
	if code != http.StatusOK {
		return false, fmt.Sprintf("llama-server loading (health %d)", code)
	}
	var models struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if _, err := get("/v1/models", &models); err != nil {
		return false, "list models: " + err.Error()
	}
	for _, m := range models.Data {
		if m.ID == st.Model {
			return true, ""
		}
	}
	return false, fmt.Sprintf("model %s not listed yet", st.Model)
}

// Undeploy stops a deployment's llama-server. It works from any Platform
// instance (the process is found through the state file and verified by
// its start time and program name before it is signalled); a deployment
// that is gone is not an error.
func (p *Platform) Undeploy(ctx context.Context, id string) error {
	return p.undeploy(ctx, id, nil)
}

func (p *Platform) undeploy(ctx context.Context, id string, ledgerData json.RawMessage) error {
	if !validID(id, deploymentPrefix) {
		return nil
	}
	unlock := p.lockID(id)
	defer unlock()
	path := filepath.Join(p.deploymentDir(id), "state.json")
	var st DeploymentData
	err := readJSONFile(path, &st)
	if errors.Is(err, flywheel.ErrNotFound) {
		// No state file (another data directory, or deleted): the ledger's
		// copy still identifies the process.
		if len(ledgerData) == 0 || json.Unmarshal(ledgerData, &st) != nil || st.ID != id {
			return nil
		}
		return st.stop(ctx, p.opts.StopGrace)
	}
	if err != nil {
		return err
	}
	if err := st.stop(ctx, p.opts.StopGrace); err != nil {
		return fmt.Errorf("undeploy %s: %w", id, err)
	}
	if !st.Stopped {
		st.Stopped = true
		if err := writeJSONFile(path, st); err != nil {
			return err
		}
		p.log.Info("stopped llama-server", "deployment", id, "pid", st.PID)
	}
	return nil
}
