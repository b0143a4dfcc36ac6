package dataset

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/ingest"
)

// RecordHash is the SHA-256 of a stored record's canonical content: its
// request and response with object keys sorted and insignificant white
// space removed, separated by a NUL byte. It is the record hash of a
// manifest.
func RecordHash(rec flywheel.LogRecord) string {
	h := sha256.New()
	h.Write(ingest.Canonical(rec.Request))
	h.Write([]byte{0})
	h.Write(ingest.Canonical(rec.Response))
	return hex.EncodeToString(h.Sum(nil))
}

// manifestDatasets lists the records of the built datasets: eval, train,
// val, and the ICL examples (picks holds, per evaluation record, indexes
// into train).
func manifestDatasets(names map[string]string, eval, train, val []*Record, picks [][]int) []flywheel.ManifestDataset {
	list := func(kind string, recs []*Record) flywheel.ManifestDataset {
		d := flywheel.ManifestDataset{Kind: kind, Name: names[kind], RecordIDs: make([]int64, len(recs)), RecordHashes: make([]string, len(recs))}
		for i, r := range recs {
			d.RecordIDs[i], d.RecordHashes[i] = r.Log.ID, r.hash
		}
		d.Hash = flywheel.DatasetHash(d.RecordHashes, nil, nil)
		return d
	}
	icl := flywheel.ManifestDataset{Kind: flywheel.ManifestICL, Name: names[flywheel.ManifestICL],
		RecordIDs: []int64{}, RecordHashes: []string{}, Examples: make([][]int64, len(eval))}
	hashOf := map[int64]string{}
	shown := map[int]bool{}
	for i, ps := range picks {
		icl.Examples[i] = make([]int64, len(ps))
		for j, k := range ps {
			r := train[k]
			icl.Examples[i][j] = r.Log.ID
			hashOf[r.Log.ID] = r.hash
			if !shown[k] {
				shown[k] = true
				icl.RecordIDs = append(icl.RecordIDs, r.Log.ID)
				icl.RecordHashes = append(icl.RecordHashes, r.hash)
			}
		}
	}
	for i := len(picks); i < len(eval); i++ {
		icl.Examples[i] = []int64{}
	}
	icl.Hash = flywheel.DatasetHash(icl.RecordHashes, icl.Examples, hashOf)
	return []flywheel.ManifestDataset{
		list(flywheel.ManifestEval, eval),
		list(flywheel.ManifestTrain, train),
		list(flywheel.ManifestVal, val),
		icl,
	}
}

