package flywheel

// RunStatus is the status of a flywheel run (the blueprint's FlywheelRunStatus).
type RunStatus string

// Run statuses. The strings are the blueprint's and must not change.
const (
	RunPending   RunStatus = "pending"
	RunRunning   RunStatus = "running"
	RunCompleted RunStatus = "completed"
	RunFailed    RunStatus = "failed"
	RunCancelled RunStatus = "cancelled"
)

// Terminal reports whether the run can no longer change status.
func (s RunStatus) Terminal() bool {
	return s == RunCompleted || s == RunFailed || s == RunCancelled
}

// Valid reports whether s is one of the known run statuses.
func (s RunStatus) Valid() bool {
	switch s {
	case RunPending, RunRunning, RunCompleted, RunFailed, RunCancelled:
		return true
	}
	return false
}

// NIMStatus is the status of one candidate model inside a run (NIMRunStatus).
type NIMStatus string

// Candidate statuses. The strings are the blueprint's and must not change.
const (
	NIMPending      NIMStatus = "pending"
	NIMDeploying    NIMStatus = "deploying-nim"
	NIMRunningEvals NIMStatus = "running-evals"
	NIMCompleted    NIMStatus = "completed"
	NIMFailed       NIMStatus = "failed"
	NIMCancelled    NIMStatus = "cancelled"
)

// Terminal reports whether the candidate can no longer change status.
func (s NIMStatus) Terminal() bool {
	return s == NIMCompleted || s == NIMFailed || s == NIMCancelled
}

// DeploymentStatus is the status of a model deployment.
type DeploymentStatus string

// Deployment statuses. The strings are the blueprint's and must not change.
const (
	DeploymentCreated   DeploymentStatus = "created"
	DeploymentPending   DeploymentStatus = "pending"
	DeploymentRunning   DeploymentStatus = "running"
	DeploymentReady     DeploymentStatus = "ready"
	DeploymentCompleted DeploymentStatus = "completed"
	DeploymentFailed    DeploymentStatus = "failed"
	DeploymentCancelled DeploymentStatus = "cancelled"
	DeploymentUnknown   DeploymentStatus = "unknown"
)

// EvalType names one of the three evaluations run per candidate.
type EvalType string

// Evaluation types. The strings are the blueprint's and must not change.
const (
	EvalBase       EvalType = "base-eval"
	EvalICL        EvalType = "icl-eval"
	EvalCustomized EvalType = "customized-eval"
)

// WorkloadType is the kind of traffic a workload carries.
type WorkloadType string

// Workload types, as the blueprint classifies them.
const (
	WorkloadGeneric     WorkloadType = "generic"
	WorkloadToolCalling WorkloadType = "tool_calling"
)

// DatasetType names one of the datasets built for a run.
type DatasetType string

// Dataset types. Base is the evaluation set, ICL the evaluation set with
// few-shot examples injected, Train the fine-tuning set (with its validation part).
const (
	DatasetBase  DatasetType = "base-dataset"
	DatasetICL   DatasetType = "icl-dataset"
	DatasetTrain DatasetType = "train-dataset"
)

// Score keys the blueprint reports; evaluators may add more.
const (
	ScoreFunctionName           = "function_name"
	ScoreFunctionNameAndArgs    = "function_name_and_args_accuracy"
	ScoreToolCallingCorrectness = "tool_calling_correctness"
	ScoreSimilarity             = "similarity"
)
