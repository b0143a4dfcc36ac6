package dataset

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// RecordsByID makes memSource a flywheel.RecordLookup, as the store is.
func (m *memSource) RecordsByID(_ context.Context, ids []int64) ([]flywheel.LogRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	want := map[int64]bool{}
	for _, id := range ids {
		want[id] = true
	}
	var out []flywheel.LogRecord
	for _, r := range m.recs {
		if want[r.ID] {
			out = append(out, r)
		}
	}
	return out, nil
}

func (m *memSource) remove(ids ...int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	drop := map[int64]bool{}
	for _, id := range ids {
		drop[id] = true
	}
	kept := m.recs[:0]
	for _, r := range m.recs {
		if !drop[r.ID] {
			kept = append(kept, r)
		}
	}
	m.recs = kept
}

func manifestWorkload() []flywheel.LogRecord {
	var recs []flywheel.LogRecord
	for i := range 60 {
		recs = append(recs, toolRec(i+1, fmt.Sprintf("question %d about item %d", i, i*7), fmt.Sprintf("tool%d", i%5), fmt.Sprintf(`{"x":%d}`, i), 2))
	}
	return recs
}

// replayOf is the pin a run made from res's manifest carries.
func replayOf(res flywheel.BuildResult) *flywheel.Replay {
	return &flywheel.Replay{RunID: "run1", Seed: res.Seed, WorkloadType: res.WorkloadType, Datasets: res.Manifest, Leakage: res.Stats.Leakage}
}

func TestBuildManifest(t *testing.T) {
	t.Parallel()
	b := setup(t, manifestWorkload()...)
	res, err := b.builder.Build(t.Context(), b.request(splitCfg(10, 0.2, 10, ptr(40)), iclCfg(flywheel.SelectionSemantic)))
	require.NoError(t, err)
	require.Equal(t, int64(42), res.Seed)
	require.Len(t, res.Manifest, 4)
	hashByID := map[int64]string{}
	for _, r := range manifestWorkload() {
		hashByID[r.ID] = RecordHash(r)
	}
	counts := map[string]int{}
	for _, d := range res.Manifest {
		require.Len(t, d.RecordHashes, len(d.RecordIDs), d.Kind)
		for i, id := range d.RecordIDs {
			require.Equal(t, hashByID[id], d.RecordHashes[i], "%s record %d", d.Kind, id)
		}
		require.Len(t, d.Hash, 64)
		counts[d.Kind] = len(d.RecordIDs)
	}
	require.Equal(t, map[string]int{"eval": 10, "train": res.Stats.Train, "val": res.Stats.Val, "icl": counts["icl"]}, counts)
	require.Equal(t, 40, res.Stats.Eval+res.Stats.Train+res.Stats.Val)
	icl := manifestDataset(res.Manifest, flywheel.ManifestICL)
	require.Len(t, icl.Examples, 10)
	require.Positive(t, counts["icl"])
	require.Equal(t, res.Datasets[0].Name, manifestDataset(res.Manifest, flywheel.ManifestEval).Name)

	// The clock's seed is reported when none is configured.
	cfg := splitCfg(10, 0.2, 10, ptr(40))
	cfg.RandomSeed = nil
	res2, err := b.builder.Build(t.Context(), b.request(cfg, iclCfg(flywheel.SelectionUniform)))
	require.NoError(t, err)
	require.Equal(t, int64(1_800_000_000_000_000_000), res2.Seed)
}

// TestBuildReplay builds a run's datasets again from its manifest: the
// hashes and the files are identical, whatever the new run's seed and
// whatever records arrived since.
func TestBuildReplay(t *testing.T) {
	t.Parallel()
	for _, selection := range []string{flywheel.SelectionUniform, flywheel.SelectionSemantic} {
		t.Run(selection, func(t *testing.T) {
			t.Parallel()
			b := setup(t, manifestWorkload()...)
			req := b.request(splitCfg(10, 0.2, 10, ptr(40)), iclCfg(selection))
			first, err := b.builder.Build(t.Context(), req)
			require.NoError(t, err)

			// New traffic arrives; the replay must not see it.
			_, _, err = b.src.InsertLogs(t.Context(), []flywheel.LogRecord{toolRec(500, "a newer question", "tool1", `{"x":500}`, 2)})
			require.NoError(t, err)
			again := req
			again.Dir = t.TempDir()
			again.Split.RandomSeed = ptr(int64(7))
			again.Replay = replayOf(first)
			second, err := b.builder.Build(t.Context(), again)
			require.NoError(t, err)

			require.Equal(t, first.Manifest, second.Manifest)
			require.Equal(t, first.Seed, second.Seed)
			require.Equal(t, first.WorkloadType, second.WorkloadType)
			require.Equal(t, first.Stats.Eval, second.Stats.Eval)
			require.Equal(t, first.Stats.Train, second.Stats.Train)
			require.Equal(t, first.Stats.Val, second.Stats.Val)
			for i, ds := range first.Datasets {
				for _, f := range []string{EvalFile, TrainFile, ValFile} {
					a, errA := os.ReadFile(filepath.Join(ds.Path, f))
					b, errB := os.ReadFile(filepath.Join(second.Datasets[i].Path, f))
					require.Equal(t, errA == nil, errB == nil, f)
					require.Equal(t, string(a), string(b), "%s/%s", ds.Name, f)
				}
			}
		})
	}
}

