package local

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// SystemInstallDir is where scripts/install-local.sh installs the local
// platform's files when run as root: found by every user, whatever HOME.
const SystemInstallDir = "/usr/local/lib/flywheel"

// Environment variables read when nothing is configured.
const (
	// EnvLocalDir names the install directory (platform.local.install_dir).
	EnvLocalDir = "FLYWHEEL_LOCAL_DIR"
	// EnvCache is the older name of EnvLocalDir.
	EnvCache = "FLYWHEEL_CACHE"
	// EnvLlamaServer names a llama-server binary.
	EnvLlamaServer = "LLAMA_SERVER"
)

// LlamaServerIn returns where scripts/install-local.sh puts llama-server
// in an install directory.
func LlamaServerIn(dir string) string { return filepath.Join(dir, "llama-server", "llama-server") }

// ModelsIn returns the models directory of an install directory.
func ModelsIn(dir string) string { return filepath.Join(dir, "models") }

// UserCacheDir returns the user's install directory: $XDG_CACHE_HOME/flywheel
// (when absolute), else $HOME/.cache/flywheel; "" without either.
func UserCacheDir(getenv func(string) string) string {
	if x := getenv("XDG_CACHE_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "flywheel")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".cache", "flywheel")
	}
	return ""
}

// InstallDirs returns the directories that may hold the local platform's
// installed files, in the order they are searched: dir alone when set (the
// config key platform.local.install_dir); else $FLYWHEEL_LOCAL_DIR (or
// $FLYWHEEL_CACHE) alone; else SystemInstallDir, then the user's cache.
func InstallDirs(dir string, getenv func(string) string) []string {
	if dir == "" {
		dir = getenv(EnvLocalDir)
	}
	if dir == "" {
		dir = getenv(EnvCache)
	}
	if dir != "" {
		return []string{dir}
	}
	dirs := []string{SystemInstallDir}
	if u := UserCacheDir(getenv); u != "" && u != SystemInstallDir {
		dirs = append(dirs, u)
	}
	return dirs
}

// InstallDir returns the install directory in use: the first of
// InstallDirs holding a llama-server, else the one scripts/install-local.sh
// would install to (SystemInstallDir for root, else the user's cache).
func InstallDir(dir string, getenv func(string) string, root bool) string {
	dirs := InstallDirs(dir, getenv)
	for _, d := range dirs {
		if isExecutable(LlamaServerIn(d)) {
			return d
		}
	}
	if len(dirs) == 1 || root {
		return dirs[0]
	}
	return dirs[len(dirs)-1]
}

// LocateLlamaServer returns the llama-server to use: path when set (a
// path, or a name looked up on $PATH); else $LLAMA_SERVER; else the one
// installed in the first of InstallDirs(dir) that has it; else
// llama-server on $PATH. The error lists where it looked.
func LocateLlamaServer(path, dir string, getenv func(string) string) (string, error) {
	if path != "" {
		if strings.ContainsRune(path, os.PathSeparator) {
			if isExecutable(path) {
				return path, nil
			}
			return "", fmt.Errorf("llama-server %s: not an executable file: %w", path, ErrNotInstalled)
		}
		if p := lookPath(path, getenv("PATH")); p != "" {
			return p, nil
		}
		return "", fmt.Errorf("llama-server %q: not found on PATH: %w", path, ErrNotInstalled)
	}
	var tried []string
	if p := getenv(EnvLlamaServer); p != "" {
		if isExecutable(p) {
			return p, nil
		}
		tried = append(tried, p+" ($"+EnvLlamaServer+")")
	}
	for _, d := range InstallDirs(dir, getenv) {
		p := LlamaServerIn(d)
		if isExecutable(p) {
			return p, nil
		}
		tried = append(tried, p)
	}
	if p := lookPath("llama-server", getenv("PATH")); p != "" {
		return p, nil
	}
	tried = append(tried, "llama-server on PATH")
	return "", fmt.Errorf("find llama-server (looked at %s): %w", strings.Join(tried, ", "), ErrNotInstalled)
}

// FindLlamaServer is LocateLlamaServer with nothing configured, reading
// the process's environment.
func FindLlamaServer() (string, error) {
	return LocateLlamaServer("", "", os.Getenv)
}

// modelDirs returns where model files are looked up: modelsDir, then the
// models directory of every install directory, without repeats.
func modelDirs(modelsDir, installDir string, getenv func(string) string) []string {
	dirs := []string{modelsDir}
	for _, d := range InstallDirs(installDir, getenv) {
		if m := ModelsIn(d); !slices.Contains(dirs, m) {
			dirs = append(dirs, m)
		}
	}
	return dirs
}

// findFile returns the first dirs/name that is a regular file, or "".
func findFile(dirs []string, name string) string {
	for _, d := range dirs {
		f := filepath.Join(d, name)
		if st, err := os.Stat(f); err == nil && st.Mode().IsRegular() {
			return f
		}
	}
	return ""
}

// lookPath finds an executable name in the directories of pathList.
func lookPath(name, pathList string) string {
	for _, d := range filepath.SplitList(pathList) {
		if d == "" {
			continue
		}
		if p := filepath.Join(d, name); isExecutable(p) {
			return p
		}
	}
	return ""
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}
