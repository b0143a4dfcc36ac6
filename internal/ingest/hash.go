package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// Hash returns the content hash of a record: the hex SHA-256 of its
// workload id, client id, and canonical request and response (keys sorted,
// no insignificant whitespace, numbers as written). The timestamp is left
// out, so the same exchange loaded twice (for example from a conversation
// file without timestamps) hashes the same. Stores use it to skip
// duplicates.
func Hash(rec flywheel.LogRecord) string {
	h := sha256.New()
	writeField(h, []byte(rec.WorkloadID))
	writeField(h, []byte(rec.ClientID))
	writeField(h, Canonical(rec.Request))
	writeField(h, Canonical(rec.Response))
	return hex.EncodeToString(h.Sum(nil))
}

// writeField writes a length-prefixed field so that field boundaries cannot
// be forged by moving bytes from one field into the next.
func writeField(h hash.Hash, b []byte) {
	var n [8]byte
	l := uint64(len(b))
	for i := range n {
		n[i] = byte(l >> (8 * i))
	}
	h.Write(n[:])
	h.Write(b)
}
