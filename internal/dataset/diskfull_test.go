package dataset

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

func TestDiskFullClassified(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		full bool
	}{
		{name: "ENOSPC", err: fmt.Errorf("write x: %w", &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}), full: true},
		{name: "EDQUOT", err: &os.PathError{Op: "write", Path: "x", Err: syscall.EDQUOT}, full: true},
		{name: "Permission", err: &os.PathError{Op: "open", Path: "x", Err: syscall.EACCES}},
		{name: "Other", err: errors.New("boom")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := diskFull(tt.err)
			require.ErrorIs(t, err, tt.err, "the cause stays in the chain")
			if !tt.full {
				require.Equal(t, flywheel.EINTERNAL, flywheel.ErrorCode(err))
				return
			}
			require.Equal(t, flywheel.EUNAVAILABLE, flywheel.ErrorCode(err))
			require.Contains(t, flywheel.ErrorMessage(err), "disk full")
			require.Equal(t, tt.err.Error(), err.Error(), "logs keep the system's words")
			require.NotErrorIs(t, err, flywheel.ErrPermanent, "a full disk is retried")
		})
	}
}

// TestWriteJSONLDiskFull writes a dataset file to a full tmpfs: the error
// is EUNAVAILABLE "disk full", and no partial file is left behind.
func TestWriteJSONLDiskFull(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", dir).CombinedOutput()
	require.NoError(t, err, "mount a tmpfs: %s", out)
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })

	line := []byte(`{"messages":[{"role":"user","content":"` + strings.Repeat("x", 1000) + `"}]}`)
	path := filepath.Join(dir, "eval", EvalFile)
	err = writeJSONL(path, 1000, func(int) ([]byte, error) { return line, nil })
	require.Error(t, err)
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.Equal(t, flywheel.EUNAVAILABLE, flywheel.ErrorCode(err))
	require.Equal(t, "Cannot write dataset files: disk full", flywheel.ErrorMessage(err))
	_, statErr := os.Stat(path + ".tmp")
	require.ErrorIs(t, statErr, os.ErrNotExist, "the partial file is removed")

	// Once there is space again (fewer lines fit), the same write works.
	require.NoError(t, writeJSONL(path, 10, func(int) ([]byte, error) { return line, nil }))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Len(t, b, 10*(len(line)+1))
}
