package local

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAliveRightAfterStart starts short-lived programs many times and reads
// each one's liveness the moment Start returns, when the kernel may not yet
// show the new program's arguments (this read once failed about once in
// 500 starts on a busy machine), and again once it has been killed and
// reaped.
func TestAliveRightAfterStart(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	require.NoError(t, err)
	for i := range 300 {
		cmd := exec.Command(sleep, "30")
		cmd.SysProcAttr = sysProcAttr()
		require.NoError(t, cmd.Start())
		id, err := identify(cmd.Process.Pid, "sleep")
		require.NoError(t, err)
		alive := id.alive()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		require.True(t, alive, "start %d: pid %d read as gone right after Start", i, id.PID)
		require.False(t, id.alive(), "start %d: pid %d read as alive after stop and wait", i, id.PID)
	}
}

func TestTrainerEnv(t *testing.T) {
	last := func(env []string, key string) string {
		v := ""
		for _, kv := range env {
			if k, val, _ := strings.Cut(kv, "="); k == key {
				v = val
			}
		}
		return v
	}
	env := trainerEnv(3)
	require.Equal(t, "3", last(env, "OMP_NUM_THREADS"))
	require.Equal(t, "4294967296", last(env, "MALLOC_MMAP_THRESHOLD_"))

	// A setting of the user's is kept.
	t.Setenv("MALLOC_TRIM_THRESHOLD_", "1024")
	env = trainerEnv(1)
	require.Equal(t, "1024", last(env, "MALLOC_TRIM_THRESHOLD_"))
	require.Equal(t, "1", last(env, "OPENBLAS_NUM_THREADS"))
}
