package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDevCorpus runs `flywheel dev corpus`: the file has N lines, the same
// seed writes the same bytes, and a bad --n is refused naming the flag.
func TestDevCorpus(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name string, args ...string) ([]byte, error) {
		var stdout, stderr bytes.Buffer
		root := newRoot(&stdout, &stderr, func(string) string { return "" })
		root.SetArgs(append([]string{"dev", "corpus", "--out", filepath.Join(dir, name)}, args...))
		if err := root.ExecuteContext(t.Context()); err != nil {
			return nil, err
		}
		return os.ReadFile(filepath.Join(dir, name))
	}
	a, err := write("a.jsonl", "--n", "300", "--seed", "4")
	require.NoError(t, err)
	require.Equal(t, 300, bytes.Count(a, []byte("\n")))
	b, err := write("b.jsonl", "--n", "300", "--seed", "4")
	require.NoError(t, err)
	require.Equal(t, a, b)
	c, err := write("c.jsonl", "--n", "300", "--seed", "5")
	require.NoError(t, err)
	require.NotEqual(t, a, c)
	_, err = write("d.jsonl", "--n", "0")
	require.ErrorContains(t, err, "--n: want a positive number")
}
