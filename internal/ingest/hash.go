package ingest

import (
	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// Hash returns the content hash of a record as the stores compute it
// (flywheel.LogRecord.Hash: SHA-256 over the workload id, the client id,
// the request and the response; the timestamp is left out) after putting
// the request and response in canonical form (Canonical). Records read by
// this package are already canonical, so for them Hash equals rec.Hash();
// for records from elsewhere, Hash makes key order and spacing irrelevant.
func Hash(rec flywheel.LogRecord) string {
	rec.Request = Canonical(rec.Request)
	rec.Response = Canonical(rec.Response)
	return rec.Hash()
}
