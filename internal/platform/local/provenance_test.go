package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

func TestProvenance(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	script := func(name, body string) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755))
		return path
	}
	calls := filepath.Join(dir, "calls")
	p, err := New(Options{DataDir: filepath.Join(dir, "data"), InstallDir: filepath.Join(dir, "install"), Base: BaseRandom,
		LlamaServer: script("llama-server", `echo "load_backend: loaded CPU backend" >&2; echo "Version: 0.4.0-dev (build 1, commit 5b4ebc5)" >&2; echo "built with cc" >&2`),
		Python:      script("python", `echo torch >> `+calls+`; echo "2.6.0+debian"`)})
	require.NoError(t, err)
	ctx := context.Background()

	want := map[string]string{"llama-server": "0.4.0-dev (build 1, commit 5b4ebc5)", "torch": "2.6.0+debian"}
	require.Equal(t, want, p.Versions(ctx, nil))
	require.Equal(t, want, p.Versions(ctx, nil))
	n, err := os.ReadFile(calls)
	require.NoError(t, err)
	require.Equal(t, "torch\n", string(n), "python is asked once")

	model := filepath.Join(dir, "m.gguf")
	require.NoError(t, os.WriteFile(model, []byte("GGUF model bytes"), 0o644))
	sum := sha256.Sum256([]byte("GGUF model bytes"))
	d, err := p.ModelDigest(ctx, flywheel.NIMConfig{ModelName: "local/x", Extra: map[string]any{"model_file": model}})
	require.NoError(t, err)
	require.Equal(t, "sha256:"+hex.EncodeToString(sum[:]), d)

	// A model created at deployment has no digest before.
	d, err = p.ModelDigest(ctx, flywheel.NIMConfig{ModelName: "local/tiny-s"})
	require.NoError(t, err)
	require.Empty(t, d)
	_, err = os.Stat(filepath.Join(dir, "data", "models", "tiny-s.gguf"))
	require.ErrorIs(t, err, os.ErrNotExist, "asking for a digest creates nothing")
}
