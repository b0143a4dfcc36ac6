package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

func TestCheckDependencies(t *testing.T) {
	t.Parallel()
	root := true

	t.Run("NothingInstalled", func(t *testing.T) {
		t.Parallel()
		empty := t.TempDir()
		models := filepath.Join(t.TempDir(), "models")
		checks := CheckDependencies(context.Background(), CheckOptions{InstallDir: empty, Python: filepath.Join(empty, "python3"),
			ModelsDir: models, Root: &root, Getenv: envOf(map[string]string{"HOME": t.TempDir(), "PATH": empty}),
			Models: []flywheel.NIMConfig{{ModelName: "local/tiny-s"}, {ModelName: "acme/big"},
				{ModelName: "x", Extra: map[string]any{"model_file": filepath.Join(empty, "x.gguf")}}}})
		require.Len(t, checks, 5)
		byName := map[string]Check{}
		for _, c := range checks {
			byName[c.Name] = c
		}
		ls := byName["llama-server"]
		require.False(t, ls.OK)
		require.Contains(t, ls.Detail, LlamaServerIn(empty))
		require.Equal(t, "FLYWHEEL_LOCAL_DIR="+empty+" scripts/install-local.sh   (builds it into "+empty+"/llama-server)", ls.Fix)
		py := byName["python3 + torch"]
		require.False(t, py.OK)
		require.Contains(t, py.Detail, "not found")
		require.Contains(t, py.Fix, "apt-get install -y python3 python3-torch python3-numpy")
		require.NotContains(t, py.Fix, "sudo", "root needs no sudo")
		require.True(t, byName["model local/tiny-s"].OK, "a base is built on first use")
		require.Contains(t, byName["model local/tiny-s"].Detail, "pre-trained in "+models+" on first use")
		require.False(t, byName["model acme/big"].OK)
		require.Contains(t, byName["model acme/big"].Fix, "nims[].extra.model_file")
		require.False(t, byName["model x"].OK)
		require.Contains(t, byName["model x"].Detail, "does not exist")
	})

	t.Run("Installed", func(t *testing.T) {
		t.Parallel()
		inst := t.TempDir()
		writeExec(t, LlamaServerIn(inst))
		// A stand-in Python that imports anything.
		py := filepath.Join(t.TempDir(), "python3")
		require.NoError(t, os.WriteFile(py, []byte("#!/bin/sh\necho torch 2.9.0\n"), 0o755))
		require.NoError(t, os.MkdirAll(ModelsIn(inst), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(ModelsIn(inst), "tiny-m.gguf"), []byte("m"), 0o644))
		checks := CheckDependencies(context.Background(), CheckOptions{InstallDir: inst, Python: py, ModelsDir: t.TempDir(), Base: BaseRandom,
			Root: &root, Getenv: envOf(map[string]string{"HOME": t.TempDir()}), Models: []flywheel.NIMConfig{{ModelName: "local/tiny-m"}}})
		for _, c := range checks {
			require.True(t, c.OK, "%+v", c)
			require.Empty(t, c.Fix)
		}
		require.Equal(t, LlamaServerIn(inst)+" (version: 1)", checks[0].Detail)
		require.Equal(t, filepath.Join(ModelsIn(inst), "tiny-m.gguf"), checks[2].Detail)
	})

	t.Run("PretrainedBase", func(t *testing.T) {
		t.Parallel()
		inst := t.TempDir()
		writeExec(t, LlamaServerIn(inst))
		py := filepath.Join(t.TempDir(), "python3")
		require.NoError(t, os.WriteFile(py, []byte("#!/bin/sh\necho torch 2.9.0\n"), 0o755))
		models := t.TempDir()
		opts := CheckOptions{InstallDir: inst, Python: py, ModelsDir: models, Base: BasePretrained,
			Root: &root, Getenv: envOf(map[string]string{"HOME": t.TempDir()}), Models: []flywheel.NIMConfig{{ModelName: "local/tiny-m"}}}
		checks := CheckDependencies(context.Background(), opts)
		require.True(t, checks[2].OK)
		require.Contains(t, checks[2].Detail, "pre-trained in "+models+" on first use")
		m, err := SizeFor("local/tiny-m")
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(ModelsIn(inst), 0o755))
		base := filepath.Join(ModelsIn(inst), fmt.Sprintf("tiny-m-base-%s.gguf", BaseKey(m, DefaultBaseRecipe(m), SeedDefault, DefaultTokenizer())))
		require.NoError(t, os.WriteFile(base, []byte("m"), 0o644))
		checks = CheckDependencies(context.Background(), opts)
		require.Equal(t, "pre-trained base "+base, checks[2].Detail)
	})

	t.Run("BrokenBinaryAndNoTorch", func(t *testing.T) {
		t.Parallel()
		inst := t.TempDir()
		require.NoError(t, os.MkdirAll(filepath.Dir(LlamaServerIn(inst)), 0o755))
		require.NoError(t, os.WriteFile(LlamaServerIn(inst), []byte("#!/bin/sh\necho 'error while loading shared libraries: libllama.so' >&2\nexit 127\n"), 0o755))
		py := filepath.Join(t.TempDir(), "python3")
		require.NoError(t, os.WriteFile(py, []byte("#!/bin/sh\necho \"ModuleNotFoundError: No module named 'torch'\" >&2\nexit 1\n"), 0o755))
		notRoot := false
		checks := CheckDependencies(context.Background(), CheckOptions{InstallDir: inst, Python: py, ModelsDir: t.TempDir(),
			Root: &notRoot, Getenv: envOf(nil)})
		require.False(t, checks[0].OK)
		require.Contains(t, checks[0].Detail, "libllama.so")
		require.Equal(t, "FLYWHEEL_LOCAL_DIR="+inst+" scripts/install-local.sh --force-build", checks[0].Fix)
		require.False(t, checks[1].OK)
		require.Contains(t, checks[1].Detail, "No module named 'torch'")
		require.Contains(t, checks[1].Fix, "sudo apt-get install -y python3-torch python3-numpy")
	})
}
