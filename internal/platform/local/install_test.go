package local

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func writeExec(t *testing.T, path string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte("#!/bin/sh\necho version: 1\n"), 0o755))
}

func TestInstallDirs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		dir  string
		env  map[string]string
		want []string
	}{
		{"Configured", "/opt/fw", map[string]string{EnvLocalDir: "/env", "HOME": "/home/a"}, []string{"/opt/fw"}},
		{"Env", "", map[string]string{EnvLocalDir: "/env", EnvCache: "/old", "HOME": "/home/a"}, []string{"/env"}},
		{"OlderEnvName", "", map[string]string{EnvCache: "/old", "HOME": "/home/a"}, []string{"/old"}},
		{"SystemThenHome", "", map[string]string{"HOME": "/home/a"}, []string{SystemInstallDir, "/home/a/.cache/flywheel"}},
		{"SystemThenXDG", "", map[string]string{"HOME": "/home/a", "XDG_CACHE_HOME": "/xdg"}, []string{SystemInstallDir, "/xdg/flywheel"}},
		{"NoHome", "", map[string]string{}, []string{SystemInstallDir}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, InstallDirs(tt.dir, envOf(tt.env)))
		})
	}
}

// An installation is found from any HOME when its directory is given, and
// the error of a missing one says where it looked.
func TestLocateLlamaServer(t *testing.T) {
	t.Parallel()
	inst := t.TempDir()
	writeExec(t, LlamaServerIn(inst))
	otherHome := t.TempDir()

	got, err := LocateLlamaServer("", inst, envOf(map[string]string{"HOME": otherHome, "PATH": ""}))
	require.NoError(t, err)
	require.Equal(t, LlamaServerIn(inst), got)
	require.Equal(t, inst, InstallDir(inst, envOf(map[string]string{"HOME": otherHome}), false))

	got, err = LocateLlamaServer("", "", envOf(map[string]string{EnvLocalDir: inst, "HOME": otherHome}))
	require.NoError(t, err, "through the environment")
	require.Equal(t, LlamaServerIn(inst), got)

	empty := t.TempDir()
	_, err = LocateLlamaServer("", empty, envOf(map[string]string{"HOME": otherHome, "PATH": empty}))
	require.ErrorIs(t, err, ErrNotInstalled)
	require.ErrorContains(t, err, LlamaServerIn(empty))
	require.ErrorContains(t, err, "llama-server on PATH")

	bin := t.TempDir()
	writeExec(t, filepath.Join(bin, "llama-server"))
	got, err = LocateLlamaServer("", empty, envOf(map[string]string{"PATH": "/nowhere" + string(os.PathListSeparator) + bin}))
	require.NoError(t, err)
	require.Equal(t, filepath.Join(bin, "llama-server"), got, "PATH is the last resort")

	got, err = LocateLlamaServer("llama-server", empty, envOf(map[string]string{"PATH": bin}))
	require.NoError(t, err, "a configured name is looked up on PATH")
	require.Equal(t, filepath.Join(bin, "llama-server"), got)
	_, err = LocateLlamaServer(filepath.Join(empty, "nope"), "", envOf(nil))
	require.ErrorIs(t, err, ErrNotInstalled)

	require.Equal(t, empty, InstallDir(empty, envOf(nil), false), "the configured directory even when empty")
}

// A candidate starts from its size's pre-trained base: one installed in
// <install_dir>/models is used where it is, one in models_dir wins over
// it; with Base "random" a missing model is created in models_dir.
func TestModelPathFindsBases(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	inst := t.TempDir()
	require.NoError(t, os.MkdirAll(ModelsIn(inst), 0o755))
	data := t.TempDir()
	env := envOf(map[string]string{"HOME": t.TempDir()})
	p, err := New(Options{DataDir: data, InstallDir: inst, LlamaServer: "/bin/true", Getenv: env})
	require.NoError(t, err)
	s, err := SizeFor("local/tiny-s")
	require.NoError(t, err)
	name := p.BaseFileName(s, DefaultBaseRecipe(s))
	require.Regexp(t, `^tiny-s-base-[0-9a-f]{12}\.gguf$`, name)
	installed := filepath.Join(ModelsIn(inst), name)
	require.NoError(t, os.WriteFile(installed, []byte("base"), 0o644))
	got, err := p.ModelPath(ctx, flywheel.NIMConfig{ModelName: "local/tiny-s"})
	require.NoError(t, err)
	require.Equal(t, installed, got)

	own := filepath.Join(data, "models", name)
	require.NoError(t, os.WriteFile(own, []byte("mine"), 0o644))
	got, err = p.ModelPath(ctx, flywheel.NIMConfig{ModelName: "local/tiny-s"})
	require.NoError(t, err)
	require.Equal(t, own, got, "models_dir first")

	other := DefaultBaseRecipe(s)
	other.Steps++
	require.NotEqual(t, name, p.BaseFileName(s, other), "another recipe is another base")

	r, err := New(Options{DataDir: data, InstallDir: inst, LlamaServer: "/bin/true", Getenv: env, Base: BaseRandom})
	require.NoError(t, err)
	got, err = r.ModelPath(ctx, flywheel.NIMConfig{ModelName: "local/tiny-xs"})
	require.NoError(t, err)
	require.Equal(t, filepath.Join(data, "models", "tiny-xs.gguf"), got, "random: created in models_dir")
}

// A deployment without llama-server fails at once, for good, saying where
// it looked.
func TestDeployWithoutLlamaServerSaysWhereItLooked(t *testing.T) {
	t.Parallel()
	empty := t.TempDir()
	p, err := New(Options{DataDir: t.TempDir(), InstallDir: empty, Getenv: envOf(map[string]string{"HOME": t.TempDir(), "PATH": empty})})
	require.NoError(t, err, "the process starts without it")
	_, err = p.Deploy(context.Background(), flywheel.DeployRequest{Key: "run/a", Model: flywheel.NIMConfig{ModelName: "local/tiny-xs"}})
	require.ErrorIs(t, err, flywheel.ErrPermanent)
	require.ErrorIs(t, err, ErrNotInstalled)
	require.ErrorContains(t, err, "looked at "+LlamaServerIn(empty))
	require.ErrorContains(t, err, "flywheel doctor prints the fix")
}
