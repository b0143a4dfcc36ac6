package flywheel

import (
	"encoding/json"
	"time"
)

// StageName names one node kind of the run DAG.
type StageName string

// The stages of a run, in DAG order. The names are the blueprint's task names.
const (
	StageInitialize           StageName = "initialize"
	StageCreateDatasets       StageName = "create_datasets"
	StageWaitForJudge         StageName = "wait_for_judge"
	StageSpinUpNIM            StageName = "spin_up_nim"
	StageRunBaseEval          StageName = "run_base_eval"
	StageRunICLEval           StageName = "run_icl_eval"
	StageStartCustomization   StageName = "start_customization"
	StageRunCustomizationEval StageName = "run_customization_eval"
	StageShutdownDeployment   StageName = "shutdown_deployment"
	StageFinalize             StageName = "finalize"
	// StageCleanup releases every live resource of a run after a
	// cancellation, a failure, or a crash.
	StageCleanup StageName = "cleanup"
)

// StageStatus is the state of one stage of one run.
type StageStatus string

// Stage statuses.
const (
	StagePending   StageStatus = "pending"   // waiting for its dependencies
	StageQueued    StageStatus = "queued"    // a job is enqueued for it
	StageRunning   StageStatus = "running"   // a worker is executing it
	StageSucceeded StageStatus = "succeeded" // done
	StageFailed    StageStatus = "failed"    // done, with an error
	StageSkipped   StageStatus = "skipped"   // not run: an upstream stage failed or it is disabled
	StageCancelled StageStatus = "cancelled" // not run or stopped: the run was cancelled
)

// Done reports whether the stage will not run again.
func (s StageStatus) Done() bool {
	return s == StageSucceeded || s == StageFailed || s == StageSkipped || s == StageCancelled
}

// Stage is one node of a run's DAG. Candidate is the NIMRun id for the
// per-candidate stages and "" for run-level ones.
type Stage struct {
	RunID      string          `json:"run_id"`
	Candidate  string          `json:"candidate,omitempty"`
	Name       StageName       `json:"name"`
	Status     StageStatus     `json:"status"`
	Attempts   int             `json:"attempts"`
	JobID      int64           `json:"job_id,omitempty"`
	StartedAt  *time.Time      `json:"started_at,omitempty"`
	FinishedAt *time.Time      `json:"finished_at,omitempty"`
	Error      string          `json:"error,omitempty"`
	Output     json.RawMessage `json:"output,omitempty"`
	// Progress is 0..100 for stages that report it.
	Progress float64 `json:"progress"`
	// TimeLimitSeconds is the stage's overall (hard) limit.
	TimeLimitSeconds float64 `json:"time_limit_seconds,omitempty"`
	// Position orders stages for display (DAG order).
	Position int `json:"-"`
	// Deps are the stages this one waits for.
	Deps []StageDep `json:"deps,omitempty"`
}

// StageDep is an edge of the run DAG. A Hard dependency must succeed for the
// stage to run (otherwise it is skipped); a soft one only orders it.
type StageDep struct {
	Candidate string    `json:"candidate,omitempty"`
	Name      StageName `json:"name"`
	Hard      bool      `json:"hard,omitempty"`
}

// ResourceKind names a kind of live remote resource in the ledger.
type ResourceKind string

// Resource kinds.
const (
	ResourceDeployment    ResourceKind = "deployment"
	ResourceCustomization ResourceKind = "customization"
	ResourceEvaluation    ResourceKind = "evaluation"
	ResourceDataset       ResourceKind = "dataset"
	ResourceModel         ResourceKind = "model"
)

// ResourceState is the state of a ledger entry.
type ResourceState string

// Resource states.
const (
	ResourceLive          ResourceState = "live"           // created and not yet released
	ResourceReleased      ResourceState = "released"       // released (deleted, stopped)
	ResourceReleaseFailed ResourceState = "release_failed" // release failed; kept for retry
)

// Resource is an entry of the ledger of remote resources a run created.
type Resource struct {
	ID             int64           `json:"id"`
	RunID          string          `json:"run_id"`
	NIMID          string          `json:"nim_id,omitempty"`
	Kind           ResourceKind    `json:"kind"`
	Platform       string          `json:"platform"`
	RemoteID       string          `json:"remote_id"`
	Key            string          `json:"key"`
	State          ResourceState   `json:"state"`
	Data           json.RawMessage `json:"data,omitempty"`
	LeaseOwner     string          `json:"lease_owner,omitempty"`
	LeaseExpiresAt *time.Time      `json:"lease_expires_at,omitempty"`
	CreatedAt      time.Time       `json:"created_at"`
	ReleasedAt     *time.Time      `json:"released_at,omitempty"`
	Error          string          `json:"error,omitempty"`
}
