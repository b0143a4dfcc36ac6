package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// flywheel doctor checks the local platform's dependencies and prints the
// fix of each problem: here an install directory without llama-server and
// a Python that does not exist.
func TestDoctorLocalChecksPrintTheFix(t *testing.T) {
	t.Parallel()
	empty := t.TempDir()
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte("platform:\n  local:\n    install_dir: "+empty+"\n    python_path: "+
		filepath.Join(empty, "python3")+"\n"), 0o600))
	env := map[string]string{"FLYWHEEL_DATA_DIR": t.TempDir(), "HOME": t.TempDir(), "PATH": empty}
	var stdout, stderr bytes.Buffer
	root := newRoot(&stdout, &stderr, func(k string) string { return env[k] })
	root.SetArgs([]string{"doctor", "--config", cfgPath, "--log-level", "ERROR"})
	err := root.ExecuteContext(t.Context())
	require.EqualError(t, err, "2 local platform problem(s); run the fix shown for each")
	out := stdout.String()
	require.Contains(t, out, "Local platform:\n  PROBLEM  llama-server")
	require.Contains(t, out, "looked at "+filepath.Join(empty, "llama-server", "llama-server"))
	require.Contains(t, out, "fix: FLYWHEEL_LOCAL_DIR="+empty+" scripts/install-local.sh")
	require.Contains(t, out, "PROBLEM  python3 + torch        "+filepath.Join(empty, "python3")+" not found")
	require.Contains(t, out, "apt-get install -y python3 python3-torch python3-numpy")
	require.Contains(t, out, "ok       model local/tiny-s", "the default candidates are made on first use")
	require.Contains(t, out, "No problems found.", "the run checks still ran")
}
