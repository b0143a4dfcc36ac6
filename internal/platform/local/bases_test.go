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
	"time"

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
	requireSameBytes(t, a.Path, b.Path, "same recipe, same weights")

	entries, err := os.ReadDir(filepath.Dir(a.Path))
	require.NoError(t, err)
	require.Len(t, entries, 2, "the base and its description; no build directory left")
}

func TestSweepStaleBuilds(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dead := filepath.Join(dir, fmt.Sprintf("%s%d-abc", buildDirPrefix, 1<<30))
	mine := filepath.Join(dir, fmt.Sprintf("%s%d-def", buildDirPrefix, os.Getpid()))
	// The older naming has no pid: a recent one may belong to a running
	// older version's build, a day-old one is stale.
	recent := filepath.Join(dir, buildDirPrefix+"2352476556")
	old := filepath.Join(dir, buildDirPrefix+"123abc")
	other := filepath.Join(dir, "tiny-s-base-x.gguf")
	for _, d := range []string{dead, mine, recent, old} {
		require.NoError(t, os.MkdirAll(filepath.Join(d, "sub"), 0o755))
	}
	dayAgo := time.Now().Add(-25 * time.Hour)
	require.NoError(t, os.Chtimes(old, dayAgo, dayAgo))
	require.NoError(t, os.WriteFile(other, []byte("x"), 0o644))
	sweepStaleBuilds(dir, slog.New(slog.DiscardHandler))
	require.NoDirExists(t, dead, "a dead builder's directory goes")
	require.NoDirExists(t, old)
	require.DirExists(t, recent)
	require.DirExists(t, mine, "a live builder's directory stays")
	require.FileExists(t, other)
}

// The few-shot phase's corpus renders its examples as icl-eval does, every
// record tokenizes, and no record or example names an excluded tool.
func TestFewShotCorpus(t *testing.T) {
	t.Parallel()
	tok := DefaultTokenizer()
	r := BaseRecipe{Version: 2, Drills: 1, Corpus: 1, Steps: 1, BatchSize: 1, LearningRate: 1, Seed: 3,
		FewShot: &FewShotPhase{Drills: 200, MaxExamples: 3, Plain: 50, Corpus: 50, Steps: 1, MaxLen: 1024, LearningRate: 1}}
	var all bytes.Buffer
	require.NoError(t, fewShotCorpus(&all, r, tok))
	lines := strings.Split(strings.TrimSpace(all.String()), "\n")
	require.Len(t, lines, 300)
	fewShot := 0
	for i, l := range lines {
		if strings.Contains(l, "For example, if the conversation looks like this:") {
			fewShot++
		}
		ids, n, err := TokenizeRecord([]byte(l), tok)
		require.NoError(t, err, "line %d", i+1)
		require.Greater(t, len(ids), n)
	}
	require.Equal(t, 200, fewShot)

	var first Record
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
	r.FewShot.Drills = 40
	name := first.Tools[0].Function.Name
	r.Exclude = []string{name}
	var kept bytes.Buffer
	require.NoError(t, fewShotCorpus(&kept, r, tok))
	require.NotContains(t, kept.String(), `"name":"`+name+`"`)
	require.NotContains(t, kept.String(), name+`\"`)
}

// The default recipe's first phase is the recipe v2 bases were built with,
// so a machine holding one builds only the few-shot phase on top of it.
func TestDefaultRecipeFirstPhaseKey(t *testing.T) {
	t.Parallel()
	tok := DefaultTokenizer()
	for _, name := range []string{"local/tiny-s", "local/tiny-m"} {
		size, err := SizeFor(name)
		require.NoError(t, err)
		r := DefaultBaseRecipe(size)
		require.NotNil(t, r.FewShot)
		require.NoError(t, r.validate())
		v2 := BaseRecipe{Version: 2, Drills: 33000, Corpus: 6000, Exclude: r.Exclude, Steps: 2400, BatchSize: 16,
			LearningRate: r.LearningRate, Seed: 1}
		require.Equal(t, BaseKey(size, v2, 0, tok), BaseKey(size, r.first(), 0, tok), name)
		require.NotEqual(t, BaseKey(size, r, 0, tok), BaseKey(size, r.first(), 0, tok), name)
	}
	bad := BaseRecipe{Steps: 1, BatchSize: 1, Drills: 1, LearningRate: 1, FewShot: &FewShotPhase{Drills: 1, MaxExamples: 1, Steps: 1, LearningRate: 1}}
	require.ErrorContains(t, bad.validate(), "longest 0 tokens")
}

// A two-phase base builds its first phase (kept as a base of its own),
// then continues it, reporting the steps of both phases as one count.
func TestBuildBaseFewShotPhase(t *testing.T) {
	requireInstalled(t)
	t.Parallel()
	ctx := context.Background()
	p := newE2EPlatform(t, t.TempDir(), Options{})
	size, err := SizeFor("local/tiny-xs")
	require.NoError(t, err)
	r := BaseRecipe{Version: 1, Drills: 60, Corpus: 12, Steps: 3, BatchSize: 8, LearningRate: 3e-3, Seed: 2,
		FewShot: &FewShotPhase{Drills: 30, MaxExamples: 2, Plain: 10, Corpus: 4, Steps: 2, MaxLen: 1024, LearningRate: 1e-3}}
	dir := t.TempDir()
	var steps []int
	bi, err := p.BuildBase(ctx, size, r, dir, func(bp BaseProgress) {
		if bp.Phase == "train" {
			require.Equal(t, 5, bp.Total)
			steps = append(steps, bp.Step)
		}
	})
	require.NoError(t, err)
	require.Equal(t, []int{1, 2, 3, 4, 5}, steps)
	require.Equal(t, p.BaseFileName(size, r), filepath.Base(bi.Path))
	require.Equal(t, filepath.Join(dir, p.BaseFileName(size, r.first())), bi.From)
	require.FileExists(t, bi.From, "the first phase is a base of its own")

	// Built again with the first phase present: only the second runs.
	steps = nil
	again, err := p.BuildBase(ctx, size, r, dir, func(bp BaseProgress) {
		if bp.Phase == "train" {
			steps = append(steps, bp.Step)
		}
	})
	require.NoError(t, err)
	require.Equal(t, []int{4, 5}, steps)
	require.Equal(t, bi.From, again.From)
	requireSameBytes(t, bi.Path, again.Path, "same phases, same weights")
}

// requireSameBytes requires the files at a and b to hold the same bytes.
func requireSameBytes(t *testing.T, a, b, msg string) {
	t.Helper()
	ab, err := os.ReadFile(a)
	require.NoError(t, err)
	bb, err := os.ReadFile(b)
	require.NoError(t, err)
	require.True(t, bytes.Equal(ab, bb), msg)
}
