package local

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The pre-training corpus holds the drills and the broad corpus, every
// record renders and tokenizes, and no record offers an excluded tool.
func TestBaseCorpusExcludesTools(t *testing.T) {
	t.Parallel()
	r := BaseRecipe{Version: 1, Drills: 300, Corpus: 300, Steps: 1, BatchSize: 1, LearningRate: 1, Seed: 3}
	var all bytes.Buffer
	require.NoError(t, baseCorpus(&all, r, DefaultTokenizer()))
	lines := strings.Split(strings.TrimSpace(all.String()), "\n")
	require.Len(t, lines, 600)
	var first Record
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
	name := first.Tools[0].Function.Name
	with := 0
	for _, l := range lines {
		if strings.Contains(l, `"name":"`+name+`"`) {
			with++
		}
	}
	require.Positive(t, with)

	r.Exclude = []string{name}
	var kept bytes.Buffer
	require.NoError(t, baseCorpus(&kept, r, DefaultTokenizer()))
	lines = strings.Split(strings.TrimSpace(kept.String()), "\n")
	require.Len(t, lines, 600-with, "exactly the records offering %s are left out", name)
	tok := DefaultTokenizer()
	for i, l := range lines {
		require.NotContains(t, l, `"name":"`+name+`"`, "line %d", i+1)
		ids, n, err := TokenizeRecord([]byte(l), tok)
		require.NoError(t, err, "line %d", i+1)
		require.Greater(t, len(ids), n)
	}
}

// A base is built by the real trainer, named by its key, described beside
// it, and the same recipe gives the same bytes twice.
func TestBuildBaseIsDeterministic(t *testing.T) {
	requireInstalled(t)
	t.Parallel()
	ctx := context.Background()
	p := newE2EPlatform(t, t.TempDir(), Options{})
	size, err := SizeFor("local/tiny-xs")
	require.NoError(t, err)
	r := BaseRecipe{Version: 1, Drills: 120, Corpus: 24, Steps: 6, BatchSize: 8, LearningRate: 3e-3, Seed: 2}
	var steps []int
	a, err := p.BuildBase(ctx, size, r, filepath.Join(t.TempDir(), "a"), func(bp BaseProgress) {
		if bp.Phase == "train" {
			steps = append(steps, bp.Step)
		}
	})
	require.NoError(t, err)
	require.Equal(t, []int{1, 2, 3, 4, 5, 6}, steps)
	require.Equal(t, p.BaseFileName(size, r), filepath.Base(a.Path))
	require.Equal(t, 6, a.Steps)
	require.Equal(t, size.Params(p.tokenizer().VocabSize()), a.Params)
	info, err := BaseInfoOf(a.Path)
	require.NoError(t, err)
	require.Equal(t, a.Key, info.Key)

	b, err := p.BuildBase(ctx, size, r, filepath.Join(t.TempDir(), "b"), nil)
	require.NoError(t, err)
	ab, err := os.ReadFile(a.Path)
	require.NoError(t, err)
	bb, err := os.ReadFile(b.Path)
	require.NoError(t, err)
	require.True(t, bytes.Equal(ab, bb), "same recipe, same weights")

	entries, err := os.ReadDir(filepath.Dir(a.Path))
	require.NoError(t, err)
	require.Len(t, entries, 2, "the base and its description; no build directory left")
}

func TestSweepStaleBuilds(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dead := filepath.Join(dir, fmt.Sprintf("%s%d-abc", buildDirPrefix, 1<<30))
	mine := filepath.Join(dir, fmt.Sprintf("%s%d-def", buildDirPrefix, os.Getpid()))
	old := filepath.Join(dir, buildDirPrefix+"123abc") // the older naming, without a pid
	other := filepath.Join(dir, "tiny-s-base-x.gguf")
	for _, d := range []string{dead, mine, old} {
		require.NoError(t, os.MkdirAll(filepath.Join(d, "sub"), 0o755))
	}
	require.NoError(t, os.WriteFile(other, []byte("x"), 0o644))
	sweepStaleBuilds(dir, slog.New(slog.DiscardHandler))
	require.NoDirExists(t, dead, "a dead builder's directory goes")
	require.NoDirExists(t, old)
	require.DirExists(t, mine, "a live builder's directory stays")
	require.FileExists(t, other)
}
