package store_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

func TestRunManifests(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			t.Parallel()
			s := storetest.Open(t, d)
			ctx := context.Background()
			run := newRun(t, s.Queries, time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC), "wl-manifest")

			_, err := s.GetRunManifest(ctx, run.ID)
			require.ErrorIs(t, err, flywheel.ErrNotFound)

			seed := int64(7)
			m := &flywheel.Manifest{
				Version: flywheel.ManifestVersion, RunID: run.ID, WorkloadID: "wl-manifest", ClientID: "c1",
				CreatedAt: time.Date(2026, 3, 4, 5, 6, 8, 0, time.UTC), WorkloadType: flywheel.WorkloadToolCalling, Seed: 99,
				Config: flywheel.RunSpec{Namespace: "dfwbp", DataSplit: flywheel.DataSplitConfig{EvalSize: 3, RandomSeed: &seed},
					Candidates: []flywheel.NIMConfig{{ModelName: "a"}, {ModelName: "b"}}},
				Datasets: []flywheel.ManifestDataset{
					{Kind: flywheel.ManifestEval, Name: "e", RecordIDs: []int64{3, 1}, RecordHashes: []string{"h3", "h1"}, Hash: "x"},
					{Kind: flywheel.ManifestICL, RecordIDs: []int64{2}, RecordHashes: []string{"h2"}, Examples: [][]int64{{2}, {}}, Hash: "y"},
				},
				Leakage:  &flywheel.LeakageStats{Near: 1, Train: 1, RecordIDs: []int64{9}},
				Models:   []flywheel.ManifestModel{{Name: "a", Digest: "sha256:a"}, {Name: "b"}},
				Versions: map[string]string{"flywheel": "1"},
			}
			require.NoError(t, s.SetRunManifest(ctx, m))
			got, err := s.GetRunManifest(ctx, run.ID)
			require.NoError(t, err)
			require.Equal(t, m, got)

			// Later stages add digests; a retried create_datasets keeps them.
			require.NoError(t, s.SetManifestModel(ctx, run.ID, 1, flywheel.ManifestModel{Digest: "sha256:b"}))
			require.NoError(t, s.SetManifestModel(ctx, run.ID, 0, flywheel.ManifestModel{AdapterID: "custom-a", AdapterDigest: "sha256:ca"}))
			require.NoError(t, s.SetRunManifest(ctx, m))
			got, err = s.GetRunManifest(ctx, run.ID)
			require.NoError(t, err)
			require.Equal(t, []flywheel.ManifestModel{
				{Name: "a", Digest: "sha256:a", AdapterID: "custom-a", AdapterDigest: "sha256:ca"},
				{Name: "b", Digest: "sha256:b"},
			}, got.Models)

			// Deleting the run deletes its manifest.
			require.NoError(t, s.DeleteRun(ctx, run.ID))
			_, err = s.GetRunManifest(ctx, run.ID)
			require.ErrorIs(t, err, flywheel.ErrNotFound)
		})
	}
}

func TestRecordsByID(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects() {
		t.Run(storetest.Name(d), func(t *testing.T) {
			t.Parallel()
			s := storetest.Open(t, d)
			ctx := context.Background()
			var recs []flywheel.LogRecord
			for i := range 1500 {
				req, _ := json.Marshal(map[string]any{"messages": []any{map[string]any{"role": "user", "content": i}}})
				recs = append(recs, flywheel.LogRecord{WorkloadID: "w", ClientID: "c", Timestamp: time.Unix(1_700_000_000+int64(i), 0).UTC(),
					Request: req, Response: json.RawMessage(`{"choices":[]}`)})
			}
			_, _, err := s.InsertLogs(ctx, recs)
			require.NoError(t, err)
			all, err := s.NewestRecords(ctx, "w", "c", 0)
			require.NoError(t, err)
			require.Len(t, all, 1500)
			ids := []int64{-5} // gone
			for _, r := range all {
				ids = append(ids, r.ID)
			}
			got, err := s.RecordsByID(ctx, ids)
			require.NoError(t, err)
			require.Len(t, got, 1500, "every stored id, over more than one query")
			byID := map[int64]flywheel.LogRecord{}
			for _, r := range got {
				byID[r.ID] = r
			}
			for _, r := range all {
				require.Equal(t, r, byID[r.ID])
			}
		})
	}
}
