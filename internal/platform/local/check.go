package local

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/tokenizer"
)

// Check is the outcome of one check of the local platform's dependencies.
type Check struct {
	// Name is what was checked ("llama-server", "python3 + torch",
	// "model local/tiny-s").
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	// Detail says what was found, or what is wrong.
	Detail string `json:"detail"`
	// Fix is the command (or setting) that fixes a problem.
	Fix string `json:"fix,omitempty"`
}

// CheckOptions says what CheckDependencies checks, as the platform would
// be configured (the platform.local keys and the local candidates).
type CheckOptions struct {
	LlamaServer string
	InstallDir  string
	Python      string
	ModelsDir   string
	Models      []flywheel.NIMConfig
	// Base is platform.local.options.base: with "pretrained" a model is
	// found when its size's base is built.
	Base string
	// Getenv reads the environment (default os.Getenv).
	Getenv func(string) string
	// Root says whether the fixes run as root (no sudo); default: whether
	// this process does.
	Root *bool
	// Timeout bounds each command run (default 60 s: importing torch is slow).
	Timeout time.Duration
}

// CheckDependencies checks that llama-server is found and runs
// (--version), that Python imports torch and numpy (the trainer's needs),
// and that every candidate's model file is found or can be created. Each
// problem comes with the command that fixes it.
func CheckDependencies(ctx context.Context, o CheckOptions) []Check {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	o.Python = cmp.Or(o.Python, PythonDefault)
	o.Timeout = cmp.Or(o.Timeout, 60*time.Second)
	root := os.Geteuid() == 0
	if o.Root != nil {
		root = *o.Root
	}
	sudo := "sudo "
	if root {
		sudo = ""
	}
	install := "scripts/install-local.sh"
	if o.InstallDir != "" {
		install = EnvLocalDir + "=" + o.InstallDir + " scripts/install-local.sh"
	}
	out := []Check{checkLlamaServer(ctx, o, install, root)}
	out = append(out, checkPython(ctx, o, sudo))
	modelsDir := o.ModelsDir
	dirs := modelDirs(modelsDir, o.InstallDir, o.Getenv)
	var tok *tokenizer.Tokenizer // trained once (seconds), only when a base is looked for
	for _, m := range o.Models {
		if o.Base != BaseRandom {
			if tok == nil {
				tok = DefaultTokenizer()
			}
			out = append(out, checkBase(m, modelsDir, dirs, tok))
			continue
		}
		out = append(out, checkModel(m, modelsDir, dirs))
	}
	return out
}

func checkLlamaServer(ctx context.Context, o CheckOptions, install string, root bool) Check {
	c := Check{Name: "llama-server"}
	path, err := LocateLlamaServer(o.LlamaServer, o.InstallDir, o.Getenv)
	if err != nil {
		c.Detail = err.Error()
		c.Fix = install + "   (builds it into " + InstallDir(o.InstallDir, o.Getenv, root) + "/llama-server"
		if !root && o.InstallDir == "" && o.Getenv(EnvLocalDir) == "" && o.Getenv(EnvCache) == "" {
			c.Fix += "; with sudo, into " + SystemInstallDir + " for every user"
		}
		c.Fix += ")"
		if o.LlamaServer != "" {
			c.Fix = "set platform.local.llama_server_path to a llama-server that exists, or leave it empty and run " + install
		}
		return c
	}
	text, err := run(ctx, o.Timeout, path, "--version")
	if err != nil {
		c.Detail = fmt.Sprintf("%s --version failed: %v: %s", path, err, lastLines(text, 3))
		c.Fix = install + " --force-build"
		return c
	}
	c.OK, c.Detail = true, path+" ("+firstLine(text)+")"
	return c
}

