package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

var _ flywheel.Provenancer = (*Platform)(nil)

// versionTimeout bounds each version probe (importing torch takes seconds).
const versionTimeout = 60 * time.Second

// Versions returns llama-server's and PyTorch's versions, each asked once
// per process (llama-server --version, python3 -c 'import torch').
func (p *Platform) Versions(ctx context.Context, _ []flywheel.NIMConfig) map[string]string {
	out := map[string]string{}
	if v := p.version(ctx, "llama-server", func(ctx context.Context) (string, error) {
		if p.missing != nil {
			return "", p.missing
		}
		text, err := run(ctx, versionTimeout, p.opts.LlamaServer, "--version")
		if err != nil {
			return "", err
		}
		for _, line := range strings.Split(text, "\n") {
			line = strings.TrimSpace(line)
			if len(line) > len("version:") && strings.EqualFold(line[:len("version:")], "version:") {
				return strings.TrimSpace(line[len("version:"):]), nil
			}
		}
		return firstLine(text), nil
	}); v != "" {
		out["llama-server"] = v
	}
	if v := p.version(ctx, "torch", func(ctx context.Context) (string, error) {
		text, err := run(ctx, versionTimeout, p.opts.Python, "-c", "import torch; print(torch.__version__)")
		if err != nil {
			return "", err
		}
		lines := strings.Split(strings.TrimSpace(text), "\n")
		return strings.TrimSpace(lines[len(lines)-1]), nil
	}); v != "" {
		out["torch"] = v
	}
	return out
}

// version returns a cached version, probing once when it is not known;
// a failed probe is logged and tried again next time.
func (p *Platform) version(ctx context.Context, name string, probe func(context.Context) (string, error)) string {
	p.mu.Lock()
	v, ok := p.versions[name]
	p.mu.Unlock()
	if ok {
		return v
	}
	v, err := probe(ctx)
	if err != nil {
		p.log.Warn("version unknown", "component", name, "error", err)
		return ""
	}
	p.mu.Lock()
	if p.versions == nil {
		p.versions = map[string]string{}
	}
	p.versions[name] = v
	p.mu.Unlock()
	return v
}

// ModelDigest returns "sha256:…" of the candidate's model file, or ""
// when the file does not exist yet (it is created at deployment).
func (p *Platform) ModelDigest(_ context.Context, m flywheel.NIMConfig) (string, error) {
	path, err := p.existingModel(m)
	if err != nil || path == "" {
		return "", err
	}
	return p.fileDigest(path)
}

// AdapterDigest returns "sha256:…" of a finished customization's output
// (the LoRA adapter or the fine-tuned model file).
func (p *Platform) AdapterDigest(_ context.Context, job flywheel.CustomizationJob) (string, error) {
	out, err := p.jobOutput(job)
	if err != nil {
		return "", err
	}
	return p.fileDigest(out.Path)
}

// existingModel is ModelPath without creating anything: "" when the
// candidate's model file does not exist yet.
func (p *Platform) existingModel(m flywheel.NIMConfig) (string, error) {
	if f, ok := m.Extra["model_file"].(string); ok && f != "" {
		return f, nil
	}
	size, err := SizeFor(m.ModelName)
	if err != nil {
		return "", err
	}
	if p.opts.Base != BaseRandom {
		f, _ := p.FindBase(size)
		return f, nil
	}
	path := filepath.Join(p.opts.ModelsDir, size.Name+".gguf")
	if _, err := os.Stat(path); err != nil {
		return "", nil
	}
	return path, nil
}

// digestKey identifies a file's content cheaply: the same path, size and
// modification time are not hashed twice.
type digestKey struct {
	path  string
	size  int64
	mtime time.Time
}

// fileDigest returns "sha256:…" of a file, cached by path, size and
// modification time.
func (p *Platform) fileDigest(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("digest %s: %w", path, err)
	}
	key := digestKey{path, st.Size(), st.ModTime()}
	p.mu.Lock()
	d, ok := p.digests[key]
	p.mu.Unlock()
	if ok {
		return d, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("digest %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("digest %s: %w", path, err)
	}
	d = "sha256:" + hex.EncodeToString(h.Sum(nil))
	p.mu.Lock()
	if p.digests == nil {
		p.digests = map[digestKey]string{}
	}
	p.digests[key] = d
	p.mu.Unlock()
	return d, nil
}
