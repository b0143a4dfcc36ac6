package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// SetRunManifest stores a run's manifest, replacing an earlier attempt's,
// with one row per candidate model. Digests a model row already holds are
// kept where the manifest has none.
func (q *Queries) SetRunManifest(ctx context.Context, m *flywheel.Manifest) error {
	doc := *m
	doc.Models = nil // kept in run_manifest_models, one row each
	text, err := jsonText(doc)
	if err != nil {
		return err
	}
	_, err = q.exec(ctx, `INSERT INTO run_manifests (run_id, manifest, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (run_id) DO UPDATE SET manifest = excluded.manifest, updated_at = excluded.updated_at`, m.RunID, text, q.Now())
	if err != nil {
		return fmt.Errorf("store manifest of run %s: %w", m.RunID, err)
	}
	for i, model := range m.Models {
		if err := q.SetManifestModel(ctx, m.RunID, i, model); err != nil {
			return err
		}
	}
	return nil
}

// SetManifestModel records what is known of the model of a run's
// candidate at position: fields left empty keep their stored value.
func (q *Queries) SetManifestModel(ctx context.Context, runID string, position int, m flywheel.ManifestModel) error {
	_, err := q.exec(ctx, `INSERT INTO run_manifest_models (run_id, position, name, digest, adapter_id, adapter_digest) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (run_id, position) DO UPDATE SET
			name = CASE WHEN excluded.name <> '' THEN excluded.name ELSE run_manifest_models.name END,
			digest = CASE WHEN excluded.digest <> '' THEN excluded.digest ELSE run_manifest_models.digest END,
			adapter_id = CASE WHEN excluded.adapter_id <> '' THEN excluded.adapter_id ELSE run_manifest_models.adapter_id END,
			adapter_digest = CASE WHEN excluded.adapter_digest <> '' THEN excluded.adapter_digest ELSE run_manifest_models.adapter_digest END`,
		runID, position, m.Name, m.Digest, m.AdapterID, m.AdapterDigest)
	if err != nil {
		return fmt.Errorf("store manifest model %d of run %s: %w", position, runID, err)
	}
	return nil
}

// GetRunManifest returns a run's manifest with its models; the error wraps
// flywheel.ErrNotFound when the run has none (yet).
func (q *Queries) GetRunManifest(ctx context.Context, runID string) (*flywheel.Manifest, error) {
	var text string
	if err := q.queryRow(ctx, `SELECT manifest FROM run_manifests WHERE run_id = ?`, runID).Scan(&text); err != nil {
		return nil, notFound(err, "manifest of run "+runID)
	}
	m := &flywheel.Manifest{}
	if err := fromJSON(sql.NullString{String: text, Valid: true}, m); err != nil {
		return nil, err
	}
	rows, err := q.query(ctx, `SELECT name, digest, adapter_id, adapter_digest FROM run_manifest_models WHERE run_id = ? ORDER BY position`, runID)
	if err != nil {
		return nil, fmt.Errorf("read manifest models of run %s: %w", runID, err)
	}
	defer rows.Close()
	m.Models = []flywheel.ManifestModel{}
	for rows.Next() {
		var mm flywheel.ManifestModel
		if err := rows.Scan(&mm.Name, &mm.Digest, &mm.AdapterID, &mm.AdapterDigest); err != nil {
			return nil, fmt.Errorf("scan manifest model: %w", err)
		}
		m.Models = append(m.Models, mm)
	}
	return m, rows.Err()
}

// recordsByIDChunk bounds the ids of one query (SQLite allows 32,766
// parameters, Postgres 65,535).
const recordsByIDChunk = 1000

// RecordsByID returns the stored records among ids, in id order; ids that
// are gone are absent. It implements flywheel.RecordLookup.
func (q *Queries) RecordsByID(ctx context.Context, ids []int64) ([]flywheel.LogRecord, error) {
	var out []flywheel.LogRecord
	for start := 0; start < len(ids); start += recordsByIDChunk {
		chunk := ids[start:min(start+recordsByIDChunk, len(ids))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		recs, err := q.scanLogs(ctx, `SELECT id, workload_id, client_id, ts, request, response FROM log_records WHERE id IN (`+
			placeholders(len(chunk))+`) ORDER BY id`, args...)
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
	}
	return out, nil
}

var _ flywheel.RecordLookup = (*Queries)(nil)