// replayRecords reads the records a manifest pins and returns the eval,
// train and val sets in the manifest's order, and per evaluation record
// the indexes into train of its few-shot examples. Records that are gone
// (or belong to another workload or client) make a
// flywheel.MissingRecordsError; records whose content changed since (a
// later redaction) are an error naming them.
func (b *Builder) replayRecords(ctx context.Context, req flywheel.BuildRequest, stats *flywheel.DataStats, logger *slog.Logger) (
	eval, train, val []*Record, picks [][]int, err error,
) {
	rp := req.Replay
	lookup, ok := b.Source.(flywheel.RecordLookup)
	if !ok {
		return nil, nil, nil, nil, flywheel.Permanent(flywheel.Errorf(flywheel.EPRECONDITION,
			"the record source cannot read records by id, so a manifest's datasets cannot be built again"))
	}
	var ids []int64
	want := map[int64]string{}
	for _, d := range rp.Datasets {
		for i, id := range d.RecordIDs {
			if _, ok := want[id]; !ok {
				ids = append(ids, id)
			}
			if i < len(d.RecordHashes) {
				want[id] = d.RecordHashes[i]
			}
		}
	}
	recs, err := lookup.RecordsByID(ctx, ids)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("read the manifest's records: %w", err)
	}
	byID := make(map[int64]*Record, len(recs))
	var changed []int64
	isChanged := map[int64]bool{}
	for _, rec := range recs {
		if rec.WorkloadID != req.WorkloadID || rec.ClientID != req.ClientID {
			continue // another tenant's record is as absent as a deleted one
		}
		h := RecordHash(rec)
		if h != want[rec.ID] {
			changed = append(changed, rec.ID)
			isChanged[rec.ID] = true
			continue
		}
		r, ferr := Validate(rec)
		if ferr != nil {
			return nil, nil, nil, nil, flywheel.Permanent(fmt.Errorf("record %d of the manifest is no longer valid: %w", rec.ID, ferr))
		}
		if req.Split.ParseFunctionArguments {
			if err := r.parseArguments(); err != nil {
				return nil, nil, nil, nil, flywheel.Permanent(fmt.Errorf("record %d of the manifest: %w", rec.ID, err))
			}
		}
		r.hash = h
		byID[rec.ID] = r
	}
	stats.Total = len(ids)
	var missing []int64
	for _, id := range ids {
		if _, ok := byID[id]; !ok && !isChanged[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return nil, nil, nil, nil, flywheel.Permanent(&flywheel.MissingRecordsError{IDs: missing})
	}
	if len(changed) > 0 {
		return nil, nil, nil, nil, flywheel.Permanent(fmt.Errorf("%d records of the manifest changed since it was written (redacted since?): ids %s",
			len(changed), idList(changed, 10)))
	}
	get := func(kind string) []*Record {
		d := manifestDataset(rp.Datasets, kind)
		if d == nil {
			return nil
		}
		out := make([]*Record, len(d.RecordIDs))
		for i, id := range d.RecordIDs {
			out[i] = byID[id]
		}
		return out
	}
	eval, train, val = get(flywheel.ManifestEval), get(flywheel.ManifestTrain), get(flywheel.ManifestVal)
	if d := manifestDataset(rp.Datasets, flywheel.ManifestICL); d != nil && len(d.Examples) > 0 {
		at := make(map[int64]int, len(train))
		for i, r := range train {
			at[r.Log.ID] = i
		}
		if len(d.Examples) != len(eval) {
			return nil, nil, nil, nil, flywheel.Permanent(flywheel.Errorf(flywheel.EINVALID,
				"the manifest's icl examples list %d evaluation records, its eval dataset has %d", len(d.Examples), len(eval)))
		}
		picks = make([][]int, len(d.Examples))
		for i, ex := range d.Examples {
			picks[i] = make([]int, len(ex))
			for j, id := range ex {
				k, ok := at[id]
				if !ok {
					return nil, nil, nil, nil, flywheel.Permanent(flywheel.Errorf(flywheel.EINVALID,
						"the manifest's icl examples name record %d, which is not in its train dataset", id))
				}
				picks[i][j] = k
			}
		}
	}
	if _, _, leak := guardLeakage(eval, train, val); leak.Removed() > 0 {
		return nil, nil, nil, nil, flywheel.Permanent(flywheel.Errorf(flywheel.EINVALID,
			"the manifest's train or val dataset repeats evaluation records (%d: ids %s): the leakage guard refuses it", leak.Removed(), idList(leak.RecordIDs, 10)))
	}
	logger.InfoContext(ctx, "Datasets pinned to a manifest", slog.String("manifest_run_id", rp.RunID), slog.Int("records", len(ids)))
	return eval, train, val, picks, nil
}

func manifestDataset(ds []flywheel.ManifestDataset, kind string) *flywheel.ManifestDataset {
	for i := range ds {
		if ds[i].Kind == kind {
			return &ds[i]
		}
	}
	return nil
}

// idList writes up to show ids and how many more there are.
func idList(ids []int64, show int) string {
	parts := make([]string, 0, min(len(ids), show))
	for _, id := range ids[:min(len(ids), show)] {
		parts = append(parts, fmt.Sprint(id))
	}
	if len(ids) > show {
		return fmt.Sprintf("%s and %d more", strings.Join(parts, ", "), len(ids)-show)
	}
	return strings.Join(parts, ", ")
}
