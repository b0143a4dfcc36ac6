package store

import (
	"context"
	"fmt"
)

// SetIdempotencyHash records, with the run created under an
// Idempotency-Key, the hash of the request that created it.
func (q *Queries) SetIdempotencyHash(ctx context.Context, runID, hash string) error {
	if _, err := q.exec(ctx, `UPDATE flywheel_runs SET idempotency_hash = ? WHERE id = ?`, hash, runID); err != nil {
		return fmt.Errorf("record idempotency hash: %w", err)
	}
	return nil
}

// IdempotencyHash returns the hash of the request that created the run with
// the idempotency key ("" for a run created before hashes were kept). The
// error wraps flywheel.ErrNotFound when no run has the key.
func (q *Queries) IdempotencyHash(ctx context.Context, key string) (string, error) {
	var hash *string
	err := q.queryRow(ctx, `SELECT idempotency_hash FROM flywheel_runs WHERE idempotency_key = ?`, key).Scan(&hash)
	if err != nil {
		return "", notFound(err, "run with idempotency key")
	}
	if hash == nil {
		return "", nil
	}
	return *hash, nil
}
