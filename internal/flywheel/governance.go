package flywheel

import (
	"context"
	"time"
)

// Audit actions: what an AuditEntry records.
const (
	AuditJobCreated   = "job.created"
	AuditJobCancelled = "job.cancelled"
	AuditJobDeleted   = "job.deleted"
	// AuditJobPurged records what the deletion of a run removed (rows,
	// files, remote resources), once it is done.
	AuditJobPurged    = "job.purged"
	AuditJobPromoted  = "job.promoted"
	AuditLogsIngested = "logs.ingested"
	AuditLogsDeleted  = "logs.deleted"
	AuditLogsExpired  = "logs.expired"
	AuditLogsRedacted = "logs.redacted"
)

// Actors of audit entries that are not API tokens.
const (
	// ActorLocal is a request served with authentication off.
	ActorLocal = "local"
	// ActorCLI is a command run against the database directly.
	ActorCLI = "cli"
	// ActorRetention is the periodic retention job.
	ActorRetention = "retention"
	// ActorCleanup is the background deletion of a run.
	ActorCleanup = "cleanup"
	// ActorOnline is the online monitor's automatic rollback.
	ActorOnline = "online"
)

// AuditEntry is one line of the audit log: who did what to what.
type AuditEntry struct {
	ID int64 `json:"id"`
	// At is when it happened.
	At time.Time `json:"at"`
	// Actor is the token ("name (id)"), ActorLocal, ActorCLI or
	// ActorRetention.
	Actor string `json:"actor"`
	// Action is one of the Audit* constants.
	Action string `json:"action"`
	// Target is the job id, or the workload (and client) of logs.
	Target string `json:"target"`
	// Detail holds what the action changed (counts, filters).
	Detail map[string]any `json:"detail"`
}

// AuditQuery selects a page of the audit log, newest first.
type AuditQuery struct {
	// Limit is the page size.
	Limit int
	// Before, when not 0, returns entries with a smaller ID (the cursor).
	Before int64
	// Action, when set, keeps only that action.
	Action string
}

// AuditLog keeps the audit log.
type AuditLog interface {
	// AddAudit stores an entry (its ID and, when zero, At are set).
	AddAudit(ctx context.Context, e *AuditEntry) error
	// ListAudit returns a page of entries, newest first.
	ListAudit(ctx context.Context, q AuditQuery) ([]AuditEntry, error)
}

type actorKey struct{}

// WithActor returns ctx acting as actor in the audit log: a process's own
// action (ActorOnline), not a request's.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorFrom names who ctx acts as for the audit log: the actor WithActor
// set, the request's token ("name (id)"), or ActorLocal when
// authentication is off.
func ActorFrom(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok {
		return a
	}
	if p := PrincipalFrom(ctx); p != nil {
		return p.Name + " (" + p.TokenID + ")"
	}
	return ActorLocal
}

// LogFilter selects stored log records to delete.
type LogFilter struct {
	// WorkloadID is required.
	WorkloadID string `json:"workload_id"`
	// ClientID, when set, keeps the deletion to that client.
	ClientID string `json:"client_id,omitempty"`
	// Before, when set, deletes only records logged before it.
	Before time.Time `json:"before,omitzero"`
}

// LogDeleter deletes stored log records.
type LogDeleter interface {
	// DeleteLogs deletes the records f selects and returns how many.
	DeleteLogs(ctx context.Context, f LogFilter) (int64, error)
}
