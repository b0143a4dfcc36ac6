package flywheel

import (
	"fmt"
	"strings"
)

// RecordError says why one record of a batch cannot be stored. Index is the
// record's position in the batch given to LogIngester.InsertLogs.
type RecordError struct {
	Index  int    `json:"index"`
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

// RecordErrors is returned by LogIngester.InsertLogs when some records of a
// batch cannot be stored (bytes the database refuses, values too long). The
// other records of the batch are stored and counted; retrying the rejected
// ones cannot succeed.
type RecordErrors struct {
	Items []RecordError
}

// Error implements the error interface.
func (e *RecordErrors) Error() string {
	parts := make([]string, 0, min(len(e.Items), 3))
	for i, it := range e.Items {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(e.Items)-3))
			break
		}
		parts = append(parts, fmt.Sprintf("record %d: %s", it.Index, it.Reason))
	}
	return fmt.Sprintf("%d records rejected: %s", len(e.Items), strings.Join(parts, "; "))
}