func TestBuildReplayFails(t *testing.T) {
	t.Parallel()
	b := setup(t, manifestWorkload()...)
	req := b.request(splitCfg(10, 0.2, 10, ptr(40)), iclCfg(flywheel.SelectionUniform))
	first, err := b.builder.Build(t.Context(), req)
	require.NoError(t, err)
	train := manifestDataset(first.Manifest, flywheel.ManifestTrain).RecordIDs
	eval := manifestDataset(first.Manifest, flywheel.ManifestEval).RecordIDs

	t.Run("MissingRecords", func(t *testing.T) {
		t.Parallel()
		c := setup(t, manifestWorkload()...)
		gone := append([]int64{eval[0]}, train[:11]...)
		c.src.remove(gone...)
		again := req
		again.Dir, again.Replay = t.TempDir(), replayOf(first)
		_, err := c.builder.Build(t.Context(), again)
		require.ErrorIs(t, err, flywheel.ErrPermanent)
		var missing *flywheel.MissingRecordsError
		require.ErrorAs(t, err, &missing)
		require.ElementsMatch(t, gone, missing.IDs)
		require.Contains(t, err.Error(), "12 records of the manifest are no longer stored")
		require.Contains(t, err.Error(), fmt.Sprint(eval[0]))
		require.Contains(t, err.Error(), "and 2 more")
	})

	t.Run("ChangedRecord", func(t *testing.T) {
		t.Parallel()
		recs := manifestWorkload()
		for i := range recs {
			if recs[i].ID == train[0] {
				recs[i] = toolRec(int(train[0]), "<EMAIL_1> redacted since", "tool0", `{"x":0}`, 2)
			}
		}
		c := setup(t, recs...)
		again := req
		again.Dir, again.Replay = t.TempDir(), replayOf(first)
		_, err := c.builder.Build(t.Context(), again)
		require.ErrorIs(t, err, flywheel.ErrPermanent)
		require.Contains(t, err.Error(), fmt.Sprintf("1 records of the manifest changed since it was written (redacted since?): ids %d", train[0]))
	})

	t.Run("OtherClient", func(t *testing.T) {
		t.Parallel()
		c := setup(t, manifestWorkload()...)
		again := req
		again.Dir, again.Replay, again.ClientID = t.TempDir(), replayOf(first), "another"
		_, err := c.builder.Build(t.Context(), again)
		var missing *flywheel.MissingRecordsError
		require.ErrorAs(t, err, &missing, "another client's records are as absent as deleted ones")
	})

	t.Run("NoLookup", func(t *testing.T) {
		t.Parallel()
		c := &Builder{Source: plainSource{}}
		again := req
		again.Dir, again.Replay = t.TempDir(), replayOf(first)
		_, err := c.Build(t.Context(), again)
		require.ErrorIs(t, err, flywheel.ErrPermanent)
		require.Contains(t, err.Error(), "cannot read records by id")
	})

	t.Run("LeakyManifest", func(t *testing.T) {
		t.Parallel()
		c := setup(t, manifestWorkload()...)
		leaky := replayOf(first)
		leaky.Datasets = append([]flywheel.ManifestDataset(nil), leaky.Datasets...)
		tr := &leaky.Datasets[1]
		e := manifestDataset(first.Manifest, flywheel.ManifestEval)
		tr.RecordIDs = append([]int64{e.RecordIDs[0]}, tr.RecordIDs...)
		tr.RecordHashes = append([]string{e.RecordHashes[0]}, tr.RecordHashes...)
		again := req
		again.Dir, again.Replay = t.TempDir(), leaky
		_, err := c.builder.Build(t.Context(), again)
		require.ErrorIs(t, err, flywheel.ErrPermanent)
		require.Contains(t, err.Error(), "the leakage guard refuses it")
	})
}

// plainSource is a RecordSource that cannot look records up by id
// (Elasticsearch).
type plainSource struct{}

func (plainSource) NewestRecords(context.Context, string, string, int) ([]flywheel.LogRecord, error) {
	return nil, errors.New("not used")
}