func checkPython(ctx context.Context, o CheckOptions, sudo string) Check {
	c := Check{Name: "python3 + torch"}
	text, err := run(ctx, o.Timeout, o.Python, "-c", "import torch, numpy; print('torch', torch.__version__)")
	switch {
	case errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist):
		c.Detail = fmt.Sprintf("%s not found", o.Python)
		c.Fix = sudo + "apt-get install -y python3 python3-torch python3-numpy   (or set platform.local.python_path to a Python with PyTorch)"
	case err != nil:
		c.Detail = fmt.Sprintf("%s cannot import torch and numpy: %s", o.Python, lastLines(text, 1))
		c.Fix = sudo + "apt-get install -y python3-torch python3-numpy   (Debian's PyTorch; or set platform.local.python_path to a Python with PyTorch)"
	default:
		c.OK, c.Detail = true, o.Python+" ("+firstLine(text)+")"
	}
	return c
}

func checkModel(m flywheel.NIMConfig, modelsDir string, dirs []string) Check {
	c := Check{Name: "model " + m.ModelName}
	if f, ok := m.Extra["model_file"].(string); ok && f != "" {
		if st, err := os.Stat(f); err != nil || !st.Mode().IsRegular() {
			c.Detail = fmt.Sprintf("model_file %s does not exist", f)
			c.Fix = "set nims[].extra.model_file of " + m.ModelName + " to an existing GGUF file"
			return c
		}
		c.OK, c.Detail = true, f
		return c
	}
	size, err := SizeFor(m.ModelName)
	if err != nil {
		c.Detail = err.Error()
		c.Fix = "name a local model (local/tiny-s, local/tiny-m, …) or set nims[].extra.model_file of " + m.ModelName
		return c
	}
	if f := findFile(dirs, size.Name+".gguf"); f != "" {
		c.OK, c.Detail = true, f
		return c
	}
	if !Writable(modelsDir) {
		c.Detail = fmt.Sprintf("not created yet, and %s is not writable (looked in %s)", modelsDir, strings.Join(dirs, ", "))
		c.Fix = "mkdir -p " + modelsDir + " && chown $(id -u) " + modelsDir + "   (or set platform.local.models_dir to a writable directory)"
		return c
	}
	c.OK, c.Detail = true, fmt.Sprintf("not created yet: made in %s on first use", modelsDir)
	return c
}

// Writable reports whether dir, or the nearest existing directory above
// it, accepts new files.
func Writable(dir string) bool {
	for d := dir; d != ""; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			return syscall.Access(d, 2 /* W_OK */) == nil
		}
		if d == filepath.Dir(d) {
			break
		}
	}
	return false
}

// run runs a command under a timeout and returns its combined output.
func run(ctx context.Context, timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var buf bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	return strings.TrimSpace(buf.String()), err
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}

// checkBase checks that a candidate's pre-trained base is built, or can
// be built on first use.
func checkBase(m flywheel.NIMConfig, modelsDir string, dirs []string, tok *tokenizer.Tokenizer) Check {
	c := Check{Name: "model " + m.ModelName}
	if f, ok := m.Extra["model_file"].(string); ok && f != "" {
		return checkModel(m, modelsDir, dirs)
	}
	size, err := SizeFor(m.ModelName)
	if err != nil {
		return checkModel(m, modelsDir, dirs)
	}
	if f := findFile(dirs, baseFileName(size, BaseKey(size, DefaultBaseRecipe(size), SeedDefault, tok))); f != "" {
		c.OK, c.Detail = true, "pre-trained base "+f
		return c
	}
	if !Writable(modelsDir) {
		c.Detail = fmt.Sprintf("base not built, and %s is not writable (looked in %s)", modelsDir, strings.Join(dirs, ", "))
		c.Fix = "flywheel bases build   (as a user who can write the install directory, or set platform.local.models_dir to a writable directory)"
		return c
	}
	c.OK, c.Detail = true, fmt.Sprintf("base not built: pre-trained in %s on first use (minutes); `flywheel bases build` does it ahead of time", modelsDir)
	return c
}
