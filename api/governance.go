package api

// AuditEntry is one line of the audit log (GET /api/audit).
type AuditEntry struct {
	ID int64 `json:"id"`
	// At is when it happened.
	At Time `json:"at"`
	// Actor is who did it: a token ("name (id)"), "local" (authentication
	// off), "cli", "retention", "cleanup", "scheduler" (a schedule's fire)
	// or "online" (the online monitor's automatic rollback).
	Actor string `json:"actor"`
	// Action is job.created, job.cancelled, job.deleted, job.purged (what
	// a deletion removed), job.promoted, promotion.rolled_back,
	// schedule.created, schedule.deleted, schedule.fired, schedule.skipped,
	// schedule.failed, logs.ingested, logs.deleted, logs.expired or
	// logs.redacted.
	Action string `json:"action"`
	// Target is the job id, or the workload (and client) of logs.
	Target string         `json:"target"`
	Detail map[string]any `json:"detail"`
}

// AuditPage answers GET /api/audit: entries newest first, and the cursor of
// the next page (absent on the last).
type AuditPage struct {
	Entries    []AuditEntry `json:"entries"`
	NextCursor *string      `json:"next_cursor,omitempty"`
}

// LogsDeleteResponse answers DELETE /api/logs.
type LogsDeleteResponse struct {
	WorkloadID string `json:"workload_id"`
	ClientID   string `json:"client_id,omitempty"`
	// Before is the time bound given, if any.
	Before *Time `json:"before,omitempty"`
	// Deleted is how many stored records were deleted.
	Deleted int64 `json:"deleted"`
}
